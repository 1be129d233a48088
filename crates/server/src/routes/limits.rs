//! `GET /v1/limits`: every quota'd target's admission counters as this replica sees
//! them (with the Redis backend, the shared counters).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::limits::ScopeSnapshot;

#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsStatus {
    /// By target name; targets without a quota are left out.
    #[schema(value_type = Object)]
    pub targets: BTreeMap<String, TargetStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TargetStatus {
    pub model_id: String,
    /// The learned input tokens per body byte of the reservation estimate.
    pub tokens_per_byte: f64,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub counters: ScopeSnapshot,
}

/// The admission counters of every target that has a quota.
#[utoipa::path(get, path = "/v1/limits", tag = "operations",
    responses((status = 200, description = "Configured and admitted tokens per minute, bucket \
        levels, reserved tokens and reservations in flight, per target", body = LimitsStatus)))]
pub async fn limits(State(state): State<AppState>) -> Json<LimitsStatus> {
    let mut targets = BTreeMap::new();
    for route in state.models.values() {
        for target in &route.targets {
            if targets.contains_key(&target.name) {
                continue;
            }
            if let Some(counters) = state.pipeline.limits_snapshot(target).await {
                let status = TargetStatus {
                    model_id: target.model_id.clone(),
                    tokens_per_byte: state.pipeline.tokens_per_byte(target),
                    counters,
                };
                targets.insert(target.name.clone(), status);
            }
        }
    }
    Json(LimitsStatus { targets })
}
