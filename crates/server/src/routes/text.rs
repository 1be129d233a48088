//! Text generation shared by every API shape that offers it (`/v1/generate`, the
//! OpenAI-compatible routes): the alias defaults, one whole answer, or a stream of
//! items read from Bedrock as they arrive, all through the pipeline.
//!
//! A stream watches the gateway's [`Drain`](crate::drain::Drain): when a shutdown's drain runs out it ends at
//! once with [`ApiError::ShuttingDown`], which each API shape sends in its own encoding.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use translator::{
    FamilyRef, Kind, StopReason, TextStreamDecoder, ToolCallDelta, UnifiedRequest, UnifiedResponse,
    Usage,
};

use crate::app::AppState;
use crate::auth::Caller;
use crate::config::{ModelRoute, Target};
use crate::drain::Waiter;
use crate::error::ApiError;
use crate::options::{BedrockOptions, RequestOptions};
use crate::pipeline::{Call, PipelineStream};
use crate::upstream::RawRequest;

/// One step of a streamed answer.
#[derive(Debug)]
pub enum StreamItem {
    /// Text to forward now.
    Delta(String),
    /// A piece of the model's reasoning (only when the request asked for it).
    Reasoning(String),
    /// A piece of a tool call: its index among the answer's calls (from 0), its id and name
    /// on its first piece, and the next bytes of its arguments' JSON text.
    ToolCall(ToolCallDelta),
    /// The answer is complete; nothing follows.
    Done { stop_reason: StopReason, usage: Usage, cache: CacheTokens },
    /// The stream broke after it started; nothing follows.
    Failed(ApiError),
}

/// A streamed answer, read from Bedrock one chunk at a time: nothing is buffered
/// beyond one chunk (and, where the gateway emulates stop sequences, the few
/// characters that may begin one).
pub struct TextStream {
    chunks: PipelineStream,
    decoder: Option<TextStreamDecoder>,
    pending: VecDeque<StreamItem>,
    /// The target that serves the stream.
    pub target: Arc<Target>,
    /// The service tier Bedrock says serves it (`X-Amzn-Bedrock-Service-Tier`), if it says.
    pub service_tier: Option<String>,
    /// The answer so far, for its `debug` line when `log_prompts` is on.
    logged_answer: Option<String>,
    /// The end of the shutdown's drain, which ends the stream.
    drain: Waiter,
}

/// An API shape's encoding of a streamed answer: the events it opens with, and the events
/// of each [`StreamItem`] (see [`encoded_events`]).
pub trait ItemEncoder: Send + 'static {
    /// The events before the first item (OpenAI's role chunk, Anthropic's `message_start`,
    /// Converse's `messageStart`, ...), written as soon as the stream opened.
    fn start(&mut self, out: &mut Vec<u8>);
    /// Writes the events of `item`; whether the stream ends with them (after `Done` or
    /// `Failed`).
    fn item(&mut self, out: &mut Vec<u8>, item: StreamItem) -> bool;
}

/// The encoded events of `stream`, one buffer per item (the opening events first), for
/// [`crate::routes::sse::StreamBody`].
pub fn encoded_events<E: ItemEncoder>(
    encoder: E,
    stream: TextStream,
) -> impl futures_util::Stream<Item = Vec<u8>> + Send {
    struct State<E> {
        encoder: E,
        /// Boxed: `unfold` moves the state in and out of a future per event.
        stream: Box<TextStream>,
        started: bool,
        ended: bool,
    }
    let state = State { encoder, stream: Box::new(stream), started: false, ended: false };
    futures_util::stream::unfold(state, |mut state| async move {
        if state.ended {
            return None;
        }
        let mut out = crate::routes::sse::event_buffer();
        if !state.started {
            state.started = true;
            state.encoder.start(&mut out);
            if !out.is_empty() {
                return Some((out, state));
            }
        }
        let item = state.stream.next().await?;
        state.ended = state.encoder.item(&mut out, item);
        Some((out, state))
    })
}

