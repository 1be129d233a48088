//! `GET /v1/models`: the configured aliases, in a list shape OpenAI clients also read.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    object: &'static str,
    data: Vec<ModelEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelEntry {
    /// The alias callers send as `model`.
    id: String,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
    /// The Bedrock model id the alias routes to, an ARN's account id masked.
    model_id: String,
    family: &'static str,
    /// `text`, `embedding` or `image`: which endpoint takes the alias.
    kind: &'static str,
}

/// The configured model aliases, in OpenAI's list shape plus the Bedrock model id (an
/// ARN's account id masked: callers need not learn the gateway's AWS account), family
/// and kind of each.
#[utoipa::path(get, path = "/v1/models", tag = "gateway",
    responses((status = 200, description = "Every alias", body = ModelList)))]
pub async fn list_models(State(state): State<AppState>) -> Json<ModelList> {
    let data = state
        .models
        .values()
        .map(|route| ModelEntry {
            id: route.alias.clone(),
            object: "model",
            created: 0,
            owned_by: "bedrock",
            model_id: crate::redact::mask(&route.model_id),
            family: route.family.id(),
            kind: route.kind().as_str(),
        })
        .collect();
    Json(ModelList { object: "list", data })
}
