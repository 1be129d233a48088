//! [`AppState`] and [`router`]: the routes and the layers around them, in order.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use translator::Kind;

use crate::config::{Config, ModelRoute};
use crate::error::ApiError;
use crate::routes;
use crate::upstream::Upstream;

/// Largest request body accepted, in bytes. Bedrock's own limit is 25 MB per body;
/// text requests are far smaller, so a lower bound protects the gateway's memory.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// What every handler can reach. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub models: Arc<std::collections::BTreeMap<String, ModelRoute>>,
    pub upstream: Upstream,
    /// False once shutdown has begun, so `/readyz` takes the replica out of rotation.
    pub ready: Arc<AtomicBool>,
}

impl AppState {
    pub fn new(config: &Config, upstream: Upstream) -> AppState {
        AppState {
            models: Arc::new(config.models.clone()),
            upstream,
            ready: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The route for a caller's `model` alias.
    pub fn route(&self, alias: &str) -> Result<&ModelRoute, ApiError> {
        self.models.get(alias).ok_or_else(|| ApiError::UnknownModel(alias.to_owned()))
    }

    /// The route for an alias that must be of `kind` (an embedding model cannot generate text).
    pub fn route_of_kind(&self, alias: &str, kind: Kind) -> Result<&ModelRoute, ApiError> {
        let route = self.route(alias)?;
        if route.kind() != kind {
            let endpoint = match route.kind() {
                Kind::Text => "POST /v1/generate",
                Kind::Embedding => "POST /v1/embed",
                Kind::Image => "POST /v1/images",
            };
            return Err(ApiError::BadRequest(format!(
                "model {alias:?} is an {} model; use {endpoint}",
                route.kind().as_str()
            )));
        }
        Ok(route)
    }
}

/// The gateway's HTTP service. Layers are listed outermost first.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let layers = ServiceBuilder::new()
        // Give every request an id first, so that every log line below can carry it.
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        // Keep credentials out of the trace output before anything logs headers.
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION]))
        // One span per request with its id; handlers and errors log inside it.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!(
                "request",
                method = %request.method(),
                path = %request.uri().path(),
                request_id = %id,
            )
        }))
        // Echo the id to the caller, for error reports.
        .layer(PropagateRequestIdLayer::new(request_id))
        // A panic in a handler becomes a 500 in our error shape, not a dropped connection.
        .layer(CatchPanicLayer::custom(|_panic| panic_response()));

    Router::new()
        .route("/v1/generate", post(routes::generate::generate))
        .route("/v1/embed", post(routes::embed::embed))
        .route("/v1/images", post(routes::images::images))
        // The OpenAI-compatible API, for code written against the OpenAI SDKs.
        .route("/v1/chat/completions", post(routes::openai::chat_completions))
        .route("/v1/completions", post(routes::openai::completions))
        .route("/v1/embeddings", post(routes::openai::embeddings))
        .route("/v1/images/generations", post(routes::openai::image_generations))
        .route("/v1/models", get(routes::models::list_models))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        // Bodies are read by our own extractor, which turns this limit into a 413.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(layers)
        .with_state(state)
}

fn panic_response() -> Response {
    ApiError::Internal("a handler panicked".to_owned()).into_response()
}
