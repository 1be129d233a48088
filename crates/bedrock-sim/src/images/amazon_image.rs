//! Amazon Titan Image Generator G1 (`amazon.titan-image-generator-v1`), G1 V2
//! (`amazon.titan-image-generator-v2:0`) and Nova Canvas (`amazon.nova-canvas-v1:0`): the
//! text-to-image body of wire document §4.14, which the three share. Every limit below is
//! sourced in `crates/translator/tests/fixtures/titan_image/README.md`.
//!
//! - `taskType` is required. `TEXT_IMAGE` is simulated here and the editing tasks
//!   (`IMAGE_VARIATION`, `INPAINTING`, `OUTPAINTING`, `BACKGROUND_REMOVAL`) in [`edit`];
//!   `COLOR_GUIDED_GENERATION` passes the schema and is then refused with a
//!   ValidationException that says so.
//! - `textToImageParams.text` is required: 1 to 512 characters for Titan, 1 to 1024 for Nova
//!   Canvas; `negativeText` likewise. V2 and Nova Canvas also take `conditionImage`,
//!   `controlMode` and `controlStrength`; Nova Canvas takes `style`.
//! - `imageGenerationConfig`: `numberOfImages` 1 to 5 (default 1), `cfgScale` 1.1 to 10,
//!   `quality` `standard` or `premium`, `seed` 0 to 2,147,483,646 (Titan, and Nova Canvas as
//!   its request reference states; some of AWS's SDK examples still say 858,993,459 for
//!   Canvas), `width` and `height` (default 1024 x 1024). Titan takes only the sizes of its
//!   documented table; Nova Canvas takes sides of 320 to 4096 pixels divisible by 16, an
//!   aspect ratio within 1:4 to 4:1 and at most 4,194,304 pixels (AWS names 2048 x 2048 as
//!   valid, though one page says "less than").
//! - Response: `{"images": ["<base64 PNG>", ...], "error": null}` for Titan,
//!   `{"images": [...]}` for Nova Canvas.

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::json_bytes;
use crate::images::{GeneratedImage, ImageFamily, ImageRequest, base64_png};
use crate::media_schema::{Shape, ViolationReport, collect_violations, finish};
use crate::schema::as_integer;

mod edit;

/// The Titan Image Generator and Nova Canvas family.
pub(crate) struct AmazonImage;

/// What differs between the three models.
struct ModelRules {
    model_id: &'static str,
    max_text_chars: usize,
    max_seed: i64,
    sizes: SizeRule,
    /// Whether `textToImageParams` takes the image-conditioning keys (V2 and Nova Canvas).
    takes_conditioning: bool,
    /// Whether `textToImageParams` takes `style` (Nova Canvas).
    takes_style: bool,
    /// The input images the editing tasks take.
    edit_inputs: InputRule,
    /// Whether `inPaintingParams` and `outPaintingParams` take `returnMask` (Titan; Nova
    /// Canvas has it only for virtual try-on).
    takes_return_mask: bool,
    /// Whether the `imageGenerationConfig` of inpainting and outpainting takes `width` and
    /// `height` (Titan's schema lists them, the answer still has the input's size; Nova
    /// Canvas says not to send them).
    masked_edits_take_size: bool,
}

/// What an editing task's input image (and mask) may be.
enum InputRule {
    /// Titan: the longer side at most `max_side` pixels, the file at most `max_bytes`.
    LongerSide { max_side: i64, max_bytes: usize },
    /// Nova Canvas: sides within 320..=4096 (not only multiples of 16, unlike an output), an
    /// aspect ratio within 1:4 to 4:1 and at most this many pixels.
    Free { max_pixels: i64 },
}

