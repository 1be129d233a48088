//! [`AppState`] and [`router`]: the routes and the layers around them, in order.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::{HeaderName, Request, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use translator::Kind;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{self, ApiKeys};
use crate::config::{Config, ModelRoute};
use crate::error::ApiError;
use crate::pipeline::Pipeline;
use crate::routes;

/// Largest request body accepted, in bytes. Bedrock's own limit is 25 MB per body;
/// text requests are far smaller, so a lower bound protects the gateway's memory.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// What every handler can reach. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub models: Arc<std::collections::BTreeMap<String, ModelRoute>>,
    /// The one path to Bedrock: admission, retries, fallbacks, settlement.
    pub pipeline: Arc<Pipeline>,
    /// False once shutdown has begun, so `/readyz` takes the replica out of rotation.
    pub ready: Arc<AtomicBool>,
    /// The OpenAPI document, rendered once when the router is built.
    pub openapi: Arc<String>,
    /// The API keys callers must present, if any.
    pub api_keys: ApiKeys,
}

impl AppState {
    pub fn new(config: &Config, pipeline: Pipeline) -> AppState {
        AppState {
            models: Arc::new(config.models.clone()),
            pipeline: Arc::new(pipeline),
            ready: Arc::new(AtomicBool::new(true)),
            openapi: Arc::new(String::new()),
            api_keys: ApiKeys::new(config.api_keys.clone()),
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
                // The API key's name, once `auth::require_key` has checked it.
                caller = tracing::field::Empty,
            )
        }))
        // Echo the id to the caller, for error reports.
        .layer(PropagateRequestIdLayer::new(request_id))
        // A panic in a handler becomes a 500 in our error shape, not a dropped connection.
        .layer(CatchPanicLayer::custom(|_panic| panic_response()));

    // Every documented route is registered through `api()`, so the OpenAPI document
    // and the router are made from the same list and cannot drift apart.
    let (api_router, openapi) = api().split_for_parts();
    let mut state = state;
    state.openapi = Arc::new(openapi.to_json().unwrap_or_default());
    api_router
        // Bedrock's own InvokeModel routes, for the AWS SDKs; documented in `ApiDoc`.
        .merge(routes::bedrock::routes())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        // Bodies are read by our own extractor, which turns this limit into a 413.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // API keys, inside the trace span so that the caller's key name is logged.
        .layer(axum::middleware::from_fn_with_state(state.api_keys.clone(), auth::require_key))
        .layer(layers)
        .with_state(state)
}

/// The documented routes, each registered with its OpenAPI operation.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        // The gateway's own API: one request shape whatever the model.
        .routes(routes!(routes::generate::generate))
        .routes(routes!(routes::embed::embed))
        .routes(routes!(routes::images::images))
        .routes(routes!(routes::models::list_models))
        // The OpenAI-compatible API, for code written against the OpenAI SDKs.
        .routes(routes!(routes::openai::chat_completions))
        .routes(routes!(routes::openai::completions))
        .routes(routes!(routes::openai::embeddings))
        .routes(routes!(routes::openai::image_generations))
        // Operations.
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::limits::limits))
        .routes(routes!(openapi_json))
}

/// The OpenAPI 3.1 document of the gateway, as [`api`] and [`openapi_json`] serve it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "bedrock-gateway",
        description = "One HTTP endpoint and one provider-neutral request in front of Amazon \
            Bedrock, an OpenAI-compatible API, and Bedrock's own runtime API as a passthrough. \
            Errors: `{\"error\": {\"type\", \"message\"}}` (OpenAI's shape on the OpenAI routes)."
    ),
    paths(
        routes::bedrock::invoke_model_operation,
        routes::bedrock::invoke_model_with_response_stream_operation,
    ),
    tags(
        (name = "gateway", description = "The gateway's own API"),
        (name = "bedrock", description = "Amazon Bedrock's runtime API, passed through"),
        (name = "openai", description = "OpenAI-compatible API"),
        (name = "operations", description = "Health and the API description"),
    )
)]
struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of every route", content_type = "application/json")))]
async fn openapi_json(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        state.openapi.as_ref().clone(),
    )
        .into_response()
}

fn panic_response() -> Response {
    ApiError::Internal("a handler panicked".to_owned()).into_response()
}
