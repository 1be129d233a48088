//! Cohere Embed v4 (`cohere.embed-v4:0`): request checks and answer shapes of the AWS
//! Bedrock user guide page "Cohere Embed v4"
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v4.html>).
//!
//! - `input_type` (`search_document`, `search_query`, `classification`, `clustering`) is
//!   required, and exactly one of `texts` (1 to 96 strings), `images` (1 to 96
//!   `data:image/{png,jpeg,webp,gif};base64,...` URIs) or `inputs` (1 to 96 `{"content": [...]}`
//!   items of `{"type": "text", "text"}` or `{"type": "image_url", "image_url": {"url"}}`
//!   parts). `output_dimension` is 256, 512, 1024 or 1536 (default 1536); `max_tokens` is 1
//!   to 128,000 (the default); `truncate` is `NONE` (the default), `LEFT` or `RIGHT`.
//! - A text of more words (the simulator's tokens) than `max_tokens` fails with `Input is
//!   too long for requested model.` under `NONE`; `LEFT` drops words from the start, `RIGHT`
//!   from the end.
//! - The answer is Cohere v3's: `embeddings_floats` (a list of unit vectors) without
//!   `embedding_types`, `embeddings_by_type` with them, plus `id`, and `texts` when texts
//!   were sent. Images and `inputs` items are embedded from the JSON that describes them.
//! - Violations are joined, as Cohere v3's are.

use serde::Serialize;
use serde_json::Value;

use crate::embeddings::cohere_embed::{
    CohereEmbeddings, EMBEDDING_TYPES, cohere_embeddings, response_id, truncate_words,
};
use crate::embeddings::{
    EmbeddingFamily, EmbeddingInput, EmbeddingRequest, dimensions_or, string_items,
};
use crate::error::BedrockError;
use crate::families::json_bytes;
use crate::generate::count_input_tokens;
use crate::media_schema::{Shape, ViolationReport, array_of, collect_violations, finish};
use crate::schema::as_integer;

/// The Cohere Embed v4 family.
pub(crate) struct CohereEmbedV4;

const MODEL: &str = "cohere.embed-v4:0";

/// `output_dimension` when the request gives none.
const DEFAULT_DIMENSIONS: usize = 1536;

/// The most texts, images or `inputs` items one request may carry.
const MAX_ITEMS: usize = 96;

/// The most tokens of one input, and `max_tokens`' default.
const MAX_TOKENS: i64 = 128_000;

/// The input keys, of which exactly one must be present.
const INPUT_KEYS: [&str; 3] = ["texts", "images", "inputs"];

/// The image media types of a data URI.
const IMAGE_TYPES: [&str; 4] = ["png", "jpeg", "webp", "gif"];

impl EmbeddingFamily for CohereEmbedV4 {
    fn id(&self) -> &'static str {
        "cohere_embed_v4"
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
        if body.is_object() {
            let n_present = INPUT_KEYS.iter().filter(|key| body.get(**key).is_some()).count();
            if n_present != 1 {
                violations
                    .push(format!("#: exactly one of [{}] must be present", INPUT_KEYS.join(", ")));
            }
        }
        for (idx, image) in string_items(body.get("images")).iter().enumerate() {
            if !is_image_data_uri(image) {
                violations.push(format!(
                    "#/images/{idx}: expected a data:image/<png|jpeg|webp|gif>;base64 URI"
                ));
            }
        }
        finish(&violations, ViolationReport::Joined)?;

        let max_words = body.get("max_tokens").and_then(as_integer).unwrap_or(MAX_TOKENS);
        let max_words = usize::try_from(max_words).unwrap_or(usize::MAX);
        let truncate = body.get("truncate").and_then(Value::as_str).unwrap_or("NONE");
        let mut inputs = Vec::new();
        for text in string_items(body.get("texts")) {
            let kept = truncate_words(&text, max_words, truncate, ["LEFT", "RIGHT"])?;
            inputs.push(EmbeddingInput::text(&kept));
        }
        for image in string_items(body.get("images")) {
            inputs.push(EmbeddingInput { content: format!("IMAGE:{image}"), modality: "IMAGE" });
        }
        let items = body.get("inputs").and_then(Value::as_array).map(Vec::as_slice);
        for item in items.unwrap_or_default() {
            inputs.push(EmbeddingInput { content: format!("INPUTS:{item}"), modality: "INPUTS" });
        }
        let n_input_tokens = inputs
            .iter()
            .filter(|input| input.modality == "TEXT")
            .map(|input| count_input_tokens(&input.content))
            .sum();
        let n_dimensions = dimensions_or(body.get("output_dimension"), DEFAULT_DIMENSIONS);
        Ok(EmbeddingRequest {
            inputs,
            n_dimensions,
            normalize: true,
            embedding_types: string_items(body.get("embedding_types")),
            n_input_tokens,
        })
    }

    fn response_body(&self, _base_model_id: &str, request: &EmbeddingRequest) -> Vec<u8> {
        let contents: Vec<&str> =
            request.inputs.iter().map(|input| input.content.as_str()).collect();
        let id = response_id(&contents);
        let texts = request.inputs.iter().all(|input| input.modality == "TEXT").then_some(contents);
        let (embeddings, response_type) = cohere_embeddings(request);
        json_bytes(&CohereV4Response { id, embeddings, response_type, texts })
    }
}

#[derive(Serialize)]
struct CohereV4Response<'a> {
    id: String,
    embeddings: CohereEmbeddings,
    response_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    texts: Option<Vec<&'a str>>,
}

