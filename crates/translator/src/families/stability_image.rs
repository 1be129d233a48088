//! Stability AI SD3 Large, SD3.5 Large, Stable Image Ultra and Stable Image Core:
//! `stability.sd3-large-v1*`, `stability.sd3-5-large-v1*`,
//! `stability.stable-image-ultra-v1*` and `stability.stable-image-core-v1*` model ids.
//!
//! The request is `{"prompt", "negative_prompt", "aspect_ratio", "mode", "output_format",
//! "seed"}`; the answer is `images` (base64) with one `finish_reasons` entry each,
//! `null` on success (wire reference §4.15).
//!
//! Decisions:
//! - The models take an aspect ratio, not a size. `width` and `height` must reduce
//!   exactly to one of [`ALLOWED_ASPECT_RATIOS`] (1920x1080 is 16:9); anything else is
//!   refused with the list rather than rounded to the nearest ratio, so a caller never
//!   gets an image shaped other than asked.
//! - `mode` is always `text-to-image` and `output_format` always `png`, so every image
//!   is a base64 PNG like the other families'.
//! - One image per call: `n` above 1 is refused. `cfg_scale` has no field here (422).
//! - `seed` is 0 to 4,294,967,294. An empty `negative_prompt` means none and is not sent.
//! - `finish_reasons` is `null` per image on success; AWS documents the other values as
//!   `"Filter reason: prompt"`, `"Filter reason: output image"`, `"Filter reason: input
//!   image"` and `"Inference error"`, and a filtered answer as `{"finish_reasons":
//!   ["Filter reason: prompt"]}` alone (user guide, "Stable Image Ultra request and
//!   response"). A `Filter reason: ...` entry is a content-filter refusal
//!   ([`TranslateError::ContentFiltered`]) whether or not `images` is present; any other
//!   non-null entry (`Inference error`) is a malformed response naming it.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::{ImageFamily, parse_body, to_body};
use crate::image::{ImageRequest, Images};
use crate::unified::Param;

/// The Stability AI SD3 / Stable Image family.
#[derive(Debug, Clone, Copy)]
pub struct StabilityImage;

const ID: &str = "stability_image";

/// The base model id prefixes of the family (a version suffix such as `:0` follows).
const MODEL_ID_PREFIXES: [&str; 4] = [
    "stability.sd3-large-v1",
    "stability.sd3-5-large-v1",
    "stability.stable-image-ultra-v1",
    "stability.stable-image-core-v1",
];

/// The aspect ratios the models generate: the body value and its `width:height`.
const ALLOWED_ASPECT_RATIOS: [(&str, u32, u32); 9] = [
    ("16:9", 16, 9),
    ("1:1", 1, 1),
    ("21:9", 21, 9),
    ("2:3", 2, 3),
    ("3:2", 3, 2),
    ("4:5", 4, 5),
    ("5:4", 5, 4),
    ("9:16", 9, 16),
    ("9:21", 9, 21),
];

/// The largest seed the models take.
const MAX_SEED: u64 = 4_294_967_294;

/// How every content-filter `finish_reasons` entry begins: `Filter reason: prompt`,
/// `Filter reason: output image`, `Filter reason: input image`.
const FILTER_REASON_PREFIX: &str = "Filter reason:";

/// The body of InvokeModel.
#[derive(Debug, Serialize)]
struct StabilityImageRequest<'a> {
    prompt: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    negative_prompt: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aspect_ratio: Option<&'static str>,
    mode: &'static str,
    output_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
}

/// An InvokeModel response body.
#[derive(Debug, Deserialize)]
struct StabilityImageResponse {
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    finish_reasons: Vec<Option<String>>,
}

impl ImageFamily for StabilityImage {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODEL_ID_PREFIXES.iter().any(|prefix| base_model_id.starts_with(prefix))
    }

    fn params(&self) -> &'static [Param] {
        &[Param::NegativePrompt, Param::ImageCount, Param::ImageSize, Param::Seed]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &["prompt", "negative_prompt", "aspect_ratio", "mode", "output_format", "seed"]
    }

    fn encode_request(&self, req: &ImageRequest) -> Result<serde_json::Value, TranslateError> {
        let invalid = |msg: String| Err(TranslateError::InvalidRequest(msg));
        if let Some(n) = req.n
            && n > 1
        {
            return invalid(format!(
                "the {ID} model family generates one image per request, got `n` = {n}"
            ));
        }
        if let Some(seed) = req.seed
            && seed > MAX_SEED
        {
            return invalid(format!(
                "`seed` must be between 0 and {MAX_SEED} for the {ID} model family, got {seed}"
            ));
        }
        let aspect_ratio = match (req.width, req.height) {
            (None, None) => None,
            (Some(width), Some(height)) => match convert_size(width, height) {
                Some(ratio) => Some(ratio),
                None => {
                    let allowed: Vec<&str> =
                        ALLOWED_ASPECT_RATIOS.iter().map(|(ratio, _, _)| *ratio).collect();
                    return invalid(format!(
                        "`width` x `height` must form one of the aspect ratios {} for the {ID} \
                         model family, got {width}x{height} ({})",
                        allowed.join(", "),
                        reduced_ratio(width, height)
                    ));
                }
            },
            _ => {
                return invalid(format!(
                    "`width` and `height` must be set together for the {ID} model family"
                ));
            }
        };
        let body = StabilityImageRequest {
            prompt: &req.prompt,
            negative_prompt: req.negative_prompt.as_deref().filter(|text| !text.is_empty()),
            aspect_ratio,
            mode: "text-to-image",
            output_format: "png",
            seed: req.seed,
        };
        to_body(ID, &body)
    }

    fn decode_response(&self, body: &[u8]) -> Result<Images, TranslateError> {
        let res: StabilityImageResponse = parse_body(ID, body)?;
        if let Some(reason) = res.finish_reasons.into_iter().flatten().next() {
            let detail = format!("generation finished with `{reason}`");
            return Err(if reason.starts_with(FILTER_REASON_PREFIX) {
                TranslateError::ContentFiltered { family: ID, detail }
            } else {
                TranslateError::MalformedResponse { family: ID, detail }
            });
        }
        Ok(Images { images: res.images })
    }
}

