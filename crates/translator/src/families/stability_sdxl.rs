//! Stability AI SDXL 1.0 (legacy): the `stability.stable-diffusion-xl-v1` model id.
//!
//! The request is `{"text_prompts": [{"text", "weight"}], "height", "width", "cfg_scale",
//! "seed", "samples"}`; the answer is `artifacts[].base64` with a `finishReason` each
//! (wire reference §4.15).
//!
//! Decisions:
//! - The prompt is the first text prompt, with the documented default weight (1, left
//!   out); a non-empty `negative_prompt` follows with weight -1, which marks it
//!   negative.
//! - `width` and `height` must form one of [`ALLOWED_SIZES`], checked here so the
//!   error can list them.
//! - `cfg_scale` is 0 to 35 and `seed` 0 to 4,294,967,295. Bedrock generates one image
//!   per SDXL call, so `n` above 1 is refused; `n` = 1 is sent as `samples`.
//! - The gateway asks for `Accept: application/json` and reads `artifacts[].base64`, as
//!   for every image family. AWS documents the JSON answer only (user guide,
//!   "Stability.ai Diffusion 1.0 text to image"); the InvokeModel API reference shows an
//!   SDXL request with `accept: image/png` but no answer to it, and every AWS and
//!   library example seen asks for JSON, so a raw PNG answer is not relied on.
//! - `finishReason` is `SUCCESS`, `ERROR` or `CONTENT_FILTERED` (the user guide: "the
//!   content filter filtered the image and the image might be blurred"). An artifact
//!   finished with `CONTENT_FILTERED` makes the whole answer a content-filter refusal
//!   ([`TranslateError::ContentFiltered`]): the possibly blurred image is not passed on.
//!   `ERROR`, or an artifact without `base64`, is a malformed response.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::{ImageFamily, check_range, parse_body, to_body};
use crate::image::{ImageRequest, Images};
use crate::unified::Param;

/// The Stability AI SDXL 1.0 family.
#[derive(Debug, Clone, Copy)]
pub struct StabilitySdxl;

const ID: &str = "stability_sdxl";

/// The `(width, height)` pairs SDXL on Bedrock generates.
const ALLOWED_SIZES: [(u32, u32); 9] = [
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

/// The largest seed the model takes.
const MAX_SEED: u64 = 4_294_967_295;

/// The weight that marks a text prompt as negative.
const NEGATIVE_WEIGHT: f64 = -1.0;

/// The body of InvokeModel.
#[derive(Debug, Serialize)]
struct SdxlRequest<'a> {
    text_prompts: Vec<SdxlTextPrompt<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cfg_scale: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    samples: Option<u32>,
}

#[derive(Debug, Serialize)]
struct SdxlTextPrompt<'a> {
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<f64>,
}

/// A JSON InvokeModel response body.
#[derive(Debug, Deserialize)]
struct SdxlResponse {
    artifacts: Vec<SdxlArtifact>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SdxlArtifact {
    #[serde(default)]
    base64: Option<String>,
    #[serde(default)]
    finish_reason: Option<String>,
}

impl ImageFamily for StabilitySdxl {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("stability.stable-diffusion-xl-v1")
    }

    fn params(&self) -> &'static [Param] {
        &[Param::NegativePrompt, Param::ImageCount, Param::ImageSize, Param::Seed, Param::CfgScale]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &["text_prompts", "height", "width", "cfg_scale", "seed", "samples"]
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
        if (req.width.is_some() || req.height.is_some())
            && !req.width.zip(req.height).is_some_and(|size| ALLOWED_SIZES.contains(&size))
        {
            return invalid(format!(
                "`width` x `height` must be one of {} for the {ID} model family, got {}",
                allowed_sizes_text(),
                size_text(req.width, req.height)
            ));
        }
        check_range(ID, "cfg_scale", req.cfg_scale, 0.0..=35.0)?;
        to_body(ID, &convert_request(req))
    }

    fn decode_response(&self, body: &[u8]) -> Result<Images, TranslateError> {
        let res: SdxlResponse = parse_body(ID, body)?;
        let images = res.artifacts.into_iter().map(convert_artifact).collect::<Result<_, _>>()?;
        Ok(Images { images })
    }
}

fn convert_request(req: &ImageRequest) -> SdxlRequest<'_> {
    let mut text_prompts = vec![SdxlTextPrompt { text: &req.prompt, weight: None }];
    if let Some(negative) = req.negative_prompt.as_deref().filter(|text| !text.is_empty()) {
        text_prompts.push(SdxlTextPrompt { text: negative, weight: Some(NEGATIVE_WEIGHT) });
    }
    SdxlRequest {
        text_prompts,
        height: req.height,
        width: req.width,
        cfg_scale: req.cfg_scale,
        seed: req.seed,
        samples: req.n,
    }
}

