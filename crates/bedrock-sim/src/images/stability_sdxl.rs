//! Stability AI SDXL 1.0 (`stability.stable-diffusion-xl-v1`): the text-to-image body of wire
//! document §4.15, checked as the AWS user guide ("Stability.ai Diffusion 1.0 text to image")
//! describes it.
//!
//! - `text_prompts` is required: objects with `text` (at most 2000 characters) and an optional
//!   `weight`; a weight below 0 marks a negative prompt, which does not seed the image.
//! - `height` and `width` (default 1024) must form one of the allowed pairs; `cfg_scale` is 0
//!   to 35; `samples` must be 1; `seed` is 0 to 4,294,967,295 (0 means random, so the
//!   simulator derives one from the prompt); `steps` is 10 to 150; `clip_guidance_preset`,
//!   `sampler` and `style_preset` are enums; `extras` is free-form.
//! - JSON response: `{"result": "success", "artifacts": [{"seed", "base64", "finishReason":
//!   "SUCCESS"}]}`. A prompt with a content-filter trigger (`images/mod.rs`) gets
//!   `"finishReason": "CONTENT_FILTERED"`, still with its image: the user guide says "the
//!   content filter filtered the image and the image might be blurred". SDXL has one
//!   filtered reason for the prompt and the image alike.
//! - With `Accept: image/png` the body is the raw PNG (`invoke.rs`), filtered or not: the
//!   InvokeModel API reference's example sends SDXL `accept: image/png` [U: no answer to it is
//!   documented; the gateway asks for JSON].
//! - Several schema violations are joined, as the third-party models answer [U].

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::json_bytes;
use crate::images::{GeneratedImage, ImageFamily, ImageRequest, base64_png};
use crate::media_schema::{Shape, ViolationReport, array_of, collect_violations, finish};
use crate::schema::as_integer;

/// The SDXL family.
pub(crate) struct StabilitySdxl;

const MODEL: &str = "stability.stable-diffusion-xl-v1";

/// The allowed `(width, height)` pairs.
const SIZES: &[(i64, i64)] = &[
    (1024, 1024),
    (1152, 896),
    (1216, 832),
    (1344, 768),
    (1536, 640),
    (640, 1536),
    (768, 1344),
    (832, 1216),
    (896, 1152),
];

/// Width and height when the request gives none.
const DEFAULT_SIDE: i64 = 1024;

/// The largest seed.
const MAX_SEED: i64 = 4_294_967_295;

impl ImageFamily for StabilitySdxl {
    fn id(&self) -> &'static str {
        "stability_sdxl"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id == MODEL
    }

    fn parse_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<ImageRequest, BedrockError> {
        let mut violations = collect_violations(&request_shape(), body);
        let side = |key: &str| body.get(key).and_then(as_integer).unwrap_or(DEFAULT_SIDE);
        let (width, height) = (side("width"), side("height"));
        // Only a size made of well-typed sides is worth a violation of its own.
        if violations.is_empty() && !SIZES.contains(&(width, height)) {
            violations.push(format!("#: {width}x{height} is not a supported image size"));
        }
        finish(&violations, ViolationReport::Joined)?;

        let prompts = body.get("text_prompts").and_then(Value::as_array);
        let positive_texts: Vec<&str> = prompts
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|prompt| prompt.get("weight").and_then(Value::as_f64).unwrap_or(1.0) >= 0.0)
            .filter_map(|prompt| prompt.get("text").and_then(Value::as_str))
            .collect();
        let seed = body.get("seed").and_then(as_integer).and_then(|seed| u64::try_from(seed).ok());
        Ok(ImageRequest {
            prompt: positive_texts.join("\n"),
            n_images: 1,
            width: u32::try_from(width).unwrap_or_default(),
            height: u32::try_from(height).unwrap_or_default(),
            seed: seed.filter(|seed| *seed != 0),
            max_seed: u64::try_from(MAX_SEED).unwrap_or_default(),
        })
    }

    fn answers_raw_png(&self) -> bool {
        true
    }

    fn response_body(&self, _base_model_id: &str, images: &[GeneratedImage]) -> Vec<u8> {
        let artifacts = images
            .iter()
            .map(|image| Artifact {
                seed: image.seed,
                base64: base64_png(image),
                finish_reason: if image.filtered.is_some() {
                    "CONTENT_FILTERED"
                } else {
                    "SUCCESS"
                },
            })
            .collect();
        json_bytes(&SdxlResponse { result: "success", artifacts })
    }
}

