//! The `EmbeddingFamily` trait, the registry of every simulated embedding model and the
//! deterministic vectors they answer with.
//!
//! | id | base model ids | request body | vector |
//! |---|---|---|---|
//! | `titan_embed_text` | `amazon.titan-embed-text-v1`, `amazon.titan-embed-text-v2:0` | `inputText` (v2: `dimensions`, `normalize`, `embeddingTypes`) | 1536 (v1); 256, 512 or 1024 (v2) |
//! | `cohere_embed` | `cohere.embed-english-v3`, `cohere.embed-multilingual-v3` | `texts` (1 to 96), `input_type`, `truncate`, `embedding_types` | 1024 per text |
//! | `cohere_embed_v4` | `cohere.embed-v4:0` | `input_type` and one of `texts`, `images` (data URIs), `inputs` (1 to 96); `output_dimension`, `embedding_types`, `max_tokens`, `truncate` | 256, 512, 1024 or 1536 (default) per item |
//! | `titan_embed_image` | `amazon.titan-embed-image-v1` | `inputText` and/or `inputImage` (base64), `embeddingConfig.outputEmbeddingLength` | 256, 384 or 1024 (default) |
//! | `nova_multimodal_embeddings` | `amazon.nova-2-multimodal-embeddings-v1:0` | `taskType: SINGLE_EMBEDDING`, `singleEmbeddingParams` | 256, 384, 1024 or 3072 |
//!
//! Embedding models answer InvokeModel only; InvokeModelWithResponseStream on them is a 400
//! ValidationException (`invoke.rs`). The usage headers carry the input words as
//! `X-Amzn-Bedrock-Input-Token-Count` and 0 output tokens.
//!
//! Each vector is a pure function of the embedded content: component `i` comes from the
//! FNV-1a hash of the content mixed with `i`, uniform in `[-1, 1)`. Normalized vectors are then
//! divided by their length, so they have unit length; Titan G1 answers raw vectors.
//!
//! Adding a family is one new file here plus its `mod` line and its entry in
//! [`EMBEDDING_FAMILIES`].

use serde_json::Value;

use crate::error::BedrockError;
use crate::generate::fnv1a_64;
use crate::schema::as_integer;

mod cohere_embed;
mod cohere_embed_v4;
mod nova_multimodal_embeddings;
mod titan_embed_image;
mod titan_embed_text;

/// One simulated embedding family: how its request bodies are checked and its answers shaped.
///
/// Implementations are unit structs, pure and synchronous.
pub(crate) trait EmbeddingFamily: Send + Sync {
    /// The snake_case id, also the file name.
    fn id(&self) -> &'static str;
    /// Whether this family simulates `base_model_id` (no ARN, no geography prefix).
    fn matches(&self, base_model_id: &str) -> bool;
    /// Validates a request body the way Bedrock does and reads what to embed.
    fn parse_request(
        &self,
        base_model_id: &str,
        body: &Value,
    ) -> Result<EmbeddingRequest, BedrockError>;
    /// The InvokeModel response body for `request`, which `parse_request` read from a body
    /// sent to `base_model_id`.
    fn response_body(&self, base_model_id: &str, request: &EmbeddingRequest) -> Vec<u8>;
}

/// What a family asks the simulator to embed, read from the request body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EmbeddingRequest {
    /// One vector is answered per input, in order.
    pub(crate) inputs: Vec<EmbeddingInput>,
    /// The length of every vector.
    pub(crate) n_dimensions: usize,
    /// Whether the vectors have unit length.
    pub(crate) normalize: bool,
    /// The extra encodings asked for, in the family's spelling (`float`, `binary`, `int8`, ...).
    pub(crate) embedding_types: Vec<String>,
    /// Input tokens for the usage header: the words of the text inputs.
    pub(crate) n_input_tokens: u32,
}

impl EmbeddingRequest {
    /// The vector of `content` at the request's size and normalization.
    pub(crate) fn vector(&self, content: &str) -> Vec<f32> {
        embedding_vector(content, self.n_dimensions, self.normalize)
    }

    /// One vector per input, in order.
    pub(crate) fn vectors(&self) -> Vec<Vec<f32>> {
        self.inputs.iter().map(|input| self.vector(&input.content)).collect()
    }

    /// The vector of the first input, for the families that embed one input per call.
    pub(crate) fn first_vector(&self) -> Vec<f32> {
        self.vector(self.inputs.first().map_or("", |input| input.content.as_str()))
    }
}

/// The answer to a text over a model's word limit (its truncation off).
pub(crate) const INPUT_TOO_LONG_MESSAGE: &str = "Input is too long for requested model.";

/// A vector length the request gives at `value` (already checked), or `default`.
pub(crate) fn dimensions_or(value: Option<&Value>, default: usize) -> usize {
    value
        .and_then(as_integer)
        .and_then(|dimensions| usize::try_from(dimensions).ok())
        .unwrap_or(default)
}

/// The strings of a JSON array (an absent or other value has none).
pub(crate) fn string_items(value: Option<&Value>) -> Vec<String> {
    let items = value.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
}

