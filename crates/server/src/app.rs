//! [`Gateway`], [`AppState`] and [`router`]: the routes and the layers around them, in
//! order; and the [`admin_router`] of the admin listener.
//!
//! **Reload.** The router holds a [`Gateway`]: the live [`AppState`] (aliases, keys,
//! pipeline) behind a lock, swapped whole when the config is reloaded, and what
//! outlives reloads (metrics, readiness, the OpenAPI document). Every request takes one
//! snapshot of the live state when its handler starts (`State<AppState>`), so a
//! request in flight finishes on the config it started with.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::HeaderValue;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use translator::Kind;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{self, ApiKeys};
use crate::config::{BEDROCK_MAX_BODY_BYTES, Config, ModelRoute};
use crate::drain::Drain;
use crate::error::ApiError;
use crate::intake::{self, Intake};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::routes;
use crate::telemetry::{self, Observer};

/// What every handler can reach: one config's aliases, keys and pipeline, and the
/// readiness flag. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub models: Arc<std::collections::BTreeMap<String, ModelRoute>>,
    /// The one path to Bedrock: admission, retries, fallbacks, settlement.
    pub pipeline: Arc<Pipeline>,
    /// False once shutdown has begun, so `/readyz` takes the replica out of rotation.
    pub ready: Arc<AtomicBool>,
    /// The API keys callers must present, if any.
    pub api_keys: ApiKeys,
    /// `log_prompts`: prompts and answers at `debug` (off: never logged).
    pub log_prompts: bool,
    /// Set at the end of a shutdown's drain: open streams end with an error event.
    pub drain: Drain,
    /// Fetches the images callers name by URL, from the origins the config allows.
    pub image_fetch: Arc<crate::image_fetch::ImageFetcher>,
    /// The Responses API's stored responses (`[responses]`; off by default). A reload
    /// keeps it when `[responses]` is unchanged, and starts an empty one otherwise.
    pub responses_store: Arc<crate::routes::responses_store::ResponseStore>,
}

/// The router's state: the live [`AppState`], swapped whole on reload, and what every
/// config shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Gateway(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    live: RwLock<AppState>,
    /// The config the live state was built from, to tell what a reload changes.
    config: RwLock<Arc<Config>>,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    drain: Drain,
    /// The in-flight cap and the body limits (`max_in_flight`, `max_body_bytes`).
    intake: Intake,
    /// The OpenAPI document, rendered once when the router is built.
    openapi: OnceLock<String>,
    /// One scrape at a time: the scrape-time gauges are reset and set again.
    scrape: tokio::sync::Mutex<()>,
}

impl Gateway {
    pub fn new(config: Config, pipeline: Pipeline, metrics: Arc<Metrics>) -> Gateway {
        let ready = Arc::new(AtomicBool::new(true));
        let drain = Drain::new();
        let live = AppState::new(&config, pipeline, ready.clone(), drain.clone(), None);
        let intake = Intake::new(&config.http);
        Gateway(Arc::new(Shared {
            intake,
            live: RwLock::new(live),
            config: RwLock::new(Arc::new(config)),
            metrics,
            ready,
            drain,
            openapi: OnceLock::new(),
            scrape: tokio::sync::Mutex::new(()),
        }))
    }

