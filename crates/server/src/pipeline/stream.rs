//! [`PipelineStream`]: Bedrock's chunks as they arrive, and the settlement of the
//! call's reservation when the stream ends, fails or is dropped.
//!
//! The usage a stream settles with is Bedrock's own count from the last chunk's
//! `amazon-bedrock-invocationMetrics`; failing that, the usage the reader reported
//! ([`PipelineStream::report_usage`], the family decoder's count); failing that (a
//! caller that went away mid-stream), the reservation is kept whole as used.

use std::sync::Arc;

use bytes::Bytes;
use translator::Usage;

use crate::pipeline::admission::Reservation;
use crate::pipeline::estimate::InputEstimator;
use crate::upstream::{ChunkStream, RawStreamOutput, ResponseHeaders, UpstreamError};

/// The key of Bedrock's usage and latency figures in a stream's last chunk.
const INVOCATION_METRICS: &[u8] = b"amazon-bedrock-invocationMetrics";

/// A stream that Bedrock has started, with its first chunk already read.
#[derive(Debug)]
pub struct PipelineStream {
    chunks: ChunkStream,
    first: Option<Bytes>,
    /// Bedrock's `X-Amzn-Bedrock-Content-Type`.
    pub content_type: String,
    pub headers: ResponseHeaders,
    settlement: Option<Settlement>,
    /// From the invocation metrics, once seen.
    metered: Option<Usage>,
    reported: Option<Usage>,
    ended: bool,
}

#[derive(Debug)]
struct Settlement {
    reservation: Reservation,
    body_len: usize,
    estimator: Arc<InputEstimator>,
}

impl PipelineStream {
    pub(crate) fn new(output: RawStreamOutput, first: Option<Bytes>) -> PipelineStream {
        let ended = first.is_none();
        PipelineStream {
            chunks: output.chunks,
            first,
            content_type: output.content_type,
            headers: output.headers,
            settlement: None,
            metered: None,
            reported: None,
            ended,
        }
    }

    pub(crate) fn hold(
        &mut self,
        reservation: Reservation,
        body_len: usize,
        estimator: Arc<InputEstimator>,
    ) {
        self.settlement = Some(Settlement { reservation, body_len, estimator });
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
        match self.chunks.next_chunk().await {
            Some(Ok(chunk)) => {
                self.meter(&chunk);
                Some(Ok(chunk))
            }
            Some(Err(error)) => {
                self.ended = true;
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

    /// The usage as the reader decoded it; Bedrock's invocation metrics win over it.
    pub fn report_usage(&mut self, usage: Usage) {
        self.reported = Some(usage);
    }

    fn meter(&mut self, chunk: &[u8]) {
        if !chunk.windows(INVOCATION_METRICS.len()).any(|w| w == INVOCATION_METRICS) {
            return;
        }
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(chunk) else {
            return;
        };
        let metrics = &value["amazon-bedrock-invocationMetrics"];
        let count = |name: &str| metrics[name].as_u64().and_then(|n| u32::try_from(n).ok());
        self.metered = Some(Usage {
            input_tokens: count("inputTokenCount"),
            output_tokens: count("outputTokenCount"),
        });
    }

    /// Settles now, with the best usage known.
    fn finish(&mut self) {
        let Some(settlement) = self.settlement.take() else {
            return;
        };
        let usage = self.metered.or(self.reported);
        if let Some(input_tokens) = usage.and_then(|u| u.input_tokens) {
            settlement.estimator.learn(settlement.body_len, input_tokens);
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(settlement.reservation.settle(usage));
        }
    }
}

impl Drop for PipelineStream {
    fn drop(&mut self) {
        // Dropped before its end: a reader that stopped early (an emulated stop sequence)
        // reported its usage; a caller that went away did not, and then the settlement
        // (with no usage) keeps the reservation whole.
        self.finish();
    }
}
