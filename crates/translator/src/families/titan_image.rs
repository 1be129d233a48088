//! Amazon Titan Image Generator (G1 v1, v2) and Amazon Nova Canvas:
//! `amazon.titan-image-generator-*` and `amazon.nova-canvas-*` model ids, which share
//! the `TEXT_IMAGE` task body.
//!
//! The request is `{"taskType": "TEXT_IMAGE", "textToImageParams": {"text",
//! "negativeText"}, "imageGenerationConfig": {...}}`; the answer is `images`, base64
//! PNGs, with an `error` that is `null` on success (wire reference §4.14).
//!
//! Decisions:
//! - `n` is `numberOfImages` (1 to 5), `cfg_scale` is `cfgScale` (1.1 to 10) and `seed`
//!   is `seed` (0 to 2,147,483,646), checked here: the three models' ranges, as their
//!   request references state them (some of AWS's SDK examples still give Nova Canvas
//!   0 to 858,993,459; its request reference does not). Each limit's source is in
//!   `tests/fixtures/titan_image/README.md`.
//! - `width` and `height` go together: a request setting only one is refused. Which
//!   sizes are allowed differs between the models, so Bedrock checks them.
//! - `imageGenerationConfig` carries only the fields the request sets and is left out
//!   when it would be empty, so Bedrock applies the model's defaults. `quality` and
//!   `style` have no unified field; `extra` may set them.
//! - An empty `negative_prompt` means none and is not sent (the models want 1 or more
//!   characters).
//! - A non-null `error` in the answer is a malformed response carrying that message.
//!
//! Image edits ([`ImageFamily::encode_edit_request`], `/v1/images/edits`), the other
//! `taskType`s of the same models (AWS user guide, "Amazon Titan Image Generator G1
//! models", <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-image.html>;
//! Amazon Nova user guide, "Request and response structure for image generation",
//! <https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html>):
//! - `variation` is `IMAGE_VARIATION` with `imageVariationParams: {"images", "text",
//!   "negativeText", "similarityStrength"}`: 1 to 5 images, `similarityStrength` 0.2 to
//!   1.0, `text` optional; `imageGenerationConfig` takes `numberOfImages`, `width`,
//!   `height`, `cfgScale` and `seed` as for text-to-image.
//! - `inpainting` is `INPAINTING` with `inPaintingParams: {"image", "text", "negativeText",
//!   "maskPrompt" | "maskImage"}`; `outpainting` is `OUTPAINTING` with `outPaintingParams`,
//!   the same keys plus `outPaintingMode` (`DEFAULT` or `PRECISE`). One image, exactly one
//!   of the two masks (the request's validation), `text` optional for inpainting (the
//!   masked region is then removed) and required for outpainting. Their
//!   `imageGenerationConfig` takes `numberOfImages`, `cfgScale` and `seed`, not a size:
//!   the answer has the input image's size (Titan's schema lists `width`/`height` there to
//!   no effect, Nova Canvas says not to send them), so `width`/`height` are refused (400).
//! - `background_removal` is `BACKGROUND_REMOVAL` with `backgroundRemovalParams:
//!   {"image"}` and nothing else (Titan V2 and Nova Canvas; Bedrock refuses it for Titan
//!   G1 V1).
//! - The answer is the same `images` list as text-to-image. `quality` and Titan's
//!   `returnMask` (inpainting and outpainting; Nova Canvas has none) have no unified field;
//!   `extra` may set them.
//! - What only the model can check is left to Bedrock: the prompt lengths (Titan 512
//!   characters, Nova Canvas 1024), which sizes a variation may have, and the input images
//!   (Titan: at most 1,408 pixels on the longer side and 5 MB; Nova Canvas: sides of 320 to
//!   4096 pixels, 1:4 to 4:1, at most 4,194,304 pixels), since the family serves all three
//!   models and does not decode the images.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::{ImageFamily, check_range, parse_body, to_body};
use crate::image::{ImageEditRequest, ImageRequest, ImageTask, Images, OutpaintingMode};
use crate::unified::Param;

/// The Amazon Titan Image Generator and Nova Canvas family.
#[derive(Debug, Clone, Copy)]
pub struct TitanImage;

const ID: &str = "titan_image";

/// The most images one call generates.
const MAX_IMAGES: u32 = 5;

/// The largest seed the Titan Image Generator models take.
const MAX_SEED: u64 = 2_147_483_646;

