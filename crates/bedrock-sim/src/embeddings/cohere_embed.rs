//! Cohere Embed v3 (`cohere.embed-english-v3`, `cohere.embed-multilingual-v3`): request checks
//! and answer shapes of wire document §4.13.
//!
//! - `texts` (1 to 96 strings of at most 2048 characters) and `input_type` are required; more
//!   than 96 texts is a ValidationException. `images` is not simulated: it is an extraneous key.
//! - A text longer than 512 words (the simulator's tokens) fails with `Input is too long for
//!   requested model.` when `truncate` is `NONE`, the default; `START` and `END` drop words
//!   from that end instead.
//! - Without `embedding_types` the answer is `embeddings_floats`: one 1024-component unit
//!   vector per text. With them it is `embeddings_by_type`: an object keyed by type. `int8` and
//!   `uint8` scale each vector to its largest component; `ubinary` packs the sign bits, eight
//!   per byte, most significant first, and `binary` is the same bytes minus 128.
//! - Several schema violations are joined, as real Cohere Embed answers:
//!   `#: required key [texts] not found#: required key [input_type] not found`.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::embeddings::{
    EmbeddingFamily, EmbeddingInput, EmbeddingRequest, INPUT_TOO_LONG_MESSAGE, string_items,
};
use crate::error::BedrockError;
use crate::families::json_bytes;
use crate::generate::{count_input_tokens, fnv1a_64};
use crate::media_schema::{Shape, ViolationReport, array_of, check, string_up_to};

/// The Cohere Embed family.
pub(crate) struct CohereEmbed;

const MODELS: &[&str] = &["cohere.embed-english-v3", "cohere.embed-multilingual-v3"];

/// The length of every vector.
const N_DIMENSIONS: usize = 1024;

/// The most texts one request may carry.
pub(crate) const MAX_TEXTS: usize = 96;

/// The longest text, in characters.
const MAX_TEXT_CHARS: usize = 2048;

/// The most words (the simulator's tokens) of one text the model reads.
const MAX_TEXT_WORDS: usize = 512;

pub(super) const EMBEDDING_TYPES: &[&str] = &["float", "int8", "uint8", "binary", "ubinary"];

impl EmbeddingFamily for CohereEmbed {
    fn id(&self) -> &'static str {
        "cohere_embed"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODELS.contains(&base_model_id)
    }

    fn parse_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<EmbeddingRequest, BedrockError> {
        check(&request_shape(), body, ViolationReport::Joined)?;
        let texts = string_items(body.get("texts"));
        let truncate = body.get("truncate").and_then(Value::as_str).unwrap_or("NONE");

        let mut inputs = Vec::with_capacity(texts.len());
        for text in &texts {
            let kept = truncate_words(text, MAX_TEXT_WORDS, truncate, ["START", "END"])?;
            inputs.push(EmbeddingInput::text(&kept));
        }
        let n_input_tokens = inputs.iter().map(|input| count_input_tokens(&input.content)).sum();
        Ok(EmbeddingRequest {
            inputs,
            n_dimensions: N_DIMENSIONS,
            normalize: true,
            embedding_types: string_items(body.get("embedding_types")),
            n_input_tokens,
        })
    }

    fn response_body(&self, _base_model_id: &str, request: &EmbeddingRequest) -> Vec<u8> {
        let texts: Vec<&str> = request.inputs.iter().map(|input| input.content.as_str()).collect();
        let id = response_id(&texts);
        let (embeddings, response_type) = cohere_embeddings(request);
        json_bytes(&CohereResponse { embeddings, id, response_type, texts })
    }
}

#[derive(Serialize)]
struct CohereResponse<'a> {
    embeddings: CohereEmbeddings,
    id: String,
    response_type: &'static str,
    texts: Vec<&'a str>,
}

