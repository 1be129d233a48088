//! Amazon Nova Multimodal Embeddings (`amazon.nova-2-multimodal-embeddings-v1:0`): request
//! checks and answer shapes of the synchronous schema in the Nova user guide ("Complete
//! embeddings request and response schema").
//!
//! - Request: `{"schemaVersion": "nova-multimodal-embed-v1", "taskType": "SINGLE_EMBEDDING",
//!   "singleEmbeddingParams": {"embeddingPurpose": "GENERIC_INDEX", "embeddingDimension": 1024,
//!   "text": {"truncationMode": "END", "value": "..."}}}`. `taskType` must be
//!   `SINGLE_EMBEDDING` (segmented embedding is asynchronous only); `embeddingPurpose` is
//!   required; `embeddingDimension` is 256, 384, 1024 or 3072, default 3072; exactly one of
//!   `text`, `image`, `audio`, `video`; a text has `value` (at most 8192 characters) or an S3
//!   `source`.
//! - Response: `{"embeddings": [{"embeddingType": "TEXT", "embedding": [...]}]}`. A video with
//!   `AUDIO_VIDEO_SEPARATE` answers two embeddings, `VIDEO` then `AUDIO`. Vectors have unit
//!   length. `truncatedCharLength` never appears: the simulator never truncates.
//! - Only text is really read; image, audio and video inputs are checked for their required
//!   keys and embedded from the JSON that describes them (so two images differ). Every
//!   `source` holds exactly one of inline `bytes` (base64) or `s3Location` with an `s3://`
//!   `uri`, as in the docs and the recorded bodies of LiteLLM's Nova embedding tests.

use serde::Serialize;
use serde_json::Value;

use crate::embeddings::{
    EmbeddingFamily, EmbeddingInput, EmbeddingRequest, dimensions_or, is_base64,
};
use crate::error::BedrockError;
use crate::families::json_bytes;
use crate::generate::count_input_tokens;
use crate::media_schema::{Shape, ViolationReport, collect_violations, finish, string_up_to};

/// The Nova Multimodal Embeddings family.
pub(crate) struct NovaMultimodalEmbeddings;

const MODEL: &str = "amazon.nova-2-multimodal-embeddings-v1:0";

/// `embeddingDimension` when the request gives none.
const DEFAULT_DIMENSIONS: usize = 3072;

/// The longest text `value`, in characters.
const MAX_TEXT_CHARS: usize = 8192;

/// The input keys of `singleEmbeddingParams`, of which exactly one must be present.
const MODALITIES: [&str; 4] = ["text", "image", "audio", "video"];

impl EmbeddingFamily for NovaMultimodalEmbeddings {
    fn id(&self) -> &'static str {
        "nova_multimodal_embeddings"
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
        let params = body.get("singleEmbeddingParams").filter(|params| params.is_object());
        if let Some(params) = params {
            violations.extend(exactly_one_violation(
                params,
                &MODALITIES,
                "#/singleEmbeddingParams",
            ));
            if let Some(text) = params.get("text").filter(|text| text.is_object()) {
                let pointer = "#/singleEmbeddingParams/text";
                violations.extend(exactly_one_violation(text, &["value", "source"], pointer));
            }
            for modality in MODALITIES {
                let source = params.get(modality).and_then(|input| input.get("source"));
                if let Some(source) = source.filter(|source| source.is_object()) {
                    let pointer = format!("#/singleEmbeddingParams/{modality}/source");
                    violations.extend(source_violations(source, &pointer));
                }
            }
        }
        finish(&violations, ViolationReport::Counted)?;

        let params = params.unwrap_or(&Value::Null);
        let n_dimensions = dimensions_or(params.get("embeddingDimension"), DEFAULT_DIMENSIONS);
        let (inputs, n_input_tokens) = read_inputs(params);
        Ok(EmbeddingRequest {
            inputs,
            n_dimensions,
            normalize: true,
            embedding_types: Vec::new(),
            n_input_tokens,
        })
    }

    fn response_body(&self, _base_model_id: &str, request: &EmbeddingRequest) -> Vec<u8> {
        let embeddings = request
            .inputs
            .iter()
            .map(|input| NovaEmbedding {
                embedding_type: input.modality,
                embedding: request.vector(&input.content),
            })
            .collect();
        json_bytes(&NovaResponse { embeddings })
    }
}

