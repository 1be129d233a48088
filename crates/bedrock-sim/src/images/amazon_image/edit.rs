//! The image editing tasks of Titan Image Generator and Nova Canvas: `IMAGE_VARIATION`,
//! `INPAINTING`, `OUTPAINTING` and `BACKGROUND_REMOVAL` (AWS user guide, "Amazon Titan
//! Image Generator G1 models",
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-image.html>;
//! Amazon Nova user guide, "Request and response structure for image generation",
//! <https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html>).
//! Every limit is sourced in `crates/translator/tests/fixtures/titan_image/README.md`.
//!
//! - Each task's body is `taskType`, its parameters object (required) and, but for
//!   background removal, `imageGenerationConfig`; any other key is extraneous.
//! - `imageVariationParams`: `images` (1 to 5, required), `text`, `negativeText`,
//!   `similarityStrength` (0.2 to 1.0). The config takes a size, checked like text-to-image.
//! - `inPaintingParams` / `outPaintingParams`: `image` (required), `text` (required for
//!   outpainting), `negativeText`, `maskPrompt` or `maskImage` (exactly one; AWS gives the
//!   mask prompt no length, so any non-empty one is taken), Titan's `returnMask` (Nova Canvas
//!   has none), and for outpainting `outPaintingMode` (`DEFAULT` or `PRECISE`). Their config
//!   takes `numberOfImages`, `quality`, `cfgScale` and `seed`, and for Titan also `width`
//!   and `height`, which its schema lists; the images have the input's size either way.
//! - `backgroundRemovalParams`: `image` alone, one image answered. Titan G1 V1 has no
//!   background removal.
//! - Every input image (and mask) must be base64 of a PNG or a JPEG. Only a PNG's header is
//!   read: its `IHDR` size is the answer's size (a JPEG answers 1024 x 1024), a mask image
//!   must have the image's size, Titan takes a longer side of at most 1,408 pixels and files
//!   of at most 5 MB, and Nova Canvas takes sides of 320 to 4096 pixels (any, not only
//!   multiples of 16 as for an output), an aspect ratio within 1:4 to 4:1 and at most
//!   4,194,304 pixels. AWS documents no error message for these; the simulator's own
//!   wording is below.
//! - The images are drawn like text-to-image's, from the task, the text and a hash of the
//!   input images, so the same edit always answers the same images.

use base64::Engine as _;
use serde_json::Value;

use super::{DEFAULT_SIDE, InputRule, ModelRules, size_is_allowed};
use crate::error::BedrockError;
use crate::generate::fnv1a_64;
use crate::images::ImageRequest;
use crate::images::png::PNG_SIGNATURE;
use crate::media_schema::{Shape, ViolationReport, array_of, collect_violations, finish};
use crate::schema::as_integer;

/// The editing `taskType`s simulated here.
pub(super) const EDIT_TASK_TYPES: &[&str] =
    &["IMAGE_VARIATION", "INPAINTING", "OUTPAINTING", "BACKGROUND_REMOVAL"];

/// The first bytes of every JPEG file.
const JPEG_SIGNATURE: [u8; 3] = [0xff, 0xd8, 0xff];

/// The most input images of a variation.
const MAX_VARIATION_IMAGES: usize = 5;

/// The Titan model without background removal.
const TITAN_V1: &str = "amazon.titan-image-generator-v1";

