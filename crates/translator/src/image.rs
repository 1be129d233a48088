//! The unified image requests (text-to-image, and the edits of `/v1/images/edits`) and
//! their answer.

use serde::{Deserialize, Serialize};

use crate::codec::merge_extra;
use crate::error::TranslateError;
use crate::families::ImageFamily;
use crate::unified::Param;

/// A text-to-image request, whatever the model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRequest {
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    /// How many images; 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cfg_scale: Option<f64>,
    /// Model-specific body fields merged into the InvokeModel body.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Generated images, each a base64-encoded PNG (or the format the model produced).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Images {
    pub images: Vec<String>,
}

impl ImageRequest {
    pub fn validate(&self) -> Result<(), TranslateError> {
        let invalid = |msg: &str| Err(TranslateError::InvalidRequest(msg.to_owned()));
        if self.prompt.is_empty() {
            return invalid("`prompt` must not be empty");
        }
        if self.n == Some(0) {
            return invalid("`n` must be at least 1");
        }
        if self.width == Some(0) || self.height == Some(0) {
            return invalid("`width` and `height` must be at least 1");
        }
        if self.cfg_scale.is_some_and(|c| !c.is_finite() || c < 0.0) {
            return invalid("`cfg_scale` must be a number >= 0");
        }
        Ok(())
    }

    /// The optional parameters this request sets.
    pub fn params_set(&self) -> Vec<Param> {
        let mut params = Vec::new();
        if self.negative_prompt.is_some() {
            params.push(Param::NegativePrompt);
        }
        if self.n.is_some() {
            params.push(Param::ImageCount);
        }
        if self.width.is_some() || self.height.is_some() {
            params.push(Param::ImageSize);
        }
        if self.seed.is_some() {
            params.push(Param::Seed);
        }
        if self.cfg_scale.is_some() {
            params.push(Param::CfgScale);
        }
        params
    }
}

/// The image tasks beyond text-to-image that `/v1/images/edits` serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageTask {
    /// New images in the manner of 1 or more input images, optionally steered by a prompt.
    #[default]
    Variation,
    /// The inside of a mask of the one input image redrawn (removed without a prompt).
    Inpainting,
    /// The outside of a mask of the one input image redrawn, as the prompt describes.
    Outpainting,
    /// The one input image with its background made transparent.
    BackgroundRemoval,
}

impl ImageTask {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageTask::Variation => "variation",
            ImageTask::Inpainting => "inpainting",
            ImageTask::Outpainting => "outpainting",
            ImageTask::BackgroundRemoval => "background_removal",
        }
    }

    /// Whether the task redraws a masked region (`mask_prompt` or `mask_image`).
    fn takes_mask(self) -> bool {
        matches!(self, ImageTask::Inpainting | ImageTask::Outpainting)
    }
}

/// How outpainting treats the pixels inside the mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutpaintingMode {
    /// The model may alter the masked region slightly to blend the result.
    Default,
    /// The masked region is kept exactly.
    Precise,
}