/// The image of one artifact, or why there is none.
fn convert_artifact(artifact: SdxlArtifact) -> Result<String, TranslateError> {
    let malformed = |detail: String| Err(TranslateError::MalformedResponse { family: ID, detail });
    match (artifact.finish_reason.as_deref(), artifact.base64) {
        (Some(reason @ "CONTENT_FILTERED"), _) => Err(TranslateError::ContentFiltered {
            family: ID,
            detail: format!("an artifact finished with `{reason}`"),
        }),
        (Some(reason @ "ERROR"), _) => malformed(format!("an artifact finished with `{reason}`")),
        (_, Some(image)) => Ok(image),
        (_, None) => malformed("an artifact has no `base64` image".to_owned()),
    }
}

/// `1024x1024, 1152x896, ...`
fn allowed_sizes_text() -> String {
    let sizes: Vec<String> = ALLOWED_SIZES.iter().map(|(w, h)| format!("{w}x{h}")).collect();
    sizes.join(", ")
}

/// `512x512`, with `?` for a side the request leaves unset.
fn size_text(width: Option<u32>, height: Option<u32>) -> String {
    let side = |value: Option<u32>| value.map_or_else(|| "?".to_owned(), |v| v.to_string());
    format!("{}x{}", side(width), side(height))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::families::ImageFamily;
    use crate::families::stability_sdxl::{ALLOWED_SIZES, StabilitySdxl};
    use crate::image::ImageRequest;

    fn request() -> ImageRequest {
        ImageRequest { prompt: "a red fox".to_owned(), ..ImageRequest::default() }
    }

    #[test]
    fn matches_sdxl_only() {
        assert!(StabilitySdxl.matches("stability.stable-diffusion-xl-v1"));
        assert!(StabilitySdxl.matches("stability.stable-diffusion-xl-v1:0"));
        assert!(!StabilitySdxl.matches("stability.sd3-large-v1:0"));
        assert!(!StabilitySdxl.matches("stability.stable-image-core-v1:0"));
    }

    #[test]
    fn every_allowed_size_is_sent() {
        for (width, height) in ALLOWED_SIZES {
            let req = ImageRequest { width: Some(width), height: Some(height), ..request() };
            let body = StabilitySdxl.encode_request(&req).unwrap();
            assert_eq!(
                (body["width"].clone(), body["height"].clone()),
                (json!(width), json!(height))
            );
        }
    }

    #[test]
    fn a_size_outside_the_list_names_the_allowed_ones() {
        for (width, height) in [(Some(512), Some(512)), (Some(1024), None), (None, Some(1024))] {
            let req = ImageRequest { width, height, ..request() };
            let err = StabilitySdxl.encode_request(&req).unwrap_err();
            assert!(err.to_string().contains("1152x896"), "{err}");
        }
    }

    #[test]
    fn seed_and_cfg_scale_bounds() {
        let req = ImageRequest { seed: Some(4_294_967_295), cfg_scale: Some(35.0), ..request() };
        assert!(StabilitySdxl.encode_request(&req).is_ok());
        for req in [
            ImageRequest { seed: Some(4_294_967_296), ..request() },
            ImageRequest { cfg_scale: Some(35.5), ..request() },
            ImageRequest { n: Some(2), ..request() },
        ] {
            let err = StabilitySdxl.encode_request(&req).unwrap_err();
            assert!(matches!(err, TranslateError::InvalidRequest(_)), "{req:?}: {err:?}");
        }
    }

    #[test]
    fn success_artifacts_are_the_images() {
        let body = br#"{"result":"success",
            "artifacts":[{"seed":1,"base64":"AAA","finishReason":"SUCCESS"}]}"#;
        assert_eq!(StabilitySdxl.decode_response(body).unwrap().images, vec!["AAA".to_owned()]);
    }

    #[test]
    fn a_filtered_artifact_is_a_content_filter_refusal_and_an_error_is_malformed() {
        let body = br#"{"result":"success",
            "artifacts":[{"seed":1,"base64":"AAA","finishReason":"CONTENT_FILTERED"}]}"#;
        let err = StabilitySdxl.decode_response(body).unwrap_err();
        assert!(matches!(err, TranslateError::ContentFiltered { family: "stability_sdxl", .. }));
        let body = br#"{"result":"success",
            "artifacts":[{"seed":1,"base64":null,"finishReason":"ERROR"}]}"#;
        let err = StabilitySdxl.decode_response(body).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { .. }), "{err:?}");
    }
}
