//! The body of an InvokeModelWithResponseStream answer: one `chunk` frame per step of the
//! family's stream, `token_latency` apart, invocation metrics on the last chunk, and the
//! in-stream faults (exception frame, truncation, bad checksum, abort, bad chunks, a reset
//! mid-frame, a frame announcing 2 GiB, a drip, no end; `hostile.rs` has the bytes of the
//! hostile ones).
//!
//! The stream owns the request's quota [`Reservation`]: it is settled when the last chunk has
//! been produced, or when a fault ends the stream, at the tokens of the chunks sent intact;
//! if the client goes away first, dropping the stream settles it at the chunks produced.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::behavior::{
    BadBody, Fault, HUGE_FRAME_BYTES, MODEL_ORIGINAL_STATUS_CODE, MODEL_STREAM_ORIGINAL_MESSAGE,
    whole_millis,
};
use crate::eventstream::{
    corrupt_message_crc, encode_chunk_frame, encode_exception_frame, padding,
};
use crate::families::{Family, InvocationMetrics};
use crate::generate::Completion;
use crate::hostile;
use crate::quota::Reservation;
use crate::simulator::Hold;

/// Everything the stream body needs once the response has started.
pub(crate) struct StreamPlan {
    pub(crate) family: &'static dyn Family,
    pub(crate) completion: Completion,
    /// An in-stream fault; `Fault::Error` is answered before the stream and ignored here.
    pub(crate) fault: Option<Fault>,
    pub(crate) token_latency: Duration,
    /// Where the stream holds until the simulator releases it (behavior
    /// `hold_after_chunks`), if it does.
    pub(crate) hold: Option<Hold>,
    /// When the request arrived, for the latency metrics.
    pub(crate) started: Instant,
    /// The request's quota tokens, settled at the end of the stream.
    pub(crate) reservation: Reservation,
}

/// The frames of `plan`, as a body stream. An `Err` item makes the server drop the
/// connection.
pub(crate) fn event_stream_body(
    plan: StreamPlan,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let drip = match plan.fault {
        Some(Fault::Drip(pause)) => Some(pause),
        _ => None,
    };
    let state = StreamState {
        plan,
        next_chunk_idx: 0,
        first_byte_latency_ms: None,
        done: false,
        substitute: None,
        reset_next: false,
        huge_left: 0,
    };
    let frames = futures_util::stream::unfold(state, |mut state| async move {
        let item = state.next_item().await?;
        Some((item, state))
    });
    match drip {
        Some(pause) => hostile::drip(frames, pause).boxed(),
        None => frames.boxed(),
    }
}

struct StreamState {
    plan: StreamPlan,
    /// The index of the next chunk to send, which is also the number already sent.
    next_chunk_idx: usize,
    first_byte_latency_ms: Option<u64>,
    done: bool,
    /// Once a bad body of another family or of an unknown shape has begun: the shape of
    /// every chunk from then on.
    substitute: Option<BadBody>,
    /// The first half of a frame was sent: the connection drops next.
    reset_next: bool,
    /// The zeros still to send after a huge frame's prelude.
    huge_left: u64,
}

/// What the stream sends next.
enum Step {
    Chunk(usize),
    Fault(Fault),
    End,
}

/// How long an aborting stream waits for what it sent to be flushed.
const ABORT_FLUSH_DELAY: std::time::Duration = std::time::Duration::from_millis(20);

