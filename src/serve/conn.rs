//! The listener, its connections, the model watcher and the signals.
//!
//! Connections are served by hyper's HTTP/1 with the axum router as the
//! service, in a loop of our own rather than `axum::serve`, for what a
//! service facing unknown clients needs:
//!
//! - **Slow clients.** A request's headers must arrive within the read
//!   timeout (hyper's header timer; between requests it is the keep-alive
//!   idle timeout too), and its body within the same time after them
//!   ([`super::api`]). When the header timer fires with part of a request
//!   already received, the client gets a JSON 408 before the connection
//!   closes; an idle keep-alive connection is closed without a word, as
//!   HTTP has it. Neither holds anything but its socket until then.
//! - **Many clients.** Past `max_connections` open connections, a new one
//!   is answered 503 (JSON, `Retry-After: 1`) and closed. The limit on open
//!   files is raised to its hard limit at start, and running out of them
//!   (`accept` failing) pauses accepting for 100 ms instead of spinning.
//! - **Early answers.** A 413 is sent before a large body is read. Closing
//!   the socket with unread data would make the kernel reset the connection
//!   and the client could lose the answer, so every connection ends with a
//!   lingering close: our side is shut down, and what the client still
//!   sends is read and dropped (2 s, 16 MiB at most) until it closes.
//! - **Draining.** On SIGTERM or SIGINT the listener is closed, idle
//!   connections are closed, and each busy one finishes its request (hyper's
//!   graceful shutdown), for at most the shutdown timeout; a second signal
//!   stops waiting. Either way the service then returns, and pipe exits 0.
//! - **Reloads.** A task checks the model file every `watch_interval`, and
//!   reloads it on SIGHUP, off the runtime (`spawn_blocking`): see
//!   [`super::model`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{watch, Notify};
use tower_service::Service;

use super::api::{self, App};
use super::inference::Inference;
use super::metrics::Metrics;
use super::model::{ModelStore, Reload, Trigger};
use super::upstream::Upstream;
use super::{Config, Event, Events, RequestRecord, ServeError, Source};

/// How long a closing connection waits for the client to close.
const LINGER: Duration = Duration::from_secs(2);
/// How much it reads from the client meanwhile.
const LINGER_BYTES: usize = 16 << 20;
/// The listen backlog.
const BACKLOG: u32 = 4096;

