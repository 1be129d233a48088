//! The `/_sim` control API: `PUT /_sim/behavior/{model_id}` (a JSON [`Behavior`]),
//! `DELETE /_sim/behavior` (clear all), `PUT /_sim/quota/{model_id}` (a JSON [`Quota`]),
//! `DELETE /_sim/quota` (clear all quotas and their counters), `POST /_sim/release` (the
//! held streams go on) and `GET /_sim/stats` ([`Stats`]: `{"requests": n, "models":
//! {...}}`). The crate docs describe each body.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::behavior::Behavior;
use crate::error::BedrockError;
use crate::quota::{Quota, Stats};
use crate::simulator::Simulator;

/// `PUT /_sim/behavior/{model_id}`: 204 on success, 400 ValidationException for bad JSON.
pub(crate) async fn put_behavior(
    State(simulator): State<Simulator>,
    Path(model_id): Path<String>,
    body: Bytes,
) -> Response {
    match serde_json::from_slice::<Behavior>(&body) {
        Ok(behavior) => {
            tracing::info!(message = "behavior set", %model_id, ?behavior);
            simulator.set_behavior(&model_id, behavior);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(error) => {
            let request_id = uuid::Uuid::new_v4().to_string();
            BedrockError::validation(format!("Invalid behavior: {error}"))
                .into_response(&request_id)
        }
    }
}

/// `DELETE /_sim/behavior`: clears every behavior, 204.
pub(crate) async fn delete_behaviors(State(simulator): State<Simulator>) -> StatusCode {
    tracing::info!(message = "behaviors cleared");
    simulator.clear_behaviors();
    StatusCode::NO_CONTENT
}

/// `PUT /_sim/quota/{model_id}`: 204 on success, 400 ValidationException for bad JSON, a
/// quota that breaks a constraint of [`Quota`], or `*`.
pub(crate) async fn put_quota(
    State(simulator): State<Simulator>,
    Path(model_id): Path<String>,
    body: Bytes,
) -> Response {
    let result = serde_json::from_slice::<Quota>(&body).map_err(|error| error.to_string());
    let result = result.and_then(|quota| {
        simulator.set_quota(&model_id, quota).map_err(|error| error.to_string())?;
        Ok(quota)
    });
    match result {
        Ok(quota) => {
            tracing::info!(message = "quota set", %model_id, ?quota);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(error) => {
            let request_id = uuid::Uuid::new_v4().to_string();
            BedrockError::validation(format!("Invalid quota: {error}")).into_response(&request_id)
        }
    }
}

/// `DELETE /_sim/quota`: clears every quota and the counters of the models that had one, 204.
pub(crate) async fn delete_quotas(State(simulator): State<Simulator>) -> StatusCode {
    tracing::info!(message = "quotas cleared");
    simulator.clear_quotas();
    StatusCode::NO_CONTENT
}

/// `POST /_sim/release`: the streams held by a behavior's `hold_after_chunks` go on, 204.
pub(crate) async fn release_held(State(simulator): State<Simulator>) -> StatusCode {
    tracing::info!(message = "held streams released", n_held = simulator.held());
    simulator.release_held();
    StatusCode::NO_CONTENT
}

/// `GET /_sim/stats`: [`Stats`], `{"requests": n, "models": {"<base model id>": {...}}}`.
pub(crate) async fn get_stats(State(simulator): State<Simulator>) -> Json<Stats> {
    Json(simulator.stats())
}
