//! Amazon Titan Embeddings G1 - Text: the `amazon.titan-embed-text-v1` model id.
//!
//! The request is `{"inputText"}` and nothing else; the answer is `embedding` with
//! `inputTextTokenCount` (wire reference §4.12).
//!
//! Decisions:
//! - The model takes no inference parameters, so `dimensions`, `normalize` and
//!   `input_type` are all refused (422) rather than dropped.
//! - One text per InvokeModel call: the codec fans a batch out.
//! - `amazon.titan-embed-g1-text-02` is left out: it appears in public code with the
//!   same body, but the AWS parameter pages do not list it.

use serde::Serialize;

use crate::embed::{EmbedRequest, Embeddings};
use crate::error::TranslateError;
use crate::families::common::single_text;
use crate::families::embed_common::{decode_titan_embedding, matches_model_id};
use crate::families::{EmbeddingFamily, to_body};
use crate::unified::Param;

/// The Amazon Titan Embeddings G1 - Text family.
#[derive(Debug, Clone, Copy)]
pub struct TitanEmbedG1;

const ID: &str = "titan_embed_g1";

const MODEL_ID: &str = "amazon.titan-embed-text-v1";

/// The body of InvokeModel.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanEmbedG1Request<'a> {
    input_text: &'a str,
}

impl EmbeddingFamily for TitanEmbedG1 {
    fn id(&self) -> &'static str {
        ID
    }

    /// The plain id and its provisioned-throughput variants (`...-v1:2:8k`).
    fn matches(&self, base_model_id: &str) -> bool {
        matches_model_id(base_model_id, MODEL_ID)
    }

    fn params(&self) -> &'static [Param] {
        &[]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &["inputText"]
    }

    fn max_batch(&self) -> usize {
        1
    }

    fn encode_request(
        &self,
        texts: &[String],
        _req: &EmbedRequest,
    ) -> Result<serde_json::Value, TranslateError> {
        let text = single_text(ID, texts)?;
        to_body(ID, &TitanEmbedG1Request { input_text: text })
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
    use crate::families::titan_embed_g1::TitanEmbedG1;

    #[test]
    fn matches_g1_and_its_provisioned_variants_only() {
        assert!(TitanEmbedG1.matches("amazon.titan-embed-text-v1"));
        assert!(TitanEmbedG1.matches("amazon.titan-embed-text-v1:2:8k"));
        assert!(!TitanEmbedG1.matches("amazon.titan-embed-text-v2:0"));
        assert!(!TitanEmbedG1.matches("amazon.titan-embed-text-v10"));
        assert!(!TitanEmbedG1.matches("amazon.titan-embed-image-v1"));
    }

    #[test]
    fn more_than_one_text_is_refused() {
        let texts = vec!["a".to_owned(), "b".to_owned()];
        let err = TitanEmbedG1.encode_request(&texts, &EmbedRequest::default()).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn body_is_input_text_only() {
        let body =
            TitanEmbedG1.encode_request(&["hi".to_owned()], &EmbedRequest::default()).unwrap();
        assert_eq!(body, json!({"inputText": "hi"}));
    }

    #[test]
    fn missing_embedding_is_malformed() {
        let err = TitanEmbedG1.decode_response(br#"{"inputTextTokenCount":3}"#).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { family: "titan_embed_g1", .. }));
    }
}
