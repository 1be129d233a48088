//! `POST /v1/images`: a prompt in, base64 images out; or, with `Accept: image/png`,
//! the bytes of one PNG.
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
use translator::{FamilyRef, ImageRequest, Images, Kind};
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
    pub n: Option<u32>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub seed: Option<u64>,
    pub cfg_scale: Option<f64>,
    #[schema(value_type = Option<Object>)]
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
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
    let route = image_route(&state, &body.model)?;
    let wants_png = accepts_png(&headers);
    if wants_png && body.n.is_some_and(|n| n > 1) {
        return Err(ApiError::BadRequest(
            "`Accept: image/png` returns one image; ask for `n` = 1, or accept JSON".to_owned(),
        ));
    }
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
    Ok(tag_target(response, &target))
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
    let call = Call { route, caller: caller.key(), max_output_tokens: 0, record: caller.record() };
    let encode = |target: &Target| {
        let FamilyRef::Image(family) = target.family else {
            return Ok(None);
        };
        let body = translator::encode_image_request(family, request)?;
        let body = serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
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