fn request_shape() -> Shape {
    Shape::Object {
        properties: vec![
            ("texts", array_of(string_up_to(MAX_TEXT_CHARS), 1, MAX_TEXTS)),
            (
                "input_type",
                Shape::Enum(&[
                    "search_document",
                    "search_query",
                    "classification",
                    "clustering",
                    "image",
                ]),
            ),
            ("truncate", Shape::Enum(&["NONE", "START", "END"])),
            ("embedding_types", array_of(Shape::Enum(EMBEDDING_TYPES), 1, EMBEDDING_TYPES.len())),
        ],
        required: vec!["texts", "input_type"],
    }
}

/// A text cut to `max_words` words (the simulator's tokens) as `truncate` says:
/// `from_start` drops words from the start, `from_end` from the end, and any other value
/// (`NONE`) refuses a longer text.
pub(super) fn truncate_words(
    text: &str,
    max_words: usize,
    truncate: &str,
    [from_start, from_end]: [&str; 2],
) -> Result<String, BedrockError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match truncate {
        _ if words.len() <= max_words => Ok(text.to_owned()),
        _ if truncate == from_start => Ok(words[words.len() - max_words..].join(" ")),
        _ if truncate == from_end => Ok(words[..max_words].join(" ")),
        _ => Err(BedrockError::validation(INPUT_TOO_LONG_MESSAGE)),
    }
}

/// The `embeddings` of a Cohere answer (v3 and v4 alike): unit float vectors, or an object
/// keyed by encoding when `embedding_types` were asked for.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum CohereEmbeddings {
    Floats(Vec<Vec<f32>>),
    ByType(Map<String, Value>),
}

/// The `embeddings` of the answer to `request` and its `response_type`.
pub(super) fn cohere_embeddings(request: &EmbeddingRequest) -> (CohereEmbeddings, &'static str) {
    let vectors = request.vectors();
    if request.embedding_types.is_empty() {
        return (CohereEmbeddings::Floats(vectors), "embeddings_floats");
    }
    let mut by_type = Map::new();
    for kind in &request.embedding_types {
        let encoded: Vec<Value> = vectors.iter().map(|vector| encode(vector, kind)).collect();
        by_type.insert(kind.clone(), Value::Array(encoded));
    }
    (CohereEmbeddings::ByType(by_type), "embeddings_by_type")
}

/// One vector in the encoding `kind` (already checked to be one of [`EMBEDDING_TYPES`]).
fn encode(vector: &[f32], kind: &str) -> Value {
    let largest = vector.iter().fold(f32::MIN_POSITIVE, |largest, x| largest.max(x.abs()));
    let as_int8 = |x: &f32| (x / largest * 127.0).round().clamp(-128.0, 127.0) as i32;
    let packed_bits = || {
        vector.chunks(8).map(|byte_bits| {
            byte_bits.iter().fold(0i32, |byte, x| (byte << 1) | i32::from(*x > 0.0))
        })
    };
    let numbers: Vec<Value> = match kind {
        "int8" => vector.iter().map(|x| as_int8(x).into()).collect(),
        "uint8" => vector.iter().map(|x| (as_int8(x) + 128).into()).collect(),
        "ubinary" => packed_bits().map(Value::from).collect(),
        "binary" => packed_bits().map(|byte| Value::from(byte - 128)).collect(),
        _ => vector.iter().map(|x| Value::from(*x)).collect(),
    };
    Value::Array(numbers)
}

