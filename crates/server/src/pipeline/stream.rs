//! [`PipelineStream`]: Bedrock's chunks as they arrive, and the settlement of the
//! call's reservation when the stream ends, fails or is dropped.
//!
//! The usage a stream settles with is Bedrock's own count from the last chunk's
//! `amazon-bedrock-invocationMetrics`; failing that, the usage the reader reported
//! ([`PipelineStream::report_usage`], the family decoder's count); failing that (a
//! caller that went away mid-stream), the reservation is kept whole as used.
//!
//! A stream that sends no chunk for `stream_idle_timeout`, or lasts past its attempt's
//! `request_timeout`, ends with [`UpstreamError::Stalled`] or [`UpstreamError::Timeout`]:
//! neither a stalled nor an endless upstream keeps a caller (and its quota) forever.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{Instant, Sleep};
use translator::Usage;

use crate::config::Target;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::pipeline::admission::Reservation;
use crate::pipeline::estimate::{self, InputEstimator};
use crate::telemetry::Record;
use crate::upstream::{ChunkStream, RawStreamOutput, ResponseHeaders, UpstreamError};

/// The key of Bedrock's usage and latency figures in a stream's last chunk.
const INVOCATION_METRICS: &[u8] = b"amazon-bedrock-invocationMetrics";

/// A stream that Bedrock has started, with its first chunk already read.
#[derive(Debug)]
pub struct PipelineStream {
    chunks: ChunkStream,
    first: Option<Bytes>,
    timeouts: StreamTimeouts,
    /// The deadline of the chunk awaited: one timer for the stream's life, re-armed for
    /// each chunk (set on the first wait).
    deadline: Option<Pin<Box<Sleep>>>,
    /// Bedrock's `X-Amzn-Bedrock-Content-Type`.
    pub content_type: String,
    pub headers: ResponseHeaders,
    settlement: Option<Settlement>,
    /// From the invocation metrics, once seen.
    metered: Option<Invocation>,
    reported: Option<Usage>,
    ended: bool,
    /// Chunks of a shape the family does not know, so far.
    unrecognized: u32,
}

/// How long a started stream may wait for its next chunk, and when it must end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamTimeouts {
    pub idle: Duration,
    pub ends_at: Instant,
}

#[derive(Debug)]
struct Settlement {
    reservation: Reservation,
    body_len: usize,
    estimator: Arc<InputEstimator>,
    observer: StreamObserver,
}

/// Where a stream reports its figures when it ends.
#[derive(Debug)]
pub(crate) struct StreamObserver {
    pub metrics: Arc<Metrics>,
    pub target: Arc<Target>,
    pub record: Record,
}

/// A stream's `amazon-bedrock-invocationMetrics`: Bedrock's own count and timings.
#[derive(Debug, Clone, Copy, Default)]
struct Invocation {
    usage: Usage,
    cache_read: Option<u32>,
    cache_write: Option<u32>,
    latency_ms: Option<u64>,
    first_byte_ms: Option<u64>,
}

impl PipelineStream {
    pub(crate) fn new(
        output: RawStreamOutput,
        first: Option<Bytes>,
        timeouts: StreamTimeouts,
    ) -> PipelineStream {
        let ended = first.is_none();
        PipelineStream {
            chunks: output.chunks,
            first,
            timeouts,
            deadline: None,
            content_type: output.content_type,
            headers: output.headers,
            settlement: None,
            metered: None,
            reported: None,
            ended,
            unrecognized: 0,
        }
    }

    pub(crate) fn hold(
        &mut self,
        reservation: Reservation,
        body_len: usize,
        estimator: Arc<InputEstimator>,
        observer: StreamObserver,
    ) {
        self.settlement = Some(Settlement { reservation, body_len, estimator, observer });
        if self.ended {
            self.finish();
        }
    }

