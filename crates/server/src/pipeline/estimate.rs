//! The input-token estimate a reservation is made with, before Bedrock has counted.
//!
//! The estimate is the InvokeModel body's length in bytes times a per-target ratio of
//! tokens per byte. The ratio starts at [`INITIAL_TOKENS_PER_BYTE`] (the common "four
//! bytes a token" of English text, which over-reserves a little for JSON bodies, whose
//! keys and punctuation are bytes too) and then learns the real ratio of each target
//! from the input tokens Bedrock reports at every settlement (an exponentially weighted
//! mean, weight [`LEARNING_RATE`]). The learned ratio absorbs what differs per family
//! (a chat template's tokens, a Messages body's structure) and per model (tokenizers).
//! A margin of [`MARGIN`] keeps the estimate slightly above the mean, so that an
//! admission rarely promises Bedrock more than it counts; the settlement corrects the
//! rest, either way.

use std::sync::atomic::{AtomicU64, Ordering};

/// Tokens per body byte before anything was learned.
pub const INITIAL_TOKENS_PER_BYTE: f64 = 0.25;
/// How much one settled request moves the learned ratio.
pub const LEARNING_RATE: f64 = 0.2;
/// The estimate is the learned mean times this.
pub const MARGIN: f64 = 1.1;

/// A target's learned ratio (an `f64` in an atomic, shared by its requests).
#[derive(Debug)]
pub struct InputEstimator {
    tokens_per_byte: AtomicU64,
}

impl Default for InputEstimator {
    fn default() -> InputEstimator {
        InputEstimator { tokens_per_byte: AtomicU64::new(INITIAL_TOKENS_PER_BYTE.to_bits()) }
    }
}

impl InputEstimator {
    /// The estimated input tokens of a body of `body_len` bytes (at least 1).
    pub fn estimate(&self, body_len: usize) -> u64 {
        let ratio = f64::from_bits(self.tokens_per_byte.load(Ordering::Relaxed));
        // Less a hair, so that float rounding never adds a token (400 × 0.25 × 1.1 = 110).
        ((body_len as f64 * ratio * MARGIN - 1e-9).ceil() as u64).max(1)
    }

    /// Learns from a settled request: `input_tokens` counted by Bedrock for `body_len`.
    pub fn learn(&self, body_len: usize, input_tokens: u32) {
        if body_len == 0 {
            return;
        }
        let observed = (f64::from(input_tokens) / body_len as f64).clamp(1e-4, 4.0);
        let _ = self.tokens_per_byte.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
            let ratio = f64::from_bits(bits);
            Some((ratio + LEARNING_RATE * (observed - ratio)).to_bits())
        });
    }

    pub fn tokens_per_byte(&self) -> f64 {
        f64::from_bits(self.tokens_per_byte.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_four_bytes_a_token_and_learns() {
        let estimator = InputEstimator::default();
        assert_eq!(estimator.estimate(400), 110);
        for _ in 0..30 {
            estimator.learn(400, 40);
        }
        assert!((estimator.tokens_per_byte() - 0.1).abs() < 0.001);
        assert!((44..=45).contains(&estimator.estimate(400)));
        assert_eq!(estimator.estimate(0), 1);
    }
}
