//! Stability AI SD3 Large (`stability.sd3-large-v1:0`), SD3.5 Large
//! (`stability.sd3-5-large-v1:0`), Stable Image Ultra (`stability.stable-image-ultra-v1:0`,
//! `v1:1`) and Stable Image Core (`stability.stable-image-core-v1:0`, `v1:1`): the body of wire
//! document §4.15 as the AWS user guide's request and response pages of these models describe
//! it. The `v1:0` ids are the older, legacy versions of Ultra and Core.
//!
//! - `prompt` (at most 10,000 characters) is required; `negative_prompt` likewise at most
//!   10,000; `aspect_ratio` is one of 16:9, 1:1 (default), 21:9, 2:3, 3:2, 4:5, 5:4, 9:16, 9:21;
//!   `output_format` is `jpeg` or `png`; `seed` is 0 to 4,294,967,295 (0 means random, so the
//!   simulator derives one from the prompt).
//! - `mode` is `text-to-image` (default) or, for every model but Core, `image-to-image`, which
//!   requires `image` (base64) and `strength` (0 to 1).
//! - The image is the size of its aspect ratio at about one megapixel (1:1 is 1024 x 1024,
//!   16:9 is 1344 x 768, ...); image-to-image answers 1024 x 1024, as the input image is not
//!   decoded. `output_format: jpeg` still answers PNG bytes.
//! - Response: `{"seeds": [seed], "finish_reasons": [null], "images": ["<base64>"]}`.
//! - A prompt with a content-filter trigger (`images/mod.rs`) gets the refusal: for the
//!   prompt trigger the documented body `{"finish_reasons": ["Filter reason: prompt"]}` alone
//!   (user guide, "Stable Image Ultra request and response"); for the image trigger
//!   `{"seeds": [seed], "finish_reasons": ["Filter reason: output image"], "images": []}`
//!   [U: the value is documented, the rest of that body is not].
//! - Several schema violations are joined, as the third-party models answer [U].

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::json_bytes;
use crate::images::{ContentFilter, GeneratedImage, ImageFamily, ImageRequest, base64_png};
use crate::media_schema::{Shape, ViolationReport, collect_violations, finish, string_up_to};
use crate::schema::as_integer;

/// The SD3, Stable Image Ultra and Stable Image Core family.
pub(crate) struct StabilityImage;

/// Each simulated model and whether it takes `mode: image-to-image`.
const MODELS: &[(&str, bool)] = &[
    ("stability.sd3-large-v1:0", true),
    ("stability.sd3-5-large-v1:0", true),
    ("stability.stable-image-ultra-v1:0", true),
    ("stability.stable-image-ultra-v1:1", true),
    ("stability.stable-image-core-v1:0", false),
    ("stability.stable-image-core-v1:1", false),
];

/// Each `aspect_ratio` and the `(width, height)` the simulator draws for it.
const ASPECT_RATIO_SIZES: &[(&str, u32, u32)] = &[
    ("16:9", 1344, 768),
    ("1:1", 1024, 1024),
    ("21:9", 1536, 640),
    ("2:3", 832, 1216),
    ("3:2", 1216, 832),
    ("4:5", 896, 1088),
    ("5:4", 1088, 896),
    ("9:16", 768, 1344),
    ("9:21", 640, 1536),
];

const ASPECT_RATIOS: &[&str] = &["16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"];

/// The largest seed.
const MAX_SEED: i64 = 4_294_967_295;

/// The longest prompt or negative prompt, in characters.
const MAX_PROMPT_CHARS: usize = 10_000;