#[derive(Serialize)]
struct NovaResponse {
    embeddings: Vec<NovaEmbedding>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaEmbedding {
    embedding_type: &'static str,
    embedding: Vec<f32>,
}

/// The inputs to embed and their input tokens (the words of a text value).
fn read_inputs(params: &Value) -> (Vec<EmbeddingInput>, u32) {
    if let Some(text) = params.get("text") {
        return match text.get("value").and_then(Value::as_str) {
            Some(value) => (vec![EmbeddingInput::text(value)], count_input_tokens(value)),
            None => (vec![described_input("TEXT", text)], 0),
        };
    }
    if let Some(image) = params.get("image") {
        return (vec![described_input("IMAGE", image)], 0);
    }
    if let Some(audio) = params.get("audio") {
        return (vec![described_input("AUDIO", audio)], 0);
    }
    let video = params.get("video").unwrap_or(&Value::Null);
    let inputs = match video.get("embeddingMode").and_then(Value::as_str) {
        Some("AUDIO_VIDEO_SEPARATE") => {
            vec![described_input("VIDEO", video), described_input("AUDIO", video)]
        }
        _ => vec![described_input("AUDIO_VIDEO_COMBINED", video)],
    };
    (inputs, 0)
}

/// An input the simulator does not read: its vector is seeded by its modality and its JSON.
fn described_input(modality: &'static str, description: &Value) -> EmbeddingInput {
    EmbeddingInput { content: format!("{modality}:{description}"), modality }
}

/// The violations of a `SourceObject`: exactly one of inline `bytes` (base64) or an
/// `s3Location` with its `uri`.
fn source_violations(source: &Value, pointer: &str) -> Vec<String> {
    let mut violations: Vec<String> =
        exactly_one_violation(source, &["bytes", "s3Location"], pointer).into_iter().collect();
    if let Some(bytes) = source.get("bytes") {
        let valid = bytes.as_str().is_some_and(|bytes| !bytes.is_empty() && is_base64(bytes));
        if !valid {
            violations.push(format!("{pointer}/bytes: expected base64-encoded bytes"));
        }
    }
    if let Some(location) = source.get("s3Location")
        && location.get("uri").and_then(Value::as_str).is_none_or(|uri| !uri.starts_with("s3://"))
    {
        violations.push(format!("{pointer}/s3Location: expected an s3:// `uri`"));
    }
    violations
}

/// The violation of "exactly one of `keys` is present in `object`", if any.
fn exactly_one_violation(object: &Value, keys: &[&str], pointer: &str) -> Option<String> {
    let n_present = keys.iter().filter(|key| object.get(**key).is_some()).count();
    (n_present != 1)
        .then(|| format!("{pointer}: exactly one of [{}] must be present", keys.join(", ")))
}

fn request_shape() -> Shape {
    let source = || ("source", Shape::AnyObject);
    let params = Shape::Object {
        properties: vec![
            (
                "embeddingPurpose",
                Shape::Enum(&[
                    "GENERIC_INDEX",
                    "GENERIC_RETRIEVAL",
                    "TEXT_RETRIEVAL",
                    "IMAGE_RETRIEVAL",
                    "VIDEO_RETRIEVAL",
                    "DOCUMENT_RETRIEVAL",
                    "AUDIO_RETRIEVAL",
                    "CLASSIFICATION",
                    "CLUSTERING",
                ]),
            ),
            ("embeddingDimension", Shape::IntegerEnum(&[256, 384, 1024, 3072])),
            (
                "text",
                Shape::Object {
                    properties: vec![
                        ("truncationMode", Shape::Enum(&["START", "END", "NONE"])),
                        ("value", string_up_to(MAX_TEXT_CHARS)),
                        source(),
                    ],
                    required: vec!["truncationMode"],
                },
            ),
            (
                "image",
                Shape::Object {
                    properties: vec![
                        ("detailLevel", Shape::Enum(&["STANDARD_IMAGE", "DOCUMENT_IMAGE"])),
                        ("format", Shape::Enum(&["png", "jpeg", "gif", "webp"])),
                        source(),
                    ],
                    required: vec!["format", "source"],
                },
            ),
            (
                "audio",
                Shape::Object {
                    properties: vec![("format", Shape::Enum(&["mp3", "wav", "ogg"])), source()],
                    required: vec!["format", "source"],
                },
            ),
            (
                "video",
                Shape::Object {
                    properties: vec![
                        (
                            "format",
                            Shape::Enum(&[
                                "mp4", "mov", "mkv", "webm", "flv", "mpeg", "mpg", "wmv", "3gp",
                            ]),
                        ),
                        source(),
                        (
                            "embeddingMode",
                            Shape::Enum(&["AUDIO_VIDEO_COMBINED", "AUDIO_VIDEO_SEPARATE"]),
                        ),
                    ],
                    required: vec!["format", "source", "embeddingMode"],
                },
            ),
        ],
        required: vec!["embeddingPurpose"],
    };
    Shape::Object {
        properties: vec![
            ("schemaVersion", Shape::Enum(&["nova-multimodal-embed-v1"])),
            ("taskType", Shape::Enum(&["SINGLE_EMBEDDING"])),
            ("singleEmbeddingParams", params),
        ],
        required: vec!["taskType", "singleEmbeddingParams"],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn text_body(text: &str, extra: Value) -> Value {
        let mut params = json!({"embeddingPurpose": "GENERIC_INDEX",
            "text": {"truncationMode": "END", "value": text}});
        if let (Some(params), Some(extra)) = (params.as_object_mut(), extra.as_object()) {
            params.extend(extra.clone());
        }
        json!({"schemaVersion": "nova-multimodal-embed-v1", "taskType": "SINGLE_EMBEDDING",
            "singleEmbeddingParams": params})
    }

    fn answer(body: Value) -> Value {
        crate::embeddings::test_answer(&NovaMultimodalEmbeddings, MODEL, &body)
    }

    fn error(body: Value) -> String {
        crate::embeddings::test_error(&NovaMultimodalEmbeddings, MODEL, &body)
    }

    #[test]
    fn text_embeddings_and_dimensions() {
        let response = answer(text_body("hello nova", json!({})));
        let embeddings = response["embeddings"].as_array().unwrap();
        assert_eq!(embeddings.len(), 1);
        assert_eq!(embeddings[0]["embeddingType"], "TEXT");
        assert_eq!(embeddings[0]["embedding"].as_array().unwrap().len(), 3072);
        for dimensions in [256, 384, 1024] {
            let response = answer(text_body("x", json!({"embeddingDimension": dimensions})));
            let embedding = response["embeddings"][0]["embedding"].as_array().unwrap();
            assert_eq!(embedding.len(), dimensions);
        }
    }

    #[test]
    fn other_modalities_are_described() {
        let video = json!({"format": "mp4", "embeddingMode": "AUDIO_VIDEO_SEPARATE",
            "source": {"s3Location": {"uri": "s3://bucket/clip.mp4"}}});
        let body = json!({"taskType": "SINGLE_EMBEDDING",
            "singleEmbeddingParams": {"embeddingPurpose": "GENERIC_INDEX", "video": video}});
        let response = answer(body);
        let types: Vec<&str> = response["embeddings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|embedding| embedding["embeddingType"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["VIDEO", "AUDIO"]);
        assert_ne!(response["embeddings"][0]["embedding"], response["embeddings"][1]["embedding"]);
    }

    #[test]
    fn images_are_embedded_from_their_bytes() {
        let image = |bytes: &str| {
            json!({"taskType": "SINGLE_EMBEDDING", "singleEmbeddingParams": {
                "embeddingPurpose": "GENERIC_RETRIEVAL", "embeddingDimension": 256,
                "image": {"format": "png", "source": {"bytes": bytes}}}})
        };
        let first = answer(image("iVBORw0KGgoAAAANSUhEUg=="));
        assert_eq!(first["embeddings"][0]["embeddingType"], "IMAGE");
        assert_eq!(first["embeddings"][0]["embedding"].as_array().unwrap().len(), 256);
        let second = answer(image("R0lGODlhAQABAAAAACw="));
        assert_ne!(first["embeddings"][0]["embedding"], second["embeddings"][0]["embedding"]);
    }

    #[test]
    fn bad_sources() {
        let image = |source: Value| {
            json!({"taskType": "SINGLE_EMBEDDING", "singleEmbeddingParams": {
                "embeddingPurpose": "GENERIC_INDEX",
                "image": {"format": "png", "source": source}}})
        };
        let detail = |detail: &str| {
            format!("Malformed input request: {detail}, please reformat your input and try again.")
        };
        assert_eq!(
            error(image(json!({"bytes": "not base64!"}))),
            detail("#/singleEmbeddingParams/image/source/bytes: expected base64-encoded bytes")
        );
        assert_eq!(
            error(image(json!({}))),
            detail(
                "#/singleEmbeddingParams/image/source: exactly one of [bytes, s3Location] must \
                 be present"
            )
        );
        assert_eq!(
            error(image(json!({"s3Location": {"uri": "https://x"}}))),
            detail("#/singleEmbeddingParams/image/source/s3Location: expected an s3:// `uri`")
        );
    }

    #[test]
    fn bad_bodies() {
        let detail = |detail: &str| {
            format!("Malformed input request: {detail}, please reformat your input and try again.")
        };
        assert_eq!(
            error(text_body("x", json!({"embeddingDimension": 512}))),
            detail("#/singleEmbeddingParams/embeddingDimension: 512 is not a valid enum value")
        );
        let mut segmented = text_body("x", json!({}));
        segmented["taskType"] = json!("SEGMENTED_EMBEDDING");
        assert_eq!(
            error(segmented),
            detail("#/taskType: SEGMENTED_EMBEDDING is not a valid enum value")
        );
        let both = text_body("x", json!({"image": {"format": "png", "source": {"bytes": "AA=="}}}));
        assert_eq!(
            error(both),
            detail(
                "#/singleEmbeddingParams: exactly one of [text, image, audio, video] must be \
                 present"
            )
        );
        assert_eq!(error(json!({"inputText": "hi"})), detail("3 schema violations found"));
        let too_long = "a".repeat(MAX_TEXT_CHARS + 1);
        assert!(error(text_body(&too_long, json!({}))).contains("expected maxLength: 8192"));
    }
}