/// The body of InvokeModel.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanImageRequest<'a> {
    task_type: &'static str,
    text_to_image_params: TitanTextToImageParams<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_generation_config: Option<TitanImageGenerationConfig>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanTextToImageParams<'a> {
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    negative_text: Option<&'a str>,
}

#[derive(Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanImageGenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    number_of_images: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cfg_scale: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
}

/// The InvokeModel body of an image edit: `taskType` and the one parameters object of
/// that task.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanImageEditRequest<'a> {
    task_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_variation_params: Option<TitanImageVariationParams<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    in_painting_params: Option<TitanMaskedParams<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    out_painting_params: Option<TitanMaskedParams<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    background_removal_params: Option<TitanBackgroundRemovalParams<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_generation_config: Option<TitanImageGenerationConfig>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanImageVariationParams<'a> {
    images: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    negative_text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    similarity_strength: Option<f64>,
}

/// `inPaintingParams` and `outPaintingParams`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanMaskedParams<'a> {
    image: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    negative_text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mask_prompt: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mask_image: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    out_painting_mode: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct TitanBackgroundRemovalParams<'a> {
    image: &'a str,
}

/// The most input images of a variation.
const MAX_VARIATION_IMAGES: usize = 5;

/// An InvokeModel response body.
#[derive(Debug, Deserialize)]
struct TitanImageResponse {
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    error: Option<String>,
}

impl ImageFamily for TitanImage {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("amazon.titan-image-generator-")
            || base_model_id.starts_with("amazon.nova-canvas-")
    }

    fn params(&self) -> &'static [Param] {
        &[Param::NegativePrompt, Param::ImageCount, Param::ImageSize, Param::Seed, Param::CfgScale]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &[
            "taskType",
            "textToImageParams.text",
            "textToImageParams.negativeText",
            "imageGenerationConfig.numberOfImages",
            "imageGenerationConfig.width",
            "imageGenerationConfig.height",
            "imageGenerationConfig.cfgScale",
            "imageGenerationConfig.seed",
            // The edit tasks' keys (`encode_edit_request`).
            "imageVariationParams.images",
            "imageVariationParams.text",
            "imageVariationParams.negativeText",
            "imageVariationParams.similarityStrength",
            "inPaintingParams.image",
            "inPaintingParams.text",
            "inPaintingParams.negativeText",
            "inPaintingParams.maskPrompt",
            "inPaintingParams.maskImage",
            "outPaintingParams.image",
            "outPaintingParams.text",
            "outPaintingParams.negativeText",
            "outPaintingParams.maskPrompt",
            "outPaintingParams.maskImage",
            "outPaintingParams.outPaintingMode",
            "backgroundRemovalParams.image",
        ]
    }

    fn encode_request(&self, req: &ImageRequest) -> Result<serde_json::Value, TranslateError> {
        let config = TitanImageGenerationConfig {
            number_of_images: req.n,
            width: req.width,
            height: req.height,
            cfg_scale: req.cfg_scale,
            seed: req.seed,
        };
        check_config(&config)?;
        to_body(ID, &convert_request(req))
    }

    fn encode_edit_request(
        &self,
        req: &ImageEditRequest,
    ) -> Result<serde_json::Value, TranslateError> {
        // The task's validation has refused a size for every task but variation, and
        // every config field for background removal.
        let config = TitanImageGenerationConfig {
            number_of_images: req.n,
            width: req.width,
            height: req.height,
            cfg_scale: req.cfg_scale,
            seed: req.seed,
        };
        check_config(&config)?;
        if req.task == ImageTask::Variation && req.images.len() > MAX_VARIATION_IMAGES {
            return Err(TranslateError::InvalidRequest(format!(
                "`images` must hold 1 to {MAX_VARIATION_IMAGES} images for a variation with the \
                 {ID} model family, got {}",
                req.images.len()
            )));
        }
        check_range(ID, "similarity_strength", req.similarity_strength, 0.2..=1.0)?;
        to_body(ID, &convert_edit_request(req, config))
    }

    fn decode_response(&self, body: &[u8]) -> Result<Images, TranslateError> {
        let res: TitanImageResponse = parse_body(ID, body)?;
        if let Some(error) = res.error {
            return Err(TranslateError::MalformedResponse { family: ID, detail: error });
        }
        Ok(Images { images: res.images })
    }
}

