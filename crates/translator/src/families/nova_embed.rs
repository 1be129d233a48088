//! Amazon Nova Multimodal Embeddings, text and image inputs:
//! `amazon.nova-2-multimodal-embeddings-*` model ids.
//!
//! The request is the synchronous `nova-multimodal-embed-v1` schema,
//! `{"schemaVersion", "taskType": "SINGLE_EMBEDDING", "singleEmbeddingParams":
//! {"embeddingPurpose", "embeddingDimension", "text": {"truncationMode", "value"}}}`, or with
//! `"image": {"format", "source": {"bytes"}}` in place of `text`; the answer is
//! `embeddings[].embedding` (AWS Nova user guide, "Complete embeddings request and response
//! schema", <https://docs.aws.amazon.com/nova/latest/userguide/embeddings-schema.html>).
//!
//! Decisions:
//! - `input_type` maps to `embeddingPurpose`: `search_document` is `GENERIC_INDEX`,
//!   `search_query` is `TEXT_RETRIEVAL` (the docs' value for searching an index of
//!   text embeddings only, which is what this gateway builds), `classification` is
//!   `CLASSIFICATION` and `clustering` is `CLUSTERING`. The field is required, so a
//!   request without `input_type` is sent as `GENERIC_INDEX`, like Cohere's default.
//! - `dimensions` must be one of [`ALLOWED_DIMENSIONS`]; unset, the model's default
//!   (3072) applies.
//! - `truncationMode` is `END`: an over-long text loses its end rather than failing
//!   the call.
//! - One text or one image per InvokeModel call (the schema takes exactly one input); the
//!   images of a request are embedded after its texts. The body has no token counts: usage
//!   comes from Bedrock's headers. `truncatedCharLength` in the answer is ignored.
//! - An image is sent inline as `source.bytes` with its `format` (`png`, `jpeg`, `gif`,
//!   `webp`) read from its bytes. `detailLevel` is left out, so the model's default
//!   (`STANDARD_IMAGE`) applies; `extra` may set it to `DOCUMENT_IMAGE`. For an image,
//!   `search_query` is `GENERIC_RETRIEVAL`, the docs' value for an index of mixed
//!   modalities: an index that image embeddings are searched against is not text-only.
//!   Text purposes are unchanged.

use serde::{Deserialize, Serialize};

use crate::embed::{EmbedRequest, Embeddings, InputType};
use crate::error::TranslateError;
use crate::families::common::single_text;
use crate::families::embed_common::{check_dimensions, single_image};
use crate::families::{EmbeddingFamily, parse_body, to_body};
use crate::unified::Param;

/// The Amazon Nova Multimodal Embeddings family.
#[derive(Debug, Clone, Copy)]
pub struct NovaEmbed;

const ID: &str = "nova_embed";

const SCHEMA_VERSION: &str = "nova-multimodal-embed-v1";

/// The vector sizes the model produces.
const ALLOWED_DIMENSIONS: [u32; 4] = [256, 384, 1024, 3072];

/// The body of InvokeModel.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaEmbedRequest<'a> {
    schema_version: &'static str,
    task_type: &'static str,
    single_embedding_params: NovaSingleEmbeddingParams<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaSingleEmbeddingParams<'a> {
    embedding_purpose: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    embedding_dimension: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<NovaText<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<NovaImage<'a>>,
}

#[derive(Debug, Serialize)]
struct NovaImage<'a> {
    format: &'static str,
    source: NovaSource<'a>,
}

#[derive(Debug, Serialize)]
struct NovaSource<'a> {
    bytes: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaText<'a> {
    truncation_mode: &'static str,
    value: &'a str,
}

/// An InvokeModel response body.
#[derive(Debug, Deserialize)]
struct NovaEmbedResponse {
    embeddings: Vec<NovaEmbedding>,
}

#[derive(Debug, Deserialize)]
struct NovaEmbedding {
    embedding: Vec<f32>,
}

