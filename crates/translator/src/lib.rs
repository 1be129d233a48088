//! Pure mapping between the gateway's unified requests and answers and each Bedrock
//! model family's InvokeModel bodies.
//!
//! The crate does no I/O. A request goes through [`encode_text_request`] (or the
//! embedding and image counterparts) to become the JSON body one model family expects;
//! that family's response body, or each decoded stream chunk, comes back through
//! [`decode_text_response`] or a [`TextStreamDecoder`]. Which family a Bedrock model id
//! belongs to is answered by [`family_for`]; the families themselves live one per file
//! under `families/`.

mod codec;
mod embed;
mod error;
mod families;
mod image;
mod legacy;
mod unified;

pub use crate::codec::{
    Decoded, Finished, TextStreamDecoder, decode_embed_response, decode_image_response,
    decode_text_response, encode_embed_requests, encode_image_request, encode_text_request,
    max_output_tokens_in_body, max_output_tokens_in_json,
};
pub use crate::embed::{EmbedRequest, Embeddings, InputType};
pub use crate::error::TranslateError;
pub use crate::families::{
    EmbeddingFamily, FAMILIES, FamilyRef, ImageFamily, Kind, StopMode, StreamTextFilter,
    TextFamily, base_model_id, family_by_id, family_for,
};
pub use crate::image::{
    ImageEditRequest, ImageRequest, ImageTask, Images, OutpaintingMode, encode_image_edit_request,
};
pub use crate::legacy::legacy_note;
pub use crate::unified::{
    Content, Conversation, IMAGE_MEDIA_TYPES, Message, Param, Part, ResponseFormat, Role,
    StopReason, StreamAccumulator, StreamEvent, Tool, ToolCall, ToolCallDelta, ToolChoice,
    UnifiedRequest, UnifiedResponse, Usage, VIDEO_FORMATS,
};