#[derive(Serialize)]
struct SdxlResponse {
    result: &'static str,
    artifacts: Vec<Artifact>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Artifact {
    seed: u64,
    base64: String,
    finish_reason: &'static str,
}

fn request_shape() -> Shape {
    let prompt = Shape::Object {
        properties: vec![
            ("text", Shape::String { min_len: 0, max_len: 2000 }),
            ("weight", Shape::Number { minimum: f64::MIN, maximum: f64::MAX }),
        ],
        required: vec!["text"],
    };
    Shape::Object {
        properties: vec![
            ("text_prompts", array_of(prompt, 1, usize::MAX)),
            ("height", Shape::Integer { minimum: 0, maximum: i64::MAX }),
            ("width", Shape::Integer { minimum: 0, maximum: i64::MAX }),
            ("cfg_scale", Shape::Number { minimum: 0.0, maximum: 35.0 }),
            (
                "clip_guidance_preset",
                Shape::Enum(&[
                    "FAST_BLUE",
                    "FAST_GREEN",
                    "NONE",
                    "SIMPLE",
                    "SLOW",
                    "SLOWER",
                    "SLOWEST",
                ]),
            ),
            (
                "sampler",
                Shape::Enum(&[
                    "DDIM",
                    "DDPM",
                    "K_DPMPP_2M",
                    "K_DPMPP_2S_ANCESTRAL",
                    "K_DPM_2",
                    "K_DPM_2_ANCESTRAL",
                    "K_EULER",
                    "K_EULER_ANCESTRAL",
                    "K_HEUN",
                    "K_LMS",
                ]),
            ),
            ("samples", Shape::Integer { minimum: 1, maximum: 1 }),
            ("seed", Shape::Integer { minimum: 0, maximum: MAX_SEED }),
            ("steps", Shape::Integer { minimum: 10, maximum: 150 }),
            (
                "style_preset",
                Shape::Enum(&[
                    "3d-model",
                    "analog-film",
                    "anime",
                    "cinematic",
                    "comic-book",
                    "digital-art",
                    "enhance",
                    "fantasy-art",
                    "isometric",
                    "line-art",
                    "low-poly",
                    "modeling-compound",
                    "neon-punk",
                    "origami",
                    "photographic",
                    "pixel-art",
                    "tile-texture",
                ]),
            ),
            ("extras", Shape::AnyObject),
        ],
        required: vec!["text_prompts"],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::images::generate_images;

    fn error(body: Value) -> String {
        StabilitySdxl.parse_request(MODEL, &body).unwrap_err().message().to_owned()
    }

    #[test]
    fn reads_the_request() {
        let body = json!({"text_prompts": [{"text": "a red fox", "weight": 1.0},
            {"text": "blurry", "weight": -1.0}], "height": 640, "width": 1536, "seed": 5,
            "cfg_scale": 7, "steps": 30, "samples": 1, "style_preset": "photographic"});
        let request = StabilitySdxl.parse_request(MODEL, &body).unwrap();
        assert_eq!(request.prompt, "a red fox");
        assert_eq!((request.width, request.height, request.seed), (1536, 640, Some(5)));
        let body = json!({"text_prompts": [{"text": "a red fox"}], "seed": 0});
        let request = StabilitySdxl.parse_request(MODEL, &body).unwrap();
        assert_eq!((request.width, request.height, request.seed), (1024, 1024, None));

        let images = generate_images(&request);
        let response: Value =
            serde_json::from_slice(&StabilitySdxl.response_body(MODEL, &images)).unwrap();
        assert_eq!(response["result"], "success");
        assert_eq!(response["artifacts"][0]["finishReason"], "SUCCESS");
        assert_eq!(response["artifacts"][0]["seed"], images[0].seed);
    }

    #[test]
    fn a_filter_trigger_answers_content_filtered_with_the_image() {
        for trigger in ["sim-content-filter:prompt", "sim-content-filter:image"] {
            let body = json!({"text_prompts": [{"text": format!("a red fox {trigger}")}]});
            let request = StabilitySdxl.parse_request(MODEL, &body).unwrap();
            let images = generate_images(&request);
            let response: Value =
                serde_json::from_slice(&StabilitySdxl.response_body(MODEL, &images)).unwrap();
            assert_eq!(response["result"], "success", "{trigger}");
            assert_eq!(response["artifacts"][0]["finishReason"], "CONTENT_FILTERED", "{trigger}");
            assert_eq!(response["artifacts"][0]["base64"], base64_png(&images[0]), "{trigger}");
        }
        // A negative prompt is not what the filter judges.
        let body = json!({"text_prompts": [{"text": "a red fox"},
            {"text": "sim-content-filter:prompt", "weight": -1.0}]});
        let images = generate_images(&StabilitySdxl.parse_request(MODEL, &body).unwrap());
        let response: Value =
            serde_json::from_slice(&StabilitySdxl.response_body(MODEL, &images)).unwrap();
        assert_eq!(response["artifacts"][0]["finishReason"], "SUCCESS");
    }

    #[test]
    fn validation() {
        let cases = [
            (
                json!({"prompt": "x"}),
                "#: required key [text_prompts] not found#: extraneous key [prompt] is not \
                 permitted",
            ),
            (
                json!({"text_prompts": []}),
                "#/text_prompts: expected minimum item count: 1, found: 0",
            ),
            (
                json!({"text_prompts": [{"weight": 1}]}),
                "#/text_prompts/0: required key [text] not found",
            ),
            (
                json!({"text_prompts": [{"text": "x"}], "cfg_scale": 36}),
                "#/cfg_scale: 36 is not less or equal to 35",
            ),
            (
                json!({"text_prompts": [{"text": "x"}], "samples": 2}),
                "#/samples: 2 is not less or equal to 1",
            ),
            (
                json!({"text_prompts": [{"text": "x"}], "steps": 5}),
                "#/steps: 5 is not greater or equal to 10",
            ),
            (
                json!({"text_prompts": [{"text": "x"}], "sampler": "K_FOO"}),
                "#/sampler: K_FOO is not a valid enum value",
            ),
            (
                json!({"text_prompts": [{"text": "x"}], "width": 512, "height": 512}),
                "#: 512x512 is not a supported image size",
            ),
            (
                json!({"text_prompts": [{"text": "x"}], "width": 1536}),
                "#: 1536x1024 is not a supported image size",
            ),
        ];
        for (body, detail) in cases {
            assert_eq!(
                error(body.clone()),
                format!(
                    "Malformed input request: {detail}, please reformat your input and try again."
                ),
                "{body}"
            );
        }
    }
}
