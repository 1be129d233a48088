//! `GET /v1/models`: the configured aliases, in a list shape OpenAI clients also read;
//! `GET /v1/models/{modelId}`: one alias as OpenAI's model object (`client.models.retrieve`),
//! the same entry as in the list, or a 404 in OpenAI's error shape.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::config::ModelRoute;
use crate::error::ApiError;
use crate::routes::openai::OpenAiError;

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
    let data = state.models.values().map(model_entry).collect();
    Json(ModelList { object: "list", data })
}

/// One configured alias, as its entry of `GET /v1/models` (OpenAI's model object `{id,
/// object: "model", created, owned_by}` and the gateway's fields); an alias that is not
/// configured is a 404 in OpenAI's error shape (`model_not_found`, `param: "model"`).
#[utoipa::path(get, path = "/v1/models/{modelId}", tag = "gateway",
    params(("modelId" = String, Path, description = "A model alias")),
    responses(
        (status = 200, description = "The alias", body = ModelEntry),
        (status = "4XX", description = "No such alias (404), in OpenAI's error shape"),
    ))]
pub async fn get_model(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ModelEntry>, OpenAiError> {
    let Path(id) = id.map_err(|e| ApiError::BadRequest(format!("invalid model id: {e}")))?;
    match state.models.get(&id) {
        Some(route) => Ok(Json(model_entry(route))),
        None => Err(OpenAiError::at(ApiError::UnknownModel(id), "model")),
    }
}

fn model_entry(route: &ModelRoute) -> ModelEntry {
    ModelEntry {
        id: route.alias.clone(),
        object: "model",
        created: 0,
        owned_by: "bedrock",
        model_id: crate::redact::mask(&route.model_id),
        family: route.family.id(),
        kind: route.kind().as_str(),
    }
}
