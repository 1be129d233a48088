//! End-to-end tests: real HTTP into the gateway, the real AWS SDK from the gateway
//! to the Bedrock simulator. One test binary (see ARCHITECTURE.md).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers shared by #[test] functions fail loudly, like the tests themselves"
)]

/// Anthropic's Messages API over plain HTTP: answers, SSE events, tools, errors.
mod anthropic;
/// API keys: required, checked, refused in each API's error shape.
mod auth;
/// Callers that go away (every API shape, queued, waiting for Bedrock) and the drain's end:
/// nothing left in flight, reservations settled, errors in each API's encoding.
mod cancellation;
/// The caps on the lists a caller controls: one past the cap is a 400 in each API's shape.
mod caps;
/// The OpenAI-chat-shaped open-weight models (Qwen3, DeepSeek V3, Kimi, MiniMax, Gemma).
mod catalogue;
/// The API listener against callers that hold on (slow heads and bodies, caps, body
/// limits); TLS and CORS.
mod connections;
/// Bedrock's Converse, ConverseStream and CountTokens through the real AWS SDK.
mod converse;
/// Cohere Embed v4, Titan Multimodal and Nova embeddings: texts, images, refusals.
mod embeddings_catalogue;
/// Every Bedrock error type and every bad request, mapped to status and error type.
mod errors;
/// Every model family of the shipped config: text, embeddings, images, refusals.
mod families;
mod guardrails;
/// Nothing leaked: Bedrock's messages masked and bounded on every API shape, the model
/// list, the passthrough's header policy, the `Bearer` scheme in any case.
mod hardening;
/// Starts a simulator and a gateway on port 0 for each test, and reads SSE.
mod harness;
/// Hostile callers (proptest): arbitrary JSON, bytes, headers, methods and paths on every
/// route; never a panic or a 5xx, every refusal in the route's API encoding.
mod hostile_input;
/// Hostile event streams from a fake Bedrock (proptest): damaged frames, huge lengths,
/// garbage; an error or the whole answer, in bounded time and memory.
mod hostile_streams;
/// A broken or hostile Bedrock: bad bodies, proxy pages, unknown errors, huge messages,
/// resets, drips, 2 GiB frames, endless and stalled streams; no retry after headers.
mod hostile_upstream;
/// `/v1/images/edits`: Titan Image Generator V2 and Nova Canvas edits, refusals, OpenAPI.
mod image_edits;
/// Images named by URL: fetched only from the origins the operator allows.
mod image_fetch;
/// Image answers as the model gave them: SDXL asked for JSON, content-filter refusals.
mod images_fidelity;
/// Admission: route quotas and their queue, caller limits, retries, fallbacks.
mod limits;
/// Against live Bedrock, only with `GATEWAY_LIVE=1`.
mod live;
/// `/metrics`: exact counts, bounded series, promtool.
mod metrics;
/// The OpenAI-compatible routes over plain HTTP.
mod openai;
/// The OpenAPI document against the routes served.
mod openapi;
/// Bedrock's per-request options: service tier, latency, guardrail, request metadata.
mod options;
/// The Bedrock-native routes through the real AWS SDK: every family, every error.
mod passthrough;
/// Prompt caching: the simulator's cache behind `cache_prompt`, whole and streamed.
mod prompt_cache;
/// Shared limits in a real `redis-server`: two gateways, one quota; Redis down and back.
mod redis;
/// Config reloads under load: ten rewrites (one invalid) while every API shape streams;
/// no request fails, every change is served, quota counters carry over.
mod reload;
/// OpenAI's Responses API (`/v1/responses`) and `GET /v1/models/{id}`.
mod responses;
/// Non-streamed `/v1/generate` for every family, routing, defaults, listing, health.
mod rest;
/// Scale-out: three gateways sharing one quota through a real `redis-server`, one killed
/// and one reloaded under a steady load; no throttles, the admitted rate within the quota.
mod scale_out;
/// Graceful shutdown: readiness first, then drain.
mod shutdown;
/// The simulator verifies the gateway's SigV4 on every path; wrong keys are a 502.
mod signing;
/// Streamed `/v1/generate`: deltas as they arrive, the final event, mid-stream failures.
mod sse;
