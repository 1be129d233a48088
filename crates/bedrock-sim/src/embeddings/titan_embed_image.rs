//! Amazon Titan Multimodal Embeddings G1 (`amazon.titan-embed-image-v1`): request checks
//! and answer shapes of the AWS Bedrock user guide page "Amazon Titan Multimodal Embeddings
//! G1" (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-mm.html>).
//!
//! - At least one of `inputText` and `inputImage` (bare base64, no data URI); both give one
//!   vector for the pair (the model averages them; the simulator seeds one vector with
//!   both). `embeddingConfig.outputEmbeddingLength` is 256, 384 or 1024 (default 1024).
//! - A text of more than 256 words (the simulator's tokens, the model's documented limit)
//!   fails with `Input is too long for requested model.`
//! - The answer is `{"embedding": [...], "inputTextTokenCount": n, "message": null}`: unit
//!   vectors, the text's words as tokens (0 for an image alone).

use serde::Serialize;
use serde_json::Value;

use crate::embeddings::{
    EmbeddingFamily, EmbeddingInput, EmbeddingRequest, INPUT_TOO_LONG_MESSAGE, dimensions_or,
    is_base64,
};
use crate::error::BedrockError;
use crate::families::json_bytes;
use crate::generate::count_input_tokens;
use crate::media_schema::{Shape, ViolationReport, collect_violations, finish};

/// The Titan Multimodal Embeddings family.
pub(crate) struct TitanEmbedImage;

const MODEL: &str = "amazon.titan-embed-image-v1";

/// `outputEmbeddingLength` when the request gives none.
const DEFAULT_DIMENSIONS: usize = 1024;

/// The most words (the simulator's tokens) of `inputText`.
const MAX_TEXT_WORDS: usize = 256;

impl EmbeddingFamily for TitanEmbedImage {
    fn id(&self) -> &'static str {
        "titan_embed_image"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id == MODEL
    }

    fn parse_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<EmbeddingRequest, BedrockError> {
        let mut violations = collect_violations(&request_shape(), body);
        let text = body.get("inputText").and_then(Value::as_str);
        let image = body.get("inputImage").and_then(Value::as_str);
        if body.is_object() && body.get("inputText").is_none() && body.get("inputImage").is_none() {
            violations.push("#: one of [inputText, inputImage] must be present".to_owned());
        }
        if image.is_some_and(|image| image.is_empty() || !is_base64(image)) {
            violations.push("#/inputImage: expected a base64-encoded image".to_owned());
        }
        finish(&violations, ViolationReport::Counted)?;
        if text.is_some_and(|text| text.split_whitespace().count() > MAX_TEXT_WORDS) {
            return Err(BedrockError::validation(INPUT_TOO_LONG_MESSAGE));
        }

        let (content, modality) = match (text, image) {
            (Some(text), None) => (text.to_owned(), "TEXT"),
            (None, Some(image)) => (format!("IMAGE:{image}"), "IMAGE"),
            (text, image) => {
                (format!("{}+IMAGE:{}", text.unwrap_or(""), image.unwrap_or("")), "TEXT_IMAGE")
            }
        };
        let n_dimensions = dimensions_or(
            body.pointer("/embeddingConfig/outputEmbeddingLength"),
            DEFAULT_DIMENSIONS,
        );
        Ok(EmbeddingRequest {
            inputs: vec![EmbeddingInput { content, modality }],
            n_dimensions,
            normalize: true,
            embedding_types: Vec::new(),
            n_input_tokens: text.map_or(0, count_input_tokens),
        })
    }

    fn response_body(&self, _base_model_id: &str, request: &EmbeddingRequest) -> Vec<u8> {
        json_bytes(&TitanEmbedImageResponse {
            embedding: request.first_vector(),
            input_text_token_count: request.n_input_tokens,
            message: None,
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanEmbedImageResponse {
    embedding: Vec<f32>,
    input_text_token_count: u32,
    message: Option<String>,
}

fn request_shape() -> Shape {
    let any_string = || Shape::String { min_len: 0, max_len: usize::MAX };
    Shape::Object {
        properties: vec![
            ("inputText", any_string()),
            ("inputImage", any_string()),
            (
                "embeddingConfig",
                Shape::Object {
                    properties: vec![(
                        "outputEmbeddingLength",
                        Shape::IntegerEnum(&[256, 384, 1024]),
                    )],
                    required: vec![],
                },
            ),
        ],
        required: vec![],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUg==";

    fn answer(body: Value) -> Value {
        crate::embeddings::test_answer(&TitanEmbedImage, MODEL, &body)
    }

    fn error(body: Value) -> String {
        crate::embeddings::test_error(&TitanEmbedImage, MODEL, &body)
    }

    #[test]
    fn text_image_and_both() {
        let text = answer(json!({"inputText": "a red bike"}));
        assert_eq!(text["embedding"].as_array().unwrap().len(), 1024);
        assert_eq!(text["inputTextTokenCount"], 3);
        assert_eq!(text["message"], Value::Null);
        let image = answer(json!({"inputImage": PNG,
            "embeddingConfig": {"outputEmbeddingLength": 256}}));
        assert_eq!(image["embedding"].as_array().unwrap().len(), 256);
        assert_eq!(image["inputTextTokenCount"], 0);
        let both = answer(json!({"inputText": "a red bike", "inputImage": PNG}));
        assert_ne!(both["embedding"], text["embedding"]);
    }

    #[test]
    fn bad_bodies() {
        let detail = |detail: &str| {
            format!("Malformed input request: {detail}, please reformat your input and try again.")
        };
        assert_eq!(error(json!({})), detail("#: one of [inputText, inputImage] must be present"));
        assert_eq!(
            error(json!({"inputImage": "data:image/png;base64,iVBO"})),
            detail("#/inputImage: expected a base64-encoded image")
        );
        assert_eq!(
            error(json!({"inputText": "x", "embeddingConfig": {"outputEmbeddingLength": 512}})),
            detail("#/embeddingConfig/outputEmbeddingLength: 512 is not a valid enum value")
        );
        assert!(error(json!({"inputText": "x", "dimensions": 256})).contains("extraneous key"));
        let long_text = vec!["w"; MAX_TEXT_WORDS + 1].join(" ");
        assert_eq!(error(json!({"inputText": long_text})), INPUT_TOO_LONG_MESSAGE);
    }
}
