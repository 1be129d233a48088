//! One file per endpoint group, plus the JSON extractor and fallbacks they share.

pub mod anthropic;
pub mod bedrock;
pub mod content;
pub mod converse;
pub mod embed;
pub mod generate;
pub mod health;
pub mod images;
pub mod limits;
pub mod models;
pub mod openai;
pub mod parse;
pub mod responses;
pub mod responses_store;
pub mod schema;
pub mod sse;
pub mod text;

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::Response;
use serde::de::DeserializeOwned;

use crate::config::Target;
use crate::error::ApiError;
use crate::pipeline::TARGET_HEADER;
pub(crate) use crate::routes::parse::{de_input, de_stop};

/// A JSON body whose every rejection (too large, too slow, not JSON, wrong type, unknown
/// field) is an [`ApiError`] in our one error shape. The `Content-Type` is not
/// checked, so `curl -d` works as it is.
#[derive(Debug)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_json_body(request).await?;
        parse_json(&bytes).map(AppJson)
    }
}

/// The body of a JSON request, refused when empty.
pub(crate) async fn read_json_body(request: Request) -> Result<bytes::Bytes, ApiError> {
    let bytes = crate::intake::read_body(request.into_body()).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("the request body is empty; send a JSON object".into()));
    }
    Ok(bytes)
}

/// A JSON body as `T`, every refusal a 400 `invalid_request`.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Says which upstream target served the answer (`x-gateway-target`), on every API shape.
pub(crate) fn tag_target(mut response: Response, target: &Target) -> Response {
    if let Ok(value) = HeaderValue::from_str(&target.name) {
        // A `HeaderName` made from the static text: inserting the `&str` would copy it.
        response.headers_mut().insert(axum::http::HeaderName::from_static(TARGET_HEADER), value);
    }
    response
}

/// No route for the path: refused in the encoding of the API the path belongs to (any
/// path under `/model/` is Bedrock's).
pub async fn not_found(uri: Uri, headers: HeaderMap) -> Response {
    let error = ApiError::NotFound(uri.path().to_owned());
    crate::intake::in_api_encoding(error, uri.path(), request_id(&headers))
}

/// A method the route does not take, refused in the encoding of the route's API (an
/// OpenAI SDK reads OpenAI's shape on its routes).
pub async fn method_not_allowed(uri: Uri, headers: HeaderMap) -> Response {
    crate::intake::in_api_encoding(ApiError::MethodNotAllowed, uri.path(), request_id(&headers))
}

/// The request's id, set by `telemetry::observe` before any route runs.
fn request_id(headers: &HeaderMap) -> &str {
    headers.get("x-request-id").and_then(|value| value.to_str().ok()).unwrap_or_default()
}

/// An optional `u32` that may be written as a float without a fraction (`16.0`); see
/// [`de_whole`].
pub(crate) fn de_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let whole = de_whole(d, u64::from(u32::MAX))?;
    Ok(whole.map(|whole| u32::try_from(whole).unwrap_or(u32::MAX)))
}

/// An optional `u64` that may be written as a float without a fraction; see [`de_whole`].
pub(crate) fn de_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    de_whole(d, u64::MAX)
}

/// A whole number from 0 to `max`, or null. JSON has one number type and JSON Schema's
/// `integer` takes `16.0`, as OpenAI's API does, so a float without a fraction counts; a
/// fraction, a negative number, one past `max` or another type is refused (400).
fn de_whole<'de, D: serde::Deserializer<'de>>(d: D, max: u64) -> Result<Option<u64>, D::Error> {
    use serde::Deserialize;
    let Some(number) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        let float = number.as_f64()?;
        // Below 2^64 a float without a fraction is exactly a u64.
        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "in range")]
        (float >= 0.0 && float.fract() == 0.0 && float < 18_446_744_073_709_551_616.0)
            .then_some(float as u64)
    });
    match whole.filter(|whole| *whole <= max) {
        Some(whole) => Ok(Some(whole)),
        None => Err(serde::de::Error::custom(format!(
            "invalid value: {number}, expected a whole number from 0 to {max}"
        ))),
    }
}
