//! The `ImageFamily` trait, the registry of every simulated image model and the deterministic
//! images they answer with.
//!
//! | id | base model ids | request body | response body |
//! |---|---|---|---|
//! | `amazon_image` | `amazon.titan-image-generator-v1`, `amazon.titan-image-generator-v2:0`, `amazon.nova-canvas-v1:0` | `taskType: TEXT_IMAGE`, `textToImageParams`, `imageGenerationConfig`; the edits `IMAGE_VARIATION`, `INPAINTING`, `OUTPAINTING`, `BACKGROUND_REMOVAL` (`amazon_image/edit.rs`) | `{"images": [...]}` |
//! | `stability_sdxl` | `stability.stable-diffusion-xl-v1` | `text_prompts`, `height`, `width`, `cfg_scale`, ... | `{"result", "artifacts"}`, or the raw PNG for `Accept: image/png` |
//! | `stability_image` | `stability.sd3-large-v1:0`, `stability.sd3-5-large-v1:0`, `stability.stable-image-ultra-v1:0`, `stability.stable-image-ultra-v1:1`, `stability.stable-image-core-v1:0`, `stability.stable-image-core-v1:1` | `prompt`, `aspect_ratio`, `output_format`, ... | `{"seeds", "finish_reasons", "images"}` |
//!
//! Image models answer InvokeModel only; InvokeModelWithResponseStream on them is a 400
//! ValidationException, and so is an `Accept` other than JSON, except `image/png` for SDXL
//! (`invoke.rs`).
//!
//! Each image is a solid-colour PNG ([`png::solid_png`]) of the size the request asks for (or
//! the size its aspect ratio stands for). The colour is a pure function of the prompt and the
//! image's seed; the seed is the request's, plus the image's index, or, when the request gives
//! none, one derived from the prompt. So the same request always gets the same images, and the
//! images of one request differ. The pixels mean nothing: tests can check the PNG structure,
//! the size and the determinism, not the content. `output_format: jpeg` still answers PNG bytes.
//!
//! A prompt containing [`FILTER_PROMPT_TRIGGER`] (`sim-content-filter:prompt`) or
//! [`FILTER_IMAGE_TRIGGER`] (`sim-content-filter:image`) stands for one the model's content
//! filter refuses, at the prompt or at the generated image: each image carries that
//! [`ContentFilter`], and the Stability families answer their documented refusal (SDXL's
//! `finishReason: "CONTENT_FILTERED"`; SD3 and Stable Image's `finish_reasons: ["Filter
//! reason: prompt"]` or `["Filter reason: output image"]`). Families without such an answer
//! ignore it.
//!
//! Adding a family is one new file here plus its `mod` line and its entry in [`IMAGE_FAMILIES`].

use serde_json::Value;

use crate::error::BedrockError;
use crate::generate::fnv1a_64;

mod amazon_image;
pub(crate) mod png;
mod stability_image;
mod stability_sdxl;

/// One simulated image family: how its request bodies are checked and its answers shaped.
///
/// Implementations are unit structs, pure and synchronous.
pub(crate) trait ImageFamily: Send + Sync {
    /// The snake_case id, also the file name.
    fn id(&self) -> &'static str;
    /// Whether this family simulates `base_model_id` (no ARN, no geography prefix).
    fn matches(&self, base_model_id: &str) -> bool;
    /// Validates a request body the way Bedrock does and reads what to draw.
    fn parse_request(
        &self,
        base_model_id: &str,
        body: &Value,
    ) -> Result<ImageRequest, BedrockError>;
    /// Whether `Accept: image/png` is answered with the raw PNG of the (only) image.
    fn answers_raw_png(&self) -> bool {
        false
    }
    /// The InvokeModel JSON response body carrying `images`, drawn for a request to
    /// `base_model_id`.
    fn response_body(&self, base_model_id: &str, images: &[GeneratedImage]) -> Vec<u8>;
}

/// What a family asks the simulator to draw, read from the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRequest {
    /// The positive prompt text; it seeds the colours.
    pub(crate) prompt: String,
    pub(crate) n_images: u32,
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// The seed of the first image; `None` derives one from the prompt.
    pub(crate) seed: Option<u64>,
    /// The largest seed the model reports; image seeds wrap below it.
    pub(crate) max_seed: u64,
}

/// One simulated image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GeneratedImage {
    /// The seed reported for this image.
    pub(crate) seed: u64,
    /// The PNG file.
    pub(crate) png: Vec<u8>,
    /// Whether, and where, the content filter refused it (a trigger in the prompt).
    pub(crate) filtered: Option<ContentFilter>,
}

/// Where the simulated content filter refuses a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentFilter {
    /// The prompt itself.
    Prompt,
    /// The image generated for it.
    OutputImage,
}

/// A prompt containing this is refused by the content filter, as a prompt.
pub(crate) const FILTER_PROMPT_TRIGGER: &str = "sim-content-filter:prompt";

/// A prompt containing this gets an image the content filter refuses.
pub(crate) const FILTER_IMAGE_TRIGGER: &str = "sim-content-filter:image";

