//! `GET /healthz` (the process answers) and `GET /readyz` (it wants traffic).

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::AppState;

/// Liveness: 200 while the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`{\"status\": \"ok\"}`")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: 200 until shutdown begins, then 503 while in-flight requests drain, so
/// load balancers drain the replica while in-flight streams finish. Also 503 while the
/// gateway has no AWS credentials to call Bedrock with: every request would fail.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "`{\"status\": \"ready\"}`"),
        (status = 503, description = "`{\"status\": \"draining\"}`, or \
            `{\"status\": \"no_aws_credentials\"}`"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if !state.ready.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "draining"})))
    } else if !state.pipeline.has_credentials().await {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "no_aws_credentials"})))
    } else {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    }
}