/// Prompt-cache tokens of a call, where Bedrock reports them (`X-Amzn-Bedrock-Cache-*`
/// headers, a stream's invocation metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheTokens {
    pub read: Option<u32>,
    pub write: Option<u32>,
}

/// Resolves `alias` to a text model's route.
pub fn text_route<'a>(state: &'a AppState, alias: &str) -> Result<&'a ModelRoute, ApiError> {
    state.route_of_kind(alias, Kind::Text)
}

/// Fills the fields the request leaves out from the alias defaults.
pub fn apply_defaults(route: &ModelRoute, request: &mut UnifiedRequest) {
    let defaults = &route.defaults;
    request.max_tokens = request.max_tokens.or(defaults.max_tokens);
    request.temperature = request.temperature.or(defaults.temperature);
    request.top_p = request.top_p.or(defaults.top_p);
    request.top_k = request.top_k.or(defaults.top_k);
    request.cache_prompt = request.cache_prompt || defaults.cache_prompt.unwrap_or(false);
    if request.stop.is_empty()
        && let Some(stop) = &defaults.stop
    {
        request.stop.clone_from(stop);
    }
}

/// One whole answer and what Bedrock said about serving it.
#[derive(Debug)]
pub struct Completed {
    pub answer: UnifiedResponse,
    /// The target that served it.
    pub target: Arc<Target>,
    pub cache: CacheTokens,
    /// The service tier Bedrock says served it (`X-Amzn-Bedrock-Service-Tier`), if it says.
    pub service_tier: Option<String>,
}

/// One whole answer; usage falls back to Bedrock's token-count headers.
pub async fn complete(
    state: &AppState,
    caller: &Caller,
    route: &ModelRoute,
    mut request: UnifiedRequest,
    options: Option<&RequestOptions>,
) -> Result<Completed, ApiError> {
    crate::image_fetch::resolve(&state.image_fetch, &mut request).await?;
    let call = call(caller, route, &request);
    let bodies = Bodies::new(route, &request, options);
    release_text(state, &mut request);
    let served = state.pipeline.invoke(call, &|target| bodies.get(target)).await?;
    drop(bodies);
    let family = text_family(&served.target)?;
    let mut answer = translator::decode_text_response(family, &request, &served.output.body)?;
    answer.usage = answer.usage.or(served.output.headers.usage());
    let (read, write) = served.output.headers.cache_tokens();
    let cache = CacheTokens { read, write };
    let service_tier = served.output.headers.get(SERVICE_TIER_HEADER).map(str::to_owned);
    if state.log_prompts {
        log_prompt(&request);
        tracing::debug!(target: PROMPT_LOG_TARGET, message = "answer", answer = %answer.text);
    }
    Ok(Completed { answer, target: served.target, cache, service_tier })
}

/// Opens a streamed answer. Errors before the first chunk come back here, so that
/// they still get their own HTTP status.
pub async fn open_stream(
    state: &AppState,
    caller: &Caller,
    route: &ModelRoute,
    mut request: UnifiedRequest,
    options: Option<&RequestOptions>,
) -> Result<TextStream, ApiError> {
    crate::image_fetch::resolve(&state.image_fetch, &mut request).await?;
    let call = call(caller, route, &request);
    let bodies = Bodies::new(route, &request, options);
    release_text(state, &mut request);
    let encoder = |target: &Target| bodies.get(target);
    let opened = state.pipeline.stream(call, &encoder);
    // A stream still waiting for its first chunk when the drain runs out is refused.
    let served = tokio::select! {
        biased;
        () = state.drain.wait() => return Err(ApiError::ShuttingDown),
        served = opened => served?,
    };
    drop(bodies);
    let family = text_family(&served.target)?;
    if state.log_prompts {
        log_prompt(&request);
    }
    let service_tier = served.output.headers.get(SERVICE_TIER_HEADER).map(str::to_owned);
    Ok(TextStream {
        service_tier,
        chunks: served.output,
        decoder: Some(TextStreamDecoder::new(family, &request)),
        pending: VecDeque::new(),
        target: served.target,
        logged_answer: state.log_prompts.then(String::new),
        drain: state.drain.waiter(),
    })
}