/// Loads the model (or sets up the upstream), binds, and serves until a
/// stop signal; see the module docs.
pub async fn serve(config: Config, events: Arc<dyn Events>) -> Result<(), ServeError> {
    let (store, upstream) = match &config.source {
        Source::Model { path, display } => {
            let store = ModelStore::open(path.clone(), display.clone()).map_err(|source| {
                ServeError::Model {
                    path: display.clone(),
                    source,
                }
            })?;
            (Some(Arc::new(store)), None)
        }
        Source::Upstream(url) => {
            let upstream = Upstream::new(url, config.upstream_timeout)
                .map_err(|e| ServeError::Runtime(std::io::Error::other(e)))?;
            (None, Some(upstream))
        }
    };
    // Signals are taken over before anything is announced, so that a stop
    // sent right after the announcement is a drain, not the default death.
    let mut stop = Stops::new().map_err(ServeError::Runtime)?;
    let hangup = signal(SignalKind::hangup()).map_err(ServeError::Runtime)?;
    raise_open_files_limit();
    let listener = bind(config.addr)?;
    let addr = listener.local_addr().map_err(ServeError::Runtime)?;

    let metrics = Metrics::new();
    if let Some(store) = &store {
        metrics.model_in_service(&store.current().info.version);
    }
    let app = Arc::new(App {
        store: store.clone(),
        upstream,
        inference: Inference::new(config.executor, config.workers).map_err(ServeError::Runtime)?,
        metrics,
        max_body: config.max_body,
        read_timeout: config.read_timeout,
        started: Instant::now(),
    });
    let router = api::router(app.clone());
    events.event(Event::Listening {
        addr,
        model: store.as_ref().map(|s| s.current().info.clone()),
        upstream: app.upstream.as_ref().map(|u| u.shown().to_string()),
    });
    tokio::spawn(watch_model(
        store,
        hangup,
        config.watch_interval,
        app.clone(),
        events.clone(),
    ));

    let open = Arc::new(OpenConnections::default());
    let (drain_tx, drain_rx) = watch::channel(false);
    let signal_name = loop {
        tokio::select! {
            name = stop.next() => break name,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if open.count() >= config.max_connections {
                        tokio::spawn(refuse(stream, config.max_connections, app.clone()));
                        continue;
                    }
                    let guard = open.open(&app);
                    tokio::spawn(connection(
                        stream,
                        peer,
                        router.clone(),
                        app.clone(),
                        events.clone(),
                        config.read_timeout,
                        drain_rx.clone(),
                        guard,
                    ));
                }
                Err(e) if is_per_connection(&e) => {}
                Err(e) => {
                    events.event(Event::AcceptFailed { error: e.to_string() });
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    };
    drop(listener);
    events.event(Event::Draining {
        signal: signal_name,
        connections: open.count(),
    });
    let _ = drain_tx.send(true);
    let cut_short = tokio::select! {
        _ = open.all_closed() => 0,
        _ = tokio::time::sleep(config.shutdown_timeout) => open.count(),
        _ = stop.next() => open.count(),
    };
    events.event(Event::Stopped { cut_short });
    Ok(())
}

/// SIGTERM and SIGINT.
struct Stops {
    term: Signal,
    int: Signal,
}

impl Stops {
    fn new() -> std::io::Result<Stops> {
        Ok(Stops {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next one; returns its name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    let error = |source| ServeError::Bind { addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(error)?;
    // Lets a restarted service bind while old connections are in
    // TIME_WAIT; a port another process listens on still fails.
    socket.set_reuseaddr(true).map_err(error)?;
    socket.bind(addr).map_err(error)?;
    socket.listen(BACKLOG).map_err(error)
}

/// Raises the soft limit on open files to the hard limit (as Go's runtime
/// does): each connection is a file.
fn raise_open_files_limit() {
    // SAFETY: getrlimit/setrlimit with a valid, owned struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Errors of `accept` that concern one connection only.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    )
}

/// Counts open connections; wakes [`OpenConnections::all_closed`] at zero.
#[derive(Default)]
struct OpenConnections {
    count: AtomicUsize,
    none: Notify,
}

impl OpenConnections {
    fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    fn open(self: &Arc<Self>, app: &Arc<App>) -> OpenGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        app.metrics.connection_opened();
        OpenGuard {
            open: self.clone(),
            app: app.clone(),
        }
    }

    async fn all_closed(&self) {
        loop {
            let notified = self.none.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One open connection; closes it in the count when dropped (a panic too).
struct OpenGuard {
    open: Arc<OpenConnections>,
    app: Arc<App>,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.app.metrics.connection_closed();
        if self.open.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.open.none.notify_waiters();
        }
    }
}

type BoxedResponse =
    Pin<Box<dyn Future<Output = Result<axum::response::Response, Infallible>> + Send + 'static>>;

#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    app: Arc<App>,
    events: Arc<dyn Events>,
    read_timeout: Duration,
    mut drain: watch::Receiver<bool>,
    _guard: OpenGuard,
) {
    let _ = stream.set_nodelay(true);
    let service_app = app.clone();
    let service_events = events.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let future: BoxedResponse = Box::pin(handle(
            request,
            peer,
            router.clone(),
            service_app.clone(),
            service_events.clone(),
        ));
        future
    });
    let mut conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout)
        .keep_alive(true)
        // A client that shuts its side down after the request still gets
        // the answer.
        .half_close(true)
        .serve_connection(TokioIo::new(stream), service);
    let mut draining = *drain.borrow();
    if draining {
        Pin::new(&mut conn).graceful_shutdown();
    }
    let result = loop {
        tokio::select! {
            result = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break result,
            changed = drain.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    Pin::new(&mut conn).graceful_shutdown();
                }
            }
        }
    };
    let parts = conn.into_parts();
    let mut stream = parts.io.into_inner();
    if let Err(e) = result {
        if e.is_timeout() && !parts.read_buf.is_empty() {
            // Part of a request came, the rest did not: say so.
            let started = Instant::now();
            let body = format!(
                "{{\"detail\":\"the request headers did not arrive within {} s\"}}",
                read_timeout.as_secs_f64()
            );
            write_raw(&mut stream, "408 Request Timeout", &body, "").await;
            app.metrics.request_started();
            app.metrics.request_finished("other", 408, 0.0);
            if events.wants_requests() {
                events.event(Event::Request(RequestRecord {
                    at: SystemTime::now(),
                    peer,
                    method: "-".into(),
                    path: "-".into(),
                    status: 408,
                    latency: started.elapsed(),
                }));
            }
        }
    }
    linger_close(stream).await;
}

