//! Text generation shared by every API shape that offers it (`/v1/generate`, the
//! OpenAI-compatible routes): the alias defaults, one whole answer, or a stream of
//! items read from Bedrock as they arrive.

use std::collections::VecDeque;

use translator::{
    FamilyRef, Kind, StopReason, TextFamily, TextStreamDecoder, UnifiedRequest, UnifiedResponse,
    Usage,
};

use crate::app::AppState;
use crate::config::ModelRoute;
use crate::error::ApiError;
use crate::upstream::ChunkStream;

/// A text alias resolved: its route and family.
pub struct TextTarget<'a> {
    pub route: &'a ModelRoute,
    pub family: &'static dyn TextFamily,
}

/// One step of a streamed answer.
#[derive(Debug)]
pub enum StreamItem {
    /// Text to forward now.
    Delta(String),
    /// The answer is complete; nothing follows.
    Done { stop_reason: StopReason, usage: Usage },
    /// The stream broke after it started; nothing follows.
    Failed(ApiError),
}

/// A streamed answer, read from Bedrock one chunk at a time: nothing is buffered
/// beyond one chunk (and, where the gateway emulates stop sequences, the few
/// characters that may begin one).
pub struct TextStream {
    chunks: ChunkStream,
    decoder: Option<TextStreamDecoder>,
    pending: VecDeque<StreamItem>,
}

/// Resolves `alias` to a text model.
pub fn text_target<'a>(state: &'a AppState, alias: &str) -> Result<TextTarget<'a>, ApiError> {
    let route = state.route_of_kind(alias, Kind::Text)?;
    let FamilyRef::Text(family) = route.family else {
        return Err(ApiError::Internal("a text route without a text family".to_owned()));
    };
    Ok(TextTarget { route, family })
}

/// Fills the fields the request leaves out from the alias defaults.
pub fn apply_defaults(route: &ModelRoute, request: &mut UnifiedRequest) {
    let defaults = &route.defaults;
    request.max_tokens = request.max_tokens.or(defaults.max_tokens);
    request.temperature = request.temperature.or(defaults.temperature);
    request.top_p = request.top_p.or(defaults.top_p);
    request.top_k = request.top_k.or(defaults.top_k);
    if request.stop.is_empty()
        && let Some(stop) = &defaults.stop
    {
        request.stop.clone_from(stop);
    }
}

/// One whole answer; usage falls back to Bedrock's token-count headers.
pub async fn complete(
    state: &AppState,
    target: &TextTarget<'_>,
    request: &UnifiedRequest,
) -> Result<UnifiedResponse, ApiError> {
    let body = encode(target, request)?;
    let output = state.upstream.invoke(&target.route.model_id, body, "application/json").await?;
    let mut answer = translator::decode_text_response(target.family, request, &output.body)?;
    answer.usage = answer.usage.or(output.header_usage);
    Ok(answer)
}

/// Opens a streamed answer. Errors before the first chunk come back here, so that
/// they still get their own HTTP status.
pub async fn open_stream(
    state: &AppState,
    target: &TextTarget<'_>,
    request: &UnifiedRequest,
) -> Result<TextStream, ApiError> {
    let body = encode(target, request)?;
    let chunks = state.upstream.invoke_stream(&target.route.model_id, body).await?;
    Ok(TextStream {
        chunks,
        decoder: Some(TextStreamDecoder::new(target.family, request)),
        pending: VecDeque::new(),
    })
}

fn encode(target: &TextTarget<'_>, request: &UnifiedRequest) -> Result<Vec<u8>, ApiError> {
    let body = translator::encode_text_request(target.family, request)?;
    serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))
}

impl TextStream {
    /// The next item; `None` after `Done` or `Failed`.
    pub async fn next(&mut self) -> Option<StreamItem> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            let decoder = self.decoder.as_mut()?;
            let chunk = match self.chunks.next_chunk().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(error)) => {
                    self.decoder = None;
                    return Some(StreamItem::Failed(ApiError::Upstream(error)));
                }
                None => {
                    self.finish();
                    continue;
                }
            };
            match decoder.push(&chunk) {
                Ok(decoded) => {
                    if !decoded.text.is_empty() {
                        self.pending.push_back(StreamItem::Delta(decoded.text));
                    }
                    // An emulated stop sequence ended the answer: stop reading Bedrock.
                    if decoded.finished {
                        self.finish();
                    }
                }
                Err(error) => {
                    self.decoder = None;
                    return Some(StreamItem::Failed(error.into()));
                }
            }
        }
    }

    /// Queues the end of the answer: any held-back text, then `Done` (or `Failed` for
    /// a stream that ended before the model said why it stopped).
    fn finish(&mut self) {
        let Some(decoder) = self.decoder.take() else {
            return;
        };
        match decoder.finish() {
            Ok(finished) => {
                if !finished.text.is_empty() {
                    self.pending.push_back(StreamItem::Delta(finished.text));
                }
                self.pending.push_back(StreamItem::Done {
                    stop_reason: finished.stop_reason,
                    usage: finished.usage,
                });
            }
            Err(error) => self.pending.push_back(StreamItem::Failed(error.into())),
        }
    }
}
