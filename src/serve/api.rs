//! The HTTP API: an axum router over the shared [`App`].
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /prediction_job/` `{"text"}` | 201 `{"prediction", "prediction_score"}` (mlseries' ML service) |
//! | `POST /review_sentiment/` `{"text"}` | 200, the same answer after the front server's checks |
//! | `POST /predict` `{"texts": […]}` | 200 `{"predictions": [{"prediction", "prediction_score"}, …]}` |
//! | `GET /health` | the model in service: version, training params, reloads |
//! | `GET /metrics` | Prometheus metrics ([`super::metrics`]) |
//! | `GET /openapi.json` | the OpenAPI 3.1 description of these routes |
//!
//! `/prediction_job` and `/review_sentiment` without the final slash are
//! the same routes (FastAPI would redirect them). A front server (with an
//! upstream) serves `/review_sentiment/` by forwarding, and neither
//! `/prediction_job/` nor `/predict`. Every answer is JSON, errors too (see
//! [`super::request`]); each prediction says which model version made it in
//! the `x-model-version` header.
//!
//! Reading and parsing the body is the only work done on the async runtime
//! besides I/O: validating and predicting run together on an inference
//! thread ([`super::inference`]), with the model the request took when it
//! started.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use serde_json::json;

use pipe_stages::model::Prediction;

use super::inference::Inference;
use super::metrics::Metrics;
use super::model::ModelStore;
use super::request::{check_content_type, ApiError, Batch, Review};
use super::upstream::Upstream;

/// The header naming the model version (BLAKE3 of its file) that answered.
pub const MODEL_VERSION_HEADER: &str = "x-model-version";

/// The OpenAPI document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// What every request shares.
#[derive(Debug)]
pub struct App {
    /// The model, when this service predicts itself.
    pub store: Option<Arc<ModelStore>>,
    /// The service that predicts for `/review_sentiment/` instead.
    pub upstream: Option<Upstream>,
    pub inference: Inference,
    pub metrics: Metrics,
    pub max_body: usize,
    pub read_timeout: Duration,
    pub started: Instant,
}

/// The routes a request path counts under in metrics: one of the API's, or
/// `other`.
pub fn endpoint(path: &str) -> &'static str {
    match path {
        "/prediction_job/" | "/prediction_job" => "/prediction_job/",
        "/review_sentiment/" | "/review_sentiment" => "/review_sentiment/",
        "/predict" => "/predict",
        "/health" => "/health",
        "/metrics" => "/metrics",
        "/openapi.json" => "/openapi.json",
        _ => "other",
    }
}

pub fn router(app: Arc<App>) -> Router {
    let mut router = Router::new();
    if app.store.is_some() {
        router = router
            .route("/prediction_job/", post(prediction_job))
            .route("/prediction_job", post(prediction_job))
            .route("/predict", post(predict));
    }
    router
        .route("/review_sentiment/", post(review_sentiment))
        .route("/review_sentiment", post(review_sentiment))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(app)
}

#[derive(Serialize)]
struct Answer<'a> {
    prediction: &'a str,
    prediction_score: f64,
}

impl<'a> From<&'a Prediction> for Answer<'a> {
    fn from(p: &'a Prediction) -> Self {
        Answer {
            prediction: &p.label,
            prediction_score: p.score,
        }
    }
}

fn json_response(status: StatusCode, body: Vec<u8>, version: Option<&str>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(MODEL_VERSION_HEADER, v);
    }
    response
}

fn reply(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The body, within the size limit and the read timeout, if it is JSON.
async fn read_body(app: &App, request: Request) -> Result<Bytes, ApiError> {
    let too_large = ApiError::TooLarge {
        limit: app.max_body,
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_body as u64) {
        return Err(too_large);
    }
    check_content_type(request.headers())?;
    let body = Limited::new(request.into_body(), app.max_body);
    match tokio::time::timeout(app.read_timeout, body.collect()).await {
        Err(_) => Err(ApiError::BodyTimeout {
            seconds: app.read_timeout.as_secs_f64(),
        }),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large),
        Ok(Err(e)) => Err(ApiError::BodyUnreadable {
            reason: e.to_string(),
        }),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// Parses, checks and predicts one review on an inference thread.
async fn predict_review(
    app: &App,
    body: Bytes,
    front: bool,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let store = app.store.as_ref().expect("routed only with a model");
    let model = store.current();
    let prediction = app
        .inference
        .run(move || {
            let review = Review::parse(&body)?;
            if front {
                review.check_not_a_number()?;
            }
            let mut p = model.model.predictions(&[review.text]);
            Ok::<_, ApiError>((p.pop().expect("one text, one prediction"), model))
        })
        .await
        .map_err(|_| ApiError::Internal)?;
    let (prediction, model) = prediction?;
    app.metrics.predicted(&prediction.label);
    let body = serde_json::to_vec(&Answer::from(&prediction)).expect("JSON");
    Ok(json_response(status, body, Some(&model.info.version)))
}

async fn prediction_job(State(app): State<Arc<App>>, request: Request) -> Response {
    reply(
        async {
            let body = read_body(&app, request).await?;
            predict_review(&app, body, false, StatusCode::CREATED).await
        }
        .await,
    )
}

async fn review_sentiment(State(app): State<Arc<App>>, request: Request) -> Response {
    reply(
        async {
            let body = read_body(&app, request).await?;
            match &app.upstream {
                None => predict_review(&app, body, true, StatusCode::OK).await,
                Some(upstream) => {
                    let review = app
                        .inference
                        .run(move || {
                            let review = Review::parse(&body)?;
                            review.check_not_a_number()?;
                            Ok::<_, ApiError>(review)
                        })
                        .await
                        .map_err(|_| ApiError::Internal)??;
                    let answer = upstream.predict(&review.text).await?;
                    let mut response = (answer.status, answer.body).into_response();
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        answer
                            .content_type
                            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
                            .unwrap_or(HeaderValue::from_static("application/json")),
                    );
                    Ok(response)
                }
            }
        }
        .await,
    )
}

#[derive(Serialize)]
struct BatchAnswer<'a> {
    predictions: Vec<Answer<'a>>,
}

async fn predict(State(app): State<Arc<App>>, request: Request) -> Response {
    reply(
        async {
            let body = read_body(&app, request).await?;
            let model = app
                .store
                .as_ref()
                .expect("routed only with a model")
                .current();
            let (predictions, model) = app
                .inference
                .run(move || {
                    let batch = Batch::parse(&body)?;
                    Ok::<_, ApiError>((model.model.predictions(&batch.texts), model))
                })
                .await
                .map_err(|_| ApiError::Internal)??;
            for p in &predictions {
                app.metrics.predicted(&p.label);
            }
            let body = serde_json::to_vec(&BatchAnswer {
                predictions: predictions.iter().map(Answer::from).collect(),
            })
            .expect("JSON");
            Ok(json_response(
                StatusCode::OK,
                body,
                Some(&model.info.version),
            ))
        }
        .await,
    )
}

async fn health(State(app): State<Arc<App>>) -> Response {
    let uptime = (app.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    let body = match (&app.store, &app.upstream) {
        (Some(store), _) => {
            let current = store.current();
            json!({
                "status": "ok",
                "model": current.info,
                "reloads": store.stats(),
                "uptime_seconds": uptime,
            })
        }
        (None, Some(upstream)) => json!({
            "status": "ok",
            "upstream": upstream.shown(),
            "uptime_seconds": uptime,
        }),
        (None, None) => json!({"status": "ok", "uptime_seconds": uptime}),
    };
    json_response(
        StatusCode::OK,
        serde_json::to_vec(&body).expect("JSON"),
        None,
    )
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut response = app.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(super::metrics::CONTENT_TYPE),
    );
    response
}

async fn openapi() -> Response {
    json_response(StatusCode::OK, OPENAPI.as_bytes().to_vec(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_describes_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let paths: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut routes: Vec<&str> = [
            "/prediction_job/",
            "/review_sentiment/",
            "/predict",
            "/health",
            "/metrics",
            "/openapi.json",
        ]
        .into_iter()
        .map(endpoint)
        .collect();
        routes.sort_unstable();
        let mut paths = paths;
        paths.sort_unstable();
        assert_eq!(paths, routes);
        assert_eq!(endpoint("/prediction_job"), "/prediction_job/");
        assert_eq!(endpoint("/../etc/passwd"), "other");
    }
}
