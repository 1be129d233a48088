//! `POST /v1/embed`: texts in, vectors out, in input order. A batch larger than the
//! model takes per call is split and the calls run concurrently.

use axum::Json;
use axum::extract::State;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use translator::{EmbedRequest, FamilyRef, InputType, Kind};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::routes::AppJson;

/// Most texts in one request.
pub const MAX_INPUTS: usize = 2048;

/// Most InvokeModel calls of one request in flight at once.
const MAX_CONCURRENT_CALLS: usize = 8;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedBody {
    pub model: String,
    /// One text or a list of texts.
    #[serde(deserialize_with = "crate::routes::de_input")]
    #[schema(value_type = Vec<String>)]
    pub input: Vec<String>,
    pub dimensions: Option<u32>,
    pub normalize: Option<bool>,
    /// `search_document`, `search_query`, `classification` or `clustering`.
    #[schema(value_type = Option<String>)]
    pub input_type: Option<InputType>,
    #[schema(value_type = Option<Object>)]
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbedResponse {
    pub model: String,
    pub data: Vec<EmbeddingEntry>,
    pub usage: EmbedUsage,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingEntry {
    pub index: usize,
    pub embedding: Vec<f32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbedUsage {
    pub input_tokens: Option<u32>,
}

/// Embed texts; a batch larger than the model takes per call is split and fanned out.
#[utoipa::path(
    post,
    path = "/v1/embed",
    tag = "gateway",
    request_body = EmbedBody,
    responses(
        (status = 200, description = "One vector per input text, in input order", body = EmbedResponse),
        (status = "4XX", description = "A refused request", body = ErrorBody),
        (status = "5XX", description = "Bedrock or the gateway failed", body = ErrorBody),
    )
)]
pub async fn embed(
    State(state): State<AppState>,
    AppJson(body): AppJson<EmbedBody>,
) -> Result<Json<EmbedResponse>, ApiError> {
    let request = EmbedRequest {
        input: body.input,
        dimensions: body.dimensions,
        normalize: body.normalize,
        input_type: body.input_type,
        extra: body.extra.unwrap_or_default(),
    };
    let answer = run(&state, &body.model, request).await?;
    let data = answer
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, embedding)| EmbeddingEntry { index, embedding })
        .collect();
    Ok(Json(EmbedResponse {
        model: answer.alias,
        data,
        usage: EmbedUsage { input_tokens: answer.input_tokens },
    }))
}

/// The vectors of an embedding request, in input order, for any API shape.
#[derive(Debug)]
pub struct EmbedAnswer {
    pub alias: String,
    pub vectors: Vec<Vec<f32>>,
    pub input_tokens: Option<u32>,
}

/// Embeds `request.input` with the model behind `alias`: the texts split into the
/// batches the model takes, up to [`MAX_CONCURRENT_CALLS`] calls at once.
pub async fn run(
    state: &AppState,
    alias: &str,
    request: EmbedRequest,
) -> Result<EmbedAnswer, ApiError> {
    let route = state.route_of_kind(alias, Kind::Embedding)?;
    let FamilyRef::Embedding(family) = route.family else {
        return Err(ApiError::Internal("an embedding route without an embedding family".into()));
    };
    if request.input.len() > MAX_INPUTS {
        return Err(ApiError::BadRequest(format!(
            "`input` has {} texts; at most {MAX_INPUTS} per request",
            request.input.len()
        )));
    }
    let bodies = translator::encode_embed_requests(family, &request)?;
    let batch_sizes = request.input.chunks(family.max_batch().max(1)).map(<[String]>::len);
    // `buffered` keeps the answers in input order while up to N calls run at once.
    let answers: Vec<translator::Embeddings> =
        futures_util::stream::iter(bodies.into_iter().zip(batch_sizes))
            .map(|(call_body, n_texts)| {
                let upstream = &state.upstream;
                let model_id = &route.model_id;
                async move {
                    let call_body = serde_json::to_vec(&call_body)
                        .map_err(|e| ApiError::Internal(e.to_string()))?;
                    let output = upstream.invoke(model_id, call_body, "application/json").await?;
                    let mut embeddings =
                        translator::decode_embed_response(family, n_texts, &output.body)?;
                    embeddings.input_tokens =
                        embeddings.input_tokens.or(output.header_usage.input_tokens);
                    Ok::<_, ApiError>(embeddings)
                }
            })
            .buffered(MAX_CONCURRENT_CALLS)
            .try_collect()
            .await?;
    let input_tokens = answers.iter().map(|a| a.input_tokens).sum::<Option<u32>>();
    let vectors = answers.into_iter().flat_map(|answer| answer.vectors).collect();
    Ok(EmbedAnswer { alias: route.alias.clone(), vectors, input_tokens })
}