/// Validates the body of an editing task (`task_type` one of [`EDIT_TASK_TYPES`]) and reads
/// what to draw.
pub(super) fn parse_edit_request(
    rules: &ModelRules,
    task_type: &str,
    body: &Value,
) -> Result<ImageRequest, BedrockError> {
    if task_type == "BACKGROUND_REMOVAL" && rules.model_id == TITAN_V1 {
        return Err(BedrockError::validation(format!(
            "The taskType BACKGROUND_REMOVAL is not supported by {TITAN_V1}."
        )));
    }
    let params_key = params_key(task_type);
    finish(&collect_violations(&edit_shape(rules, task_type), body), ViolationReport::Counted)?;
    let params = &body[params_key];

    if matches!(task_type, "INPAINTING" | "OUTPAINTING")
        && params.get("maskPrompt").is_some() == params.get("maskImage").is_some()
    {
        return Err(BedrockError::validation(format!(
            "{params_key} must set exactly one of maskPrompt and maskImage."
        )));
    }
    let images: Vec<&str> = match params.get("images") {
        Some(images) => images.as_array().into_iter().flatten().filter_map(Value::as_str).collect(),
        None => params.get("image").and_then(Value::as_str).into_iter().collect(),
    };
    let mut sizes = Vec::with_capacity(images.len());
    for (idx, image) in images.iter().enumerate() {
        let field = if params.get("images").is_some() {
            format!("{params_key}.images[{idx}]")
        } else {
            format!("{params_key}.image")
        };
        sizes.push(input_image(rules, image, &field)?);
    }
    if let Some(mask) = params.get("maskImage").and_then(Value::as_str) {
        let field = format!("{params_key}.maskImage");
        let mask_size = input_image(rules, mask, &field)?;
        if let (Some(mask_size), Some(Some(image_size))) = (mask_size, sizes.first())
            && mask_size != *image_size
        {
            return Err(BedrockError::validation(format!(
                "{field} must have the size of the image: {}x{} is not {}x{}.",
                mask_size.0, mask_size.1, image_size.0, image_size.1
            )));
        }
    }

    let config = body.get("imageGenerationConfig");
    let config_integer = |key: &str| config.and_then(|config| config.get(key)).and_then(as_integer);
    let (width, height) = if task_type == "IMAGE_VARIATION" {
        let (width, height) = (
            config_integer("width").unwrap_or(DEFAULT_SIDE),
            config_integer("height").unwrap_or(DEFAULT_SIDE),
        );
        if !size_is_allowed(&rules.sizes, width, height) {
            return Err(crate::schema::malformed_input(&format!(
                "#/imageGenerationConfig: {width}x{height} is not a supported image size"
            )));
        }
        (u32::try_from(width).unwrap_or_default(), u32::try_from(height).unwrap_or_default())
    } else {
        let side = u32::try_from(DEFAULT_SIDE).unwrap_or_default();
        sizes.first().copied().flatten().unwrap_or((side, side))
    };

    let text = params.get("text").and_then(Value::as_str).unwrap_or_default();
    let images_hash =
        images.iter().fold(0_u64, |hash, image| hash.rotate_left(5) ^ fnv1a_64(image.as_bytes()));
    let n_images = if task_type == "BACKGROUND_REMOVAL" {
        1
    } else {
        config_integer("numberOfImages").and_then(|n| u32::try_from(n).ok()).unwrap_or(1)
    };
    Ok(ImageRequest {
        prompt: format!("{task_type} {text} {images_hash:016x}"),
        n_images,
        width,
        height,
        seed: config_integer("seed").and_then(|seed| u64::try_from(seed).ok()),
        max_seed: u64::try_from(rules.max_seed).unwrap_or_default(),
    })
}

fn params_key(task_type: &str) -> &'static str {
    match task_type {
        "IMAGE_VARIATION" => "imageVariationParams",
        "INPAINTING" => "inPaintingParams",
        "OUTPAINTING" => "outPaintingParams",
        _ => "backgroundRemovalParams",
    }
}

/// The whole body of one editing task.
fn edit_shape(rules: &ModelRules, task_type: &str) -> Shape {
    let text = || Shape::String { min_len: 1, max_len: rules.max_text_chars };
    let image = || Shape::String { min_len: 1, max_len: usize::MAX };
    let params = match task_type {
        "IMAGE_VARIATION" => Shape::Object {
            properties: vec![
                ("images", array_of(image(), 1, MAX_VARIATION_IMAGES)),
                ("text", text()),
                ("negativeText", text()),
                ("similarityStrength", Shape::Number { minimum: 0.2, maximum: 1.0 }),
            ],
            required: vec!["images"],
        },
        "INPAINTING" | "OUTPAINTING" => {
            let mut properties = vec![
                ("image", image()),
                ("text", text()),
                ("negativeText", text()),
                // AWS states no length for the mask prompt.
                ("maskPrompt", Shape::String { min_len: 1, max_len: usize::MAX }),
                ("maskImage", image()),
            ];
            if rules.takes_return_mask {
                properties.push(("returnMask", Shape::Boolean));
            }
            let mut required = vec!["image"];
            if task_type == "OUTPAINTING" {
                properties.push(("outPaintingMode", Shape::Enum(&["DEFAULT", "PRECISE"])));
                required.push("text");
            }
            Shape::Object { properties, required }
        }
        _ => Shape::Object { properties: vec![("image", image())], required: vec!["image"] },
    };
    let mut config = vec![
        ("numberOfImages", Shape::Integer { minimum: 1, maximum: 5 }),
        ("quality", Shape::Enum(&["standard", "premium"])),
        ("cfgScale", Shape::Number { minimum: 1.1, maximum: 10.0 }),
        ("seed", Shape::Integer { minimum: 0, maximum: rules.max_seed }),
    ];
    if task_type == "IMAGE_VARIATION"
        || (rules.masked_edits_take_size && matches!(task_type, "INPAINTING" | "OUTPAINTING"))
    {
        config.extend([
            ("width", Shape::Integer { minimum: 1, maximum: 4096 }),
            ("height", Shape::Integer { minimum: 1, maximum: 4096 }),
        ]);
    }
    let mut properties =
        vec![("taskType", Shape::Enum(super::TASK_TYPES)), (params_key(task_type), params)];
    if task_type != "BACKGROUND_REMOVAL" {
        properties.push((
            "imageGenerationConfig",
            Shape::Object { properties: config, required: vec![] },
        ));
    }
    Shape::Object { properties, required: vec!["taskType", params_key(task_type)] }
}

