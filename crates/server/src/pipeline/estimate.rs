//! The input-token estimate a reservation is made with, before Bedrock has counted.
//!
//! Bedrock counts the tokens of the text in the body; the body also carries JSON keys,
//! punctuation and the family's template, a fixed overhead. So the estimate is a line,
//! `tokens ≈ slope × body bytes + fixed`, fitted per target by least squares over the
//! input tokens Bedrock reported at each settlement (exponentially weighted means, so it
//! follows a target that changes). A single tokens-per-byte ratio would not do: learned
//! from short prompts (mostly overhead), it under-estimates a long one, which then fits
//! the gateway's bucket but not Bedrock's.
//!
//! Until [`MIN_SAMPLES`] settlements are known (or while every body had about the same
//! length, so no slope can be told), the estimate is `bytes × INITIAL_TOKENS_PER_BYTE`:
//! the common "four bytes a token", which over-reserves for JSON bodies. The result is
//! multiplied by [`MARGIN`], so that an admission rarely promises Bedrock more than it
//! counts; the settlement corrects the rest, either way.

use std::sync::{Mutex, PoisonError};

/// Tokens per body byte before anything was learned.
pub const INITIAL_TOKENS_PER_BYTE: f64 = 0.25;
/// Settlements needed before the fitted line is used.
pub const MIN_SAMPLES: u32 = 3;
/// The weight of one settlement in the means, once there are more than 1 / this many.
pub const LEARNING_RATE: f64 = 0.05;
/// The estimate is the fitted line times this.
pub const MARGIN: f64 = 1.1;

/// A target's fitted line, shared by its requests.
#[derive(Debug, Default)]
pub struct InputEstimator {
    fit: Mutex<Fit>,
}

/// Weighted means of body bytes `x`, input tokens `y`, `x²` and `x·y`.
#[derive(Debug, Default, Clone, Copy)]
struct Fit {
    n: u32,
    mean_x: f64,
    mean_y: f64,
    mean_xx: f64,
    mean_xy: f64,
}

/// The tokens of the whole prompt a body carried, which the estimate is of: Bedrock's input
/// tokens leave out those read from and written to the prompt cache.
pub fn prompt_tokens(input_tokens: u32, cache_read: Option<u32>, cache_write: Option<u32>) -> u32 {
    [cache_read, cache_write].into_iter().flatten().fold(input_tokens, u32::saturating_add)
}

impl InputEstimator {
    /// The estimated input tokens of a body of `body_len` bytes (at least 1).
    pub fn estimate(&self, body_len: usize) -> u64 {
        let (slope, fixed) = self.line();
        let tokens = (slope * body_len as f64 + fixed) * MARGIN;
        // Less a hair, so that float rounding never adds a token (400 × 0.25 × 1.1 = 110).
        ((tokens - 1e-9).ceil().max(1.0)) as u64
    }

    /// Learns from a settled request: `input_tokens` counted by Bedrock for `body_len`.
    pub fn learn(&self, body_len: usize, input_tokens: u32) {
        if body_len == 0 {
            return;
        }
        let (x, y) = (body_len as f64, f64::from(input_tokens));
        let mut fit = self.fit.lock().unwrap_or_else(PoisonError::into_inner);
        fit.n = fit.n.saturating_add(1);
        // A plain mean at first, then an exponentially weighted one.
        let weight = (1.0 / f64::from(fit.n)).max(LEARNING_RATE);
        let mix = |mean: f64, value: f64| mean + weight * (value - mean);
        fit.mean_x = mix(fit.mean_x, x);
        fit.mean_y = mix(fit.mean_y, y);
        fit.mean_xx = mix(fit.mean_xx, x * x);
        fit.mean_xy = mix(fit.mean_xy, x * y);
    }

    /// `(tokens per byte, fixed tokens)` of the current estimate, before the margin.
    pub fn line(&self) -> (f64, f64) {
        let fit = *self.fit.lock().unwrap_or_else(PoisonError::into_inner);
        if fit.n < MIN_SAMPLES || fit.mean_x <= 0.0 {
            return (INITIAL_TOKENS_PER_BYTE, 0.0);
        }
        let variance = fit.mean_xx - fit.mean_x * fit.mean_x;
        // Bodies of (nearly) one length: no slope to tell, a ratio through the origin.
        if variance <= (0.05 * fit.mean_x).powi(2) {
            return ((fit.mean_y / fit.mean_x).clamp(1e-4, 4.0), 0.0);
        }
        let slope = ((fit.mean_xy - fit.mean_x * fit.mean_y) / variance).clamp(1e-4, 4.0);
        let fixed = (fit.mean_y - slope * fit.mean_x).max(0.0);
        (slope, fixed)
    }

    /// The fitted tokens per body byte (the slope), for `/v1/limits`.
    pub fn tokens_per_byte(&self) -> f64 {
        self.line().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_four_bytes_a_token() {
        let estimator = InputEstimator::default();
        assert_eq!(estimator.estimate(400), 110);
        assert_eq!(estimator.estimate(0), 1);
        estimator.learn(400, 40);
        estimator.learn(400, 40);
        assert_eq!(estimator.estimate(400), 110, "two samples are not enough");
    }

    #[test]
    fn one_length_gives_a_ratio() {
        let estimator = InputEstimator::default();
        for _ in 0..30 {
            estimator.learn(400, 40);
        }
        assert!((estimator.tokens_per_byte() - 0.1).abs() < 1e-9);
        assert_eq!(estimator.estimate(400), 44);
    }

    /// Bodies of 100 bytes of JSON around a prompt of one token per 5 bytes: a ratio
    /// learned from short prompts would under-estimate a long one; the line does not.
    #[test]
    fn a_fixed_overhead_is_learned_apart_from_the_slope() {
        let estimator = InputEstimator::default();
        let tokens = |prompt_bytes: usize| (prompt_bytes / 5) as u32;
        for prompt_bytes in [20, 40, 25, 60, 30, 35, 50, 45] {
            estimator.learn(100 + prompt_bytes, tokens(prompt_bytes));
        }
        let (slope, fixed) = estimator.line();
        assert!((slope - 0.2).abs() < 0.02, "{slope}");
        // The JSON counts no tokens: the line crosses zero below the body's overhead, and
        // the fixed part is kept at zero (an over-estimate for short bodies, never under).
        assert_eq!(fixed, 0.0);
        // A 1000-byte prompt: 200 tokens; the estimate covers it.
        let estimate = estimator.estimate(1100);
        assert!((200..=250).contains(&estimate), "{estimate}");
    }
}