impl EmbeddingFamily for NovaEmbed {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("amazon.nova-2-multimodal-embeddings-")
    }

    fn params(&self) -> &'static [Param] {
        &[Param::Dimensions, Param::InputType, Param::Images]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &[
            "singleEmbeddingParams.embeddingPurpose",
            "singleEmbeddingParams.embeddingDimension",
            "singleEmbeddingParams.text.value",
            "singleEmbeddingParams.image.format",
            "singleEmbeddingParams.image.source",
        ]
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
        let embedding_dimension = check_dimensions(ID, &ALLOWED_DIMENSIONS, req.dimensions)?;
        let body = NovaEmbedRequest {
            schema_version: SCHEMA_VERSION,
            task_type: "SINGLE_EMBEDDING",
            single_embedding_params: NovaSingleEmbeddingParams {
                embedding_purpose: convert_input_type(req.input_type),
                embedding_dimension,
                text: Some(NovaText { truncation_mode: "END", value: text }),
                image: None,
            },
        };
        to_body(ID, &body)
    }

    fn encode_image_request(
        &self,
        images: &[String],
        req: &EmbedRequest,
    ) -> Result<serde_json::Value, TranslateError> {
        let image = single_image(ID, images)?;
        let embedding_dimension = check_dimensions(ID, &ALLOWED_DIMENSIONS, req.dimensions)?;
        let embedding_purpose = match req.input_type {
            Some(InputType::SearchQuery) => "GENERIC_RETRIEVAL",
            input_type => convert_input_type(input_type),
        };
        let body = NovaEmbedRequest {
            schema_version: SCHEMA_VERSION,
            task_type: "SINGLE_EMBEDDING",
            single_embedding_params: NovaSingleEmbeddingParams {
                embedding_purpose,
                embedding_dimension,
                text: None,
                image: Some(NovaImage {
                    format: image.format.as_str(),
                    source: NovaSource { bytes: image.base64 },
                }),
            },
        };
        to_body(ID, &body)
    }

    fn decode_response(&self, body: &[u8]) -> Result<Embeddings, TranslateError> {
        let res: NovaEmbedResponse = parse_body(ID, body)?;
        let vectors = res.embeddings.into_iter().map(|e| e.embedding).collect();
        Ok(Embeddings { vectors, input_tokens: None })
    }
}

/// The `embeddingPurpose` of a text for a unified `input_type`; see the module doc.
fn convert_input_type(input_type: Option<InputType>) -> &'static str {
    match input_type {
        None | Some(InputType::SearchDocument) => "GENERIC_INDEX",
        Some(InputType::SearchQuery) => "TEXT_RETRIEVAL",
        Some(InputType::Classification) => "CLASSIFICATION",
        Some(InputType::Clustering) => "CLUSTERING",
    }
}

#[cfg(test)]
mod tests {
    use crate::embed::{EmbedRequest, InputType};
    use crate::error::TranslateError;
    use crate::families::EmbeddingFamily;
    use crate::families::nova_embed::NovaEmbed;

    #[test]
    fn matches_nova_embeddings_but_not_nova_chat_or_canvas() {
        assert!(NovaEmbed.matches("amazon.nova-2-multimodal-embeddings-v1:0"));
        assert!(!NovaEmbed.matches("amazon.nova-lite-v1:0"));
        assert!(!NovaEmbed.matches("amazon.nova-2-lite-v1:0"));
        assert!(!NovaEmbed.matches("amazon.nova-canvas-v1:0"));
    }

    #[test]
    fn every_input_type_has_a_purpose() {
        let cases = [
            (None, "GENERIC_INDEX"),
            (Some(InputType::SearchDocument), "GENERIC_INDEX"),
            (Some(InputType::SearchQuery), "TEXT_RETRIEVAL"),
            (Some(InputType::Classification), "CLASSIFICATION"),
            (Some(InputType::Clustering), "CLUSTERING"),
        ];
        for (input_type, purpose) in cases {
            let req = EmbedRequest { input_type, ..EmbedRequest::default() };
            let body = NovaEmbed.encode_request(&["hi".to_owned()], &req).unwrap();
            assert_eq!(body["singleEmbeddingParams"]["embeddingPurpose"], purpose);
        }
    }

    #[test]
    fn every_allowed_dimension_is_sent_and_others_are_invalid() {
        for dimensions in [256, 384, 1024, 3072] {
            let req = EmbedRequest { dimensions: Some(dimensions), ..EmbedRequest::default() };
            let body = NovaEmbed.encode_request(&["hi".to_owned()], &req).unwrap();
            assert_eq!(body["singleEmbeddingParams"]["embeddingDimension"], dimensions);
        }
        let req = EmbedRequest { dimensions: Some(512), ..EmbedRequest::default() };
        let err = NovaEmbed.encode_request(&["hi".to_owned()], &req).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn an_image_is_sent_inline_with_its_format() {
        let gif = "R0lGODlhAQABAAAAACw=";
        let req = EmbedRequest {
            images: vec![gif.to_owned()],
            input_type: Some(InputType::SearchQuery),
            dimensions: Some(256),
            ..EmbedRequest::default()
        };
        let bodies = crate::codec::encode_embed_requests(&NovaEmbed, &req).unwrap();
        assert_eq!(
            bodies,
            [serde_json::json!({"schemaVersion": "nova-multimodal-embed-v1",
                "taskType": "SINGLE_EMBEDDING",
                "singleEmbeddingParams": {"embeddingPurpose": "GENERIC_RETRIEVAL",
                    "embeddingDimension": 256,
                    "image": {"format": "gif", "source": {"bytes": gif}}}})]
        );
        let err = NovaEmbed.encode_image_request(&[], &req).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn missing_embeddings_is_malformed() {
        let err = NovaEmbed.decode_response(br#"{"embedding":[0.1]}"#).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { family: "nova_embed", .. }));
    }
}