/// The family's ranges of the `imageGenerationConfig` fields.
fn check_config(config: &TitanImageGenerationConfig) -> Result<(), TranslateError> {
    let invalid = |msg: String| Err(TranslateError::InvalidRequest(msg));
    if let Some(n) = config.number_of_images
        && n > MAX_IMAGES
    {
        return invalid(format!(
            "`n` must be between 1 and {MAX_IMAGES} for the {ID} model family, got {n}"
        ));
    }
    if let Some(seed) = config.seed
        && seed > MAX_SEED
    {
        return invalid(format!(
            "`seed` must be between 0 and {MAX_SEED} for the {ID} model family, got {seed}"
        ));
    }
    if config.width.is_some() != config.height.is_some() {
        return invalid(format!(
            "`width` and `height` must be set together for the {ID} model family"
        ));
    }
    check_range(ID, "cfg_scale", config.cfg_scale, 1.1..=10.0)
}

fn convert_edit_request(
    req: &ImageEditRequest,
    config: TitanImageGenerationConfig,
) -> TitanImageEditRequest<'_> {
    let text = req.prompt.as_deref();
    let negative_text = req.negative_prompt.as_deref().filter(|text| !text.is_empty());
    let image = req.images.first().map(String::as_str).unwrap_or_default();
    let masked = |out_painting_mode| TitanMaskedParams {
        image,
        text,
        negative_text,
        mask_prompt: req.mask_prompt.as_deref(),
        mask_image: req.mask_image.as_deref(),
        out_painting_mode,
    };
    let is_empty = config == TitanImageGenerationConfig::default();
    let mut body = TitanImageEditRequest {
        task_type: "",
        image_variation_params: None,
        in_painting_params: None,
        out_painting_params: None,
        background_removal_params: None,
        image_generation_config: if is_empty { None } else { Some(config) },
    };
    match req.task {
        ImageTask::Variation => {
            body.task_type = "IMAGE_VARIATION";
            body.image_variation_params = Some(TitanImageVariationParams {
                images: &req.images,
                text,
                negative_text,
                similarity_strength: req.similarity_strength,
            });
        }
        ImageTask::Inpainting => {
            body.task_type = "INPAINTING";
            body.in_painting_params = Some(masked(None));
        }
        ImageTask::Outpainting => {
            body.task_type = "OUTPAINTING";
            body.out_painting_params = Some(masked(req.outpainting_mode.map(|mode| match mode {
                OutpaintingMode::Default => "DEFAULT",
                OutpaintingMode::Precise => "PRECISE",
            })));
        }
        ImageTask::BackgroundRemoval => {
            body.task_type = "BACKGROUND_REMOVAL";
            body.background_removal_params = Some(TitanBackgroundRemovalParams { image });
        }
    }
    body
}

