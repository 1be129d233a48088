//! Amazon Nova Multimodal Embeddings, text only: `amazon.nova-2-multimodal-embeddings-*`
//! model ids.
//!
//! The request is the synchronous `nova-multimodal-embed-v1` schema,
//! `{"schemaVersion", "taskType": "SINGLE_EMBEDDING", "singleEmbeddingParams":
//! {"embeddingPurpose", "embeddingDimension", "text": {"truncationMode", "value"}}}`; the
//! answer is `embeddings[].embedding` (AWS Nova user guide, "Complete embeddings request
//! and response schema").
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
//! - One text per InvokeModel call. The body has no token counts: usage comes from
//!   Bedrock's headers. `truncatedCharLength` in the answer is ignored.

use serde::{Deserialize, Serialize};

use crate::embed::{EmbedRequest, Embeddings, InputType};
use crate::error::TranslateError;
use crate::families::common::single_text;
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
    text: NovaText<'a>,
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
        &[Param::Dimensions, Param::InputType]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &[
            "singleEmbeddingParams.embeddingPurpose",
            "singleEmbeddingParams.embeddingDimension",
            "singleEmbeddingParams.text.value",
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
        if let Some(dimensions) = req.dimensions
            && !ALLOWED_DIMENSIONS.contains(&dimensions)
        {
            return Err(TranslateError::InvalidRequest(format!(
                "`dimensions` must be one of 256, 384, 1024 or 3072 for the {ID} model family, \
                 got {dimensions}"
            )));
        }
        let body = NovaEmbedRequest {
            schema_version: SCHEMA_VERSION,
            task_type: "SINGLE_EMBEDDING",
            single_embedding_params: NovaSingleEmbeddingParams {
                embedding_purpose: convert_input_type(req.input_type),
                embedding_dimension: req.dimensions,
                text: NovaText { truncation_mode: "END", value: text },
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

/// The `embeddingPurpose` for a unified `input_type`; see the module doc.
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
    fn missing_embeddings_is_malformed() {
        let err = NovaEmbed.decode_response(br#"{"embedding":[0.1]}"#).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { family: "nova_embed", .. }));
    }
}
