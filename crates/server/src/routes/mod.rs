//! One file per endpoint group, plus the JSON extractor and fallbacks they share.

pub mod bedrock;
pub mod embed;
pub mod generate;
pub mod health;
pub mod images;
pub mod limits;
pub mod models;
pub mod openai;
pub mod text;

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, Uri};
use axum::response::Response;
use serde::de::DeserializeOwned;

use crate::config::Target;
use crate::error::ApiError;
use crate::pipeline::TARGET_HEADER;

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
        let bytes = crate::intake::read_body(request.into_body()).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest(
                "the request body is empty; send a JSON object".into(),
            ));
        }
        serde_json::from_slice(&bytes)
            .map(AppJson)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// `stop` may be one string or a list of strings (both APIs take either).
pub(crate) fn de_stop<'de, D>(deserializer: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    match Option::<serde_json::Value>::deserialize(deserializer)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(one)) => Ok(Some(vec![one])),
        Some(value) => serde_json::from_value(value).map(Some).map_err(|_| {
            serde::de::Error::custom("`stop` must be a string or an array of strings")
        }),
    }
}

/// Embedding `input`: one string or a list of strings (token arrays, which OpenAI
/// also takes, are not supported: Bedrock's models take text).
pub(crate) fn de_input<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(one) => Ok(vec![one]),
        value => serde_json::from_value(value).map_err(|_| {
            serde::de::Error::custom(
                "`input` must be a string or an array of strings (token arrays are not supported)",
            )
        }),
    }
}

/// Says which upstream target served the answer (`x-gateway-target`), on every API shape.
pub(crate) fn tag_target(mut response: Response, target: &Target) -> Response {
    if let Ok(value) = HeaderValue::from_str(&target.name) {
        response.headers_mut().insert(TARGET_HEADER, value);
    }
    response
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_owned())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
