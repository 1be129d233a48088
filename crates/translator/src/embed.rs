//! The unified embedding request and answer.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::unified::Param;

/// Texts to embed, whatever the model. The server fans a batch out over as many
/// InvokeModel calls as the family needs ([`crate::EmbeddingFamily::max_batch`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedRequest {
    pub input: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_type: Option<InputType>,
    /// Model-specific body fields merged into every InvokeModel body.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// What the embedded texts are for (Cohere's `input_type`, Nova's `embeddingPurpose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    SearchDocument,
    SearchQuery,
    Classification,
    Clustering,
}

/// The vectors of one InvokeModel call, in input order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    /// Input tokens, where the body says; else the server reads Bedrock's header.
    pub input_tokens: Option<u32>,
}

impl EmbedRequest {
    pub fn validate(&self) -> Result<(), TranslateError> {
        if self.input.is_empty() {
            return Err(TranslateError::InvalidRequest("`input` must not be empty".to_owned()));
        }
        if self.input.iter().any(String::is_empty) {
            return Err(TranslateError::InvalidRequest(
                "`input` texts must not be empty strings".to_owned(),
            ));
        }
        if self.dimensions == Some(0) {
            return Err(TranslateError::InvalidRequest(
                "`dimensions` must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }

    /// The optional parameters this request sets.
    pub fn params_set(&self) -> Vec<Param> {
        let mut params = Vec::new();
        if self.dimensions.is_some() {
            params.push(Param::Dimensions);
        }
        if self.normalize.is_some() {
            params.push(Param::Normalize);
        }
        if self.input_type.is_some() {
            params.push(Param::InputType);
        }
        params
    }
}
