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
//!   is `seed` (0 to 2,147,483,646), checked here. Nova Canvas documents a narrower
//!   seed range (0 to 858,993,459); a family does not know which model it serves, so
//!   Bedrock rejects the excess for Canvas.
//! - `width` and `height` go together: a request setting only one is refused. Which
//!   sizes are allowed differs between the models, so Bedrock checks them.
//! - `imageGenerationConfig` carries only the fields the request sets and is left out
//!   when it would be empty, so Bedrock applies the model's defaults. `quality` and
//!   `style` have no unified field; `extra` may set them.
//! - An empty `negative_prompt` means none and is not sent (the models want 1 or more
//!   characters).
//! - A non-null `error` in the answer is a malformed response carrying that message.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::{ImageFamily, check_range, parse_body, to_body};
use crate::image::{ImageRequest, Images};
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
        ]
    }

    fn encode_request(&self, req: &ImageRequest) -> Result<serde_json::Value, TranslateError> {
        let invalid = |msg: String| Err(TranslateError::InvalidRequest(msg));
        if let Some(n) = req.n
            && n > MAX_IMAGES
        {
            return invalid(format!(
                "`n` must be between 1 and {MAX_IMAGES} for the {ID} model family, got {n}"
            ));
        }
        if let Some(seed) = req.seed
            && seed > MAX_SEED
        {
            return invalid(format!(
                "`seed` must be between 0 and {MAX_SEED} for the {ID} model family, got {seed}"
            ));
        }
        if req.width.is_some() != req.height.is_some() {
            return invalid(format!(
                "`width` and `height` must be set together for the {ID} model family"
            ));
        }
        check_range(ID, "cfg_scale", req.cfg_scale, 1.1..=10.0)?;
        to_body(ID, &convert_request(req))
    }

    fn decode_response(&self, body: &[u8]) -> Result<Images, TranslateError> {
        let res: TitanImageResponse = parse_body(ID, body)?;
        if let Some(error) = res.error {
            return Err(TranslateError::MalformedResponse { family: ID, detail: error });
        }
        Ok(Images { images: res.images })
    }
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
    use crate::image::ImageRequest;

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

    #[test]
    fn no_images_is_malformed_through_the_codec() {
        let err =
            crate::codec::decode_image_response(&TitanImage, br#"{"images":[],"error":null}"#)
                .unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { family: "titan_image", .. }));
    }
}