/// One piece of content to embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EmbeddingInput {
    /// The text, or for other media the compact JSON that stands for it; it seeds the vector.
    pub(crate) content: String,
    /// Nova's `embeddingType` of the answer: `TEXT`, `IMAGE`, `AUDIO`, `VIDEO`, ...
    pub(crate) modality: &'static str,
}

impl EmbeddingInput {
    /// A text input.
    pub(crate) fn text(content: &str) -> EmbeddingInput {
        EmbeddingInput { content: content.to_owned(), modality: "TEXT" }
    }
}

/// Every embedding family, in the order [`embedding_family_for`] tries them.
pub(crate) static EMBEDDING_FAMILIES: &[&dyn EmbeddingFamily] = &[
    &titan_embed_text::TitanEmbedText,
    &cohere_embed::CohereEmbed,
    &cohere_embed_v4::CohereEmbedV4,
    &titan_embed_image::TitanEmbedImage,
    &nova_multimodal_embeddings::NovaMultimodalEmbeddings,
];

/// The embedding family that simulates `base_model_id`, if any.
pub(crate) fn embedding_family_for(base_model_id: &str) -> Option<&'static dyn EmbeddingFamily> {
    EMBEDDING_FAMILIES.iter().copied().find(|family| family.matches(base_model_id))
}

/// The deterministic vector of `content`.
pub(crate) fn embedding_vector(content: &str, n_dimensions: usize, normalize: bool) -> Vec<f32> {
    let seed = fnv1a_64(content.as_bytes());
    let raw: Vec<f64> = (0..n_dimensions)
        .map(|component_idx| {
            let bits = mix64(seed ^ mix64(component_idx as u64));
            // The top 53 bits as a fraction in [0, 1), moved to [-1, 1).
            (bits >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    let length = raw.iter().map(|component| component * component).sum::<f64>().sqrt();
    let divisor = if normalize && length > 0.0 { length } else { 1.0 };
    raw.iter().map(|component| (component / divisor) as f32).collect()
}

/// Whether `text` is padded standard base64 (RFC 4648 §4), as Bedrock reads image bytes.
pub(crate) fn is_base64(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    text.len().is_multiple_of(4)
        && text.len() - body.len() <= 2
        && body.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/')
}

/// The splitmix64 finalizer: spreads the bits of `value` over the whole word.
fn mix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The answer of `family` to `body` sent to `model_id`, read back as JSON.
#[cfg(test)]
pub(crate) fn test_answer(family: &dyn EmbeddingFamily, model_id: &str, body: &Value) -> Value {
    let request = family.parse_request(model_id, body).unwrap();
    serde_json::from_slice(&family.response_body(model_id, &request)).unwrap()
}

/// The message of the error `family` answers to `body` sent to `model_id`.
#[cfg(test)]
pub(crate) fn test_error(family: &dyn EmbeddingFamily, model_id: &str, body: &Value) -> String {
    family.parse_request(model_id, body).unwrap_err().message().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::families::family_for;

    #[test]
    fn ids_are_unique_and_no_model_is_claimed_twice() {
        let mut ids: Vec<_> = EMBEDDING_FAMILIES.iter().map(|family| family.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), EMBEDDING_FAMILIES.len());

        let known = [
            "amazon.titan-embed-text-v1",
            "amazon.titan-embed-text-v2:0",
            "cohere.embed-english-v3",
            "cohere.embed-multilingual-v3",
            "amazon.nova-2-multimodal-embeddings-v1:0",
            "cohere.embed-v4:0",
            "amazon.titan-embed-image-v1",
        ];
        for model_id in known {
            let n_claims =
                EMBEDDING_FAMILIES.iter().filter(|family| family.matches(model_id)).count();
            assert_eq!(n_claims, 1, "{model_id}");
            assert!(family_for(model_id).is_none(), "a text family claims {model_id}");
            assert!(crate::images::image_family_for(model_id).is_none(), "{model_id}");
        }
        for model_id in ["cohere.embed-v4", "amazon.titan-embed-image-v2", "amazon.titan-embed"] {
            assert!(embedding_family_for(model_id).is_none(), "{model_id}");
        }
    }

    #[test]
    fn vectors_are_deterministic_sized_and_normalized() {
        let first = embedding_vector("hello world", 1024, true);
        assert_eq!(first, embedding_vector("hello world", 1024, true));
        assert_ne!(first, embedding_vector("hello there", 1024, true));
        assert_eq!(first.len(), 1024);
        let length: f64 = first.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
        assert!((length - 1.0).abs() < 1e-4, "{length}");

        let raw = embedding_vector("hello world", 1536, false);
        assert_eq!(raw.len(), 1536);
        assert!(raw.iter().all(|x| (-1.0..1.0).contains(x)));
        let length: f64 = raw.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
        assert!(length > 10.0, "raw vectors are not unit length: {length}");
        // A shorter vector of the same text is a prefix of the raw longer one.
        assert_eq!(embedding_vector("hello world", 8, false), raw[..8]);
    }
}