/// The content filter's verdict on `prompt`: its triggers, the prompt one first.
pub(crate) fn content_filter(prompt: &str) -> Option<ContentFilter> {
    if prompt.contains(FILTER_PROMPT_TRIGGER) {
        Some(ContentFilter::Prompt)
    } else if prompt.contains(FILTER_IMAGE_TRIGGER) {
        Some(ContentFilter::OutputImage)
    } else {
        None
    }
}

/// Every image family, in the order [`image_family_for`] tries them.
pub(crate) static IMAGE_FAMILIES: &[&dyn ImageFamily] =
    &[&amazon_image::AmazonImage, &stability_sdxl::StabilitySdxl, &stability_image::StabilityImage];

/// The image family that simulates `base_model_id`, if any.
pub(crate) fn image_family_for(base_model_id: &str) -> Option<&'static dyn ImageFamily> {
    IMAGE_FAMILIES.iter().copied().find(|family| family.matches(base_model_id))
}

/// Draws the images of `request`.
pub(crate) fn generate_images(request: &ImageRequest) -> Vec<GeneratedImage> {
    let prompt_hash = fnv1a_64(request.prompt.as_bytes());
    let filtered = content_filter(&request.prompt);
    let span = request.max_seed.saturating_add(1).max(1);
    let first_seed = request.seed.unwrap_or(prompt_hash % span);
    (0..u64::from(request.n_images))
        .map(|image_idx| {
            let seed = first_seed.wrapping_add(image_idx) % span;
            let colour = fnv1a_64(&[prompt_hash.to_be_bytes(), seed.to_be_bytes()].concat());
            let [red, green, blue, ..] = colour.to_be_bytes();
            GeneratedImage {
                seed,
                png: png::solid_png(request.width, request.height, [red, green, blue]),
                filtered,
            }
        })
        .collect()
}

/// Standard base64 with padding, as the image bodies carry PNGs.
pub(crate) fn base64_png(image: &GeneratedImage) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(&image.png)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::families::family_for;

    #[test]
    fn ids_are_unique_and_no_model_is_claimed_twice() {
        let mut ids: Vec<_> = IMAGE_FAMILIES.iter().map(|family| family.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), IMAGE_FAMILIES.len());

        let known = [
            "amazon.titan-image-generator-v1",
            "amazon.titan-image-generator-v2:0",
            "amazon.nova-canvas-v1:0",
            "stability.stable-diffusion-xl-v1",
            "stability.sd3-large-v1:0",
            "stability.sd3-5-large-v1:0",
            "stability.stable-image-ultra-v1:0",
            "stability.stable-image-ultra-v1:1",
            "stability.stable-image-core-v1:0",
            "stability.stable-image-core-v1:1",
        ];
        for model_id in known {
            let n_claims = IMAGE_FAMILIES.iter().filter(|family| family.matches(model_id)).count();
            assert_eq!(n_claims, 1, "{model_id}");
            assert!(family_for(model_id).is_none(), "a text family claims {model_id}");
            assert!(crate::embeddings::embedding_family_for(model_id).is_none(), "{model_id}");
        }
        for model_id in ["amazon.nova-reel-v1:0", "stability.stable-diffusion-xl-v0", "stability"] {
            assert!(image_family_for(model_id).is_none(), "{model_id}");
        }
        let raw_png: Vec<_> = IMAGE_FAMILIES
            .iter()
            .filter(|family| family.answers_raw_png())
            .map(|family| family.id())
            .collect();
        assert_eq!(raw_png, ["stability_sdxl"]);
    }

    #[test]
    fn images_are_deterministic_and_differ_by_seed() {
        let request = ImageRequest {
            prompt: "a red fox".to_owned(),
            n_images: 3,
            width: 64,
            height: 32,
            seed: Some(9),
            max_seed: 10,
        };
        let images = generate_images(&request);
        assert_eq!(images, generate_images(&request));
        let seeds: Vec<u64> = images.iter().map(|image| image.seed).collect();
        assert_eq!(seeds, [9, 10, 0]);
        assert_ne!(images[0].png, images[1].png);

        let unseeded = ImageRequest { seed: None, n_images: 1, ..request.clone() };
        let derived = generate_images(&unseeded)[0].seed;
        assert_eq!(derived, fnv1a_64(b"a red fox") % 11);
        let other = ImageRequest { prompt: "a blue whale".to_owned(), ..unseeded };
        assert_ne!(generate_images(&other)[0].png, generate_images(&request)[0].png);
        assert!(images.iter().all(|image| image.filtered.is_none()));
    }

    #[test]
    fn trigger_words_mark_the_images_filtered() {
        let request = |prompt: &str| ImageRequest {
            prompt: prompt.to_owned(),
            n_images: 2,
            width: 8,
            height: 8,
            seed: None,
            max_seed: 10,
        };
        let verdicts = |prompt: &str| -> Vec<Option<ContentFilter>> {
            generate_images(&request(prompt)).iter().map(|image| image.filtered).collect()
        };
        assert_eq!(verdicts("a fox sim-content-filter:prompt"), [Some(ContentFilter::Prompt); 2]);
        assert_eq!(verdicts("sim-content-filter:image"), [Some(ContentFilter::OutputImage); 2]);
        assert_eq!(
            verdicts("sim-content-filter:image sim-content-filter:prompt"),
            [Some(ContentFilter::Prompt); 2]
        );
        assert_eq!(verdicts("a content filter, sim-content-filter"), [None; 2]);
    }
}
