//! The unified image-generation request and answer.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
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
