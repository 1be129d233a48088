//! API keys: when the config lists any, every route but health and the API
//! description requires one, as `Authorization: Bearer <key>` (what the OpenAI SDKs
//! send, and boto3 with `AWS_BEARER_TOKEN_BEDROCK`) or `x-api-key: <key>`.
//!
//! Keys are compared by their SHA-256 digest, in constant time and against every
//! configured key, so that the time of a refusal says nothing about the keys; the key
//! text is never stored or logged. The `Bearer` scheme is matched in any case (RFC 9110
//! §11.1). The caller's key name goes into the request span for the logs.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::ApiKey;
use crate::error::ApiError;
use crate::telemetry::Record;

/// The configured keys; empty means the gateway is open.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys(Arc<Vec<Arc<ApiKey>>>);

/// Who is calling: the checked API key (its name, allowed aliases and budget), or
/// nobody when the gateway is open; and the [`Record`] of the request, which the
/// pipeline fills. Handlers take it as an extractor: `require_key` puts the key in the
/// request's extensions, `telemetry::observe` the record.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    key: Option<Arc<ApiKey>>,
    record: Record,
}

/// The checked key, in the request's extensions.
#[derive(Debug, Clone)]
struct CheckedKey(Arc<ApiKey>);

impl Caller {
    pub fn key(&self) -> Option<&ApiKey> {
        self.key.as_deref()
    }

    pub fn record(&self) -> &Record {
        &self.record
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Caller, Self::Rejection> {
        Ok(Caller {
            key: parts.extensions.get::<CheckedKey>().map(|checked| checked.0.clone()),
            record: parts.extensions.get::<Record>().cloned().unwrap_or_default(),
        })
    }
}

/// Routes that never need a key: probes and the API description.
const OPEN_PATHS: &[&str] = &["/healthz", "/readyz", "/openapi.json"];

impl ApiKeys {
    pub fn new(keys: Vec<ApiKey>) -> ApiKeys {
        ApiKeys(Arc::new(keys.into_iter().map(Arc::new).collect()))
    }

    /// Every configured key.
    pub fn keys(&self) -> &[Arc<ApiKey>] {
        &self.0
    }

    pub fn is_enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// The name of the key presented in `headers`, if it is a configured key; else the
    /// refusal and its reason (`missing`, `sigv4`, `unknown`) for the log.
    fn check(&self, headers: &HeaderMap) -> Result<&Arc<ApiKey>, (ApiError, &'static str)> {
        let presented = presented_key(headers).ok_or_else(|| {
            let signed = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim_start().starts_with("AWS4-HMAC-SHA256"));
            let reason = if signed { "sigv4" } else { "missing" };
            let error = ApiError::Unauthenticated(if signed {
                "this gateway takes an API key as a bearer token, not a SigV4 signature: \
                 set AWS_BEARER_TOKEN_BEDROCK to your gateway key"
                    .to_owned()
            } else {
                "an API key is required: send `Authorization: Bearer <key>` or `x-api-key: <key>`"
                    .to_owned()
            });
            (error, reason)
        })?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Every key is compared, each in constant time, and the match is selected without a
        // branch: no early exit says which key, or how much of one, matched.
        let mut found = subtle::Choice::from(0);
        let mut index = 0_u64;
        for (i, key) in self.0.iter().enumerate() {
            let matches = key.sha256.ct_eq(&digest);
            index.conditional_assign(&(i as u64), matches);
            found |= matches;
        }
        let found: bool = found.into();
        let key = usize::try_from(index).ok().and_then(|i| self.0.get(i)).filter(|_| found);
        key.ok_or_else(|| {
            (ApiError::Unauthenticated("the API key is not valid".to_owned()), "unknown")
        })
    }
}

/// The SHA-256 of a key, as the 64 hex digits the config takes.
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.trim().as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        // `<scheme> <token>`: the scheme in any case, any spaces or tabs after it.
        let (scheme, token) = v.trim_start().split_once([' ', '\t'])?;
        scheme.eq_ignore_ascii_case("bearer").then_some(token)
    });
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    bearer.or(api_key).map(str::trim).filter(|key| !key.is_empty())
}

