//! The `Family` trait and the registry of every model family the gateway speaks.
//!
//! | id | Bedrock base model ids | unified fields honoured |
//! |---|---|---|
//! | `titan_text` | `amazon.titan-text-*` | prompt, max_tokens, temperature, top_p, stop |
//! | `anthropic_claude_text` | `anthropic.claude-v2*`, `anthropic.claude-instant-*` | prompt, max_tokens, temperature, top_p, stop |
//!
//! Claude 3 and later (`anthropic.claude-3*`, `anthropic.claude-*-4*`) speak the Messages
//! API and match no family yet. Each family's file documents its ranges and defaults.
//!
//! Adding a family is one new file here, one `mod` line and one entry in [`FAMILIES`],
//! and one fixture folder under `tests/fixtures/<id>/`.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::unified::{StreamEvent, UnifiedRequest, UnifiedResponse, Usage};

mod anthropic_claude_text;
mod titan_text;

/// One model family: how to build its InvokeModel body and read its answers.
///
/// Implementations are unit structs, pure and synchronous.
pub trait Family: Send + Sync {
    /// The snake_case id: the file name, the `family` value in config and the metric label.
    fn id(&self) -> &'static str;
    /// Whether a *base* model id (no ARN, no geography prefix; see [`base_model_id`])
    /// is of this family.
    fn matches(&self, base_model_id: &str) -> bool;
    /// The InvokeModel body for this request.
    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError>;
    /// The answer in an InvokeModel response body.
    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError>;
    /// What one stream chunk (the base64-decoded `bytes` of a `chunk` frame) contributes.
    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError>;
}

/// Every family, in the order they are tried by [`family_for`].
pub static FAMILIES: &[&dyn Family] =
    &[&titan_text::TitanText, &anthropic_claude_text::AnthropicClaudeText];

/// The family of a Bedrock model id: a plain id, a cross-region inference profile id
/// (`us.anthropic.claude-v2:1`) or an ARN that embeds one. `None` when no family
/// claims it (provisioned or imported model ARNs need the family named in config).
pub fn family_for(model_id: &str) -> Option<&'static dyn Family> {
    let base = base_model_id(model_id)?;
    FAMILIES.iter().copied().find(|family| family.matches(base))
}

/// The family with this id, for a `family = "..."` override in config.
pub fn family_by_id(id: &str) -> Option<&'static dyn Family> {
    FAMILIES.iter().copied().find(|family| family.id() == id)
}

/// Strips an ARN down to the model id it embeds and drops a geography prefix:
/// `arn:aws:bedrock:us-east-1:123:inference-profile/us.anthropic.claude-v2:1`
/// becomes `anthropic.claude-v2:1`. `None` for an ARN that embeds no model id.
pub fn base_model_id(model_id: &str) -> Option<&str> {
    let id = if model_id.starts_with("arn:") {
        let (resource, rest) = model_id.split_once('/')?;
        match resource.rsplit(':').next()? {
            // custom-model/<base id>/<suffix>: the base id is the first segment.
            "foundation-model" | "inference-profile" | "custom-model" => rest.split('/').next()?,
            _ => return None,
        }
    } else {
        model_id
    };
    let mut parts = id.splitn(3, '.');
    let first = parts.next()?;
    match (parts.next(), parts.next()) {
        // `us.anthropic.claude-v2:1`: three dot-separated parts where the first is a geography.
        (Some(_), Some(_)) if GEOGRAPHY_PREFIXES.contains(&first) => Some(&id[first.len() + 1..]),
        _ => Some(id),
    }
}

/// The geography prefixes of cross-region inference profile ids.
const GEOGRAPHY_PREFIXES: &[&str] = &["us", "eu", "apac", "us-gov", "ca", "jp", "au", "global"];

/// The `amazon-bedrock-invocationMetrics` object Bedrock adds to the last chunk of a stream.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvocationMetrics {
    #[serde(default, deserialize_with = "de_count")]
    input_token_count: Option<u32>,
    #[serde(default, deserialize_with = "de_count")]
    output_token_count: Option<u32>,
}

/// Usage from the `amazon-bedrock-invocationMetrics` key of a stream chunk, if present.
/// Every family's decoder calls this and lets the family's own counts win.
pub(crate) fn invocation_metrics_usage(chunk: &serde_json::Value) -> Usage {
    chunk
        .get("amazon-bedrock-invocationMetrics")
        .and_then(|m| InvocationMetrics::deserialize(m).ok())
        .map(|m| Usage { input_tokens: m.input_token_count, output_tokens: m.output_token_count })
        .unwrap_or_default()
}

/// Deserializes a token count that may arrive as `null`, an integer, or an
/// integer-valued float (`28.0`, seen with guardrails on).
pub(crate) fn de_count<'de, D>(deserializer: D) -> Result<Option<u32>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = Option::<f64>::deserialize(deserializer)?;
    match value {
        None => Ok(None),
        Some(v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX) =>
        {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "range checked above"
            )]
            Ok(Some(v as u32))
        }
        Some(v) => Err(serde::de::Error::custom(format!("expected a token count, got {v}"))),
    }
}

/// Checks that an optional sampling parameter lies in the family's `range`; the error
/// names the field, the range and the family. NaN is never in range.
pub(crate) fn check_range(
    family: &'static str,
    field: &str,
    value: Option<f64>,
    range: RangeInclusive<f64>,
) -> Result<(), TranslateError> {
    match value {
        Some(v) if !range.contains(&v) => Err(TranslateError::InvalidRequest(format!(
            "`{field}` must be between {} and {} for the {family} model family, got {v}",
            range.start(),
            range.end()
        ))),
        _ => Ok(()),
    }
}

/// Serializes a family's request wire struct into the InvokeModel body.
pub(crate) fn to_body<T: Serialize>(
    family: &'static str,
    body: &T,
) -> Result<serde_json::Value, TranslateError> {
    // Wire structs hold only strings and numbers, so this cannot fail in practice.
    serde_json::to_value(body).map_err(|e| {
        TranslateError::InvalidRequest(format!("cannot encode the {family} request body: {e}"))
    })
}

/// Parses a body as JSON of type `T`, naming the family in the error.
pub(crate) fn parse_body<'a, T: Deserialize<'a>>(
    family: &'static str,
    body: &'a [u8],
) -> Result<T, TranslateError> {
    serde_json::from_slice(body)
        .map_err(|e| TranslateError::MalformedResponse { family, detail: e.to_string() })
}
