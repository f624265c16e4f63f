//! `serve`: a fitted model as an HTTP service (`pipe serve`).
//!
//! The service answers the API of the mlseries sentiment project, whose two
//! FastAPI services it replaces in one process: the ML service's
//! `POST /prediction_job/` and the front server's `POST /review_sentiment/`
//! (which validates a review before asking the ML service), plus a batch
//! endpoint, health, Prometheus metrics and an OpenAPI document. With an
//! upstream URL it is the front server alone and forwards each review to
//! another service's `/prediction_job/`, so the two can be deployed apart.
//!
//! # Design
//!
//! - [`model`]: the model file, loaded once into a [`model::ModelStore`]
//!   (an `ArcSwap`). A request takes the current model (an `Arc`) and keeps
//!   it to the end, so a swap never changes a model under a running
//!   prediction. The store is reloaded when the file changes (a poll of its
//!   metadata, which sees a rename, a new link into the cache, or an edit)
//!   or on `SIGHUP`; a file that fails to load is reported and the model in
//!   service stays.
//! - [`api`]: the axum router and its handlers; [`request`] turns a body
//!   into a typed request or an [`request::ApiError`], the one place where
//!   the status codes and error bodies of bad input are decided.
//! - [`inference`]: predictions run off the async runtime, on a bounded
//!   pool of inference threads (or the runtime's blocking pool: both are
//!   measured by `bench/serve.sh`).
//! - [`conn`]: the accept loop and each connection (hyper's HTTP/1): the
//!   limits that keep slow or hostile clients from hurting the others
//!   (header and body timeouts answered with a JSON 408, a connection cap,
//!   a lingering close so that an early 413 reaches the client), and the
//!   graceful drain on `SIGTERM` / Ctrl-C.
//! - [`metrics`]: Prometheus counters and histograms (prometheus-client).
//! - [`upstream`]: the HTTP client of the front server (reqwest).
//!
//! The library never prints: everything worth saying (listening, one line
//! per request, reloads, the drain) is an [`Event`] handed to the caller's
//! [`Events`], which the CLI renders as text or JSON lines.

pub mod api;
pub mod conn;
pub mod inference;
pub mod metrics;
pub mod model;
pub mod request;
pub mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use thiserror::Error;

use crate::paths::RelPath;
use crate::spec::{Action, Pipeline};

pub use inference::ExecutorKind;

/// What the service answers from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A model file, loaded in-process and watched for changes.
    Model {
        /// The file to load (absolute, or relative to the working directory).
        path: PathBuf,
        /// How to name it in messages and `/health`.
        display: String,
    },
    /// Another service's `/prediction_job/`: only `/review_sentiment/` is
    /// served, by forwarding.
    Upstream(url::Url),
}

/// Everything `pipe serve` was asked for, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub source: Source,
    /// Threads of the async runtime, and of the inference pool.
    pub workers: usize,
    pub executor: ExecutorKind,
    /// The largest request body accepted (413 above it).
    pub max_body: usize,
    /// How long a client may take to send a request's headers, and then its
    /// body (408 past it); an idle keep-alive connection is closed after it.
    pub read_timeout: Duration,
    /// How long in-flight requests may take to finish after SIGTERM/Ctrl-C.
    pub shutdown_timeout: Duration,
    /// How often the model file is checked for changes (zero: never).
    pub watch_interval: Duration,
    /// Open connections at most; more are answered 503 and closed.
    pub max_connections: usize,
    /// How long the upstream may take to answer (504 past it).
    pub upstream_timeout: Duration,
}

/// One request, as the access log tells it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub at: SystemTime,
    pub peer: SocketAddr,
    pub method: String,
    /// The path without its query string (which may hold secrets).
    pub path: String,
    pub status: u16,
    pub latency: Duration,
}

/// What the service has to say; rendered by the caller.
#[derive(Debug, Clone)]
pub enum Event {
    /// The socket is bound and the model loaded: requests are answered.
    Listening {
        addr: SocketAddr,
        model: Option<model::ModelInfo>,
        upstream: Option<String>,
    },
    Request(RequestRecord),
    /// A new model version is in service.
    ModelSwapped {
        from: model::ModelInfo,
        to: model::ModelInfo,
        /// `SIGHUP`, or the file changed.
        trigger: model::Trigger,
    },
    /// A reload was asked for but the file holds the version in service.
    ModelUnchanged {
        info: model::ModelInfo,
        trigger: model::Trigger,
    },
    /// A changed model file could not be loaded; the old model serves on.
    ModelReloadFailed {
        path: String,
        error: String,
        serving: model::ModelInfo,
    },
    /// Accepting a connection failed (e.g. out of file descriptors); the
    /// service pauses accepting briefly and goes on.
    AcceptFailed {
        error: String,
    },
    /// A signal asked the service to stop: no new connections, in-flight
    /// requests finish.
    Draining {
        signal: &'static str,
        connections: usize,
    },
    /// The service stopped; `cut_short` connections were still busy when the
    /// drain ended (past the shutdown timeout, or a second signal).
    Stopped {
        cut_short: usize,
    },
}

/// Receives the service's events. Must not block: it is called on the
/// service's threads.
pub trait Events: Send + Sync + 'static {
    fn event(&self, event: Event);

    /// Whether [`Event::Request`]s are wanted (they cost a little to make).
    fn wants_requests(&self) -> bool {
        true
    }
}

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load the model `{path}`")]
    Model {
        path: String,
        #[source]
        source: pipe_stages::model::ModelError,
    },
    #[error("no stage of the pipeline uses the built-in `fit`, so there is no model to serve by default")]
    NoFitStage,
    #[error("several stages use the built-in `fit` ({}); which model to serve?", stages.join(", "))]
    SeveralFitStages { stages: Vec<String> },
    #[error("stage `{stage}`: its `with.model` is not a path")]
    FitModelNotAPath { stage: String },
    #[error("cannot start the service: {0}")]
    Runtime(#[source] std::io::Error),
}

/// The model file of the pipeline's `fit` stage (its `with: {model: …}`),
/// relative to the project root.
pub fn fit_model_path(pipeline: &Pipeline) -> Result<RelPath, ServeError> {
    let fits: Vec<_> = pipeline
        .stages
        .iter()
        .filter_map(|s| match &s.action {
            Action::Builtin { name, args, .. } if name == "fit" => Some((s, args.get("model"))),
            _ => None,
        })
        .collect();
    match fits.as_slice() {
        [] => Err(ServeError::NoFitStage),
        [(stage, model)] => model
            .and_then(|m| m.as_str())
            .and_then(|m| RelPath::parse(m, Some(&stage.wdir)).ok())
            .ok_or_else(|| ServeError::FitModelNotAPath {
                stage: stage.name.clone(),
            }),
        many => Err(ServeError::SeveralFitStages {
            stages: many.iter().map(|(s, _)| s.name.clone()).collect(),
        }),
    }
}

/// Binds, loads the model, and serves until SIGTERM or SIGINT; then drains
/// in-flight requests (at most `shutdown_timeout`) and returns.
pub fn run(config: Config, events: Arc<dyn Events>) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers.max(1))
        .thread_name("pipe-serve")
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(conn::serve(config, events))
}