impl ImageFamily for StabilityImage {
    fn id(&self) -> &'static str {
        "stability_image"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODELS.iter().any(|(model_id, _)| *model_id == base_model_id)
    }

    fn parse_request(
        &self,
        base_model_id: &str,
        body: &Value,
    ) -> Result<ImageRequest, BedrockError> {
        let takes_image = MODELS
            .iter()
            .find(|(model_id, _)| *model_id == base_model_id)
            .is_some_and(|(_, takes_image)| *takes_image);
        let mut violations = collect_violations(&request_shape(takes_image), body);
        let mode = body.get("mode").and_then(Value::as_str).unwrap_or("text-to-image");
        if takes_image && mode == "image-to-image" {
            for key in ["image", "strength"] {
                if body.get(key).is_none() {
                    violations.push(format!("#: required key [{key}] not found"));
                }
            }
        }
        finish(&violations, ViolationReport::Joined)?;

        let aspect_ratio = body.get("aspect_ratio").and_then(Value::as_str).unwrap_or("1:1");
        let (width, height) = match mode {
            "image-to-image" => (1024, 1024),
            _ => ASPECT_RATIO_SIZES
                .iter()
                .find(|(ratio, _, _)| *ratio == aspect_ratio)
                .map_or((1024, 1024), |(_, width, height)| (*width, *height)),
        };
        let seed = body.get("seed").and_then(as_integer).and_then(|seed| u64::try_from(seed).ok());
        Ok(ImageRequest {
            prompt: body.get("prompt").and_then(Value::as_str).unwrap_or_default().to_owned(),
            n_images: 1,
            width,
            height,
            seed: seed.filter(|seed| *seed != 0),
            max_seed: u64::try_from(MAX_SEED).unwrap_or_default(),
        })
    }

    fn response_body(&self, _base_model_id: &str, images: &[GeneratedImage]) -> Vec<u8> {
        let filtered = images.iter().find_map(|image| image.filtered);
        match filtered {
            Some(ContentFilter::Prompt) => json_bytes(&FilteredPromptResponse {
                finish_reasons: images.iter().map(|_| FILTER_REASON_PROMPT).collect(),
            }),
            Some(ContentFilter::OutputImage) => json_bytes(&StabilityImageResponse {
                seeds: images.iter().map(|image| image.seed).collect(),
                finish_reasons: images.iter().map(|_| Some(FILTER_REASON_OUTPUT_IMAGE)).collect(),
                images: Vec::new(),
            }),
            None => json_bytes(&StabilityImageResponse {
                seeds: images.iter().map(|image| image.seed).collect(),
                finish_reasons: images.iter().map(|_| None).collect(),
                images: images.iter().map(base64_png).collect(),
            }),
        }
    }
}

/// The `finish_reasons` entry of a prompt the content filter refused.
const FILTER_REASON_PROMPT: &str = "Filter reason: prompt";

/// The `finish_reasons` entry of an image the content filter refused.
const FILTER_REASON_OUTPUT_IMAGE: &str = "Filter reason: output image";

#[derive(Serialize)]
struct StabilityImageResponse {
    seeds: Vec<u64>,
    /// `null` for every image that was not filtered.
    finish_reasons: Vec<Option<&'static str>>,
    images: Vec<String>,
}

/// The documented answer to a refused prompt: the reasons alone.
#[derive(Serialize)]
struct FilteredPromptResponse {
    finish_reasons: Vec<&'static str>,
}

