//! The `/_sim` control API: `PUT /_sim/behavior/{model_id}` (a JSON [`Behavior`]),
//! `DELETE /_sim/behavior` (clear all) and `GET /_sim/stats` (`{"requests": n}`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::behavior::Behavior;
use crate::error::BedrockError;
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

/// `GET /_sim/stats`: `{"requests": n}`.
pub(crate) async fn get_stats(State(simulator): State<Simulator>) -> Json<serde_json::Value> {
    Json(json!({ "requests": simulator.request_count() }))
}
