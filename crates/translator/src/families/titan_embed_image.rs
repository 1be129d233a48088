//! Amazon Titan Multimodal Embeddings G1: the `amazon.titan-embed-image-v1` model id.
//!
//! The request is `{"inputText"}` or `{"inputImage"}` (bare base64) with an optional
//! `{"embeddingConfig": {"outputEmbeddingLength"}}`; the answer is `embedding` with
//! `inputTextTokenCount` and `message` (AWS Bedrock user guide, "Amazon Titan Multimodal
//! Embeddings G1",
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-mm.html>).
//!
//! Decisions:
//! - One text or one image per InvokeModel call, never both: the model averages a text
//!   and an image sent together into one vector, which no unified field asks for. The
//!   images of a request are embedded after its texts, one call each.
//! - `dimensions` maps to `embeddingConfig.outputEmbeddingLength` and must be one of
//!   [`ALLOWED_DIMENSIONS`]; unset, the model's default (1024) applies.
//! - `normalize` and `input_type` are refused (422): the model has no such parameter.
//! - An answer without `embedding` is malformed; its `message`, when present, is the detail.

use serde::{Deserialize, Serialize};

use crate::embed::{EmbedRequest, Embeddings};
use crate::error::TranslateError;
use crate::families::common::single_text;
use crate::families::embed_common::{check_dimensions, matches_model_id, single_image};
use crate::families::{EmbeddingFamily, de_count, parse_body, to_body};
use crate::unified::Param;

/// The Amazon Titan Multimodal Embeddings G1 family.
#[derive(Debug, Clone, Copy)]
pub struct TitanEmbedImage;

const ID: &str = "titan_embed_image";

const MODEL_ID: &str = "amazon.titan-embed-image-v1";

/// The vector sizes the model produces.
const ALLOWED_DIMENSIONS: [u32; 3] = [256, 384, 1024];

/// The body of InvokeModel: a text or an image.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanEmbedImageRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    input_text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_image: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    embedding_config: Option<EmbeddingConfig>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EmbeddingConfig {
    output_embedding_length: u32,
}

/// An InvokeModel response body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanEmbedImageResponse {
    #[serde(default)]
    embedding: Option<Vec<f32>>,
    #[serde(default, deserialize_with = "de_count")]
    input_text_token_count: Option<u32>,
    #[serde(default)]
    message: Option<String>,
}

impl EmbeddingFamily for TitanEmbedImage {
    fn id(&self) -> &'static str {
        ID
    }

    /// The plain id and its provisioned-throughput variants (`...-v1:0`).
    fn matches(&self, base_model_id: &str) -> bool {
        matches_model_id(base_model_id, MODEL_ID)
    }

    fn params(&self) -> &'static [Param] {
        &[Param::Dimensions, Param::Images]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &["inputText", "inputImage", "embeddingConfig.outputEmbeddingLength"]
    }

    fn max_batch(&self) -> usize {
        1
    }

    fn encode_request(
        &self,
        texts: &[String],
        req: &EmbedRequest,
    ) -> Result<serde_json::Value, TranslateError> {
        let text = single_text(ID, texts)?;
        let body = TitanEmbedImageRequest {
            input_text: Some(text),
            input_image: None,
            embedding_config: embedding_config(req)?,
        };
        to_body(ID, &body)
    }

    fn encode_image_request(
        &self,
        images: &[String],
        req: &EmbedRequest,
    ) -> Result<serde_json::Value, TranslateError> {
        let image = single_image(ID, images)?;
        let body = TitanEmbedImageRequest {
            input_text: None,
            input_image: Some(image.base64),
            embedding_config: embedding_config(req)?,
        };
        to_body(ID, &body)
    }

    fn decode_response(&self, body: &[u8]) -> Result<Embeddings, TranslateError> {
        let res: TitanEmbedImageResponse = parse_body(ID, body)?;
        let Some(embedding) = res.embedding else {
            let detail = res.message.unwrap_or_else(|| "the answer has no `embedding`".to_owned());
            return Err(TranslateError::MalformedResponse { family: ID, detail });
        };
        Ok(Embeddings { vectors: vec![embedding], input_tokens: res.input_text_token_count })
    }
}

/// `embeddingConfig` for the request's `dimensions`, checked.
fn embedding_config(req: &EmbedRequest) -> Result<Option<EmbeddingConfig>, TranslateError> {
    let dimensions = check_dimensions(ID, &ALLOWED_DIMENSIONS, req.dimensions)?;
    Ok(dimensions.map(|dimensions| EmbeddingConfig { output_embedding_length: dimensions }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::embed::EmbedRequest;
    use crate::error::TranslateError;
    use crate::families::EmbeddingFamily;
    use crate::families::titan_embed_image::TitanEmbedImage;

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUg==";

    #[test]
    fn matches_the_multimodal_model_only() {
        assert!(TitanEmbedImage.matches("amazon.titan-embed-image-v1"));
        assert!(TitanEmbedImage.matches("amazon.titan-embed-image-v1:0"));
        assert!(!TitanEmbedImage.matches("amazon.titan-embed-text-v1"));
        assert!(!TitanEmbedImage.matches("amazon.titan-image-generator-v2:0"));
        assert_eq!(
            crate::family_for("amazon.titan-embed-image-v1").map(crate::FamilyRef::id),
            Some("titan_embed_image")
        );
    }

    #[test]
    fn texts_then_images_one_per_call() {
        let req = EmbedRequest {
            input: vec!["a cat".to_owned()],
            images: vec![format!("data:image/png;base64,{PNG}")],
            dimensions: Some(384),
            ..EmbedRequest::default()
        };
        let bodies = crate::codec::encode_embed_requests(&TitanEmbedImage, &req).unwrap();
        let config = json!({"outputEmbeddingLength": 384});
        assert_eq!(
            bodies,
            [
                json!({"inputText": "a cat", "embeddingConfig": config}),
                json!({"inputImage": PNG, "embeddingConfig": config}),
            ]
        );
    }

    #[test]
    fn other_dimensions_are_invalid() {
        for dimensions in [1, 512, 1536] {
            let req = EmbedRequest { dimensions: Some(dimensions), ..EmbedRequest::default() };
            let err = TitanEmbedImage.encode_request(&["hi".to_owned()], &req).unwrap_err();
            assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
        }
    }

    #[test]
    fn an_answer_without_embedding_is_malformed_with_its_message() {
        let err = TitanEmbedImage.decode_response(br#"{"message":"bad image"}"#).unwrap_err();
        assert_eq!(
            err,
            TranslateError::MalformedResponse {
                family: "titan_embed_image",
                detail: "bad image".to_owned()
            }
        );
    }
}
