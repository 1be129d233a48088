//! Amazon Titan Text Embeddings G1 (`amazon.titan-embed-text-v1`) and V2
//! (`amazon.titan-embed-text-v2:0`): request checks and answer shapes of wire document §4.12.
//!
//! - G1 takes `inputText` only and answers 1536 raw (not normalized) components.
//! - V2 adds `dimensions` (256, 512 or 1024, default 1024), `normalize` (default true) and
//!   `embeddingTypes` (`float`, `binary`). Its answer always carries `embeddingsByType`, with
//!   `float` when no types were asked for (AWS user guide, Titan Embeddings). `binary` is one
//!   0 or 1 per component: 1 for a positive component.
//! - `inputText` may hold at most 50,000 characters.

use serde::Serialize;
use serde_json::Value;

use crate::embeddings::{
    EmbeddingFamily, EmbeddingInput, EmbeddingRequest, dimensions_or, string_items,
};
use crate::error::BedrockError;
use crate::families::json_bytes;
use crate::generate::count_input_tokens;
use crate::media_schema::{Shape, ViolationReport, array_of, check, string_up_to};

/// The Titan Text Embeddings family.
pub(crate) struct TitanEmbedText;

const G1: &str = "amazon.titan-embed-text-v1";
const V2: &str = "amazon.titan-embed-text-v2:0";

/// The length of every G1 vector.
const G1_DIMENSIONS: usize = 1536;

/// V2's `dimensions` when the request gives none.
const V2_DEFAULT_DIMENSIONS: usize = 1024;

/// The longest `inputText`, in characters.
const MAX_INPUT_CHARS: usize = 50_000;

impl EmbeddingFamily for TitanEmbedText {
    fn id(&self) -> &'static str {
        "titan_embed_text"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id == G1 || base_model_id == V2
    }

    fn parse_request(
        &self,
        base_model_id: &str,
        body: &Value,
    ) -> Result<EmbeddingRequest, BedrockError> {
        let is_v2 = base_model_id == V2;
        check(&request_shape(is_v2), body, ViolationReport::Counted)?;

        let input_text = body.get("inputText").and_then(Value::as_str).unwrap_or_default();
        let n_dimensions = if is_v2 {
            dimensions_or(body.get("dimensions"), V2_DEFAULT_DIMENSIONS)
        } else {
            G1_DIMENSIONS
        };
        Ok(EmbeddingRequest {
            inputs: vec![EmbeddingInput::text(input_text)],
            n_dimensions,
            normalize: is_v2 && body.get("normalize").and_then(Value::as_bool).unwrap_or(true),
            embedding_types: string_items(body.get("embeddingTypes")),
            n_input_tokens: count_input_tokens(input_text),
        })
    }

    fn response_body(&self, base_model_id: &str, request: &EmbeddingRequest) -> Vec<u8> {
        let embedding = request.first_vector();
        let embeddings_by_type = (base_model_id == V2).then(|| {
            let wants = |kind: &str| request.embedding_types.iter().any(|asked| asked == kind);
            EmbeddingsByType {
                float: (request.embedding_types.is_empty() || wants("float"))
                    .then(|| embedding.clone()),
                binary: wants("binary").then(|| {
                    embedding.iter().map(|component| u8::from(*component > 0.0)).collect()
                }),
            }
        });
        json_bytes(&TitanEmbeddingResponse {
            embedding,
            input_text_token_count: request.n_input_tokens,
            embeddings_by_type,
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanEmbeddingResponse {
    embedding: Vec<f32>,
    input_text_token_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    embeddings_by_type: Option<EmbeddingsByType>,
}

#[derive(Serialize)]
struct EmbeddingsByType {
    #[serde(skip_serializing_if = "Option::is_none")]
    float: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    binary: Option<Vec<u8>>,
}

fn request_shape(is_v2: bool) -> Shape {
    let mut properties = vec![("inputText", string_up_to(MAX_INPUT_CHARS))];
    if is_v2 {
        properties.extend([
            ("dimensions", Shape::IntegerEnum(&[256, 512, 1024])),
            ("normalize", Shape::Boolean),
            ("embeddingTypes", array_of(Shape::Enum(&["float", "binary"]), 1, 2)),
        ]);
    }
    Shape::Object { properties, required: vec!["inputText"] }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answer(model_id: &str, body: Value) -> Value {
        crate::embeddings::test_answer(&TitanEmbedText, model_id, &body)
    }

    fn error(model_id: &str, body: Value) -> String {
        crate::embeddings::test_error(&TitanEmbedText, model_id, &body)
    }

    #[test]
    fn g1_answers_1536_raw_components() {
        let response = answer(G1, json!({"inputText": "hello embedding world"}));
        assert_eq!(response["embedding"].as_array().unwrap().len(), 1536);
        assert_eq!(response["inputTextTokenCount"], 3);
        assert_eq!(response.as_object().unwrap().len(), 2);
        assert_eq!(
            error(G1, json!({"inputText": "x", "dimensions": 256})),
            "Malformed input request: #: extraneous key [dimensions] is not permitted, please \
             reformat your input and try again."
        );
    }

    #[test]
    fn v2_dimensions_types_and_defaults() {
        let response = answer(V2, json!({"inputText": "hi"}));
        assert_eq!(response["embedding"].as_array().unwrap().len(), 1024);
        assert_eq!(response["embeddingsByType"]["float"], response["embedding"]);
        assert!(response["embeddingsByType"].get("binary").is_none());

        let body = json!({"inputText": "hi", "dimensions": 256, "embeddingTypes": ["binary"]});
        let response = answer(V2, body);
        let embedding = response["embedding"].as_array().unwrap();
        let binary = response["embeddingsByType"]["binary"].as_array().unwrap();
        assert_eq!((embedding.len(), binary.len()), (256, 256));
        assert!(response["embeddingsByType"].get("float").is_none());
        for (component, bit) in embedding.iter().zip(binary) {
            assert_eq!(bit.as_u64().unwrap(), u64::from(component.as_f64().unwrap() > 0.0));
        }
    }

    #[test]
    fn v2_rejects_bad_values() {
        let cases = [
            (
                json!({"inputText": "x", "dimensions": 300}),
                "#/dimensions: 300 is not a valid enum value",
            ),
            (
                json!({"inputText": "x", "normalize": 1}),
                "#/normalize: expected type: Boolean, found: Integer",
            ),
            (
                json!({"inputText": "x", "embeddingTypes": ["int8"]}),
                "#/embeddingTypes/0: int8 is not a valid enum value",
            ),
            (json!({"texts": ["x"]}), "2 schema violations found"),
        ];
        for (body, detail) in cases {
            assert_eq!(
                error(V2, body),
                format!(
                    "Malformed input request: {detail}, please reformat your input and try again."
                )
            );
        }
        let too_long = "a".repeat(MAX_INPUT_CHARS + 1);
        assert!(error(V2, json!({"inputText": too_long})).contains("expected maxLength: 50000"));
    }
}