/// The allowed aspect ratio `width` x `height` has exactly (2100x900 is `21:9`), if any.
fn convert_size(width: u32, height: u32) -> Option<&'static str> {
    ALLOWED_ASPECT_RATIOS.iter().find_map(|&(ratio, ratio_width, ratio_height)| {
        let exact = u64::from(width) * u64::from(ratio_height)
            == u64::from(height) * u64::from(ratio_width);
        exact.then_some(ratio)
    })
}

/// `width:height` reduced by their greatest common divisor, for error messages:
/// 1024x768 is `4:3`.
fn reduced_ratio(width: u32, height: u32) -> String {
    let divisor = greatest_common_divisor(width, height).max(1);
    format!("{}:{}", width / divisor, height / divisor)
}

fn greatest_common_divisor(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::families::ImageFamily;
    use crate::families::stability_image::{StabilityImage, convert_size, reduced_ratio};
    use crate::image::ImageRequest;

    fn request() -> ImageRequest {
        ImageRequest { prompt: "a red fox".to_owned(), ..ImageRequest::default() }
    }

    #[test]
    fn matches_sd3_and_stable_image_models_only() {
        for model_id in [
            "stability.sd3-large-v1:0",
            "stability.sd3-5-large-v1:0",
            "stability.stable-image-ultra-v1:0",
            "stability.stable-image-ultra-v1:1",
            "stability.stable-image-core-v1:0",
            "stability.stable-image-core-v1:1",
        ] {
            assert!(StabilityImage.matches(model_id), "{model_id}");
        }
        assert!(!StabilityImage.matches("stability.stable-diffusion-xl-v1"));
        assert!(!StabilityImage.matches("stability.stable-image-remove-background-v1:0"));
    }

    #[test]
    fn sizes_match_ratios_exactly() {
        assert_eq!(convert_size(1920, 1080), Some("16:9"));
        assert_eq!(convert_size(1344, 576), Some("21:9"));
        assert_eq!(convert_size(2560, 1080), None);
        assert_eq!(convert_size(1921, 1080), None);
        assert_eq!(convert_size(u32::MAX, u32::MAX), Some("1:1"));
        assert_eq!(reduced_ratio(2560, 1080), "64:27");
        assert_eq!(reduced_ratio(1024, 768), "4:3");
    }

    #[test]
    fn every_allowed_ratio_is_sent() {
        for (width, height, ratio) in [
            (1920, 1080, "16:9"),
            (512, 512, "1:1"),
            (2100, 900, "21:9"),
            (800, 1200, "2:3"),
            (1200, 800, "3:2"),
            (800, 1000, "4:5"),
            (1000, 800, "5:4"),
            (1080, 1920, "9:16"),
            (900, 2100, "9:21"),
        ] {
            let req = ImageRequest { width: Some(width), height: Some(height), ..request() };
            let body = StabilityImage.encode_request(&req).unwrap();
            assert_eq!(body["aspect_ratio"], json!(ratio), "{width}x{height}");
        }
    }

    #[test]
    fn other_ratios_and_half_sizes_are_invalid() {
        for (width, height) in [(Some(1024), Some(768)), (Some(1024), None), (None, Some(1024))] {
            let req = ImageRequest { width, height, ..request() };
            let err = StabilityImage.encode_request(&req).unwrap_err();
            assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
        }
    }

    #[test]
    fn filtered_answers_are_content_filter_refusals() {
        for body in [
            r#"{"finish_reasons":["Filter reason: prompt"]}"#,
            r#"{"seeds":[1],"finish_reasons":["Filter reason: output image"],"images":["AAA"]}"#,
            r#"{"seeds":[1],"finish_reasons":["Filter reason: input image"],"images":[]}"#,
        ] {
            let err = StabilityImage.decode_response(body.as_bytes()).unwrap_err();
            assert!(
                matches!(err, TranslateError::ContentFiltered { family: "stability_image", .. }),
                "{body}: {err:?}"
            );
            assert!(err.to_string().contains("Filter reason: "), "{err}");
        }
    }

    #[test]
    fn an_inference_error_is_malformed() {
        let body = br#"{"seeds":[1],"finish_reasons":["Inference error"],"images":[]}"#;
        let err = StabilityImage.decode_response(body).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { .. }), "{err:?}");
    }
}
