//! `POST /v1/embed`: texts (and images, for the models that embed them) in, vectors out,
//! in input order: the texts' vectors, then the images'. A batch larger than the model
//! takes per call is split and the calls run concurrently.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use translator::{EmbedRequest, FamilyRef, InputType, Kind};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::Caller;
use crate::config::Target;
use crate::error::{ApiError, ErrorBody};
use crate::pipeline::Call;
use crate::routes::{AppJson, tag_target};
use crate::upstream::RawRequest;

/// Most texts and images in one request.
pub const MAX_INPUTS: usize = 2048;

/// Most InvokeModel calls of one request in flight at once.
const MAX_CONCURRENT_CALLS: usize = 8;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedBody {
    pub model: String,
    /// One text or a list of texts; may be left out when `images` is given.
    #[serde(default, deserialize_with = "crate::routes::de_input")]
    #[schema(value_type = Vec<String>)]
    pub input: Vec<String>,
    /// Images to embed, each base64 or a `data:image/...;base64,` URI (PNG, JPEG, GIF or
    /// WebP), for the models that embed images (a 422 for the others). Their vectors follow
    /// those of `input`.
    #[serde(default, deserialize_with = "crate::routes::parse::de_embed_images")]
    pub images: Vec<String>,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1)]
    pub dimensions: Option<u32>,
    pub normalize: Option<bool>,
    /// `search_document`, `search_query`, `classification` or `clustering`.
    #[schema(schema_with = crate::routes::schema::input_type)]
    pub input_type: Option<InputType>,
    #[serde(default, deserialize_with = "crate::routes::parse::de_extra")]
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
    caller: Caller,
    AppJson(body): AppJson<EmbedBody>,
) -> Result<Response, ApiError> {
    let request = EmbedRequest {
        input: body.input,
        images: body.images,
        dimensions: body.dimensions,
        normalize: body.normalize,
        input_type: body.input_type,
        extra: body.extra.unwrap_or_default(),
    };
    let answer = run(&state, &caller, &body.model, request).await?;
    let data = answer
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, embedding)| EmbeddingEntry { index, embedding })
        .collect();
    let response = Json(EmbedResponse {
        model: answer.alias,
        data,
        usage: EmbedUsage { input_tokens: answer.input_tokens },
    });
    Ok(tag_target(response.into_response(), &answer.target))
}

/// The vectors of an embedding request, in input order, for any API shape, and the
/// target that served the first batch.
#[derive(Debug)]
pub struct EmbedAnswer {
    pub alias: String,
    pub vectors: Vec<Vec<f32>>,
    pub input_tokens: Option<u32>,
    pub target: Arc<Target>,
}

/// Embeds `request.input` then `request.images` with the model behind `alias`: the texts
/// and the images split into batches that every target of the alias takes in one call (a
/// batch holds texts or images, never both), up to [`MAX_CONCURRENT_CALLS`] calls at once,
/// each through the pipeline (a batch may fall back on its own).
pub async fn run(
    state: &AppState,
    caller: &Caller,
    alias: &str,
    request: EmbedRequest,
) -> Result<EmbedAnswer, ApiError> {
    let route = state.route_of_kind(alias, Kind::Embedding)?;
    if request.input.len() > MAX_INPUTS {
        return Err(ApiError::BadRequest(format!(
            "`input` has {} texts; at most {MAX_INPUTS} per request",
            request.input.len()
        )));
    }
    if request.input.len() + request.images.len() > MAX_INPUTS {
        return Err(ApiError::BadRequest(format!(
            "`input` and `images` have {} items; at most {MAX_INPUTS} per request",
            request.input.len() + request.images.len()
        )));
    }
    let batch_size = route
        .targets
        .iter()
        .filter_map(|target| match target.family {
            FamilyRef::Embedding(family) => Some(family.max_batch().max(1)),
            _ => None,
        })
        .min()
        .unwrap_or(1);
    let call = Call { route, caller: caller.key(), max_output_tokens: 0, record: caller.record() };
    // The texts and images move into their batches (not copied); each batch copies only
    // the request's small fields.
    let mut request = request;
    let input = std::mem::take(&mut request.input);
    let images = std::mem::take(&mut request.images);
    let batch =
        |input: Vec<String>, images: Vec<String>| EmbedRequest { input, images, ..request.clone() };
    let mut batches = Vec::with_capacity((input.len() + images.len()).div_ceil(batch_size));
    let mut input = input.into_iter().peekable();
    while input.peek().is_some() {
        batches.push(batch(input.by_ref().take(batch_size).collect(), Vec::new()));
    }
    let mut images = images.into_iter().peekable();
    while images.peek().is_some() {
        batches.push(batch(Vec::new(), images.by_ref().take(batch_size).collect()));
    }
    // Every batch is encoded for the first target before any call is made, so that a bad
    // request fails whole; the pipeline then sends these bodies to the first target.
    let Some(first) = route.targets.first() else {
        return Err(ApiError::Internal("an alias without targets".into()));
    };
    let first_bodies: Vec<Option<RawRequest>> =
        batches.iter().map(|batch| encode(first, batch)).collect::<Result<_, _>>()?;
    // `buffered` keeps the answers in input order while up to N calls run at once.
    let answers: Vec<(translator::Embeddings, Arc<Target>)> =
        futures_util::stream::iter(batches.into_iter().zip(first_bodies))
            .map(|(batch, first_body)| async move {
                let encode = |target: &Target| {
                    if target.name == first.name {
                        Ok(first_body.clone())
                    } else {
                        encode(target, &batch)
                    }
                };
                let served = state.pipeline.invoke(call, &encode).await?;
                let FamilyRef::Embedding(family) = served.target.family else {
                    return Err(ApiError::Internal("an embedding target of another kind".into()));
                };
                let n_texts = batch.input.len() + batch.images.len();
                let mut embeddings =
                    translator::decode_embed_response(family, n_texts, &served.output.body)?;
                embeddings.input_tokens =
                    embeddings.input_tokens.or(served.output.headers.usage().input_tokens);
                Ok::<_, ApiError>((embeddings, served.target))
            })
            .buffered(MAX_CONCURRENT_CALLS)
            .try_collect()
            .await?;
    let input_tokens = answers.iter().map(|(a, _)| a.input_tokens).sum::<Option<u32>>();
    let target = match answers.first() {
        Some((_, target)) => target.clone(),
        None => return Err(ApiError::BadRequest("`input` has no texts".to_owned())),
    };
    let vectors = answers.into_iter().flat_map(|(answer, _)| answer.vectors).collect();
    Ok(EmbedAnswer { alias: route.alias.clone(), vectors, input_tokens, target })
}

/// One batch's body for `target`; `None` when its family cannot take the batch in one
/// call (the target is skipped).
fn encode(target: &Target, batch: &EmbedRequest) -> Result<Option<RawRequest>, ApiError> {
    let FamilyRef::Embedding(family) = target.family else {
        return Ok(None);
    };
    let mut bodies = translator::encode_embed_requests(family, batch)?;
    if bodies.len() != 1 {
        return Ok(None);
    }
    let body = bodies.pop().unwrap_or_default();
    let body = serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Some(RawRequest {
        body: Bytes::from(body),
        accept: Some("application/json".to_owned()),
        ..RawRequest::default()
    }))
}
