//! Cohere Embed v3: `cohere.embed-english-v3` and `cohere.embed-multilingual-v3` model ids.
//!
//! The request is `{"texts", "input_type"}`; the answer is `embeddings`, one vector per
//! text (wire reference §4.13).
//!
//! Decisions:
//! - Cohere requires `input_type`. A request without one is sent as
//!   [`DEFAULT_INPUT_TYPE`] (`search_document`): embedding a corpus is the common case,
//!   and a query embedded as a document still lands in the same space.
//! - Up to [`MAX_BATCH`] texts per InvokeModel call, Bedrock's limit.
//! - `truncate` (`NONE`, `START`, `END`) and `embedding_types` have no unified field;
//!   `extra` may set them. The answer's `embeddings` is read in both shapes: a list of
//!   float vectors, or an object keyed by type (when `embedding_types` was sent), of
//!   which the `float` vectors are taken.
//! - The body has no token counts: usage comes from Bedrock's headers.
//! - `cohere.embed-v4:0` is another family (`cohere_embed_v4.rs`): its `truncate` takes
//!   `LEFT`/`RIGHT`, it has `output_dimension` and `images`, and its default vectors are
//!   1536 long, so it honours unified fields this family refuses.

use serde::{Deserialize, Serialize};

use crate::embed::{EmbedRequest, Embeddings, InputType};
use crate::error::TranslateError;
use crate::families::embed_common::{check_batch, matches_model_id};
use crate::families::{EmbeddingFamily, parse_body, to_body};
use crate::unified::Param;

/// The Cohere Embed v3 family.
#[derive(Debug, Clone, Copy)]
pub struct CohereEmbed;

const ID: &str = "cohere_embed";

/// The most texts Bedrock takes in one Cohere Embed call.
const MAX_BATCH: usize = 96;

/// `input_type` when the request has none; Cohere requires the field.
pub(super) const DEFAULT_INPUT_TYPE: InputType = InputType::SearchDocument;

/// The base model ids of the family; provisioned variants append `:...`.
const MODEL_IDS: [&str; 2] = ["cohere.embed-english-v3", "cohere.embed-multilingual-v3"];

/// The body of InvokeModel.
#[derive(Debug, Serialize)]
struct CohereEmbedRequest<'a> {
    texts: &'a [String],
    input_type: InputType,
}

/// An InvokeModel response body.
#[derive(Debug, Deserialize)]
struct CohereEmbedResponse {
    embeddings: CohereEmbeddings,
}

/// `embeddings`: plain float vectors, or vectors keyed by embedding type.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CohereEmbeddings {
    Floats(Vec<Vec<f32>>),
    ByType {
        #[serde(default)]
        float: Option<Vec<Vec<f32>>>,
    },
}

impl EmbeddingFamily for CohereEmbed {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODEL_IDS.iter().any(|model_id| matches_model_id(base_model_id, model_id))
    }

    fn params(&self) -> &'static [Param] {
        &[Param::InputType]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &["texts", "input_type"]
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    fn encode_request(
        &self,
        texts: &[String],
        req: &EmbedRequest,
    ) -> Result<serde_json::Value, TranslateError> {
        check_batch(ID, "texts", texts.len(), MAX_BATCH)?;
        let body =
            CohereEmbedRequest { texts, input_type: req.input_type.unwrap_or(DEFAULT_INPUT_TYPE) };
        to_body(ID, &body)
    }

    fn decode_response(&self, body: &[u8]) -> Result<Embeddings, TranslateError> {
        decode_embeddings(ID, body)
    }
}

/// The float vectors of a Cohere Embed answer (v3 and v4 answer alike), in either shape of
/// `embeddings`; the error names `family`.
pub(super) fn decode_embeddings(
    family: &'static str,
    body: &[u8],
) -> Result<Embeddings, TranslateError> {
    let res: CohereEmbedResponse = parse_body(family, body)?;
    let vectors = match res.embeddings {
        CohereEmbeddings::Floats(vectors) => vectors,
        CohereEmbeddings::ByType { float: Some(vectors) } => vectors,
        CohereEmbeddings::ByType { float: None } => {
            return Err(TranslateError::MalformedResponse {
                family,
                detail: "`embeddings` has no `float` vectors".to_owned(),
            });
        }
    };
    Ok(Embeddings { vectors, input_tokens: None })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::embed::{EmbedRequest, InputType};
    use crate::error::TranslateError;
    use crate::families::EmbeddingFamily;
    use crate::families::cohere_embed::CohereEmbed;

    #[test]
    fn matches_embed_v3_but_not_v4_or_command() {
        assert!(CohereEmbed.matches("cohere.embed-english-v3"));
        assert!(CohereEmbed.matches("cohere.embed-multilingual-v3"));
        assert!(CohereEmbed.matches("cohere.embed-english-v3:0:512"));
        assert!(!CohereEmbed.matches("cohere.embed-v4:0"));
        assert!(!CohereEmbed.matches("cohere.command-r-v1:0"));
    }

    #[test]
    fn input_type_is_passed_through() {
        let req =
            EmbedRequest { input_type: Some(InputType::Clustering), ..EmbedRequest::default() };
        let body = CohereEmbed.encode_request(&["a".to_owned()], &req).unwrap();
        assert_eq!(body, json!({"texts": ["a"], "input_type": "clustering"}));
    }

    #[test]
    fn more_than_96_texts_are_refused() {
        let texts = vec!["x".to_owned(); 97];
        let err = CohereEmbed.encode_request(&texts, &EmbedRequest::default()).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn codec_batches_by_96() {
        let req = EmbedRequest { input: vec!["x".to_owned(); 97], ..EmbedRequest::default() };
        let bodies = crate::codec::encode_embed_requests(&CohereEmbed, &req).unwrap();
        assert_eq!(bodies.len(), 2);
        assert_eq!(bodies[0]["texts"].as_array().map(Vec::len), Some(96));
        assert_eq!(bodies[1]["texts"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn by_type_without_float_is_malformed() {
        let err = CohereEmbed.decode_response(br#"{"embeddings":{"int8":[[1,2]]}}"#).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { family: "cohere_embed", .. }));
    }
}
