//! Pure mapping between the gateway's unified request and answer and each Bedrock
//! model family's InvokeModel bodies.
//!
//! The crate does no I/O: it turns a [`UnifiedRequest`] into the JSON body one model
//! family expects, and turns that family's response body, or one decoded stream chunk,
//! back into unified types. Which family a Bedrock model id belongs to is answered by
//! [`family_for`]; the families themselves live one per file under `families/`.

mod error;
mod families;
mod unified;

pub use crate::error::TranslateError;
pub use crate::families::{FAMILIES, Family, base_model_id, family_by_id, family_for};
pub use crate::unified::{
    StopReason, StreamAccumulator, StreamEvent, UnifiedRequest, UnifiedResponse, Usage,
};
