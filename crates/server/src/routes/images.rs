//! `POST /v1/images`: a prompt in, base64 images out; or, with `Accept: image/png`,
//! the bytes of one PNG. `POST /v1/images/edits`: the image tasks beyond text-to-image
//! (variation, inpainting, outpainting, background removal) of the families that have
//! them (`titan_image`), with the same answer; the input images are base64 in the JSON
//! body, so the gateway's body limit (`max_body_bytes`, 10 MiB by default) bounds them (413).
//!
//! Every image model is asked for `Accept: application/json` and its JSON answer decoded
//! by its family, SDXL included (see `translator::families::stability_sdxl` for why); the
//! PNG a caller asks for is the decoded base64 of the one image. A content filter's refusal
//! in that JSON is a 400 `content_filter`, whatever the caller accepts.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use translator::{
    FamilyRef, ImageEditRequest, ImageFamily, ImageRequest, ImageTask, Images, Kind,
    OutpaintingMode, TranslateError,
};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::Caller;
use crate::config::{ModelRoute, Target};
use crate::error::{ApiError, ErrorBody};
use crate::pipeline::Call;
use crate::routes::{AppJson, tag_target};
use crate::upstream::RawRequest;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImagesBody {
    pub model: String,
    pub prompt: String,
    pub negative_prompt: Option<String>,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1)]
    pub n: Option<u32>,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1)]
    pub width: Option<u32>,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1)]
    pub height: Option<u32>,
    #[serde(default, deserialize_with = "crate::routes::de_u64")]
    pub seed: Option<u64>,
    pub cfg_scale: Option<f64>,
    #[serde(default, deserialize_with = "crate::routes::parse::de_extra")]
    #[schema(value_type = Option<Object>)]
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

/// An image edit. Which fields a task takes: `variation` one or more `images` (the
/// `titan_image` family takes 1 to 5), optional `prompt`, `similarity_strength`, a size;
/// `inpainting` one image and `mask_prompt` or `mask_image`, optional `prompt` (without
/// it the masked region is removed); `outpainting` the same with a required `prompt` and
/// `outpainting_mode`; `background_removal` one image and nothing else. A field the task
/// has no use for is a 400 naming it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageEditsBody {
    pub model: String,
    pub task: EditTask,
    /// The input images, base64 (standard alphabet) PNG or JPEG: one for every task but
    /// `variation`.
    #[serde(deserialize_with = "crate::routes::parse::de_edit_images")]
    #[schema(max_items = 16)]
    pub images: Vec<String>,
    pub prompt: Option<String>,
    pub negative_prompt: Option<String>,
    /// The region to edit, in words (`inpainting`, `outpainting`; or `mask_image`).
    pub mask_prompt: Option<String>,
    /// The region to edit as a base64 black-and-white image of the input's size: black is
    /// inside the mask.
    pub mask_image: Option<String>,
    /// `outpainting` only.
    pub outpainting_mode: Option<EditOutpaintingMode>,
    /// How close the images stay to the inputs (`variation` only; 0.2 to 1.0 for
    /// `titan_image`).
    pub similarity_strength: Option<f64>,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1)]
    pub n: Option<u32>,
    /// `variation` only: the other tasks answer images of the input's size.
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1)]
    pub width: Option<u32>,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1)]
    pub height: Option<u32>,
    #[serde(default, deserialize_with = "crate::routes::de_u64")]
    pub seed: Option<u64>,
    pub cfg_scale: Option<f64>,
    #[serde(default, deserialize_with = "crate::routes::parse::de_extra")]
    #[schema(value_type = Option<Object>)]
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The image task of an edit.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EditTask {
    /// New images in the manner of the input images, optionally steered by `prompt`.
    Variation,
    /// The inside of the mask redrawn as `prompt` says, or removed without one.
    Inpainting,
    /// The outside of the mask redrawn as `prompt` says.
    Outpainting,
    /// The background made transparent.
    BackgroundRemoval,
}

