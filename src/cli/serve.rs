//! `pipe serve`: argument handling and the rendering of the service's
//! events (the access log and what it says of the model) on stderr.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::{Args, ValueEnum};
use serde_json::json;

use pipe::serve::model::ModelInfo;
use pipe::serve::{self, Config, Event, Events, ExecutorKind, ServeError, Source};

use super::{load_project, CliError};

/// Serve a fitted model over HTTP with the API of the mlseries sentiment
/// services: POST /prediction_job/ and /review_sentiment/ {"text"}, POST
/// /predict {"texts": […]}, GET /health, /metrics (Prometheus) and
/// /openapi.json. The model is reloaded without downtime when its file
/// changes (`pipe repro`, `pipe exp apply`) or on SIGHUP; SIGTERM or Ctrl-C
/// finishes the requests in flight and exits 0. One log line per request on
/// stderr.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The model file (default: the `model` output of the pipeline's `fit`
    /// stage).
    #[arg(long, value_name = "PATH", conflicts_with = "upstream")]
    pub model: Option<PathBuf>,
    /// The address to listen on (port 0: any free port, printed at start).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8000")]
    pub addr: String,
    /// Threads answering requests, and threads predicting (default: the
    /// number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
    /// Serve only /review_sentiment/, forwarding each valid review to the
    /// /prediction_job/ of the service at URL (as mlseries' front server
    /// does).
    #[arg(long, value_name = "URL")]
    pub upstream: Option<url::Url>,
    /// The largest request body, in bytes (larger: 413).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_body: usize,
    /// Seconds a client may take to send a request's headers, then its body
    /// (408 past it); also how long an idle connection stays open.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub read_timeout: f64,
    /// Seconds in-flight requests may take to finish after SIGTERM/Ctrl-C.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub shutdown_timeout: f64,
    /// Seconds between checks of the model file for a new version (0: only
    /// on SIGHUP).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub watch_interval: f64,
    /// Open connections at most; more are answered 503.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub max_connections: usize,
    /// Seconds the upstream may take to answer (504 past it).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub upstream_timeout: f64,
    /// No log line per request (model reloads and errors are still said).
    #[arg(short, long)]
    pub quiet: bool,
    /// The log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Where predictions run (for benchmarks).
    #[arg(long, value_enum, default_value_t = Executor::Pool, hide = true)]
    pub executor: Executor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Executor {
    Pool,
    Blocking,
}

fn usage(message: String, hint: &str) -> CliError {
    CliError {
        message,
        hints: vec![hint.to_string()],
        code: 2,
    }
}

fn seconds(name: &str, value: f64) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        usage(
            format!("--{name} {value}: not a number of seconds"),
            "give a number of seconds of 0 or more, e.g. 2.5",
        )
    })
}

fn resolve_addr(addr: &str) -> Result<SocketAddr, CliError> {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            usage(
                format!("--addr {addr}: not an address to listen on"),
                "give HOST:PORT, e.g. 127.0.0.1:8000 or 0.0.0.0:8000",
            )
        })
}

/// The model to serve: `--model`, or the `fit` stage's output.
fn model_source(cwd: &Path, model: Option<PathBuf>) -> Result<Source, CliError> {
    if let Some(path) = model {
        return Ok(Source::Model {
            display: path.display().to_string(),
            path: cwd.join(path),
        });
    }
    let project = load_project(cwd)?;
    let rel = serve::fit_model_path(&project.pipeline)
        .map_err(|e| usage(e.to_string(), "name the model file with --model PATH"))?;
    Ok(Source::Model {
        path: rel.to_path(&project.root),
        display: rel.to_string(),
    })
}

pub fn run(cwd: &Path, args: ServeArgs) -> Result<ExitCode, CliError> {
    let addr = resolve_addr(&args.addr)?;
    let source = match args.upstream.clone() {
        Some(url) if matches!(url.scheme(), "http" | "https") => Source::Upstream(url),
        Some(url) => {
            return Err(usage(
                format!(
                    "--upstream {}: not an http(s) URL",
                    serve::upstream::shown(&url)
                ),
                "give the base URL of the prediction service, e.g. http://127.0.0.1:8001",
            ))
        }
        None => model_source(cwd, args.model.clone())?,
    };
    let workers = args.workers.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let config = Config {
        addr,
        source,
        workers,
        executor: match args.executor {
            Executor::Pool => ExecutorKind::Pool,
            Executor::Blocking => ExecutorKind::Blocking,
        },
        max_body: args.max_body,
        read_timeout: seconds("read-timeout", args.read_timeout)?,
        shutdown_timeout: seconds("shutdown-timeout", args.shutdown_timeout)?,
        watch_interval: seconds("watch-interval", args.watch_interval)?,
        max_connections: args.max_connections.max(1),
        upstream_timeout: seconds("upstream-timeout", args.upstream_timeout)?,
    };
    let log = Arc::new(Log {
        quiet: args.quiet,
        json: args.log_format == LogFormat::Json,
    });
    match serve::run(config, log) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(serve_error(e)),
    }
}