fn convert_request(req: &ImageRequest) -> TitanImageRequest<'_> {
    let config = TitanImageGenerationConfig {
        number_of_images: req.n,
        width: req.width,
        height: req.height,
        cfg_scale: req.cfg_scale,
        seed: req.seed,
    };
    let is_empty = config == TitanImageGenerationConfig::default();
    TitanImageRequest {
        task_type: "TEXT_IMAGE",
        text_to_image_params: TitanTextToImageParams {
            text: &req.prompt,
            negative_text: req.negative_prompt.as_deref().filter(|text| !text.is_empty()),
        },
        image_generation_config: if is_empty { None } else { Some(config) },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::families::ImageFamily;
    use crate::families::titan_image::TitanImage;
    use crate::image::{ImageEditRequest, ImageRequest, ImageTask, encode_image_edit_request};

    fn request() -> ImageRequest {
        ImageRequest { prompt: "a red fox".to_owned(), ..ImageRequest::default() }
    }

    #[test]
    fn matches_titan_image_and_nova_canvas_only() {
        assert!(TitanImage.matches("amazon.titan-image-generator-v1"));
        assert!(TitanImage.matches("amazon.titan-image-generator-v2:0"));
        assert!(TitanImage.matches("amazon.nova-canvas-v1:0"));
        assert!(!TitanImage.matches("amazon.nova-reel-v1:0"));
        assert!(!TitanImage.matches("amazon.titan-embed-image-v1"));
    }

    #[test]
    fn bounds_are_inclusive() {
        let req = ImageRequest {
            n: Some(5),
            seed: Some(2_147_483_646),
            cfg_scale: Some(1.1),
            ..request()
        };
        let body = TitanImage.encode_request(&req).unwrap();
        assert_eq!(
            body["imageGenerationConfig"],
            json!({"numberOfImages": 5, "seed": 2_147_483_646_u64, "cfgScale": 1.1})
        );
    }

    #[test]
    fn out_of_range_values_are_invalid() {
        let cases = [
            ImageRequest { n: Some(6), ..request() },
            ImageRequest { seed: Some(2_147_483_647), ..request() },
            ImageRequest { cfg_scale: Some(1.0), ..request() },
            ImageRequest { cfg_scale: Some(10.5), ..request() },
            ImageRequest { width: Some(512), ..request() },
        ];
        for req in cases {
            let err = TitanImage.encode_request(&req).unwrap_err();
            assert!(matches!(err, TranslateError::InvalidRequest(_)), "{req:?}: {err:?}");
        }
    }

    #[test]
    fn empty_negative_prompt_is_not_sent() {
        let req = ImageRequest { negative_prompt: Some(String::new()), ..request() };
        let body = TitanImage.encode_request(&req).unwrap();
        assert_eq!(
            body,
            json!({"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a red fox"}})
        );
    }

    fn edit(task: ImageTask) -> ImageEditRequest {
        let mask_prompt = matches!(task, ImageTask::Inpainting | ImageTask::Outpainting)
            .then(|| "the sky".to_owned());
        let prompt = (task == ImageTask::Outpainting).then(|| "a beach".to_owned());
        ImageEditRequest {
            task,
            images: vec!["iVBORw0KGgo=".to_owned()],
            prompt,
            mask_prompt,
            ..ImageEditRequest::default()
        }
    }

    #[test]
    fn every_task_has_its_task_type_and_params_object() {
        let cases = [
            (ImageTask::Variation, "IMAGE_VARIATION", "imageVariationParams"),
            (ImageTask::Inpainting, "INPAINTING", "inPaintingParams"),
            (ImageTask::Outpainting, "OUTPAINTING", "outPaintingParams"),
            (ImageTask::BackgroundRemoval, "BACKGROUND_REMOVAL", "backgroundRemovalParams"),
        ];
        for (task, task_type, params) in cases {
            let body = encode_image_edit_request(&TitanImage, &edit(task)).unwrap();
            let mut keys: Vec<&str> =
                body.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            let mut expected = ["taskType", params];
            expected.sort_unstable();
            assert_eq!(keys, expected, "{task:?}");
            assert_eq!(body["taskType"], task_type);
        }
    }

    #[test]
    fn edit_ranges_are_the_family_s() {
        let many = vec!["AA==".to_owned(); 6];
        let cases = [
            ImageEditRequest { images: many, ..edit(ImageTask::Variation) },
            ImageEditRequest { similarity_strength: Some(0.1), ..edit(ImageTask::Variation) },
            ImageEditRequest { similarity_strength: Some(1.5), ..edit(ImageTask::Variation) },
            ImageEditRequest { n: Some(6), ..edit(ImageTask::Inpainting) },
            ImageEditRequest { seed: Some(2_147_483_647), ..edit(ImageTask::Outpainting) },
            ImageEditRequest { cfg_scale: Some(11.0), ..edit(ImageTask::Inpainting) },
            ImageEditRequest { width: Some(512), ..edit(ImageTask::Variation) },
        ];
        for req in cases {
            let err = encode_image_edit_request(&TitanImage, &req).unwrap_err();
            assert!(matches!(err, TranslateError::InvalidRequest(_)), "{req:?}: {err:?}");
        }
        let five = ImageEditRequest {
            images: vec!["AA==".to_owned(); 5],
            similarity_strength: Some(0.2),
            ..edit(ImageTask::Variation)
        };
        assert!(encode_image_edit_request(&TitanImage, &five).is_ok());
    }

    #[test]
    fn extra_may_not_set_an_edit_key_the_gateway_maps() {
        let mut req = edit(ImageTask::Inpainting);
        req.extra.insert("inPaintingParams".to_owned(), json!({"maskImage": "AA=="}));
        let err = encode_image_edit_request(&TitanImage, &req).unwrap_err();
        assert!(err.to_string().contains("extra.inPaintingParams.maskImage"), "{err}");
        let mut req = edit(ImageTask::Inpainting);
        req.extra.insert("inPaintingParams".to_owned(), json!({"returnMask": true}));
        let body = encode_image_edit_request(&TitanImage, &req).unwrap();
        assert_eq!(body["inPaintingParams"]["returnMask"], true);
    }

    #[test]
    fn no_images_is_malformed_through_the_codec() {
        let err =
            crate::codec::decode_image_response(&TitanImage, br#"{"images":[],"error":null}"#)
                .unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { family: "titan_image", .. }));
    }
}
