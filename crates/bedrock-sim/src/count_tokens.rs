//! CountTokens: `POST /model/{modelId}/count-tokens`, answering `{"inputTokens": n}` with the
//! input tokens InvokeModel would report for the same body.
//!
//! The wire shape is the Bedrock Runtime API reference's "CountTokens" (and
//! `aws-sdk-bedrockruntime`'s `count_tokens`, which serializes it): a JSON body
//! `{"input": {"invokeModel": {"body": "<base64 of an InvokeModel body>"}}}` or
//! `{"input": {"converse": {...}}}`, a 200 `{"inputTokens": n}`. Decisions:
//!
//! - Which models count: Claude 3.5 Sonnet (both), 3.5 Haiku, 3.7 Sonnet and the Claude 4
//!   models up to Opus 4.5 ([`COUNTING_MODELS`]; the user guide's "Count tokens" page lists
//!   the Claude models [U: its full table was not read; Claude 3 Haiku, Sonnet and Opus are
//!   taken as not counting, and so are Claude Sonnet 4.6 and Opus 4.6, which launched on
//!   cross-Region inference only: the guide says those do not count on `bedrock-runtime`]).
//!   Any other model, an embedding or image model, and a cross-region profile id or
//!   `inference-profile/` ARN of a counting model, get Bedrock's ValidationException
//!   [`UNSUPPORTED_MESSAGE`] (the wording callers report, strands-agents#999 and
//!   maximhq/bifrost#2169; that profile ids are refused is reported by third parties [U]).
//!   A foundation-model ARN counts as its model. A model id the simulator does not know is
//!   Bedrock's invalid-identifier ValidationException, as InvokeModel answers it.
//! - `invokeModel`: the body is decoded and checked by the model family's own
//!   `parse_request` (and its prompt-cache checkpoints), exactly as InvokeModel checks it,
//!   with the same ValidationExceptions; the count is the family's input count (the
//!   prompt's words plus the media tokens, as `generate` counts them) before the prompt
//!   cache: Bedrock's count is of what the request sends [U: whether Bedrock's count leaves
//!   out cached tokens]. A count over the model's context window is refused as callers
//!   report it (`prompt is too long: N tokens > W maximum`, boto/botocore#3707).
//! - `converse` is refused with a ValidationException: the simulator has no Converse
//!   reading of its own (the gateway sends Converse requests as InvokeModel bodies) [U:
//!   a simplification, Bedrock counts both].
//! - Malformed input (no `input`, both or neither member, a body that is not base64) is a
//!   ValidationException in the style of Bedrock's constraint messages [U: the exact text].
//! - Counting is free and not metered: no token quota is reserved or used (the guide:
//!   "Using the CountTokens API doesn't incur charges") [U: whether CountTokens has a
//!   request quota of its own]. A model's behavior applies as to InvokeModel: its
//!   first-byte latency, and an error fault (`error`, with or without `after_chunks`),
//!   which counts against `fault_times`; the other faults do not act on a count.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use crate::behavior::Fault;
use crate::embeddings::embedding_family_for;
use crate::error::BedrockError;
use crate::families::family_for;
use crate::generate::count_input_tokens;
use crate::images::image_family_for;
use crate::invoke::{
    INVALID_MODEL_MESSAGE, check_content_type, context_window, names_inference_profile,
};
use crate::model_id::{base_model_id, check_model_id_shape, percent_decode};
use crate::schema::parse_json_object;
use crate::simulator::Simulator;

/// Bedrock's answer to CountTokens on a model that does not count tokens.
pub(crate) const UNSUPPORTED_MESSAGE: &str = "The provided model doesn't support counting tokens.";

/// The models that count tokens (base model ids), see the module docs.
pub(crate) const COUNTING_MODELS: &[&str] = &[
    "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "anthropic.claude-3-5-haiku-20241022-v1:0",
    "anthropic.claude-3-7-sonnet-20250219-v1:0",
    "anthropic.claude-sonnet-4-20250514-v1:0",
    "anthropic.claude-opus-4-20250514-v1:0",
    "anthropic.claude-opus-4-1-20250805-v1:0",
    "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "anthropic.claude-haiku-4-5-20251001-v1:0",
    "anthropic.claude-opus-4-5-20251101-v1:0",
];

/// The raw (still percent-encoded) model id of a `/model/{modelId}/count-tokens` path.
pub(crate) fn parse_path(path: &str) -> Option<&str> {
    let raw_model_id = path.strip_prefix("/model/")?.strip_suffix("/count-tokens")?;
    (!raw_model_id.contains('/')).then_some(raw_model_id)
}