fn request_shape(takes_image: bool) -> Shape {
    let modes: &'static [&'static str] =
        if takes_image { &["text-to-image", "image-to-image"] } else { &["text-to-image"] };
    let mut properties = vec![
        ("prompt", string_up_to(MAX_PROMPT_CHARS)),
        ("negative_prompt", string_up_to(MAX_PROMPT_CHARS)),
        ("aspect_ratio", Shape::Enum(ASPECT_RATIOS)),
        ("mode", Shape::Enum(modes)),
        ("output_format", Shape::Enum(&["jpeg", "png"])),
        ("seed", Shape::Integer { minimum: 0, maximum: MAX_SEED }),
    ];
    if takes_image {
        properties.extend([
            ("image", Shape::String { min_len: 1, max_len: usize::MAX }),
            ("strength", Shape::Number { minimum: 0.0, maximum: 1.0 }),
        ]);
    }
    Shape::Object { properties, required: vec!["prompt"] }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::images::generate_images;

    const SD35: &str = "stability.sd3-5-large-v1:0";
    const CORE: &str = "stability.stable-image-core-v1:1";

    fn error(model_id: &str, body: Value) -> String {
        StabilityImage.parse_request(model_id, &body).unwrap_err().message().to_owned()
    }

    #[test]
    fn aspect_ratios_choose_the_size() {
        for (ratio, width, height) in ASPECT_RATIO_SIZES {
            let body = json!({"prompt": "a red fox", "aspect_ratio": ratio});
            let request = StabilityImage.parse_request(SD35, &body).unwrap();
            assert_eq!((request.width, request.height), (*width, *height), "{ratio}");
        }
        let request = StabilityImage.parse_request(CORE, &json!({"prompt": "x"})).unwrap();
        assert_eq!((request.width, request.height, request.seed), (1024, 1024, None));
        let body = json!({"prompt": "x", "mode": "image-to-image", "image": "AA==",
            "strength": 0.5, "seed": 3});
        let request = StabilityImage.parse_request(SD35, &body).unwrap();
        assert_eq!(request.seed, Some(3));
    }

    #[test]
    fn response_shape() {
        let request = StabilityImage.parse_request(CORE, &json!({"prompt": "x"})).unwrap();
        let images = generate_images(&request);
        let response: Value =
            serde_json::from_slice(&StabilityImage.response_body(CORE, &images)).unwrap();
        assert_eq!(response["seeds"], json!([images[0].seed]));
        assert_eq!(response["finish_reasons"], json!([null]));
        assert_eq!(response["images"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn filter_triggers_answer_the_refusals() {
        let answer = |prompt: &str| -> Value {
            let request =
                StabilityImage.parse_request(SD35, &json!({"prompt": prompt, "seed": 7})).unwrap();
            serde_json::from_slice(&StabilityImage.response_body(SD35, &generate_images(&request)))
                .unwrap()
        };
        assert_eq!(
            answer("a red fox sim-content-filter:prompt"),
            json!({"finish_reasons": ["Filter reason: prompt"]})
        );
        assert_eq!(
            answer("a red fox sim-content-filter:image"),
            json!({"seeds": [7], "finish_reasons": ["Filter reason: output image"], "images": []})
        );
        assert_eq!(answer("a red fox")["finish_reasons"], json!([null]));
    }

    #[test]
    fn validation() {
        let cases = [
            (SD35, json!({"aspect_ratio": "1:1"}), "#: required key [prompt] not found"),
            (
                SD35,
                json!({"prompt": "x", "aspect_ratio": "4:3"}),
                "#/aspect_ratio: 4:3 is not a valid enum value",
            ),
            (
                SD35,
                json!({"prompt": "x", "output_format": "webp"}),
                "#/output_format: webp is not a valid enum value",
            ),
            (
                SD35,
                json!({"prompt": "x", "seed": 4_294_967_296_i64}),
                "#/seed: 4294967296 is not less or equal to 4294967295",
            ),
            (
                SD35,
                json!({"prompt": "x", "mode": "image-to-image"}),
                "#: required key [image] not found#: required key [strength] not found",
            ),
            (
                CORE,
                json!({"prompt": "x", "mode": "image-to-image"}),
                "#/mode: image-to-image is not a valid enum value",
            ),
            (
                CORE,
                json!({"prompt": "x", "strength": 0.5}),
                "#: extraneous key [strength] is not permitted",
            ),
            (
                CORE,
                json!({"text_prompts": [{"text": "x"}]}),
                "#: required key [prompt] not found#: extraneous key [text_prompts] is not \
                 permitted",
            ),
        ];
        for (model_id, body, detail) in cases {
            assert_eq!(
                error(model_id, body.clone()),
                format!(
                    "Malformed input request: {detail}, please reformat your input and try again."
                ),
                "{model_id} {body}"
            );
        }
    }
}