enum SizeRule {
    /// One of these `(width, height)` pairs.
    Listed(&'static [(i64, i64)]),
    /// Sides within 320..=4096 divisible by 16, ratio at most 4, at most this many pixels.
    Free { max_pixels: i64 },
}

/// Titan's input images: "<= 1,408 on the longer side" and "5 MB" (read as 5 MiB).
const TITAN_INPUTS: InputRule = InputRule::LongerSide { max_side: 1408, max_bytes: 5 << 20 };

/// The most pixels a Nova Canvas image (input or output) has.
const NOVA_MAX_PIXELS: i64 = 4_194_304;

const TITAN_SIZES: &[(i64, i64)] = &[
    (1024, 1024),
    (768, 768),
    (512, 512),
    (768, 1152),
    (384, 576),
    (1152, 768),
    (576, 384),
    (768, 1280),
    (384, 640),
    (1280, 768),
    (640, 384),
    (896, 1152),
    (448, 576),
    (1152, 896),
    (576, 448),
    (768, 1408),
    (384, 704),
    (1408, 768),
    (704, 384),
    (640, 1408),
    (320, 704),
    (1408, 640),
    (704, 320),
    (1152, 640),
    (1173, 640),
];

const MODELS: &[ModelRules] = &[
    ModelRules {
        model_id: "amazon.titan-image-generator-v1",
        max_text_chars: 512,
        max_seed: 2_147_483_646,
        sizes: SizeRule::Listed(TITAN_SIZES),
        takes_conditioning: false,
        takes_style: false,
        edit_inputs: TITAN_INPUTS,
        takes_return_mask: true,
        masked_edits_take_size: true,
    },
    ModelRules {
        model_id: "amazon.titan-image-generator-v2:0",
        max_text_chars: 512,
        max_seed: 2_147_483_646,
        sizes: SizeRule::Listed(TITAN_SIZES),
        takes_conditioning: true,
        takes_style: false,
        edit_inputs: TITAN_INPUTS,
        takes_return_mask: true,
        masked_edits_take_size: true,
    },
    ModelRules {
        model_id: "amazon.nova-canvas-v1:0",
        max_text_chars: 1024,
        max_seed: 2_147_483_646,
        sizes: SizeRule::Free { max_pixels: NOVA_MAX_PIXELS },
        takes_conditioning: true,
        takes_style: true,
        edit_inputs: InputRule::Free { max_pixels: NOVA_MAX_PIXELS },
        takes_return_mask: false,
        masked_edits_take_size: false,
    },
];

/// Width and height when the request gives none.
const DEFAULT_SIDE: i64 = 1024;

const NOVA_CANVAS: &str = "amazon.nova-canvas-v1:0";

const TASK_TYPES: &[&str] = &[
    "TEXT_IMAGE",
    "INPAINTING",
    "OUTPAINTING",
    "IMAGE_VARIATION",
    "COLOR_GUIDED_GENERATION",
    "BACKGROUND_REMOVAL",
];

impl ImageFamily for AmazonImage {
    fn id(&self) -> &'static str {
        "amazon_image"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODELS.iter().any(|rules| rules.model_id == base_model_id)
    }

    fn parse_request(
        &self,
        base_model_id: &str,
        body: &Value,
    ) -> Result<ImageRequest, BedrockError> {
        let Some(rules) = MODELS.iter().find(|rules| rules.model_id == base_model_id) else {
            return Err(BedrockError::validation("The provided model identifier is invalid."));
        };
        let task_type = body.get("taskType").and_then(Value::as_str);
        if let Some(task_type) =
            task_type.filter(|task_type| edit::EDIT_TASK_TYPES.contains(task_type))
        {
            return edit::parse_edit_request(rules, task_type, body);
        }
        let mut violations = collect_violations(&request_shape(rules), body);
        if task_type == Some("TEXT_IMAGE") && body.get("textToImageParams").is_none() {
            violations.push("#: required key [textToImageParams] not found".to_owned());
        }
        let config = body.get("imageGenerationConfig");
        let side = |key: &str| config.and_then(|config| config.get(key)).and_then(as_integer);
        let (width, height) =
            (side("width").unwrap_or(DEFAULT_SIDE), side("height").unwrap_or(DEFAULT_SIDE));
        // Only a size made of well-typed sides is worth a violation of its own.
        if violations.is_empty() && !size_is_allowed(&rules.sizes, width, height) {
            violations.push(format!(
                "#/imageGenerationConfig: {width}x{height} is not a supported image size"
            ));
        }
        finish(&violations, ViolationReport::Counted)?;
        if let Some(task_type) = task_type.filter(|task_type| *task_type != "TEXT_IMAGE") {
            return Err(BedrockError::validation(format!(
                "The simulator only simulates taskType TEXT_IMAGE, not {task_type}."
            )));
        }

        let params = body.get("textToImageParams");
        let prompt = params.and_then(|params| params.get("text")).and_then(Value::as_str);
        let config_integer = |key: &str| side(key).and_then(|value| u64::try_from(value).ok());
        Ok(ImageRequest {
            prompt: prompt.unwrap_or_default().to_owned(),
            n_images: config_integer("numberOfImages")
                .and_then(|n_images| u32::try_from(n_images).ok())
                .unwrap_or(1),
            width: u32::try_from(width).unwrap_or_default(),
            height: u32::try_from(height).unwrap_or_default(),
            seed: config_integer("seed"),
            max_seed: u64::try_from(rules.max_seed).unwrap_or_default(),
        })
    }

    fn response_body(&self, base_model_id: &str, images: &[GeneratedImage]) -> Vec<u8> {
        let images: Vec<String> = images.iter().map(base64_png).collect();
        if base_model_id == NOVA_CANVAS {
            return json_bytes(&NovaCanvasResponse { images });
        }
        json_bytes(&TitanImageResponse { images, error: None })
    }
}