/// Decodes the base64 input image (or mask) at `field` and checks it against the model's
/// [`InputRule`]; its size for a PNG (its `IHDR`), `None` for a JPEG.
fn input_image(
    rules: &ModelRules,
    image: &str,
    field: &str,
) -> Result<Option<(u32, u32)>, BedrockError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(image).map_err(|_| {
        BedrockError::validation(format!("{field} is not a valid base64-encoded image."))
    })?;
    if let InputRule::LongerSide { max_bytes, .. } = &rules.edit_inputs
        && bytes.len() > *max_bytes
    {
        return Err(BedrockError::validation(format!(
            "{field}: the image has {} bytes, over the {} MB an input image may have.",
            bytes.len(),
            max_bytes >> 20
        )));
    }
    let size = image_size(&bytes, field)?;
    if let Some((width, height)) = size
        && !input_size_is_allowed(&rules.edit_inputs, width, height)
    {
        return Err(BedrockError::validation(format!(
            "{field}: {width}x{height} is not a supported input image size."
        )));
    }
    Ok(size)
}

/// Whether an input image of `width` x `height` meets `rule`.
fn input_size_is_allowed(rule: &InputRule, width: u32, height: u32) -> bool {
    let (width, height) = (i64::from(width), i64::from(height));
    match rule {
        InputRule::LongerSide { max_side, .. } => width.max(height) <= *max_side,
        InputRule::Free { max_pixels } => {
            let side_ok = |side: i64| (320..=4096).contains(&side);
            side_ok(width)
                && side_ok(height)
                && width <= 4 * height
                && height <= 4 * width
                && width * height <= *max_pixels
        }
    }
}