/// A UUID-shaped id derived from the texts, so the same request gets the same answer.
pub(super) fn response_id(texts: &[&str]) -> String {
    let hash = fnv1a_64(texts.join("\n").as_bytes());
    uuid::Uuid::from_u64_pair(hash, hash.rotate_left(29) ^ 0x5eed_c0de_5eed_c0de).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ENGLISH: &str = "cohere.embed-english-v3";

    fn answer(body: Value) -> Value {
        crate::embeddings::test_answer(&CohereEmbed, ENGLISH, &body)
    }

    fn error(body: Value) -> String {
        crate::embeddings::test_error(&CohereEmbed, ENGLISH, &body)
    }

    #[test]
    fn floats_by_default() {
        let body = json!({"texts": ["hello", "world wide"], "input_type": "search_document"});
        let response = answer(body.clone());
        assert_eq!(response["response_type"], "embeddings_floats");
        assert_eq!(response["texts"], json!(["hello", "world wide"]));
        let embeddings = response["embeddings"].as_array().unwrap();
        assert_eq!(embeddings.len(), 2);
        assert!(embeddings.iter().all(|vector| vector.as_array().unwrap().len() == 1024));
        assert_eq!(response["id"].as_str().unwrap().len(), 36);
        assert_eq!(answer(body.clone()), response, "same request, same answer");
        assert_eq!(CohereEmbed.parse_request(ENGLISH, &body).unwrap().n_input_tokens, 3);
    }

    #[test]
    fn by_type_encodings() {
        let body = json!({"texts": ["hello"], "input_type": "clustering",
            "embedding_types": ["float", "int8", "uint8", "binary", "ubinary"]});
        let response = answer(body);
        assert_eq!(response["response_type"], "embeddings_by_type");
        let by_type = &response["embeddings"];
        let float: Vec<f64> =
            by_type["float"][0].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        let int8 = by_type["int8"][0].as_array().unwrap();
        let uint8 = by_type["uint8"][0].as_array().unwrap();
        assert_eq!((float.len(), int8.len(), uint8.len()), (1024, 1024, 1024));
        assert!(int8.iter().all(|x| (-128..=127).contains(&x.as_i64().unwrap())));
        assert!(int8.iter().any(|x| x.as_i64().unwrap().abs() == 127));
        for (signed, unsigned) in int8.iter().zip(uint8) {
            assert_eq!(signed.as_i64().unwrap() + 128, unsigned.as_i64().unwrap());
        }
        let ubinary = by_type["ubinary"][0].as_array().unwrap();
        let binary = by_type["binary"][0].as_array().unwrap();
        assert_eq!((ubinary.len(), binary.len()), (128, 128));
        let first_byte = float[..8].iter().fold(0, |byte, x| (byte << 1) | i64::from(*x > 0.0));
        assert_eq!(ubinary[0].as_i64().unwrap(), first_byte);
        assert_eq!(binary[0].as_i64().unwrap(), first_byte - 128);
    }

    #[test]
    fn limits_and_required_keys() {
        let texts: Vec<String> = (0..97).map(|idx| format!("text {idx}")).collect();
        let body = json!({"texts": texts, "input_type": "search_query"});
        assert_eq!(
            error(body),
            "Malformed input request: #/texts: expected maximum item count: 96, found: 97, \
             please reformat your input and try again."
        );
        assert_eq!(
            error(json!({"inputText": "hi"})),
            "Malformed input request: #: required key [texts] not found#: required key \
             [input_type] not found#: extraneous key [inputText] is not permitted, please \
             reformat your input and try again."
        );
        let body = json!({"texts": [], "input_type": "search_query"});
        assert!(error(body).contains("expected minimum item count: 1, found: 0"));
        let body = json!({"texts": ["x"], "input_type": "search"});
        assert!(error(body).contains("#/input_type: search is not a valid enum value"));
    }

    #[test]
    fn long_texts_fail_or_are_truncated() {
        // 513 one-letter words: over the word limit, under the 2048 characters.
        let long_text = vec!["w"; MAX_TEXT_WORDS + 1].join(" ");
        let body = json!({"texts": [long_text], "input_type": "search_query"});
        assert_eq!(error(body), INPUT_TOO_LONG_MESSAGE);
        let mut marked = long_text.clone();
        marked.replace_range(..1, "h");
        for (truncate, kept_head) in [("START", false), ("END", true)] {
            let body =
                json!({"texts": [marked], "input_type": "search_query", "truncate": truncate});
            let request = CohereEmbed.parse_request(ENGLISH, &body).unwrap();
            assert_eq!(request.n_input_tokens, 512);
            assert_eq!(request.inputs[0].content.starts_with('h'), kept_head, "{truncate}");
        }
    }
}