/// Bedrock's answer header naming the service tier that served a call.
const SERVICE_TIER_HEADER: &str = "x-amzn-bedrock-service-tier";

/// The target of the prompt and answer lines (`log_prompts = true`, at `debug`).
pub const PROMPT_LOG_TARGET: &str = "bedrock_gateway::prompts";

/// The most answer text a streamed answer keeps for its `debug` line.
const MAX_LOGGED_ANSWER: usize = 64 * 1024;

fn log_prompt(request: &UnifiedRequest) {
    let messages = serde_json::to_string(&request.messages).unwrap_or_default();
    tracing::debug!(
        target: PROMPT_LOG_TARGET,
        message = "prompt",
        prompt = request.prompt.as_deref(),
        messages = %messages,
    );
}

fn call<'a>(caller: &'a Caller, route: &'a ModelRoute, request: &UnifiedRequest) -> Call<'a> {
    // A bare prompt is a text completion in OpenTelemetry's terms; messages are a chat.
    let operation = if request.messages.is_empty() && request.prompt.is_some() {
        "text_completion"
    } else {
        "chat"
    };
    caller.record().update(|fields| fields.operation = Some(operation));
    Call {
        route,
        caller: caller.key(),
        max_output_tokens: request.max_tokens.unwrap_or(0),
        record: caller.record(),
    }
}

fn text_family(target: &Target) -> Result<&'static dyn translator::TextFamily, ApiError> {
    match target.family {
        FamilyRef::Text(family) => Ok(family),
        _ => Err(ApiError::Internal("a text route without a text family".to_owned())),
    }
}

/// Every target's InvokeModel body, made before the call so that the request's text can
/// be let go while Bedrock answers ([`release_text`]): a long prompt is then held once, in
/// the body, rather than twice. The pipeline takes each target's body from here.
struct Bodies(Vec<(String, std::sync::Mutex<Encoded>)>);

/// One target's body, or why it has none.
enum Encoded {
    Body(RawRequest),
    /// The target's family is not a text family.
    Skip,
    /// The translator refused the request for this target (taken by the first ask).
    Failed(Option<ApiError>),
}

impl Bodies {
    fn new(
        route: &ModelRoute,
        request: &UnifiedRequest,
        options: Option<&RequestOptions>,
    ) -> Bodies {
        let encoded = route.targets.iter().map(|target| {
            let encoded = match encode(target, request, options) {
                Ok(Some(raw)) => Encoded::Body(raw),
                Ok(None) => Encoded::Skip,
                Err(error) => Encoded::Failed(Some(error)),
            };
            (target.name.clone(), std::sync::Mutex::new(encoded))
        });
        Bodies(encoded.collect())
    }

    /// The body for `target` (the body's bytes are shared, not copied).
    fn get(&self, target: &Target) -> Result<Option<RawRequest>, ApiError> {
        let Some((_, slot)) = self.0.iter().find(|(name, _)| *name == target.name) else {
            return Ok(None);
        };
        match &mut *slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Encoded::Body(raw) => Ok(Some(raw.clone())),
            Encoded::Skip => Ok(None),
            Encoded::Failed(error) => Err(error.take().unwrap_or_else(|| {
                ApiError::Internal(format!("the body for target {:?} was refused", target.name))
            })),
        }
    }
}

/// Lets go of what only the bodies needed: the prompt, the messages and `extra` (kept for
/// the prompt's log line when `log_prompts` is on). The stop sequences and `max_tokens`
/// stay: the answer's decoding and the reservation use them.
fn release_text(state: &AppState, request: &mut UnifiedRequest) {
    if state.log_prompts {
        return;
    }
    request.prompt = None;
    request.messages = Vec::new();
    request.extra = serde_json::Map::new();
}