    /// The next chunk's bytes (one model-native JSON object); `None` at a clean end.
    /// After an error nothing follows.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, UpstreamError>> {
        if let Some(first) = self.first.take() {
            self.meter(&first);
            return Some(Ok(first));
        }
        if self.ended {
            return None;
        }
        let StreamTimeouts { idle, ends_at } = self.timeouts;
        let wait_until = (Instant::now() + idle).min(ends_at);
        let deadline = match &mut self.deadline {
            Some(deadline) => {
                // Later than the last one (or the stream's end, as before): a cheap re-arm.
                deadline.as_mut().reset(wait_until);
                deadline
            }
            None => self.deadline.insert(Box::pin(tokio::time::sleep_until(wait_until))),
        };
        let next = tokio::select! {
            biased;
            next = self.chunks.next_chunk() => next,
            () = deadline.as_mut() => {
                let error = if Instant::now() >= ends_at {
                    UpstreamError::Timeout
                } else {
                    UpstreamError::Stalled(idle)
                };
                Some(Err(error))
            }
        };
        match next {
            Some(Ok(chunk)) => {
                self.meter(&chunk);
                Some(Ok(chunk))
            }
            Some(Err(error)) => {
                self.ended = true;
                if let Some(settlement) = &self.settlement {
                    let observer = &settlement.observer;
                    let label = crate::pipeline::bedrock_error_label(&error);
                    observer.metrics.upstream_error(&observer.target, label);
                }
                self.failed(&ApiError::Upstream(error.clone()));
                self.finish();
                Some(Err(error))
            }
            None => {
                self.ended = true;
                self.finish();
                None
            }
        }
    }

    /// The prompt-cache read and write tokens of Bedrock's invocation metrics, once seen.
    pub fn cache_tokens(&self) -> (Option<u32>, Option<u32>) {
        self.metered.map_or((None, None), |m| (m.cache_read, m.cache_write))
    }

    /// The usage as the reader decoded it; Bedrock's invocation metrics win over it.
    pub fn report_usage(&mut self, usage: Usage) {
        self.reported = Some(usage);
    }

    /// The reader met a chunk of a shape its family does not know: counted, and logged
    /// at `warn` once per stream (with the chunk's keys, never its text).
    pub fn unrecognized(&mut self, chunk: &[u8]) {
        self.unrecognized += 1;
        let Some(settlement) = &self.settlement else {
            return;
        };
        let target = &settlement.observer.target;
        settlement.observer.metrics.unrecognized_chunk(target);
        if self.unrecognized == 1 {
            let keys = serde_json::from_slice::<serde_json::Value>(chunk)
                .ok()
                .and_then(|value| {
                    value.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>().join(","))
                })
                .unwrap_or_else(|| "(not a JSON object)".to_owned());
            tracing::warn!(
                message = "stream chunk of an unknown shape",
                upstream_target = %target.name,
                family = target.family.id(),
                keys = %keys,
            );
        }
    }

    /// The stream broke after its start (Bedrock's exception, or an answer the reader
    /// could not decode): the request's record says so, since its status cannot.
    pub fn failed(&self, error: &ApiError) {
        if let Some(settlement) = &self.settlement {
            let error_type = error.error_type();
            settlement.observer.record.update(|fields| fields.error_type = Some(error_type));
        }
    }

    fn meter(&mut self, chunk: &[u8]) {
        if !contains(chunk, INVOCATION_METRICS) {
            return;
        }
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(chunk) else {
            return;
        };
        let metrics = &value["amazon-bedrock-invocationMetrics"];
        let count = |name: &str| metrics[name].as_u64().and_then(|n| u32::try_from(n).ok());
        self.metered = Some(Invocation {
            usage: Usage {
                input_tokens: count("inputTokenCount"),
                output_tokens: count("outputTokenCount"),
            },
            cache_read: count("cacheReadInputTokenCount"),
            cache_write: count("cacheWriteInputTokenCount"),
            latency_ms: metrics["invocationLatency"].as_u64(),
            first_byte_ms: metrics["firstByteLatency"].as_u64(),
        });
    }

    /// Settles now, with the best usage known.
    fn finish(&mut self) {
        let Some(settlement) = self.settlement.take() else {
            return;
        };
        let usage = self.metered.map(|m| m.usage).or(self.reported);
        let metered = self.metered.unwrap_or_default();
        if let Some(input_tokens) = usage.and_then(|u| u.input_tokens) {
            let (read, write) = (metered.cache_read, metered.cache_write);
            let prompt_tokens = estimate::prompt_tokens(input_tokens, read, write);
            settlement.estimator.learn(settlement.body_len, prompt_tokens);
        }
        let StreamObserver { metrics, target, record } = &settlement.observer;
        if let Some(usage) = usage {
            let tokens =
                [usage.input_tokens, usage.output_tokens, metered.cache_read, metered.cache_write];
            metrics.tokens(record.operation(), target, tokens);
            record.update(|fields| {
                fields.input_tokens = usage.input_tokens;
                fields.output_tokens = usage.output_tokens;
            });
        }
        metrics.bedrock_latency(target, true, metered.latency_ms, metered.first_byte_ms);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(settlement.reservation.settle(usage));
        }
    }
}

/// Whether `needle` (not empty) occurs in `haystack`: most positions cost one byte's
/// comparison, where comparing whole windows costs a `memcmp` call each.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((first, rest)) = needle.split_first() else {
        return true;
    };
    haystack.windows(needle.len()).any(|window| window[0] == *first && window[1..] == *rest)
}

impl Drop for PipelineStream {
    fn drop(&mut self) {
        // Dropped before its end: a reader that stopped early (an emulated stop sequence)
        // reported its usage; a caller that went away did not, and then the settlement
        // (with no usage) keeps the reservation whole.
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invocation_metrics_are_found_wherever_they_are() {
        let last = br#"{"outputText":"","amazon-bedrock-invocationMetrics":{"inputTokenCount":3}}"#;
        assert!(contains(last, INVOCATION_METRICS));
        assert!(contains(INVOCATION_METRICS, INVOCATION_METRICS));
        for chunk in [&br#"{"outputText":"amazon-bedrock-invocation"}"#[..], b"", b"a"] {
            assert!(!contains(chunk, INVOCATION_METRICS));
        }
        assert!(contains(b"abc", b""));
    }
}