/// How outpainting treats the pixels inside the mask.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EditOutpaintingMode {
    /// They may change slightly, to blend the result.
    Default,
    /// They are kept exactly.
    Precise,
}

impl From<EditTask> for ImageTask {
    fn from(task: EditTask) -> ImageTask {
        match task {
            EditTask::Variation => ImageTask::Variation,
            EditTask::Inpainting => ImageTask::Inpainting,
            EditTask::Outpainting => ImageTask::Outpainting,
            EditTask::BackgroundRemoval => ImageTask::BackgroundRemoval,
        }
    }
}

impl From<EditOutpaintingMode> for OutpaintingMode {
    fn from(mode: EditOutpaintingMode) -> OutpaintingMode {
        match mode {
            EditOutpaintingMode::Default => OutpaintingMode::Default,
            EditOutpaintingMode::Precise => OutpaintingMode::Precise,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImagesResponse {
    pub model: String,
    pub images: Vec<ImageEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImageEntry {
    pub index: usize,
    /// The image, base64-encoded (standard alphabet, padded).
    pub b64: String,
}

/// Generate images: base64 PNGs as JSON, or with `Accept: image/png` the PNG itself.
#[utoipa::path(
    post,
    path = "/v1/images",
    tag = "gateway",
    request_body = ImagesBody,
    responses(
        (status = 200, description = "The images (`application/json`), or one PNG (`image/png`)",
            body = ImagesResponse),
        (status = "4XX", description = "A refused request", body = ErrorBody),
        (status = "5XX", description = "Bedrock or the gateway failed", body = ErrorBody),
    )
)]
pub async fn images(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<ImagesBody>,
) -> Result<Response, ApiError> {
    let (route, wants_png) = image_call(&state, &headers, &body.model, body.n)?;
    let request = ImageRequest {
        prompt: body.prompt,
        negative_prompt: body.negative_prompt,
        n: body.n,
        width: body.width,
        height: body.height,
        seed: body.seed,
        cfg_scale: body.cfg_scale,
        extra: body.extra.unwrap_or_default(),
    };
    let (images, target) = generate(&state, &caller, route, &request).await?;
    images_response(route, images, &target, wants_png)
}

/// Edit images: base64 PNGs as JSON, or with `Accept: image/png` the PNG itself.
#[utoipa::path(
    post,
    path = "/v1/images/edits",
    tag = "gateway",
    request_body = ImageEditsBody,
    responses(
        (status = 200, description = "The images (`application/json`), or one PNG (`image/png`)",
            body = ImagesResponse),
        (status = 400, description = "A field the task does not take, or a missing one", body = ErrorBody),
        (status = 413, description = "The body (base64 images included) is over the gateway's body limit (`max_body_bytes`, 10 MiB by default)",
            body = ErrorBody),
        (status = 422, description = "The alias's model family has no image edits", body = ErrorBody),
        (status = "4XX", description = "A refused request", body = ErrorBody),
        (status = "5XX", description = "Bedrock or the gateway failed", body = ErrorBody),
    )
)]
pub async fn image_edits(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<ImageEditsBody>,
) -> Result<Response, ApiError> {
    let (route, wants_png) = image_call(&state, &headers, &body.model, body.n)?;
    let request = ImageEditRequest {
        task: body.task.into(),
        images: body.images,
        prompt: body.prompt,
        negative_prompt: body.negative_prompt,
        mask_prompt: body.mask_prompt,
        mask_image: body.mask_image,
        outpainting_mode: body.outpainting_mode.map(Into::into),
        similarity_strength: body.similarity_strength,
        n: body.n,
        width: body.width,
        height: body.height,
        seed: body.seed,
        cfg_scale: body.cfg_scale,
        extra: body.extra.unwrap_or_default(),
    };
    // The input images are most of the body: its buffer is sized for them.
    let body_len = request.images.iter().chain(&request.mask_image).map(String::len).sum();
    let (images, target) = invoke(&state, &caller, route, body_len, &|family| {
        translator::encode_image_edit_request(family, &request)
    })
    .await?;
    images_response(route, images, &target, wants_png)
}