/// The target family's InvokeModel body for `request`.
fn encode(
    target: &Target,
    request: &UnifiedRequest,
    options: Option<&RequestOptions>,
) -> Result<Option<RawRequest>, ApiError> {
    let FamilyRef::Text(family) = target.family else {
        return Ok(None);
    };
    let body = translator::encode_text_request(family, request)?;
    // Sized for the request's text, so that the buffer does not grow (and copy) its way
    // up to a long prompt's length.
    let text_len = request.prompt.as_ref().map_or(0, String::len)
        + request.messages.iter().map(|message| message.content.byte_len() + 32).sum::<usize>();
    let mut bytes = Vec::with_capacity(text_len + 1024);
    serde_json::to_writer(&mut bytes, &body).map_err(|e| ApiError::Internal(e.to_string()))?;
    drop(body);
    let body = bytes;
    let mut raw = RawRequest {
        body: Bytes::from(body),
        accept: Some("application/json".to_owned()),
        ..RawRequest::default()
    };
    BedrockOptions::request_from(options, &mut raw)?;
    Ok(Some(raw))
}

impl TextStream {
    /// The next item; `None` after `Done` or `Failed`.
    pub async fn next(&mut self) -> Option<StreamItem> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                self.log_answer(&item);
                return Some(item);
            }
            // Ended (after `Done` or `Failed`): nothing more.
            self.decoder.as_ref()?;
            // A chunk already there is read first: the drain's end is a flag checked at
            // each chunk, and waited on only while no chunk is there.
            let next = if self.drain.ended() {
                None
            } else {
                tokio::select! {
                    biased;
                    next = self.chunks.next_chunk() => Some(next),
                    () = &mut self.drain => None,
                }
            };
            let Some(next) = next else {
                self.decoder = None;
                let error = ApiError::ShuttingDown;
                self.chunks.failed(&error);
                return Some(StreamItem::Failed(error));
            };
            let decoder = self.decoder.as_mut()?;
            let chunk = match next {
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
                    if decoded.unrecognized {
                        self.chunks.unrecognized(&chunk);
                    }
                    if !decoded.reasoning.is_empty() {
                        self.pending.push_back(StreamItem::Reasoning(decoded.reasoning));
                    }
                    // One item per tool-call piece, in the chunk's order (one chunk may carry
                    // pieces of several calls).
                    self.pending.extend(decoded.tool_calls.into_iter().map(StreamItem::ToolCall));
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
                    let error = ApiError::from(error);
                    self.chunks.failed(&error);
                    return Some(StreamItem::Failed(error));
                }
            }
        }
    }

    fn log_answer(&mut self, item: &StreamItem) {
        let Some(answer) = self.logged_answer.as_mut() else {
            return;
        };
        match item {
            StreamItem::Delta(text) => {
                if answer.len() + text.len() <= MAX_LOGGED_ANSWER {
                    answer.push_str(text);
                }
            }
            StreamItem::Reasoning(_) | StreamItem::ToolCall(_) => {}
            StreamItem::Done { .. } | StreamItem::Failed(_) => {
                tracing::debug!(target: PROMPT_LOG_TARGET, message = "answer", answer = %answer);
                self.logged_answer = None;
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
                self.chunks.report_usage(finished.usage);
                let (read, write) = self.chunks.cache_tokens();
                self.pending.push_back(StreamItem::Done {
                    cache: CacheTokens { read, write },
                    stop_reason: finished.stop_reason,
                    usage: finished.usage,
                });
            }
            Err(error) => {
                let error = ApiError::from(error);
                self.chunks.failed(&error);
                self.pending.push_back(StreamItem::Failed(error));
            }
        }
    }
}