/// An image edit request (variation, inpainting, outpainting, background removal),
/// whatever the model. Which fields a task takes is checked by [`ImageEditRequest::validate`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageEditRequest {
    pub task: ImageTask,
    /// The input images, base64 (PNG or JPEG): one for every task but `variation`, which
    /// takes one or more.
    pub images: Vec<String>,
    /// What to draw; required for `outpainting`, optional for `variation` and
    /// `inpainting` (without it inpainting removes what the mask covers), refused for
    /// `background_removal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    /// The region to edit described in words; `inpainting` and `outpainting` take this
    /// or `mask_image`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_prompt: Option<String>,
    /// The region to edit as a base64 black-and-white image of the input's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_image: Option<String>,
    /// `outpainting` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outpainting_mode: Option<OutpaintingMode>,
    /// `variation` only: how close the images stay to the inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity_strength: Option<f64>,
    /// How many images; 1 when absent. Not for `background_removal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// `variation` only: the other tasks answer images of the input's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cfg_scale: Option<f64>,
    /// Model-specific body fields merged into the InvokeModel body.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ImageEditRequest {
    /// Checks the fields against the task, whatever the model: the images it takes, the
    /// mask, and no field the task has no use for. Each error names the field.
    pub fn validate(&self) -> Result<(), TranslateError> {
        let task = self.task.as_str();
        let invalid = |msg: String| Err(TranslateError::InvalidRequest(msg));
        let not_for_task = |field: &str| {
            Err(TranslateError::InvalidRequest(format!(
                "`{field}` does not apply to the `{task}` task"
            )))
        };
        match (self.task, self.images.len()) {
            (_, 0) => {
                return invalid(format!(
                    "`images` must hold the input image(s) of the `{task}` task"
                ));
            }
            (ImageTask::Variation, _) | (_, 1) => {}
            (_, n_images) => {
                return invalid(format!(
                    "`images` must hold exactly one image for the `{task}` task, got {n_images}"
                ));
            }
        }
        if let Some(idx) = self.images.iter().position(String::is_empty) {
            return invalid(format!("`images[{idx}]` must not be empty"));
        }
        for (field, value) in [
            ("prompt", &self.prompt),
            ("mask_prompt", &self.mask_prompt),
            ("mask_image", &self.mask_image),
        ] {
            if value.as_deref() == Some("") {
                return invalid(format!("`{field}` must not be empty"));
            }
        }
        if self.task.takes_mask() {
            match (&self.mask_prompt, &self.mask_image) {
                (None, None) => {
                    return invalid(format!(
                        "the `{task}` task needs `mask_prompt` or `mask_image`"
                    ));
                }
                (Some(_), Some(_)) => {
                    return invalid(format!(
                        "`mask_prompt` and `mask_image` are exclusive: set one for the `{task}` task"
                    ));
                }
                _ => {}
            }
        } else if self.mask_prompt.is_some() {
            return not_for_task("mask_prompt");
        } else if self.mask_image.is_some() {
            return not_for_task("mask_image");
        }
        if self.task == ImageTask::Outpainting && self.prompt.is_none() {
            return invalid("`prompt` is required for the `outpainting` task".to_owned());
        }
        if self.task != ImageTask::Outpainting && self.outpainting_mode.is_some() {
            return not_for_task("outpainting_mode");
        }
        if self.task != ImageTask::Variation {
            if self.similarity_strength.is_some() {
                return not_for_task("similarity_strength");
            }
            for (field, value) in [("width", self.width), ("height", self.height)] {
                if value.is_some() {
                    return invalid(format!(
                        "`{field}` does not apply to the `{task}` task: its images have the \
                         input image's size"
                    ));
                }
            }
        }
        if self.task == ImageTask::BackgroundRemoval {
            let set = [
                ("prompt", self.prompt.is_some()),
                ("negative_prompt", self.negative_prompt.is_some()),
                ("n", self.n.is_some()),
                ("seed", self.seed.is_some()),
                ("cfg_scale", self.cfg_scale.is_some()),
            ];
            if let Some((field, _)) = set.iter().find(|(_, is_set)| *is_set) {
                return not_for_task(field);
            }
        }
        if self.n == Some(0) {
            return invalid("`n` must be at least 1".to_owned());
        }
        if self.width == Some(0) || self.height == Some(0) {
            return invalid("`width` and `height` must be at least 1".to_owned());
        }
        if self.cfg_scale.is_some_and(|c| !c.is_finite() || c < 0.0) {
            return invalid("`cfg_scale` must be a number >= 0".to_owned());
        }
        if self.similarity_strength.is_some_and(|s| !s.is_finite()) {
            return invalid("`similarity_strength` must be a number".to_owned());
        }
        Ok(())
    }
}