fn serve_error(e: ServeError) -> CliError {
    let hint = match &e {
        ServeError::Bind { .. } => {
            "another process listens there: stop it, or choose another port with --addr"
        }
        ServeError::Model { .. } => {
            "`pipe repro` writes the model with the `fit` stage; or pass a model file with --model"
        }
        _ => "see `pipe serve --help`",
    };
    let message = match &e {
        ServeError::Model { source, .. } => pipe::builtin::error_chain(source),
        _ => pipe::builtin::error_chain(&e),
    };
    usage(message, hint)
}

/// Renders the service's events on stderr, a line each.
struct Log {
    quiet: bool,
    json: bool,
}

impl Log {
    fn write(&self, text: String, json: serde_json::Value) {
        let mut line = if self.json { json.to_string() } else { text };
        line.push('\n');
        // A closed stderr must not stop the service.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn model_json(info: &ModelInfo) -> serde_json::Value {
    json!({"path": info.path, "version": info.version})
}

impl Events for Log {
    fn wants_requests(&self) -> bool {
        !self.quiet
    }

    fn event(&self, event: Event) {
        match event {
            Event::Listening {
                addr,
                model,
                upstream,
            } => {
                let serving = match (&model, &upstream) {
                    (Some(m), _) => format!("model {} ({})", m.path, m.short_version()),
                    (None, Some(u)) => format!("/review_sentiment/ by {u}/prediction_job/"),
                    (None, None) => String::new(),
                };
                self.write(
                    format!("Serving {serving} on http://{addr}"),
                    json!({
                        "time": now(), "event": "listening", "addr": addr.to_string(),
                        "model": model.as_ref().map(model_json), "upstream": upstream,
                    }),
                );
            }
            Event::Request(r) => self.write(
                format!(
                    "{} {} {} {} {:.3}ms",
                    humantime::format_rfc3339_millis(r.at),
                    r.method,
                    r.path,
                    r.status,
                    r.latency.as_secs_f64() * 1000.0
                ),
                json!({
                    "time": humantime::format_rfc3339_millis(r.at).to_string(),
                    "event": "request", "peer": r.peer.to_string(), "method": r.method,
                    "path": r.path, "status": r.status,
                    "latency_ms": (r.latency.as_secs_f64() * 1e6).round() / 1e3,
                }),
            ),
            Event::ModelSwapped { from, to, trigger } => self.write(
                format!(
                    "Model {} reloaded ({}): {} -> {}",
                    to.path,
                    trigger_name(trigger),
                    from.short_version(),
                    to.short_version()
                ),
                json!({
                    "time": now(), "event": "model_swapped", "trigger": trigger_name(trigger),
                    "from": model_json(&from), "to": model_json(&to),
                }),
            ),
            Event::ModelUnchanged { info, trigger } => self.write(
                format!(
                    "Model {} unchanged ({}): still {}",
                    info.path,
                    trigger_name(trigger),
                    info.short_version()
                ),
                json!({
                    "time": now(), "event": "model_unchanged",
                    "trigger": trigger_name(trigger), "model": model_json(&info),
                }),
            ),
            Event::ModelReloadFailed {
                path,
                error,
                serving,
            } => self.write(
                format!(
                    "warning: cannot reload the model {path}: {error}; still serving {}",
                    serving.short_version()
                ),
                json!({
                    "time": now(), "event": "model_reload_failed", "path": path,
                    "error": error, "serving": model_json(&serving),
                }),
            ),
            Event::AcceptFailed { error } => self.write(
                format!("warning: cannot accept a connection: {error}"),
                json!({"time": now(), "event": "accept_failed", "error": error}),
            ),
            Event::Draining {
                signal,
                connections,
            } => self.write(
                format!("{signal}: finishing the requests of {connections} open connection(s)"),
                json!({
                    "time": now(), "event": "draining", "signal": signal,
                    "connections": connections,
                }),
            ),
            Event::Stopped { cut_short } => self.write(
                if cut_short == 0 {
                    "Stopped".to_string()
                } else {
                    format!("Stopped; {cut_short} connection(s) cut short")
                },
                json!({"time": now(), "event": "stopped", "cut_short": cut_short}),
            ),
        }
    }
}

fn trigger_name(trigger: pipe::serve::model::Trigger) -> &'static str {
    match trigger {
        pipe::serve::model::Trigger::FileChanged => "file changed",
        pipe::serve::model::Trigger::Signal => "SIGHUP",
    }
}
