//! Amazon Titan Text Embeddings V2: `amazon.titan-embed-text-v2*` model ids.
//!
//! The request is `{"inputText", "dimensions", "normalize"}`; the answer is `embedding`
//! with `inputTextTokenCount` (wire reference §4.12).
//!
//! Decisions:
//! - `dimensions` must be one of [`ALLOWED_DIMENSIONS`]; anything else is refused here
//!   (400) instead of by Bedrock. Unset, the model's default (1024) applies.
//! - `normalize` is sent only when the request sets it (the model defaults to true).
//! - `input_type` is refused (422): the model has no such parameter.
//! - `embeddingTypes` is not mapped. The float `embedding` is always in the answer, so a
//!   caller asking for binary vectors through `extra` still gets the float ones.

use serde::Serialize;

use crate::embed::{EmbedRequest, Embeddings};
use crate::error::TranslateError;
use crate::families::common::single_text;
use crate::families::embed_common::{check_dimensions, decode_titan_embedding};
use crate::families::{EmbeddingFamily, to_body};
use crate::unified::Param;

/// The Amazon Titan Text Embeddings V2 family.
#[derive(Debug, Clone, Copy)]
pub struct TitanEmbedV2;

const ID: &str = "titan_embed_v2";

/// The vector sizes the model produces.
const ALLOWED_DIMENSIONS: [u32; 3] = [256, 512, 1024];

/// The body of InvokeModel.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanEmbedV2Request<'a> {
    input_text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    normalize: Option<bool>,
}

impl EmbeddingFamily for TitanEmbedV2 {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("amazon.titan-embed-text-v2")
    }

    fn params(&self) -> &'static [Param] {
        &[Param::Dimensions, Param::Normalize]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &["inputText", "dimensions", "normalize"]
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
        let body = TitanEmbedV2Request {
            input_text: text,
            dimensions: check_dimensions(ID, &ALLOWED_DIMENSIONS, req.dimensions)?,
            normalize: req.normalize,
        };
        to_body(ID, &body)
    }

    fn decode_response(&self, body: &[u8]) -> Result<Embeddings, TranslateError> {
        decode_titan_embedding(ID, body)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::embed::EmbedRequest;
    use crate::error::TranslateError;
    use crate::families::EmbeddingFamily;
    use crate::families::titan_embed_v2::TitanEmbedV2;

    #[test]
    fn matches_v2_but_not_g1() {
        assert!(TitanEmbedV2.matches("amazon.titan-embed-text-v2:0"));
        assert!(TitanEmbedV2.matches("amazon.titan-embed-text-v2:0:8k"));
        assert!(!TitanEmbedV2.matches("amazon.titan-embed-text-v1"));
        assert!(!TitanEmbedV2.matches("amazon.titan-embed-image-v1"));
    }

    #[test]
    fn every_allowed_dimension_is_sent() {
        for dimensions in [256, 512, 1024] {
            let req = EmbedRequest { dimensions: Some(dimensions), ..EmbedRequest::default() };
            let body = TitanEmbedV2.encode_request(&["hi".to_owned()], &req).unwrap();
            assert_eq!(body, json!({"inputText": "hi", "dimensions": dimensions}));
        }
    }

    #[test]
    fn other_dimensions_are_invalid() {
        for dimensions in [1, 384, 1536] {
            let req = EmbedRequest { dimensions: Some(dimensions), ..EmbedRequest::default() };
            let err = TitanEmbedV2.encode_request(&["hi".to_owned()], &req).unwrap_err();
            assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
        }
    }

    #[test]
    fn embeddings_by_type_is_tolerated() {
        let body = br#"{"embedding":[0.5],"inputTextTokenCount":2,
            "embeddingsByType":{"float":[0.5],"binary":[1]}}"#;
        let answer = TitanEmbedV2.decode_response(body).unwrap();
        assert_eq!(answer.vectors, vec![vec![0.5]]);
        assert_eq!(answer.input_tokens, Some(2));
    }
}