    /// The live state now.
    pub fn current(&self) -> AppState {
        self.0.live.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The config the live state was built from.
    pub fn config(&self) -> Arc<Config> {
        self.0.config.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.0.metrics
    }

    pub fn ready(&self) -> &Arc<AtomicBool> {
        &self.0.ready
    }

    /// The end-of-drain signal every open stream watches.
    pub fn drain(&self) -> &Drain {
        &self.0.drain
    }

    /// The in-flight cap and the body limits.
    pub fn intake(&self) -> &Intake {
        &self.0.intake
    }

    /// Makes `config` (already validated) and its `pipeline` the live state. Requests in
    /// flight keep the state they started with.
    pub fn swap(&self, config: Config, pipeline: Pipeline) {
        let store = self.current().responses_store;
        let (ready, drain) = (self.0.ready.clone(), self.0.drain.clone());
        let live = AppState::new(&config, pipeline, ready, drain, Some(store));
        *self.0.live.write().unwrap_or_else(PoisonError::into_inner) = live;
        *self.0.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
    }
}

impl FromRef<Gateway> for AppState {
    fn from_ref(gateway: &Gateway) -> AppState {
        gateway.current()
    }
}

impl FromRef<Gateway> for ApiKeys {
    fn from_ref(gateway: &Gateway) -> ApiKeys {
        gateway.0.live.read().unwrap_or_else(PoisonError::into_inner).api_keys.clone()
    }
}

impl FromRef<Gateway> for Observer {
    fn from_ref(gateway: &Gateway) -> Observer {
        Observer { metrics: gateway.0.metrics.clone() }
    }
}

impl AppState {
    /// The live state of `config`; `store`, the running one's Responses store, is kept
    /// if its bounds are the config's.
    fn new(
        config: &Config,
        pipeline: Pipeline,
        ready: Arc<AtomicBool>,
        drain: Drain,
        store: Option<Arc<crate::routes::responses_store::ResponseStore>>,
    ) -> AppState {
        let responses_store =
            store.filter(|store| store.config() == config.responses).unwrap_or_else(|| {
                Arc::new(crate::routes::responses_store::ResponseStore::new(config.responses))
            });
        AppState {
            responses_store,
            drain,
            models: Arc::new(config.models.clone()),
            pipeline: Arc::new(pipeline),
            ready,
            api_keys: ApiKeys::new(config.api_keys.clone()),
            log_prompts: config.telemetry.log_prompts,
            image_fetch: Arc::new(crate::image_fetch::ImageFetcher::new(&config.image_fetch)),
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
///
/// They wrap the whole router, once, rather than each route (as `Router::layer` does):
/// a request then clones no boxed stack of services per layer on its way in
/// (ARCHITECTURE.md, "Runtime, allocator and layers, by measurement"). They see every
/// request the routes see, the fallbacks' included.
pub fn router(gateway: Gateway) -> Router {
    // Every documented route is registered through `api()`, so the OpenAPI document
    // and the router are made from the same list and cannot drift apart.
    let (api_router, mut openapi) = api().split_for_parts();
    routes::schema::refine(&mut openapi);
    let _ = gateway.0.openapi.set(openapi.to_json().unwrap_or_default());
    let cors = cors(&gateway.config().http.cors_allowed_origins);
    let routes = api_router
        // Bedrock's own InvokeModel routes, for the AWS SDKs; documented in `ApiDoc`.
        .merge(routes::bedrock::routes())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(gateway.clone());
    let layers = tower::ServiceBuilder::new()
        // Keep credentials out of anything that logs headers.
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION]))
        // The request id, span and record of every request; its metrics and log line
        // when its answer is done (the route template from the path, `telemetry::route_of`).
        .layer(axum::middleware::from_fn_with_state(gateway.clone(), telemetry::observe))
        // CORS, when origins are configured: preflights are answered here, before the key
        // check and the caps, and every answer (errors too) carries the CORS headers.
        .option_layer(cors)
        // The connection cap's refusals, the in-flight cap, the route's body limit (a
        // `Content-Length` over it is a 413 before any byte is read) and the body's deadline;
        // before the key check, which a refused request need not cost.
        .layer(axum::middleware::from_fn_with_state(gateway.clone(), intake::admit))
        // API keys, inside the request's span so that the caller's key name is logged.
        .layer(axum::middleware::from_fn_with_state(gateway, auth::require_key))
        // A panic in a handler becomes a 500 in our error shape, not a dropped connection
        // (and is recorded as such, inside `observe`).
        .layer(CatchPanicLayer::custom(|_panic| panic_response()))
        // Bodies are read through `intake::read_body`, limited per route by `intake::admit`;
        // this only backs axum's own extractors, were one used.
        .layer(DefaultBodyLimit::max(BEDROCK_MAX_BODY_BYTES));
    Router::new().fallback_service(layers.service(routes))
}

/// The CORS layer for `origins` (`*`: any origin); `None` when there are none.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([
                axum::http::Method::GET,
                axum::http::Method::POST,
                axum::http::Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                axum::http::HeaderName::from_static("x-api-key"),
                axum::http::HeaderName::from_static("x-request-id"),
                axum::http::HeaderName::from_static("anthropic-version"),
                axum::http::HeaderName::from_static("anthropic-beta"),
            ])
            .expose_headers([
                axum::http::HeaderName::from_static("x-request-id"),
                axum::http::HeaderName::from_static(crate::pipeline::TARGET_HEADER),
                header::RETRY_AFTER,
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// The admin listener's service: `/metrics`, the health routes, `POST /-/reload`. No
/// API keys (it listens on loopback by default; expose it to the scraper only).
pub fn admin_router(gateway: Gateway, reload: crate::reload::Reloader) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route(
            "/-/reload",
            post(move || {
                let reload = reload.clone();
                async move { reload.now().await }
            }),
        )
        .with_state(gateway)
}

/// The Prometheus exposition, with the quota gauges read now.
async fn metrics(State(gateway): State<Gateway>) -> Response {
    let state = gateway.current();
    let text = {
        let _one_at_a_time = gateway.0.scrape.lock().await;
        state.pipeline.observe_limits(state.api_keys.keys()).await;
        gateway.metrics().encode()
    };
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// The documented routes, each registered with its OpenAPI operation.
pub fn api() -> OpenApiRouter<Gateway> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        // The gateway's own API: one request shape whatever the model.
        .routes(routes!(routes::generate::generate))
        .routes(routes!(routes::embed::embed))
        .routes(routes!(routes::images::images))
        .routes(routes!(routes::images::image_edits))
        .routes(routes!(routes::models::list_models))
        .routes(routes!(routes::models::get_model))
        // The OpenAI-compatible API, for code written against the OpenAI SDKs.
        .routes(routes!(routes::openai::chat_completions))
        .routes(routes!(routes::openai::completions))
        .routes(routes!(routes::openai::embeddings))
        .routes(routes!(routes::openai::image_generations))
        .routes(routes!(routes::responses::responses))
        .routes(routes!(routes::responses::get_response, routes::responses::delete_response))
        // Anthropic's Messages API, for the Anthropic SDKs and the tools that speak it.
        .routes(routes!(routes::anthropic::messages))
        .routes(routes!(routes::anthropic::count_tokens))
        // Operations.
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::limits::limits))
        .routes(routes!(openapi_json))
}

/// The OpenAPI 3.1 document of the gateway, as [`api`] and [`openapi_json`] serve it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api().into_openapi();
    routes::schema::refine(&mut doc);
    doc
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
        routes::converse::converse_operation,
        routes::converse::converse_stream_operation,
        routes::converse::count_tokens_operation,
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
async fn openapi_json(State(gateway): State<Gateway>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        gateway.0.openapi.get().cloned().unwrap_or_default(),
    )
        .into_response()
}

fn panic_response() -> Response {
    ApiError::Internal("a handler panicked".to_owned()).into_response()
}