impl StreamState {
    async fn next_item(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.reset_next {
            self.reset_next = false;
            self.done = true;
            tokio::time::sleep(ABORT_FLUSH_DELAY).await;
            return Some(Err(std::io::Error::other("simulated connection reset mid-frame")));
        }
        if self.huge_left > 0 {
            let zeros = hostile::zeros(self.huge_left);
            self.huge_left -= zeros.len() as u64;
            self.done = self.huge_left == 0;
            return Some(Ok(zeros));
        }
        // A held stream waits for its release after its chunks so far, before a fault or
        // the end too.
        let n_chunks = self.n_chunks();
        let sent = self.next_chunk_idx;
        if !self.done
            && let Some(hold) =
                self.plan.hold.take_if(|hold| sent >= hold.after_chunks.min(n_chunks))
        {
            hold.wait().await;
        }
        let step = self.next_step();
        if matches!(step, Step::End) {
            return None;
        }
        // An endless stream never spins: its chunks are at least 1 ms apart.
        let token_latency = match self.plan.fault {
            Some(Fault::Endless) => self.plan.token_latency.max(Duration::from_millis(1)),
            _ => self.plan.token_latency,
        };
        // A zero sleep still waits for the next timer tick (about 1 ms): skip it.
        if self.next_chunk_idx > 0 && !token_latency.is_zero() {
            tokio::time::sleep(token_latency).await;
        }
        // A real connection drops after what was sent has left: let hyper flush the
        // headers and chunks before the body fails, or the client sees no response at all.
        if matches!(step, Step::Fault(Fault::AbortAfterChunks(_))) {
            tokio::time::sleep(ABORT_FLUSH_DELAY).await;
        }
        let item = match step {
            Step::Chunk(chunk_idx) => {
                let frame = self.chunk_frame(chunk_idx);
                self.next_chunk_idx += 1;
                let plan = &mut self.plan;
                let n_tokens_sent =
                    plan.family.n_stream_tokens_sent(&plan.completion, self.next_chunk_idx);
                plan.reservation.set_output_tokens(n_tokens_sent);
                if self.next_chunk_idx == self.n_chunks() {
                    self.plan.reservation.settle();
                }
                Ok(Bytes::from(frame))
            }
            Step::Fault(fault) => {
                // The chunks sent intact are all the client got; a spoiled frame counts not.
                self.plan.reservation.settle();
                return self.fault_item(&fault);
            }
            Step::End => return None,
        };
        Some(item)
    }

    fn next_step(&self) -> Step {
        if self.done {
            return Step::End;
        }
        let n_chunks = self.n_chunks();
        if let Some(fault) = &self.plan.fault
            && self.substitute.is_none()
            && let Some(after_chunks) = fault_position(fault)
            && self.next_chunk_idx == after_chunks.min(n_chunks)
        {
            return Step::Fault(fault.clone());
        }
        if let Some(Fault::Endless) = self.plan.fault {
            // The chunks up to the first one with text, then that one again and again.
            let repeated_idx = self.first_text_chunk_idx();
            return Step::Chunk(self.next_chunk_idx.min(repeated_idx));
        }
        if self.next_chunk_idx < n_chunks { Step::Chunk(self.next_chunk_idx) } else { Step::End }
    }

    /// The first chunk that carries a token and is not the last (which says why the answer
    /// stopped); 0 when there is none.
    fn first_text_chunk_idx(&self) -> usize {
        let (family, completion) = (self.plan.family, &self.plan.completion);
        (0..self.n_chunks().saturating_sub(1))
            .find(|idx| {
                family.n_stream_tokens_sent(completion, idx + 1)
                    > family.n_stream_tokens_sent(completion, *idx)
            })
            .unwrap_or(0)
    }

    fn n_chunks(&self) -> usize {
        self.plan.family.n_stream_chunks(&self.plan.completion)
    }

    /// The encoded frame of chunk `chunk_idx`; the last carries the invocation metrics.
    fn chunk_frame(&mut self, chunk_idx: usize) -> Vec<u8> {
        let elapsed_ms = whole_millis(self.plan.started.elapsed());
        let first_byte_latency_ms = *self.first_byte_latency_ms.get_or_insert(elapsed_ms);
        let completion = &self.plan.completion;
        let metrics = (chunk_idx + 1 == self.n_chunks()).then(|| InvocationMetrics {
            input_token_count: completion.n_input_tokens,
            output_token_count: completion.n_output_tokens(),
            invocation_latency: elapsed_ms,
            first_byte_latency: first_byte_latency_ms,
        });
        let model_json = match self.substitute {
            Some(BadBody::OtherFamily) => {
                let other = hostile::other_family(self.plan.family);
                let other_idx = chunk_idx.min(other.n_stream_chunks(completion).saturating_sub(2));
                other.stream_chunk(completion, other_idx, None)
            }
            Some(BadBody::UnknownShape) => hostile::unknown_shape_chunk(chunk_idx),
            _ => self.plan.family.stream_chunk(completion, chunk_idx, metrics),
        };
        encode_chunk_frame(&model_json, Some(padding(padding_len(chunk_idx))))
    }

