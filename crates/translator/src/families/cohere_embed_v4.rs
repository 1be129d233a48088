//! Cohere Embed v4: `cohere.embed-v4` model ids (`cohere.embed-v4:0`).
//!
//! The request is `{"texts", "input_type", "output_dimension"}` for texts and `{"images",
//! "input_type", "output_dimension"}` for images, each image a `data:<mime>;base64,...` URI;
//! the answer is `embeddings`, a list of float vectors (`response_type:
//! "embeddings_floats"`), or an object keyed by type (`"embeddings_by_type"`) when
//! `embedding_types` was sent (AWS Bedrock user guide, "Cohere Embed v4",
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v4.html>).
//!
//! Decisions:
//! - Its own family rather than a per-id variation of `cohere_embed`: it honours
//!   `dimensions` (`output_dimension`) and `images`, which v3 refuses, and a family's
//!   `params()` hold for all its ids. The answer is read by v3's decoder, the shapes being
//!   the same.
//! - `input_type` is required: a request without one is sent as `search_document`, like v3.
//! - `dimensions` must be one of [`ALLOWED_DIMENSIONS`]; unset, the model's default (1536)
//!   applies.
//! - Up to [`MAX_BATCH`] texts or images per InvokeModel call, the documented limit; texts
//!   and images never share a call (the docs forbid it), so the images of a request come in
//!   calls of their own after the texts' calls.
//! - `embedding_types` is not sent (the answer is then float vectors); `truncate` (`NONE`,
//!   `LEFT`, `RIGHT`), `max_tokens` and `embedding_types` have no unified field and `extra`
//!   may set them. Interleaved `inputs` (text and image in one vector) are not mapped.
//! - The body has no token counts: usage comes from Bedrock's headers.

use serde::Serialize;

use crate::embed::{EmbedRequest, Embeddings, InputType};
use crate::error::TranslateError;
use crate::families::cohere_embed::{DEFAULT_INPUT_TYPE, decode_embeddings};
use crate::families::embed_common::{check_batch, check_dimensions, image_input, matches_model_id};
use crate::families::{EmbeddingFamily, to_body};
use crate::unified::Param;

/// The Cohere Embed v4 family.
#[derive(Debug, Clone, Copy)]
pub struct CohereEmbedV4;

const ID: &str = "cohere_embed_v4";

const MODEL_ID: &str = "cohere.embed-v4";

/// The most texts (or images) Bedrock takes in one Cohere Embed v4 call.
const MAX_BATCH: usize = 96;

/// The vector sizes the model produces.
const ALLOWED_DIMENSIONS: [u32; 4] = [256, 512, 1024, 1536];

/// The body of InvokeModel for texts.
#[derive(Debug, Serialize)]
struct TextsRequest<'a> {
    texts: &'a [String],
    input_type: InputType,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimension: Option<u32>,
}

/// The body of InvokeModel for images.
#[derive(Debug, Serialize)]
struct ImagesRequest {
    images: Vec<String>,
    input_type: InputType,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimension: Option<u32>,
}

impl EmbeddingFamily for CohereEmbedV4 {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        matches_model_id(base_model_id, MODEL_ID)
    }

    fn params(&self) -> &'static [Param] {
        &[Param::Dimensions, Param::InputType, Param::Images]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &["texts", "images", "inputs", "input_type", "output_dimension"]
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
        let body = TextsRequest {
            texts,
            input_type: req.input_type.unwrap_or(DEFAULT_INPUT_TYPE),
            output_dimension: output_dimension(req)?,
        };
        to_body(ID, &body)
    }

    fn encode_image_request(
        &self,
        images: &[String],
        req: &EmbedRequest,
    ) -> Result<serde_json::Value, TranslateError> {
        check_batch(ID, "images", images.len(), MAX_BATCH)?;
        let images = images
            .iter()
            .map(|image| {
                let image = image_input(image)?;
                Ok(format!("data:image/{};base64,{}", image.format.as_str(), image.base64))
            })
            .collect::<Result<_, TranslateError>>()?;
        let body = ImagesRequest {
            images,
            input_type: req.input_type.unwrap_or(DEFAULT_INPUT_TYPE),
            output_dimension: output_dimension(req)?,
        };
        to_body(ID, &body)
    }

    fn decode_response(&self, body: &[u8]) -> Result<Embeddings, TranslateError> {
        decode_embeddings(ID, body)
    }
}

/// `output_dimension` for the request's `dimensions`, checked.
fn output_dimension(req: &EmbedRequest) -> Result<Option<u32>, TranslateError> {
    check_dimensions(ID, &ALLOWED_DIMENSIONS, req.dimensions)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::embed::{EmbedRequest, InputType};
    use crate::error::TranslateError;
    use crate::families::EmbeddingFamily;
    use crate::families::cohere_embed_v4::CohereEmbedV4;

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUg==";

    #[test]
    fn matches_v4_but_not_v3() {
        assert!(CohereEmbedV4.matches("cohere.embed-v4:0"));
        assert!(CohereEmbedV4.matches("cohere.embed-v4"));
        assert!(!CohereEmbedV4.matches("cohere.embed-v4x"));
        assert!(!CohereEmbedV4.matches("cohere.embed-english-v3"));
        assert_eq!(
            crate::family_for("us.cohere.embed-v4:0").map(crate::FamilyRef::id),
            Some("cohere_embed_v4")
        );
    }

    #[test]
    fn every_allowed_dimension_is_sent_and_others_are_invalid() {
        for dimensions in [256, 512, 1024, 1536] {
            let req = EmbedRequest { dimensions: Some(dimensions), ..EmbedRequest::default() };
            let body = CohereEmbedV4.encode_request(&["a".to_owned()], &req).unwrap();
            assert_eq!(
                body,
                json!({"texts": ["a"], "input_type": "search_document",
                    "output_dimension": dimensions})
            );
        }
        let req = EmbedRequest { dimensions: Some(384), ..EmbedRequest::default() };
        let err = CohereEmbedV4.encode_request(&["a".to_owned()], &req).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn images_become_data_uris_in_calls_of_their_own() {
        let req = EmbedRequest {
            input: vec!["a".to_owned()],
            images: vec![PNG.to_owned(), format!("data:image/jpeg;base64,{PNG}")],
            input_type: Some(InputType::SearchQuery),
            ..EmbedRequest::default()
        };
        let bodies = crate::codec::encode_embed_requests(&CohereEmbedV4, &req).unwrap();
        let uri = format!("data:image/png;base64,{PNG}");
        assert_eq!(
            bodies,
            [
                json!({"texts": ["a"], "input_type": "search_query"}),
                json!({"images": [uri, uri], "input_type": "search_query"}),
            ]
        );
    }

    #[test]
    fn more_than_96_images_are_refused_per_call() {
        let images = vec![PNG.to_owned(); 97];
        let err =
            CohereEmbedV4.encode_image_request(&images, &EmbedRequest::default()).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    }
}
