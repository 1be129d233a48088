//! The one error type of the translator. Callers map it to a status; this crate
//! knows nothing of HTTP.

/// What can go wrong while mapping a request or an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TranslateError {
    /// The unified request is not valid whatever the model (a negative temperature, no prompt).
    #[error("{0}")]
    InvalidRequest(String),
    /// The unified request asks for something the target family cannot honour.
    #[error("the {family} model family does not support {feature}")]
    Unsupported { family: &'static str, feature: String },
    /// Bedrock answered with a body this family's decoder does not understand.
    #[error("malformed {family} response: {detail}")]
    MalformedResponse { family: &'static str, detail: String },
    /// Bedrock answered, but the model's content filter refused the prompt or the image it
    /// generated (Stability's `finish_reasons: ["Filter reason: prompt"]`, SDXL's
    /// `finishReason: "CONTENT_FILTERED"`). The caller's request is the cause, not Bedrock.
    #[error("the content filter of the {family} model family refused the request: {detail}")]
    ContentFiltered { family: &'static str, detail: String },
}