/// The InvokeModel body of an image edit: the request validated for its task, the
/// family's body built ([`crate::ImageFamily::encode_edit_request`]; a family without
/// edits refuses with [`TranslateError::Unsupported`]) and `extra` merged in. The answer
/// decodes with [`crate::decode_image_response`].
pub fn encode_image_edit_request(
    family: &dyn ImageFamily,
    req: &ImageEditRequest,
) -> Result<serde_json::Value, TranslateError> {
    req.validate()?;
    let mut body = family.encode_edit_request(req)?;
    merge_extra(family.id(), &mut body, &req.extra, family.mapped_paths())?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::families::{FamilyRef, family_by_id};

    fn request(task: ImageTask) -> ImageEditRequest {
        ImageEditRequest { task, images: vec!["AA==".to_owned()], ..ImageEditRequest::default() }
    }

    fn error(req: &ImageEditRequest) -> String {
        match req.validate() {
            Err(TranslateError::InvalidRequest(message)) => message,
            other => panic!("{req:?}: {other:?}"),
        }
    }

    #[test]
    fn each_task_takes_only_its_fields() {
        use ImageTask::{BackgroundRemoval, Inpainting, Outpainting, Variation};
        let masked = |task| ImageEditRequest { mask_prompt: Some("a cat".into()), ..request(task) };
        let cases = [
            (ImageEditRequest { images: vec![], ..request(Variation) }, "`images`"),
            (
                ImageEditRequest { images: vec!["A".into(); 2], ..request(Inpainting) },
                "exactly one",
            ),
            (ImageEditRequest { images: vec!["".into()], ..request(Variation) }, "`images[0]`"),
            (request(Inpainting), "`mask_prompt` or `mask_image`"),
            (
                ImageEditRequest { mask_image: Some("AA==".into()), ..masked(Inpainting) },
                "exclusive",
            ),
            (masked(Outpainting), "`prompt` is required"),
            (masked(Variation), "`mask_prompt` does not apply to the `variation` task"),
            (
                ImageEditRequest { mask_image: Some("AA==".into()), ..request(BackgroundRemoval) },
                "`mask_image` does not apply",
            ),
            (
                ImageEditRequest {
                    outpainting_mode: Some(OutpaintingMode::Precise),
                    ..masked(Inpainting)
                },
                "`outpainting_mode` does not apply to the `inpainting` task",
            ),
            (
                ImageEditRequest { similarity_strength: Some(0.5), ..masked(Inpainting) },
                "`similarity_strength` does not apply",
            ),
            (ImageEditRequest { width: Some(512), ..masked(Inpainting) }, "`width` does not apply"),
            (ImageEditRequest { height: Some(512), ..request(BackgroundRemoval) }, "`height`"),
            (
                ImageEditRequest { prompt: Some("x".into()), ..request(BackgroundRemoval) },
                "`prompt` does not apply to the `background_removal` task",
            ),
            (ImageEditRequest { n: Some(2), ..request(BackgroundRemoval) }, "`n` does not apply"),
            (
                ImageEditRequest { prompt: Some(String::new()), ..request(Variation) },
                "`prompt` must not be empty",
            ),
            (ImageEditRequest { n: Some(0), ..request(Variation) }, "`n` must be at least 1"),
            (ImageEditRequest { cfg_scale: Some(f64::NAN), ..request(Variation) }, "`cfg_scale`"),
        ];
        for (req, expected) in cases {
            let message = error(&req);
            assert!(message.contains(expected), "{req:?}: {message}");
        }
        for req in [
            ImageEditRequest { images: vec!["AA==".into(); 3], ..request(Variation) },
            masked(Inpainting),
            ImageEditRequest { prompt: Some("a beach".into()), ..masked(Outpainting) },
            request(BackgroundRemoval),
        ] {
            assert_eq!(req.validate(), Ok(()), "{req:?}");
        }
    }

    #[test]
    fn a_family_without_edits_refuses_them_naming_itself() {
        for id in ["stability_image", "stability_sdxl"] {
            let Some(FamilyRef::Image(family)) = family_by_id(id) else { panic!("{id}") };
            let err = encode_image_edit_request(family, &request(ImageTask::BackgroundRemoval))
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "the {id} model family does not support the `background_removal` image task"
                )
            );
        }
    }

    #[test]
    fn the_request_reads_snake_case_tasks_and_modes() {
        let req: ImageEditRequest = serde_json::from_value(serde_json::json!({
            "task": "outpainting", "images": ["AA=="], "prompt": "a beach",
            "mask_prompt": "the dog", "outpainting_mode": "precise"
        }))
        .unwrap();
        assert_eq!(req.task, ImageTask::Outpainting);
        assert_eq!(req.outpainting_mode, Some(OutpaintingMode::Precise));
        let unknown = serde_json::from_value::<ImageEditRequest>(
            serde_json::json!({"task": "upscale", "images": ["AA=="]}),
        );
        assert!(unknown.is_err());
    }
}