    /// What a fault sends when it fires; `None` ends the body cleanly.
    fn fault_item(&mut self, fault: &Fault) -> Option<Result<Bytes, std::io::Error>> {
        // The frame a truncation or bad checksum spoils: the next chunk, or the last one
        // again when all were sent.
        let spoiled_chunk_idx = self.next_chunk_idx.min(self.n_chunks().saturating_sub(1));
        self.done = true;
        let item = match fault {
            Fault::Error(kind) | Fault::ErrorAfterChunks(kind, _) => {
                let mut payload = serde_json::Map::new();
                payload.insert("message".to_owned(), kind.default_message().into());
                if *kind == crate::behavior::ErrorKind::ModelStreamError {
                    payload
                        .insert("originalStatusCode".to_owned(), MODEL_ORIGINAL_STATUS_CODE.into());
                    payload
                        .insert("originalMessage".to_owned(), MODEL_STREAM_ORIGINAL_MESSAGE.into());
                }
                let payload = serde_json::Value::Object(payload).to_string();
                let exception_type = kind.lower_camel_name();
                Ok(Bytes::from(encode_exception_frame(&exception_type, payload.as_bytes())))
            }
            Fault::TruncateAfterChunks(_) => {
                let frame = self.chunk_frame(spoiled_chunk_idx);
                let half = frame.len() / 2;
                Ok(Bytes::from(frame).slice(..half))
            }
            Fault::BadChecksumAfterChunks(_) => {
                let mut frame = self.chunk_frame(spoiled_chunk_idx);
                corrupt_message_crc(&mut frame);
                Ok(Bytes::from(frame))
            }
            Fault::AbortAfterChunks(_) => Err(std::io::Error::other("simulated connection abort")),
            Fault::BadBodyAfterChunks(BadBody::InvalidJson, _) => {
                let frame = encode_chunk_frame(hostile::INVALID_JSON, Some(padding(2)));
                Ok(Bytes::from(frame))
            }
            Fault::BadBodyAfterChunks(BadBody::Empty, _) => return None,
            Fault::BadBodyAfterChunks(bad, _) => {
                // Every chunk from here on is of the bad shape; the stream goes on.
                self.done = false;
                self.substitute = Some(*bad);
                let frame = self.chunk_frame(self.next_chunk_idx);
                self.next_chunk_idx += 1;
                Ok(Bytes::from(frame))
            }
            Fault::ResetMidBodyAfterChunks(_) => {
                self.done = false;
                self.reset_next = true;
                let frame = self.chunk_frame(spoiled_chunk_idx);
                let half = frame.len() / 2;
                Ok(Bytes::from(frame).slice(..half))
            }
            Fault::HugeFrameAfterChunks(_) => {
                self.done = false;
                let prelude = hostile::huge_frame_prelude();
                self.huge_left = u64::from(HUGE_FRAME_BYTES) - prelude.len() as u64;
                Ok(Bytes::from(prelude))
            }
            // Answered before the stream, or not a fault that fires at a chunk.
            Fault::ProxyError(_)
            | Fault::UnknownError(_)
            | Fault::LongErrorMessage(..)
            | Fault::Drip(_)
            | Fault::Endless => return None,
        };
        Some(item)
    }
}

/// After how many chunks an in-stream fault fires; `None` for the faults answered before
/// the stream starts (`Error`, the proxy page, the unknown error, the long message) and for
/// those that shape the whole stream (a drip, no end).
fn fault_position(fault: &Fault) -> Option<usize> {
    let n_chunks = match fault {
        Fault::Error(_)
        | Fault::ProxyError(_)
        | Fault::UnknownError(_)
        | Fault::LongErrorMessage(..)
        | Fault::Drip(_)
        | Fault::Endless => return None,
        Fault::ErrorAfterChunks(_, n_chunks)
        | Fault::TruncateAfterChunks(n_chunks)
        | Fault::BadChecksumAfterChunks(n_chunks)
        | Fault::AbortAfterChunks(n_chunks)
        | Fault::BadBodyAfterChunks(_, n_chunks)
        | Fault::ResetMidBodyAfterChunks(n_chunks)
        | Fault::HugeFrameAfterChunks(n_chunks) => *n_chunks,
    };
    Some(usize::try_from(n_chunks).unwrap_or(usize::MAX))
}

/// The `p` padding length of a chunk: 2 to 61 characters, varying from chunk to chunk.
fn padding_len(chunk_idx: usize) -> usize {
    2 + (chunk_idx * 7 + 3) % 60
}

#[cfg(test)]
mod tests;