/// One request through the router, timed, counted and logged.
async fn handle(
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
    mut router: Router,
    app: Arc<App>,
    events: Arc<dyn Events>,
) -> Result<axum::response::Response, Infallible> {
    let started = Instant::now();
    let endpoint = api::endpoint(request.uri().path());
    let logged = events.wants_requests().then(|| {
        (
            SystemTime::now(),
            request.method().to_string(),
            request.uri().path().to_string(),
        )
    });
    app.metrics.request_started();
    let response = router.call(request).await?;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    app.metrics
        .request_finished(endpoint, status, latency.as_secs_f64());
    if let Some((at, method, path)) = logged {
        events.event(Event::Request(RequestRecord {
            at,
            peer,
            method,
            path,
            status,
            latency,
        }));
    }
    Ok(response)
}

/// Answers a connection over the limit with a 503 and closes it.
async fn refuse(mut stream: TcpStream, limit: usize, app: Arc<App>) {
    let body = format!(
        "{{\"detail\":\"the service has {limit} open connections, its limit: try again later\"}}"
    );
    write_raw(
        &mut stream,
        "503 Service Unavailable",
        &body,
        "retry-after: 1\r\n",
    )
    .await;
    app.metrics.request_started();
    app.metrics.request_finished("other", 503, 0.0);
    linger_close(stream).await;
}

/// Writes a whole JSON response on a connection hyper no longer serves.
async fn write_raw(stream: &mut TcpStream, status: &str, body: &str, extra_headers: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra_headers}connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(LINGER, stream.write_all(response.as_bytes())).await;
}

/// Shuts our side down, then reads what the client still sends until it
/// closes (at most [`LINGER`] and [`LINGER_BYTES`]), so that it reads our
/// last answer before the connection goes.
async fn linger_close(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut buf = [0u8; 8192];
    let mut read = 0;
    let _ = tokio::time::timeout(LINGER, async {
        while read < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
}

/// Checks the model file every `interval` (zero: never) and reloads on
/// SIGHUP, reporting what happened.
async fn watch_model(
    store: Option<Arc<ModelStore>>,
    mut hangup: Signal,
    interval: Duration,
    app: Arc<App>,
    events: Arc<dyn Events>,
) {
    let Some(store) = store else {
        // A front server has no model: SIGHUP is ignored, not fatal.
        while hangup.recv().await.is_some() {}
        return;
    };
    let mut ticks = (!interval.is_zero()).then(|| {
        let mut t = tokio::time::interval(interval);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        let trigger = tokio::select! {
            _ = async { ticks.as_mut().expect("guarded").tick().await }, if ticks.is_some() => Trigger::FileChanged,
            signal = hangup.recv() => match signal {
                Some(()) => Trigger::Signal,
                None => return,
            },
        };
        let s = store.clone();
        let outcome = tokio::task::spawn_blocking(move || match trigger {
            Trigger::Signal => Some(s.reload()),
            Trigger::FileChanged => s.check(),
        })
        .await;
        match outcome {
            Ok(Some(Reload::Swapped { from, to })) => {
                app.metrics.reloaded(true);
                app.metrics.model_in_service(&to.version);
                events.event(Event::ModelSwapped { from, to, trigger });
            }
            Ok(Some(Reload::Unchanged(info))) => {
                if trigger == Trigger::Signal {
                    events.event(Event::ModelUnchanged { info, trigger });
                }
            }
            Ok(Some(Reload::Failed { error, serving })) => {
                app.metrics.reloaded(false);
                events.event(Event::ModelReloadFailed {
                    path: store.display().to_string(),
                    error,
                    serving,
                });
            }
            Ok(None) | Err(_) => {}
        }
    }
}