/// Serves one authenticated CountTokens request.
pub(crate) async fn run(
    simulator: &Simulator,
    raw_model_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, BedrockError> {
    let model_id = percent_decode(raw_model_id).unwrap_or_else(|| raw_model_id.to_owned());
    check_model_id_shape(&model_id)?;
    let base_model_id =
        base_model_id(&model_id).ok_or_else(|| BedrockError::validation(INVALID_MODEL_MESSAGE))?;
    let family = family_for(base_model_id);
    let known = family.is_some()
        || embedding_family_for(base_model_id).is_some()
        || image_family_for(base_model_id).is_some();
    if !known {
        return Err(BedrockError::validation(INVALID_MODEL_MESSAGE));
    }
    let family = match family {
        Some(family)
            if COUNTING_MODELS.contains(&base_model_id)
                && !names_inference_profile(&model_id, base_model_id) =>
        {
            family.model_family(base_model_id).unwrap_or(family)
        }
        _ => return Err(BedrockError::validation(UNSUPPORTED_MESSAGE)),
    };
    check_content_type(headers)?;
    let invoke_body = invoke_model_body(body)?;
    let invoke_body = parse_json_object(&invoke_body)?;
    let request = family.parse_request(base_model_id, &invoke_body)?;
    if family.reports_cache_tokens() {
        // Checked as InvokeModel checks it; the count is before the cache.
        family.cache_request(base_model_id, &invoke_body)?;
    }
    let n_input_tokens =
        count_input_tokens(&request.prompt).saturating_add(request.n_media_input_tokens);
    if let Some(window) = context_window(base_model_id)
        && n_input_tokens > window
    {
        return Err(BedrockError::validation(format!(
            "prompt is too long: {n_input_tokens} tokens > {window} maximum"
        )));
    }
    let behavior = simulator.take_behavior(base_model_id);
    if !behavior.first_byte_latency.is_zero() {
        tokio::time::sleep(behavior.first_byte_latency).await;
    }
    if let Some(Fault::Error(kind) | Fault::ErrorAfterChunks(kind, _)) = behavior.fault {
        return Err(BedrockError::from_kind(kind, base_model_id));
    }
    tracing::debug!(message = "counted", %model_id, family = family.id(), n_input_tokens);
    let mut response = Response::new(json!({"inputTokens": n_input_tokens}).to_string().into());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// The InvokeModel body of a CountTokens request, decoded from its base64.
fn invoke_model_body(body: &[u8]) -> Result<Vec<u8>, BedrockError> {
    let request = parse_json_object(body)?;
    let missing = |at: &str| {
        BedrockError::validation(format!(
            "1 validation error detected: Value null at '{at}' failed to satisfy constraint: \
             Member must not be null"
        ))
    };
    let input =
        request.get("input").filter(|input| !input.is_null()).ok_or_else(|| missing("input"))?;
    let Some(input) = input.as_object() else {
        return Err(BedrockError::validation("Malformed input request: input must be an object"));
    };
    let invoke_model = input.get("invokeModel").filter(|member| !member.is_null());
    let converse = input.get("converse").filter(|member| !member.is_null());
    let invoke_model = match (invoke_model, converse, input.len()) {
        (Some(invoke_model), None, 1) => invoke_model,
        (None, Some(_), 1) => {
            return Err(BedrockError::validation(
                "This simulator counts the tokens of an invokeModel input only; send the \
                 model's InvokeModel body as input.invokeModel.body.",
            ));
        }
        _ => {
            return Err(BedrockError::validation(
                "Malformed input request: input must set exactly one of invokeModel, converse",
            ));
        }
    };
    let encoded = match invoke_model.get("body") {
        None | Some(Value::Null) => return Err(missing("input.invokeModel.body")),
        Some(Value::String(encoded)) => encoded,
        Some(_) => {
            return Err(BedrockError::validation(
                "Malformed input request: input.invokeModel.body must be a base64 string",
            ));
        }
    };
    base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes()).map_err(|_| {
        BedrockError::validation(
            "Malformed input request: input.invokeModel.body is not valid base64",
        )
    })
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use axum::body::Body;
    use axum::extract::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::Behavior;

    const HAIKU_35: &str = "anthropic.claude-3-5-haiku-20241022-v1:0";

    fn claude_body() -> Value {
        json!({
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 20,
            "system": "Be brief and kind.",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "How many words are in this question?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                    "data": "iVBORw0KGgo="}},
            ]}],
        })
    }

    fn count_request(body: &Value) -> Vec<u8> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(body.to_string());
        json!({"input": {"invokeModel": {"body": encoded}}}).to_string().into_bytes()
    }

    async fn count(simulator: &Simulator, model_id: &str, body: &[u8]) -> (u16, Value) {
        let raw = model_id.replace(':', "%3A").replace('/', "%2F");
        let answer = match run(simulator, &raw, &HeaderMap::new(), body).await {
            Ok(response) => response,
            Err(error) => error.into_response("test"),
        };
        let status = answer.status().as_u16();
        let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    /// InvokeModel's answer to `body` on `model_id`, through the router (signed with the
    /// test key): its status, input token header and body.
    async fn invoke(simulator: &Simulator, model_id: &str, body: &Value) -> (u16, u32, Value) {
        let raw = model_id.replace(':', "%3A");
        let path = format!("/model/{raw}/invoke");
        let body = body.to_string().into_bytes();
        let headers = [("host", "localhost"), ("content-type", "application/json")];
        let signed =
            crate::Signer::test().sign("POST", &path, &headers, &body, SystemTime::now()).unwrap();
        let mut request = Request::post(&path);
        for (name, value) in headers.iter().map(|(n, v)| (*n, (*v).to_owned())).chain(signed) {
            request = request.header(name, value);
        }
        let response = simulator.router().oneshot(request.body(Body::from(body)).unwrap()).await;
        let response = response.unwrap();
        let status = response.status().as_u16();
        let n_input_tokens = response
            .headers()
            .get("x-amzn-bedrock-input-token-count")
            .and_then(|value| value.to_str().ok()?.parse().ok())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, n_input_tokens, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_counting_model_counts_what_invoke_model_reports() {
        let simulator = Simulator::new();
        let body = claude_body();
        let (status, answer) = count(&simulator, HAIKU_35, &count_request(&body)).await;
        assert_eq!(status, 200, "{answer}");
        let (status, invoked, _) = invoke(&simulator, &format!("us.{HAIKU_35}"), &body).await;
        assert_eq!(status, 200);
        assert_eq!(answer, json!({"inputTokens": invoked}));
        // The prompt's words and the image's tokens: more than the words alone.
        assert!(invoked > 10, "{invoked}");
        // A foundation-model ARN names the model itself.
        let arn = format!("arn:aws:bedrock:us-east-1::foundation-model/{HAIKU_35}");
        assert_eq!(count(&simulator, &arn, &count_request(&body)).await.1, answer);
    }

    #[tokio::test]
    async fn counting_uses_no_quota() {
        let simulator = Simulator::new();
        let quota =
            crate::Quota { tokens_per_minute: Some(1), tokens_per_day: None, output_burndown: 1.0 };
        simulator.set_quota(HAIKU_35, quota).unwrap();
        for _ in 0..3 {
            let (status, answer) =
                count(&simulator, HAIKU_35, &count_request(&claude_body())).await;
            assert_eq!(status, 200, "{answer}");
        }
    }

    #[tokio::test]
    async fn other_models_do_not_count() {
        let simulator = Simulator::new();
        let unsupported = json!({"message": UNSUPPORTED_MESSAGE});
        for model_id in [
            "anthropic.claude-3-haiku-20240307-v1:0",
            "amazon.nova-lite-v1:0",
            "amazon.titan-embed-text-v2:0",
            "anthropic.claude-sonnet-4-6",
            &format!("us.{HAIKU_35}"),
            &format!("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{HAIKU_35}"),
        ] {
            let (status, answer) =
                count(&simulator, model_id, &count_request(&claude_body())).await;
            assert_eq!((status, answer), (400, unsupported.clone()), "{model_id}");
        }
        let (status, answer) = count(&simulator, "acme.unknown-v1", b"{}").await;
        assert_eq!((status, answer), (400, json!({"message": INVALID_MODEL_MESSAGE})));
    }

    #[tokio::test]
    async fn the_body_is_checked_as_invoke_model_checks_it() {
        let simulator = Simulator::new();
        let mut body = claude_body();
        body["messages"][0]["role"] = json!("robot");
        let (status, counted) = count(&simulator, HAIKU_35, &count_request(&body)).await;
        assert_eq!(status, 400);
        let (status, _, invoked) = invoke(&simulator, &format!("us.{HAIKU_35}"), &body).await;
        assert_eq!(status, 400);
        assert_eq!(counted, invoked, "the same ValidationException");

        let malformed = [
            (json!({}), "Value null at 'input'"),
            (json!({"input": {"invokeModel": {}}}), "Value null at 'input.invokeModel.body'"),
            (json!({"input": {"invokeModel": {"body": "%%%"}}}), "not valid base64"),
            (json!({"input": {"invokeModel": {"body": "e30="}, "converse": {}}}), "exactly one"),
            (json!({"input": {"converse": {"messages": []}}}), "invokeModel input only"),
        ];
        for (request, wanted) in malformed {
            let (status, answer) =
                count(&simulator, HAIKU_35, request.to_string().as_bytes()).await;
            assert_eq!(status, 400, "{request}");
            let message = answer["message"].as_str().unwrap();
            assert!(message.contains(wanted), "{request}: {message}");
        }
    }

    #[tokio::test]
    async fn a_fault_fails_the_count() {
        let simulator = Simulator::new();
        let behavior: Behavior = serde_json::from_value(
            json!({"fault": {"error": "ThrottlingException"}, "fault_times": 1}),
        )
        .unwrap();
        simulator.set_behavior(HAIKU_35, behavior);
        let (status, answer) = count(&simulator, HAIKU_35, &count_request(&claude_body())).await;
        assert_eq!(status, 429, "{answer}");
        let (status, _) = count(&simulator, HAIKU_35, &count_request(&claude_body())).await;
        assert_eq!(status, 200, "fault_times is used up");
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("/model/a%3Ab/count-tokens"), Some("a%3Ab"));
        assert_eq!(parse_path("/model/a/b/count-tokens"), None);
        assert_eq!(parse_path("/model/a/invoke"), None);
    }
}