/// Whether `image` is `data:image/<type>;base64,<base64>` with a known type.
fn is_image_data_uri(image: &str) -> bool {
    let Some((media, data)) = image.strip_prefix("data:image/").and_then(|uri| uri.split_once(','))
    else {
        return false;
    };
    let known = media
        .strip_suffix(";base64")
        .is_some_and(|kind| IMAGE_TYPES.contains(&kind) || kind == "jpg");
    known && crate::embeddings::is_base64(data)
}

fn request_shape() -> Shape {
    let part = Shape::Object {
        properties: vec![
            ("type", Shape::Enum(&["text", "image_url"])),
            ("text", Shape::String { min_len: 0, max_len: usize::MAX }),
            ("image_url", Shape::AnyObject),
        ],
        required: vec!["type"],
    };
    let item = Shape::Object {
        properties: vec![("content", array_of(part, 1, usize::MAX))],
        required: vec!["content"],
    };
    let any_string = || Shape::String { min_len: 0, max_len: usize::MAX };
    Shape::Object {
        properties: vec![
            (
                "input_type",
                Shape::Enum(&["search_document", "search_query", "classification", "clustering"]),
            ),
            ("texts", array_of(any_string(), 1, MAX_ITEMS)),
            ("images", array_of(any_string(), 1, MAX_ITEMS)),
            ("inputs", array_of(item, 1, MAX_ITEMS)),
            ("embedding_types", array_of(Shape::Enum(EMBEDDING_TYPES), 1, EMBEDDING_TYPES.len())),
            ("output_dimension", Shape::IntegerEnum(&[256, 512, 1024, 1536])),
            ("max_tokens", Shape::Integer { minimum: 1, maximum: MAX_TOKENS }),
            ("truncate", Shape::Enum(&["NONE", "LEFT", "RIGHT"])),
        ],
        required: vec!["input_type"],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::embeddings::INPUT_TOO_LONG_MESSAGE;

    const PNG_URI: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==";

    fn answer(body: Value) -> Value {
        crate::embeddings::test_answer(&CohereEmbedV4, MODEL, &body)
    }

    fn error(body: Value) -> String {
        crate::embeddings::test_error(&CohereEmbedV4, MODEL, &body)
    }

    #[test]
    fn texts_default_to_1536_floats_and_take_output_dimension() {
        let response = answer(json!({"texts": ["a b", "c"], "input_type": "search_document"}));
        assert_eq!(response["response_type"], "embeddings_floats");
        assert_eq!(response["texts"], json!(["a b", "c"]));
        let vectors = response["embeddings"].as_array().unwrap();
        assert_eq!(vectors.len(), 2);
        assert_eq!(vectors[0].as_array().unwrap().len(), 1536);
        let response =
            answer(json!({"texts": ["a"], "input_type": "search_query", "output_dimension": 256,
                "embedding_types": ["float", "int8"]}));
        assert_eq!(response["response_type"], "embeddings_by_type");
        assert_eq!(response["embeddings"]["float"][0].as_array().unwrap().len(), 256);
        assert_eq!(response["embeddings"]["int8"][0].as_array().unwrap().len(), 256);
    }

    #[test]
    fn images_are_embedded_without_texts() {
        let other = "data:image/gif;base64,R0lGODlhAQABAAAAACw=";
        let response = answer(json!({"images": [PNG_URI, other], "input_type": "clustering"}));
        let vectors = response["embeddings"].as_array().unwrap();
        assert_eq!(vectors.len(), 2);
        assert_ne!(vectors[0], vectors[1]);
        assert!(response.get("texts").is_none());
        let request = CohereEmbedV4
            .parse_request(MODEL, &json!({"images": [PNG_URI], "input_type": "clustering"}))
            .unwrap();
        assert_eq!(request.n_input_tokens, 0);
    }

    #[test]
    fn bad_bodies() {
        let detail = |detail: &str| {
            format!("Malformed input request: {detail}, please reformat your input and try again.")
        };
        assert_eq!(
            error(json!({"texts": ["a"], "images": [PNG_URI], "input_type": "search_query"})),
            detail("#: exactly one of [texts, images, inputs] must be present")
        );
        assert_eq!(
            error(json!({"images": ["iVBORw0KGgo="], "input_type": "search_query"})),
            detail("#/images/0: expected a data:image/<png|jpeg|webp|gif>;base64 URI")
        );
        assert!(
            error(json!({"texts": ["a"], "input_type": "search_query", "output_dimension": 384}))
                .contains("#/output_dimension: 384 is not a valid enum value")
        );
        assert!(
            error(json!({"texts": ["a"], "input_type": "image"}))
                .contains("#/input_type: image is not a valid enum value")
        );
        assert!(error(json!({"texts": ["a"]})).contains("#: required key [input_type] not found"));
    }

    #[test]
    fn long_texts_fail_or_are_truncated() {
        let body = json!({"texts": ["a b c"], "input_type": "search_query", "max_tokens": 2});
        assert_eq!(error(body), INPUT_TOO_LONG_MESSAGE);
        for (truncate, kept) in [("LEFT", "b c"), ("RIGHT", "a b")] {
            let body = json!({"texts": ["a b c"], "input_type": "search_query",
                "max_tokens": 2, "truncate": truncate});
            let request = CohereEmbedV4.parse_request(MODEL, &body).unwrap();
            assert_eq!(request.inputs[0].content, kept, "{truncate}");
        }
    }
}