#[derive(Serialize)]
struct TitanImageResponse {
    images: Vec<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct NovaCanvasResponse {
    images: Vec<String>,
}

fn request_shape(rules: &ModelRules) -> Shape {
    let text = || Shape::String { min_len: 1, max_len: rules.max_text_chars };
    let mut text_params = vec![("text", text()), ("negativeText", text())];
    if rules.takes_conditioning {
        text_params.extend([
            ("conditionImage", Shape::String { min_len: 1, max_len: usize::MAX }),
            ("controlMode", Shape::Enum(&["CANNY_EDGE", "SEGMENTATION"])),
            ("controlStrength", Shape::Number { minimum: 0.0, maximum: 1.0 }),
        ]);
    }
    if rules.takes_style {
        text_params.push((
            "style",
            Shape::Enum(&[
                "3D_ANIMATED_FAMILY_FILM",
                "DESIGN_SKETCH",
                "FLAT_VECTOR_ILLUSTRATION",
                "GRAPHIC_NOVEL_ILLUSTRATION",
                "MAXIMALISM",
                "MIDCENTURY_RETRO",
                "PHOTOREALISM",
                "SOFT_DIGITAL_PAINTING",
            ]),
        ));
    }
    let config = Shape::Object {
        properties: vec![
            ("numberOfImages", Shape::Integer { minimum: 1, maximum: 5 }),
            ("quality", Shape::Enum(&["standard", "premium"])),
            ("cfgScale", Shape::Number { minimum: 1.1, maximum: 10.0 }),
            ("seed", Shape::Integer { minimum: 0, maximum: rules.max_seed }),
            ("width", Shape::Integer { minimum: 1, maximum: 4096 }),
            ("height", Shape::Integer { minimum: 1, maximum: 4096 }),
        ],
        required: vec![],
    };
    Shape::Object {
        properties: vec![
            ("taskType", Shape::Enum(TASK_TYPES)),
            (
                "textToImageParams",
                Shape::Object { properties: text_params, required: vec!["text"] },
            ),
            ("imageGenerationConfig", config),
            ("inPaintingParams", Shape::AnyObject),
            ("outPaintingParams", Shape::AnyObject),
            ("imageVariationParams", Shape::AnyObject),
            ("colorGuidedGenerationParams", Shape::AnyObject),
            ("backgroundRemovalParams", Shape::AnyObject),
        ],
        required: vec!["taskType"],
    }
}

fn size_is_allowed(rule: &SizeRule, width: i64, height: i64) -> bool {
    match rule {
        SizeRule::Listed(sizes) => sizes.contains(&(width, height)),
        SizeRule::Free { max_pixels } => {
            let side_ok = |side: i64| (320..=4096).contains(&side) && side % 16 == 0;
            side_ok(width)
                && side_ok(height)
                && width <= 4 * height
                && height <= 4 * width
                && width * height <= *max_pixels
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::images::generate_images;

    const TITAN_V1: &str = "amazon.titan-image-generator-v1";
    const TITAN_V2: &str = "amazon.titan-image-generator-v2:0";

    fn body(text: &str, config: Value) -> Value {
        json!({"taskType": "TEXT_IMAGE", "textToImageParams": {"text": text},
            "imageGenerationConfig": config})
    }

    fn error(model_id: &str, body: Value) -> String {
        AmazonImage.parse_request(model_id, &body).unwrap_err().message().to_owned()
    }

    fn malformed(detail: &str) -> String {
        format!("Malformed input request: {detail}, please reformat your input and try again.")
    }

    #[test]
    fn reads_the_request_with_defaults() {
        let request = AmazonImage.parse_request(TITAN_V1, &body("a fox", json!({}))).unwrap();
        assert_eq!((request.width, request.height, request.n_images), (1024, 1024, 1));
        assert_eq!((request.prompt.as_str(), request.seed), ("a fox", None));
        let config = json!({"numberOfImages": 3, "width": 1173, "height": 640, "seed": 7,
            "cfgScale": 8.0, "quality": "premium"});
        let request = AmazonImage.parse_request(TITAN_V2, &body("a fox", config)).unwrap();
        assert_eq!((request.width, request.height, request.n_images), (1173, 640, 3));
        assert_eq!(request.seed, Some(7));
    }

    #[test]
    fn response_shapes() {
        let request = AmazonImage.parse_request(TITAN_V1, &body("a fox", json!({}))).unwrap();
        let images = generate_images(&request);
        let titan: Value =
            serde_json::from_slice(&AmazonImage.response_body(TITAN_V1, &images)).unwrap();
        assert_eq!(titan["images"].as_array().unwrap().len(), 1);
        assert_eq!(titan["error"], Value::Null);
        assert!(titan.as_object().unwrap().contains_key("error"));
        let nova: Value =
            serde_json::from_slice(&AmazonImage.response_body(NOVA_CANVAS, &images)).unwrap();
        assert_eq!(nova.as_object().unwrap().len(), 1);
    }

    #[test]
    fn validation() {
        let cases = [
            (
                TITAN_V1,
                body("x", json!({"numberOfImages": 6})),
                "#/imageGenerationConfig/numberOfImages: 6 is not less or equal to 5",
            ),
            (
                TITAN_V1,
                body("x", json!({"cfgScale": 1.0})),
                "#/imageGenerationConfig/cfgScale: 1.0 is not greater or equal to 1.1",
            ),
            (
                TITAN_V1,
                body("x", json!({"cfgScale": 10.5})),
                "#/imageGenerationConfig/cfgScale: 10.5 is not less or equal to 10",
            ),
            (
                TITAN_V1,
                body("x", json!({"seed": 2_147_483_647})),
                "#/imageGenerationConfig/seed: 2147483647 is not less or equal to 2147483646",
            ),
            (
                NOVA_CANVAS,
                body("x", json!({"seed": 2_147_483_647})),
                "#/imageGenerationConfig/seed: 2147483647 is not less or equal to 2147483646",
            ),
            (
                NOVA_CANVAS,
                body("x", json!({"width": 2064, "height": 2048})),
                "#/imageGenerationConfig: 2064x2048 is not a supported image size",
            ),
            (
                TITAN_V1,
                body("x", json!({"width": 1000, "height": 1000})),
                "#/imageGenerationConfig: 1000x1000 is not a supported image size",
            ),
            (
                TITAN_V1,
                body("x", json!({"width": 768})),
                "#/imageGenerationConfig: 768x1024 is not a supported image size",
            ),
            (
                NOVA_CANVAS,
                body("x", json!({"width": 1000, "height": 1024})),
                "#/imageGenerationConfig: 1000x1024 is not a supported image size",
            ),
            (
                NOVA_CANVAS,
                body("x", json!({"width": 320, "height": 1600})),
                "#/imageGenerationConfig: 320x1600 is not a supported image size",
            ),
            (
                NOVA_CANVAS,
                body("x", json!({"width": 4096, "height": 2048})),
                "#/imageGenerationConfig: 4096x2048 is not a supported image size",
            ),
            (
                TITAN_V1,
                body("x", json!({"quality": "ultra"})),
                "#/imageGenerationConfig/quality: ultra is not a valid enum value",
            ),
            (
                TITAN_V1,
                body("", json!({})),
                "#/textToImageParams/text: expected minLength: 1, actual: 0",
            ),
            (
                TITAN_V1,
                body(&"a".repeat(513), json!({})),
                "#/textToImageParams/text: expected maxLength: 512, actual: 513",
            ),
            (
                TITAN_V1,
                json!({"taskType": "TEXT_IMAGE"}),
                "#: required key [textToImageParams] not found",
            ),
            (
                TITAN_V1,
                json!({"textToImageParams": {"text": "x"}}),
                "#: required key [taskType] not found",
            ),
            (
                TITAN_V1,
                json!({"taskType": "TEXT_IMAGE",
                    "textToImageParams": {"text": "x", "style": "MAXIMALISM"}}),
                "#/textToImageParams: extraneous key [style] is not permitted",
            ),
            (TITAN_V1, json!({"text_prompts": [{"text": "x"}]}), "2 schema violations found"),
        ];
        for (model_id, body, detail) in cases {
            assert_eq!(error(model_id, body.clone()), malformed(detail), "{model_id} {body}");
        }
        let nova_ok = [
            // 4,194,304 pixels: AWS names 2048 x 2048 as a valid size.
            json!({"width": 2048, "height": 2048}),
            // Canvas takes Titan's seed range, not the 858,993,459 of older SDK examples.
            json!({"seed": 858_993_460}),
            json!({"seed": 2_147_483_646}),
            json!({"width": 320, "height": 1280}),
            json!({"width": 1280, "height": 720}),
        ];
        for config in nova_ok {
            assert!(
                AmazonImage.parse_request(NOVA_CANVAS, &body("x", config.clone())).is_ok(),
                "{config}"
            );
        }
        let styled = json!({"taskType": "TEXT_IMAGE",
            "textToImageParams": {"text": "x", "style": "MAXIMALISM"}});
        assert!(AmazonImage.parse_request(NOVA_CANVAS, &styled).is_ok());
        let color_guided = json!({"taskType": "COLOR_GUIDED_GENERATION",
            "colorGuidedGenerationParams": {"text": "x", "colors": ["#FF9800"]}});
        assert_eq!(
            error(TITAN_V2, color_guided),
            "The simulator only simulates taskType TEXT_IMAGE, not COLOR_GUIDED_GENERATION."
        );
    }
}
