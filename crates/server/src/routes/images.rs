//! `POST /v1/images`: a prompt in, base64 images out; or, with `Accept: image/png`,
//! the bytes of one PNG.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use translator::{FamilyRef, ImageFamily, ImageRequest, Images, Kind};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::config::ModelRoute;
use crate::error::{ApiError, ErrorBody};
use crate::routes::AppJson;

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
    headers: HeaderMap,
    AppJson(body): AppJson<ImagesBody>,
) -> Result<Response, ApiError> {
    let (route, family) = image_target(&state, &body.model)?;
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
    // Models that can answer with the raw image are asked for it: no base64 round trip.
    if wants_png && family.raw_png_accept() {
        let call_body = encode(family, &request)?;
        let output = state.upstream.invoke(&route.model_id, call_body, "image/png").await?;
        if !output.content_type.starts_with("image/") {
            return Err(ApiError::MalformedUpstream(format!(
                "asked for image/png, Bedrock answered {:?}",
                output.content_type
            )));
        }
        return Ok(png_response(output.body.to_vec()));
    }

    let answer = generate(&state, route, family, &request).await?;
    if wants_png {
        let first = answer.images.first().map(String::as_str).unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD.decode(first).map_err(|e| {
            ApiError::MalformedUpstream(format!("the image is not valid base64: {e}"))
        })?;
        return Ok(png_response(bytes));
    }
    let images = answer
        .images
        .into_iter()
        .enumerate()
        .map(|(index, b64)| ImageEntry { index, b64 })
        .collect();
    Ok(Json(ImagesResponse { model: route.alias.clone(), images }).into_response())
}

/// An image alias resolved: its route and family.
pub fn image_target<'a>(
    state: &'a AppState,
    alias: &str,
) -> Result<(&'a ModelRoute, &'static dyn ImageFamily), ApiError> {
    let route = state.route_of_kind(alias, Kind::Image)?;
    let FamilyRef::Image(family) = route.family else {
        return Err(ApiError::Internal("an image route without an image family".into()));
    };
    Ok((route, family))
}

/// Generates images as base64, for any API shape.
pub async fn generate(
    state: &AppState,
    route: &ModelRoute,
    family: &'static dyn ImageFamily,
    request: &ImageRequest,
) -> Result<Images, ApiError> {
    let call_body = encode(family, request)?;
    let output = state.upstream.invoke(&route.model_id, call_body, "application/json").await?;
    Ok(translator::decode_image_response(family, &output.body)?)
}

fn encode(family: &dyn ImageFamily, request: &ImageRequest) -> Result<Vec<u8>, ApiError> {
    let body = translator::encode_image_request(family, request)?;
    serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))
}

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