/// The size of an image file: `Some` for a PNG (its `IHDR`), `None` for a JPEG.
fn image_size(bytes: &[u8], field: &str) -> Result<Option<(u32, u32)>, BedrockError> {
    if bytes.starts_with(&JPEG_SIGNATURE) {
        return Ok(None);
    }
    let header = bytes
        .get(..24)
        .filter(|header| header.starts_with(&PNG_SIGNATURE) && &header[12..16] == b"IHDR");
    let Some(header) = header else {
        return Err(BedrockError::validation(format!("{field} must be a PNG or JPEG image.")));
    };
    let side = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    match (side(16), side(20)) {
        (0, _) | (_, 0) => Err(BedrockError::validation(format!("{field} is an empty image."))),
        size => Ok(Some(size)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::AmazonImage;
    use crate::images::png::solid_png;
    use crate::images::{ImageFamily, generate_images};

    const TITAN_V1: &str = "amazon.titan-image-generator-v1";
    const TITAN_V2: &str = "amazon.titan-image-generator-v2:0";
    const NOVA_CANVAS: &str = "amazon.nova-canvas-v1:0";

    fn png(width: u32, height: u32) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(solid_png(width, height, [1, 2, 3]))
    }

    fn error(model_id: &str, body: &serde_json::Value) -> String {
        AmazonImage.parse_request(model_id, body).unwrap_err().message().to_owned()
    }

    fn malformed(detail: &str) -> String {
        format!("Malformed input request: {detail}, please reformat your input and try again.")
    }

    #[test]
    fn every_task_answers_images_of_the_documented_size() {
        let image = png(640, 384);
        let cases = [
            (
                json!({"taskType": "IMAGE_VARIATION",
                    "imageVariationParams": {"images": [image, png(512, 512)], "text": "a fox",
                        "similarityStrength": 0.7},
                    "imageGenerationConfig": {"numberOfImages": 2, "width": 512, "height": 512,
                        "cfgScale": 8.0, "seed": 3}}),
                (512, 512, 2),
            ),
            (
                json!({"taskType": "INPAINTING",
                    "inPaintingParams": {"image": image, "maskPrompt": "the sky"},
                    "imageGenerationConfig": {"numberOfImages": 3, "quality": "premium"}}),
                (640, 384, 3),
            ),
            (
                json!({"taskType": "OUTPAINTING",
                    "outPaintingParams": {"image": image, "text": "a beach",
                        "maskImage": png(640, 384), "outPaintingMode": "PRECISE"}}),
                (640, 384, 1),
            ),
            (
                json!({"taskType": "BACKGROUND_REMOVAL",
                    "backgroundRemovalParams": {"image": image}}),
                (640, 384, 1),
            ),
        ];
        for (body, (width, height, n_images)) in cases {
            for model_id in [TITAN_V2, NOVA_CANVAS] {
                let request = AmazonImage.parse_request(model_id, &body).unwrap();
                assert_eq!(
                    (request.width, request.height, request.n_images),
                    (width, height, n_images)
                );
                let images = generate_images(&request);
                assert_eq!(
                    images,
                    generate_images(&AmazonImage.parse_request(model_id, &body).unwrap())
                );
            }
        }
        // A JPEG input answers the default size.
        let jpeg = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode([0xff, 0xd8, 0xff, 0xe0, 0, 0x10])
        };
        let body =
            json!({"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": jpeg}});
        let request = AmazonImage.parse_request(TITAN_V2, &body).unwrap();
        assert_eq!((request.width, request.height), (1024, 1024));
    }

    #[test]
    fn different_inputs_draw_different_images() {
        let body = |image: String| json!({"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": image}});
        let one = AmazonImage.parse_request(TITAN_V2, &body(png(512, 512))).unwrap();
        let other = AmazonImage.parse_request(TITAN_V2, &body(png(512, 576))).unwrap();
        assert_ne!(one.prompt, other.prompt);
    }

    #[test]
    fn validation() {
        let image = png(512, 512);
        let cases = [
            (
                TITAN_V2,
                json!({"taskType": "IMAGE_VARIATION", "imageVariationParams": {"images": []}}),
                malformed("#/imageVariationParams/images: expected minimum item count: 1, found: 0"),
            ),
            (
                TITAN_V2,
                json!({"taskType": "IMAGE_VARIATION",
                    "imageVariationParams": {"images": vec![image.clone(); 6]}}),
                malformed("#/imageVariationParams/images: expected maximum item count: 5, found: 6"),
            ),
            (
                TITAN_V2,
                json!({"taskType": "IMAGE_VARIATION",
                    "imageVariationParams": {"images": [image], "similarityStrength": 0.1}}),
                malformed("#/imageVariationParams/similarityStrength: 0.1 is not greater or equal to 0.2"),
            ),
            (
                TITAN_V2,
                json!({"taskType": "IMAGE_VARIATION", "imageVariationParams": {"images": [image]},
                    "imageGenerationConfig": {"width": 1000, "height": 1000}}),
                malformed("#/imageGenerationConfig: 1000x1000 is not a supported image size"),
            ),
            (
                TITAN_V2,
                json!({"taskType": "INPAINTING"}),
                malformed("#: required key [inPaintingParams] not found"),
            ),
            (
                TITAN_V2,
                json!({"taskType": "INPAINTING", "inPaintingParams": {"image": image}}),
                "inPaintingParams must set exactly one of maskPrompt and maskImage.".to_owned(),
            ),
            (
                TITAN_V2,
                json!({"taskType": "INPAINTING", "inPaintingParams": {"image": image,
                    "maskPrompt": "x", "maskImage": image}}),
                "inPaintingParams must set exactly one of maskPrompt and maskImage.".to_owned(),
            ),
            (
                NOVA_CANVAS,
                json!({"taskType": "INPAINTING", "inPaintingParams": {"image": png(512, 512),
                    "maskPrompt": "x"}, "imageGenerationConfig": {"width": 512}}),
                malformed("#/imageGenerationConfig: extraneous key [width] is not permitted"),
            ),
            (
                NOVA_CANVAS,
                json!({"taskType": "OUTPAINTING", "outPaintingParams": {"image": png(512, 512),
                    "text": "a beach", "maskPrompt": "x", "returnMask": true}}),
                malformed("#/outPaintingParams: extraneous key [returnMask] is not permitted"),
            ),
            (
                TITAN_V2,
                json!({"taskType": "OUTPAINTING", "outPaintingParams": {"image": image,
                    "maskPrompt": "x"}}),
                malformed("#/outPaintingParams: required key [text] not found"),
            ),
            (
                TITAN_V2,
                json!({"taskType": "OUTPAINTING", "outPaintingParams": {"image": image,
                    "text": "a beach", "maskPrompt": "x", "outPaintingMode": "LOOSE"}}),
                malformed("#/outPaintingParams/outPaintingMode: LOOSE is not a valid enum value"),
            ),
            (
                TITAN_V2,
                json!({"taskType": "OUTPAINTING", "outPaintingParams": {"image": image,
                    "text": "a beach", "maskImage": png(256, 256)}}),
                "outPaintingParams.maskImage must have the size of the image: 256x256 is not 512x512."
                    .to_owned(),
            ),
            (
                TITAN_V2,
                json!({"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": image},
                    "imageGenerationConfig": {"numberOfImages": 2}}),
                malformed("#: extraneous key [imageGenerationConfig] is not permitted"),
            ),
            (
                TITAN_V2,
                json!({"taskType": "BACKGROUND_REMOVAL",
                    "backgroundRemovalParams": {"image": "not base64!"}}),
                "backgroundRemovalParams.image is not a valid base64-encoded image.".to_owned(),
            ),
            (
                TITAN_V2,
                json!({"taskType": "BACKGROUND_REMOVAL",
                    "backgroundRemovalParams": {"image": "aGVsbG8gd29ybGQ="}}),
                "backgroundRemovalParams.image must be a PNG or JPEG image.".to_owned(),
            ),
            (
                TITAN_V1,
                json!({"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": image}}),
                "The taskType BACKGROUND_REMOVAL is not supported by amazon.titan-image-generator-v1."
                    .to_owned(),
            ),
            (
                NOVA_CANVAS,
                json!({"taskType": "BACKGROUND_REMOVAL",
                    "backgroundRemovalParams": {"image": png(256, 256)}}),
                "backgroundRemovalParams.image: 256x256 is not a supported input image size."
                    .to_owned(),
            ),
            (
                NOVA_CANVAS,
                json!({"taskType": "IMAGE_VARIATION",
                    "imageVariationParams": {"images": [image, png(320, 1600)]}}),
                "imageVariationParams.images[1]: 320x1600 is not a supported input image size."
                    .to_owned(),
            ),
        ];
        for (model_id, body, expected) in cases {
            assert_eq!(error(model_id, &body), expected, "{model_id} {body}");
        }
        // Titan takes an input of any size up to 1,408 on the longer side; the answer has it.
        let small = json!({"taskType": "BACKGROUND_REMOVAL",
            "backgroundRemovalParams": {"image": png(256, 256)}});
        assert_eq!(AmazonImage.parse_request(TITAN_V2, &small).unwrap().width, 256);
        // Titan G1 V1 edits, but for background removal.
        let inpainting = json!({"taskType": "INPAINTING",
            "inPaintingParams": {"image": image, "maskPrompt": "x"}});
        assert!(AmazonImage.parse_request(TITAN_V1, &inpainting).is_ok());
    }

    #[test]
    fn titan_inputs_have_a_longer_side_of_at_most_1408_and_5_mb() {
        let big = png(1409, 704);
        let bodies = [
            json!({"taskType": "IMAGE_VARIATION", "imageVariationParams": {"images": [big]}}),
            json!({"taskType": "INPAINTING", "inPaintingParams": {"image": png(704, 1409),
                "maskPrompt": "x"}}),
            json!({"taskType": "OUTPAINTING", "outPaintingParams": {"image": big, "text": "x",
                "maskPrompt": "x"}}),
            json!({"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": big}}),
        ];
        for body in bodies {
            let message = error(TITAN_V2, &body);
            assert!(message.ends_with("is not a supported input image size."), "{body}: {message}");
        }
        // The mask too: a JPEG image's size is not read, its PNG mask's is.
        let jpeg = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode([0xff, 0xd8, 0xff, 0xe0, 0, 0x10])
        };
        let body = json!({"taskType": "INPAINTING", "inPaintingParams": {"image": jpeg,
            "maskImage": png(2048, 1024)}});
        assert_eq!(
            error(TITAN_V1, &body),
            "inPaintingParams.maskImage: 2048x1024 is not a supported input image size."
        );
        let edge = json!({"taskType": "BACKGROUND_REMOVAL",
            "backgroundRemovalParams": {"image": png(1408, 704)}});
        assert_eq!(AmazonImage.parse_request(TITAN_V2, &edge).unwrap().width, 1408);
        // Nova Canvas takes up to 4096 a side.
        let nova = json!({"taskType": "BACKGROUND_REMOVAL",
            "backgroundRemovalParams": {"image": png(2048, 1024)}});
        assert_eq!(AmazonImage.parse_request(NOVA_CANVAS, &nova).unwrap().width, 2048);

        // A file over 5 MB (a PNG header and padding).
        let mut file = solid_png(512, 512, [1, 2, 3]);
        file.resize((5 << 20) + 1, 0);
        let file = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(file)
        };
        let body = json!({"taskType": "BACKGROUND_REMOVAL",
            "backgroundRemovalParams": {"image": file}});
        assert_eq!(
            error(TITAN_V2, &body),
            "backgroundRemovalParams.image: the image has 5242881 bytes, over the 5 MB an input \
             image may have."
        );
        // Nova Canvas documents no file size.
        assert!(AmazonImage.parse_request(NOVA_CANVAS, &body).is_ok());
    }

    #[test]
    fn nova_canvas_inputs_need_not_be_multiples_of_16() {
        for (width, height) in [(500, 500), (1000, 750), (321, 1283)] {
            let body = json!({"taskType": "BACKGROUND_REMOVAL",
                "backgroundRemovalParams": {"image": png(width, height)}});
            let request = AmazonImage.parse_request(NOVA_CANVAS, &body).unwrap();
            assert_eq!((request.width, request.height), (width, height));
        }
        // The other input rules stand: 320 to 4096 a side, 1:4 to 4:1, 4,194,304 pixels.
        for (width, height) in [(319, 400), (4097, 1024), (400, 1601), (2049, 2048)] {
            let body = json!({"taskType": "BACKGROUND_REMOVAL",
                "backgroundRemovalParams": {"image": png(width, height)}});
            assert_eq!(
                error(NOVA_CANVAS, &body),
                format!(
                    "backgroundRemovalParams.image: {width}x{height} is not a supported input \
                     image size."
                )
            );
        }
    }

    #[test]
    fn titan_masked_edits_take_a_size_return_mask_and_a_long_mask_prompt() {
        let image = png(640, 384);
        let masked = |task_type: &str, params: &str| {
            json!({"taskType": task_type, params: {"image": image, "text": "a beach",
                "maskPrompt": "a".repeat(2000), "returnMask": true},
                "imageGenerationConfig": {"width": 512, "height": 512, "seed": 7}})
        };
        for body in
            [masked("INPAINTING", "inPaintingParams"), masked("OUTPAINTING", "outPaintingParams")]
        {
            for model_id in [TITAN_V1, TITAN_V2] {
                let request = AmazonImage.parse_request(model_id, &body).unwrap();
                // The answer has the input's size, whatever the config says.
                assert_eq!((request.width, request.height), (640, 384), "{model_id} {body}");
            }
        }
        // Nova Canvas: no mask prompt length either, a seed past 858,993,459.
        let body = json!({"taskType": "INPAINTING", "inPaintingParams": {"image": image,
            "maskPrompt": "a".repeat(2000)}, "imageGenerationConfig": {"seed": 2_147_483_646_u64}});
        assert_eq!(
            AmazonImage.parse_request(NOVA_CANVAS, &body).unwrap().seed,
            Some(2_147_483_646)
        );
    }
}
