//! The integration tests of `bedrock-sim`: the real `aws-sdk-bedrockruntime` client against the
//! simulator bound on 127.0.0.1:0, plus plain HTTP requests for the control API.

// clippy's `allow-unwrap-in-tests` covers `#[test]` functions only, not the helpers they share.
#![expect(clippy::unwrap_used, clippy::panic, reason = "a failing test helper fails its test")]

// The simulator on port 0, the SDK client and the body and stream helpers every test uses.
mod support;

// InvokeModel answers: shapes, headers, determinism, max tokens, stop sequences, model ids.
mod invoke;

// InvokeModelWithResponseStream answers: chunk shapes, text, stop reasons, metrics.
mod stream;

// Authentication as Bedrock's: the SDK's SigV4 verified, wrong secrets, unknown keys,
// session tokens and bearer tokens refused with Bedrock's 403s.
mod auth;

// Injected faults and latency, before and inside the stream.
mod faults;

// A broken or hostile upstream: bad bodies, proxy pages, unknown errors, long messages, resets,
// drips, huge frames, endless streams; and the invocations in flight.
mod hostile;

// The checks Bedrock makes on model ids, headers and bodies.
mod validation;

// The `/_sim` control API and unknown operations, over plain HTTP.
mod control;

// Text families batch A (Claude Messages, Llama 2/3/4, Mistral text and chat, DeepSeek-R1,
// gpt-oss): invoke and stream agreement, stop reasons, usage, validation, profile-only models.
mod families_a;

// Embedding and image models: vectors, PNG bodies, accept handling, limits, no streaming.
mod embeddings_images;

// Nova, Cohere Command, Command R, Jurassic-2 and Jamba: answers, streams and body checks.
mod families_b;

// Token quotas: reservation and settlement, streams holding their tokens, day limits, refill,
// the `/_sim/quota` routes and the per-model stats.
mod quota;

// Prompt caching: Claude's breakpoints and Nova's cache points, write then read.
mod prompt_cache;