/// The route of an image call and whether the caller wants the PNG itself, which is one
/// image: a PNG with `n` over 1 is a 400.
fn image_call<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    alias: &str,
    n: Option<u32>,
) -> Result<(&'a ModelRoute, bool), ApiError> {
    let route = image_route(state, alias)?;
    let wants_png = accepts_png(headers);
    if wants_png && n.is_some_and(|n| n > 1) {
        return Err(ApiError::BadRequest(
            "`Accept: image/png` returns one image; ask for `n` = 1, or accept JSON".to_owned(),
        ));
    }
    Ok((route, wants_png))
}

/// The answer of both image routes: the images as JSON, or the one PNG, tagged with the
/// target that served them.
fn images_response(
    route: &ModelRoute,
    images: Images,
    target: &Target,
    wants_png: bool,
) -> Result<Response, ApiError> {
    let response = if wants_png {
        let first = images.images.first().map(String::as_str).unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD.decode(first).map_err(|e| {
            ApiError::MalformedUpstream(format!("the image is not valid base64: {e}"))
        })?;
        png_response(bytes)
    } else {
        let images = images
            .images
            .into_iter()
            .enumerate()
            .map(|(index, b64)| ImageEntry { index, b64 })
            .collect();
        Json(ImagesResponse { model: route.alias.clone(), images }).into_response()
    };
    Ok(tag_target(response, target))
}

/// An image alias's route.
pub fn image_route<'a>(state: &'a AppState, alias: &str) -> Result<&'a ModelRoute, ApiError> {
    state.route_of_kind(alias, Kind::Image)
}

/// Generates images as base64, for any API shape, and says which target served them.
/// Every target is asked for JSON and its answer decoded by its family.
pub async fn generate(
    state: &AppState,
    caller: &Caller,
    route: &ModelRoute,
    request: &ImageRequest,
) -> Result<(Images, Arc<Target>), ApiError> {
    let encode = |family: &dyn ImageFamily| translator::encode_image_request(family, request);
    invoke(state, caller, route, request.prompt.len(), &encode).await
}

/// Invokes an image route through the pipeline with the body `encode` builds for each
/// target's family (about `body_len` bytes of text besides its JSON), and decodes the
/// images of the target that served it.
async fn invoke(
    state: &AppState,
    caller: &Caller,
    route: &ModelRoute,
    body_len: usize,
    encode_body: &(dyn Fn(&dyn ImageFamily) -> Result<serde_json::Value, TranslateError> + Sync),
) -> Result<(Images, Arc<Target>), ApiError> {
    let call = Call { route, caller: caller.key(), max_output_tokens: 0, record: caller.record() };
    let encode = |target: &Target| {
        let FamilyRef::Image(family) = target.family else {
            return Ok(None);
        };
        let body = encode_body(family)?;
        let mut bytes = Vec::with_capacity(body_len + 1024);
        serde_json::to_writer(&mut bytes, &body).map_err(|e| ApiError::Internal(e.to_string()))?;
        drop(body);
        let body = bytes;
        Ok(Some(RawRequest {
            body: Bytes::from(body),
            accept: Some(IMAGE_ACCEPT.to_owned()),
            ..RawRequest::default()
        }))
    };
    let served = state.pipeline.invoke(call, &encode).await?;
    let FamilyRef::Image(family) = served.target.family else {
        return Err(ApiError::Internal("an image route without an image family".into()));
    };
    let images = translator::decode_image_response(family, &served.output.body)?;
    Ok((images, served.target))
}

/// The `Accept` of every image InvokeModel call.
const IMAGE_ACCEPT: &str = "application/json";

fn png_response(bytes: Vec<u8>) -> Response {
    let mut response = bytes.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    response
}

/// Whether the caller asked for the image itself rather than JSON.
fn accepts_png(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| item.trim().starts_with("image/png"))
}