/// The middleware. A refusal is rendered in the error shape of the API the path
/// belongs to (see [`refusal`]).
pub async fn require_key(
    State(keys): State<ApiKeys>,
    mut request: Request,
    next: Next,
) -> Response {
    if !keys.is_enabled() || OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    match keys.check(request.headers()) {
        Ok(key) => {
            tracing::Span::current().record("caller", key.name.as_str());
            if let Some(record) = request.extensions().get::<Record>() {
                record.update(|fields| fields.caller = Some(key.name.clone()));
            }
            request.extensions_mut().insert(CheckedKey(key.clone()));
            next.run(request).await
        }
        Err((error, reason)) => {
            // The request's own log line says so, at `info`, with the reason; never the key.
            if let Some(record) = request.extensions().get::<Record>() {
                record.update(|fields| fields.refusal = Some(reason));
            }
            let request_id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            refusal(error, request.uri().path(), request_id)
        }
    }
}

/// A refusal in the error encoding of the API `path` belongs to: Bedrock's for the
/// passthrough (an `AccessDeniedException`, which the AWS SDKs surface as such),
/// OpenAI's for the OpenAI-compatible routes, the gateway's own elsewhere.
fn refusal(error: ApiError, path: &str, request_id: &str) -> Response {
    if path.starts_with("/model/") {
        error.log();
        return crate::routes::bedrock::BedrockApiError::AccessDenied(error.public_message())
            .into_response_with(request_id);
    }
    if crate::routes::openai::is_openai_path(path) {
        return crate::routes::openai::OpenAiError::from(error).into_response();
    }
    if crate::routes::anthropic::PATHS.contains(&path) {
        return crate::routes::anthropic::AnthropicError(error).into_response();
    }
    error.into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn keys() -> ApiKeys {
        let key = |name: &str, text: &[u8]| ApiKey {
            name: name.to_owned(),
            sha256: Sha256::digest(text).into(),
            models: None,
            limits: crate::limits::ScopeLimits::default(),
        };
        ApiKeys::new(vec![key("team-a", b"secret-key"), key("team-b", b"other-key")])
    }

    fn headers(name: &'static str, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn bearer_and_x_api_key_are_accepted() {
        assert_eq!(
            keys().check(&headers("authorization", "Bearer secret-key")).unwrap().name,
            "team-a"
        );
        assert_eq!(keys().check(&headers("x-api-key", "secret-key")).unwrap().name, "team-a");
        assert_eq!(keys().check(&headers("x-api-key", "other-key")).unwrap().name, "team-b");
    }

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        for value in
            ["Bearer secret-key", "bearer secret-key", "BEARER secret-key", "bEaReR  secret-key"]
        {
            let keys = keys();
            let checked = keys.check(&headers("authorization", value));
            assert_eq!(checked.map(|key| key.name.as_str()).ok(), Some("team-a"), "{value}");
        }
        for value in ["Bearersecret-key", "Basic secret-key", "Bearer", "Bearer   "] {
            let (_, reason) = keys().check(&headers("authorization", value)).unwrap_err();
            assert_eq!(reason, "missing", "{value}");
        }
    }

    #[test]
    fn wrong_missing_and_sigv4_are_refused_with_a_reason() {
        let (wrong, reason) = keys().check(&headers("authorization", "Bearer nope")).unwrap_err();
        assert!(wrong.to_string().contains("not valid"));
        assert_eq!(reason, "unknown");
        let (missing, reason) = keys().check(&HeaderMap::new()).unwrap_err();
        assert!(missing.to_string().contains("required"));
        assert_eq!(reason, "missing");
        let (sigv4, reason) = keys()
            .check(&headers("authorization", "AWS4-HMAC-SHA256 Credential=AKID/x"))
            .unwrap_err();
        assert!(sigv4.to_string().contains("AWS_BEARER_TOKEN_BEDROCK"));
        assert_eq!(reason, "sigv4");
    }

    #[test]
    fn hash_key_is_sha256_hex_of_the_trimmed_key() {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hash_key("abc"), abc);
        assert_eq!(hash_key("abc\n"), abc);
    }
}
