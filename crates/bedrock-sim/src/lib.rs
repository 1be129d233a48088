//! A local server that speaks the Amazon Bedrock runtime wire protocol, so that the real
//! `aws-sdk-bedrockruntime` client, pointed at it with `endpoint_url`, works unchanged. It
//! answers deterministically, with test credentials of its own, and can inject latency and
//! faults per model.
//!
//! # What it simulates
//!
//! - `POST /model/{modelId}/invoke` (InvokeModel) and
//!   `POST /model/{modelId}/invoke-with-response-stream` (InvokeModelWithResponseStream),
//!   routed on the raw path so that ARN ids with `%2F` work; and
//!   `POST /model/{modelId}/count-tokens` (CountTokens) for the Claude models that count
//!   (3.5 and later, not the 4.6 ones), answering the input tokens InvokeModel would report
//!   for the same `invokeModel` body, without using the token quota (`count_tokens.rs`).
//! - Text model families, each with its own request validation, answer and stream-chunk
//!   shapes (the table in `families/mod.rs` lists every model id): Amazon Titan Text and
//!   Nova, Anthropic Claude Text Completions and Messages, Meta Llama 2/3/4, Mistral
//!   (`[INST]` prompt and chat bodies), Cohere Command and Command R, AI21 Jurassic-2 (no
//!   streaming, like Bedrock) and Jamba, DeepSeek-R1 and OpenAI gpt-oss.
//!   Cross-region profile ids (`us.anthropic.claude-v2:1`) and `foundation-model/` or
//!   `inference-profile/` ARNs resolve to the same models; models that Bedrock serves only
//!   through an inference profile refuse their plain id with Bedrock's message.
//! - Embedding models (InvokeModel only): Amazon Titan Text Embeddings G1 and V2
//!   (`amazon.titan-embed-text-v1`, `amazon.titan-embed-text-v2:0`), Cohere Embed v3
//!   (`cohere.embed-english-v3`, `cohere.embed-multilingual-v3`) and Amazon Nova Multimodal
//!   Embeddings (`amazon.nova-2-multimodal-embeddings-v1:0`). Vectors are a pure function of
//!   the embedded text, of the requested dimension, and of unit length when normalized.
//! - Image models (InvokeModel only): Amazon Titan Image Generator G1 and V2, Nova Canvas,
//!   Stability SDXL 1.0, SD3 Large, SD3.5 Large, Stable Image Ultra and Stable Image Core. Each
//!   image is a valid solid-colour PNG of the requested size, its colour derived from the
//!   prompt and seed; SDXL answers `Accept: image/png` with the raw PNG.
//! - InvokeModelWithResponseStream on an embedding or image model is a 400 ValidationException,
//!   `The model is unsupported for streaming.`
//! - Bedrock's checks and errors: model id shape, unknown model, content type, accept, request
//!   body schema (extraneous keys, required keys, types, ranges), all with the error encoding
//!   of the real service (`x-amzn-ErrorType`, `{"message": ...}`).
//! - Answers are words from a fixed vocabulary seeded by the FNV-1a hash of the prompt: the
//!   same prompt always gets the same answer. One word is one token and one stream chunk.
//!   Embedding and image answers report the input words as input tokens and 0 output tokens.
//! - Prompt caching for the models Bedrock caches prompts for (Claude 3.5 Haiku, 3.7 Sonnet
//!   and later; Nova): Claude's `cache_control` breakpoints and Nova's `cachePoint` blocks
//!   cache the prefix before them, per model, when it has the model's minimum of tokens
//!   (Claude 1,024 to 4,096, Nova 1,000), for five minutes from its last use; the answer
//!   reports the tokens read from and written to the cache (Claude's `usage`
//!   `cache_read_input_tokens` / `cache_creation_input_tokens`, Nova's
//!   `cacheReadInputTokenCount` / `cacheWriteInputTokenCount`, the
//!   `X-Amzn-Bedrock-Cache-{Read,Write}-Input-Token-Count` headers, a stream's invocation
//!   metrics), and the input tokens without them. At most 10,000 prefixes are kept; see
//!   `prompt_cache.rs`.
//! - Token quotas per model, tokens per minute and per day, reserved when a request starts
//!   and settled when it ends, with Bedrock's ThrottlingException (see [Quotas](#quotas)).
//! - Guardrails: a text request that names a guardrail (`X-Amzn-Bedrock-GuardrailIdentifier`
//!   and `-GuardrailVersion`) and whose prompt contains [`GUARDRAIL_TRIGGER`] is blocked as
//!   Bedrock blocks an input: [`BLOCKED_MESSAGE`] in the family's shape, without its stop
//!   field, with `"amazon-bedrock-guardrailAction": "INTERVENED"` (and the guardrail trace
//!   when `X-Amzn-Bedrock-Trace` is `ENABLED`); see `guardrail.rs`.
//! - Any other path answers 404 `UnknownOperationException`.
//! - Authentication as Bedrock's, before any other check of an invoke request: SigV4 or a
//!   bearer token, with test credentials (see [Authentication](#authentication)).
//!
//! # Steering it
//!
//! From Rust, with [`Simulator::set_behavior`], [`Simulator::set_quota`] and
//! [`Simulator::stats`]; over HTTP, with the control API:
//!
//! | request | effect |
//! |---|---|
//! | `PUT /_sim/behavior/{model_id}` with a JSON behavior | sets the behavior of one model, or of every model for `*`; 204 |
//! | `DELETE /_sim/behavior` | clears every behavior; 204 |
//! | `PUT /_sim/quota/{model_id}` with a JSON quota | sets the token quota of one model (not `*`), refills it and restarts the model's counters; 204 |
//! | `DELETE /_sim/quota` | clears every quota and the counters of the models that had one; 204 |
//! | `POST /_sim/release` | releases the streams held by `hold_after_chunks` ([`Simulator::release_held`]): every stream started before it goes on; 204 |
//! | `GET /_sim/stats` | [`Stats`]: `{"requests": n, "in_flight": n, "auth_refusals": n, "models": {...}}`, see [Quotas](#quotas) |
//!
//! A body the control API refuses (bad JSON, an unknown field, a value out of range) is a 400
//! `ValidationException` whose message starts with `Invalid behavior: ` or `Invalid quota: `.
//!
//! The JSON form of a [`Behavior`]; every field is optional and unknown fields are refused:
//!
//! ```json
//! {
//!   "first_byte_latency_ms": 50,
//!   "token_latency_ms": 5,
//!   "fault": {"error": "ThrottlingException", "after_chunks": 2},
//!   "fault_times": 1,
//!   "hold_after_chunks": 1
//! }
//! ```
//!
//! - `first_byte_latency_ms`: whole milliseconds slept before the response starts.
//! - `token_latency_ms`: whole milliseconds slept between stream chunks; InvokeModel sleeps
//!   it once per output token.
//! - `fault_times`: how many requests the fault hits before it stops; absent means all.
//! - `hold_after_chunks`: a stream sends this many chunks (all of them, when it has fewer),
//!   then holds, its connection open, until `POST /_sim/release`
//!   ([`Simulator::release_held`]) releases the streams started before it; InvokeModel
//!   ignores it. [`Simulator::held`] counts the streams holding. It is not a fault: it
//!   combines with one, and `fault_times` does not count it.
//! - `fault` is exactly one of these forms ([`Fault`]):
//!
//! | JSON | [`Fault`] |
//! |---|---|
//! | `{"error": "<Shape>"}` | `Error(kind)`: an HTTP error instead of the answer |
//! | `{"error": "<Shape>", "after_chunks": n}` | `ErrorAfterChunks(kind, n)`: an exception frame after n chunks |
//! | `{"truncate_after_chunks": n}` | `TruncateAfterChunks(n)` |
//! | `{"bad_checksum_after_chunks": n}` | `BadChecksumAfterChunks(n)` |
//! | `{"abort_after_chunks": n}` | `AbortAfterChunks(n)` |
//! | `{"error": "<Shape>", "message_bytes": n}` | `LongErrorMessage(kind, n)`: the error, its message n bytes long (at most 64 MiB) |
//! | `{"unknown_error": "<Name>"}` | `UnknownError(name)`: a 400 of an error type Bedrock does not have |
//! | `{"proxy_error": status}` | `ProxyError(status)`: a proxy's HTML error page, 400 to 599 |
//! | `{"body": "<bad>"}`, optionally with `"after_chunks": n` | `BadBodyAfterChunks(bad, n)`, [`BadBody`]: `invalid_json`, `other_family`, `unknown_shape`, `empty` |
//! | `{"reset_mid_body_after_chunks": n}` | `ResetMidBodyAfterChunks(n)`: half the body (half a frame after n chunks), then the connection drops |
//! | `{"drip_byte_ms": n}` | `Drip(n ms)`: every byte of the answer alone, n ms apart (1 to 60 000) |
//! | `{"huge_frame_after_chunks": n}` | `HugeFrameAfterChunks(n)`: a frame (InvokeModel: a `Content-Length`) announcing 2 GiB, then zeros |
//! | `{"endless": true}` | `Endless`: a stream (or body) that never ends |
//!
//! `<Shape>` is an error shape name such as `ThrottlingException` ([`ErrorKind::shape_name`]).
//! [`Fault`] says what each does on either operation.
//!
//! # Quotas
//!
//! Bedrock throttles each model on tokens per minute and tokens per day. It charges a request
//! when it starts, on what it may use, and settles to what it used at the end; the simulator
//! does exactly this. The JSON form of a [`Quota`], `model_id` matched like behaviors (the
//! base model id after ARN and geography stripping); at least one limit is required, unknown
//! fields are refused:
//!
//! ```json
//! {"tokens_per_minute": 100000, "tokens_per_day": 10000000, "output_burndown": 5}
//! ```
//!
//! - Each limit is a token bucket of that capacity, starting full and refilled continuously:
//!   the minute bucket at `tokens_per_minute` per 60 s, the day bucket at `tokens_per_day`
//!   per 86 400 s. A level is a signed balance; limits are at least 1.
//! - `output_burndown` (default 1, finite, at least 1) is how many quota tokens an output
//!   token counts for; the output part of a charge is rounded up to a whole token.
//! - When a request starts (its body is valid, before latency and faults, so a throttled
//!   request uses none of a behavior's `fault_times`), its reservation is input tokens +
//!   max tokens × burndown: the simulator's input count, and the request's maximum output
//!   tokens after the family default (0 for embeddings and images). If either bucket holds
//!   less, the answer is a 429 `ThrottlingException`,
//!   `Too many tokens, please wait before trying again.`; otherwise both buckets lose it.
//! - When the request ends, the charge is input + output tokens produced × burndown, and
//!   reservation − charge goes back to both buckets, up to their capacity. InvokeModel ends
//!   when its body is produced; a stream when its last chunk is produced, or, cut by an
//!   in-stream fault, at the tokens of the chunks sent intact. A request whose client goes
//!   away is settled at what was produced by then (the input alone for InvokeModel). An
//!   injected HTTP error (`{"error": ...}`) charges nothing.
//! - Setting a quota again refills it. Reservations taken before that settle into nothing.
//! - Time is `tokio::time::Instant`, the system clock unless a test pauses tokio's clock.
//!
//! `GET /_sim/stats` ([`Simulator::stats`]) reports, besides `requests` (every request on the
//! two invoke routes), `in_flight` ([`Simulator::in_flight`]: the invocations whose answer
//! is not over, a handler still waiting or a body still being sent) and `auth_refusals`
//! ([`Simulator::auth_refusals`], see [Authentication](#authentication)), the counters of each model that reached the quota check since the
//! simulator started or since its quota was last set or cleared (quota or not), and of each
//! model with a quota, keyed by base model id:
//!
//! ```json
//! {"requests": 7, "in_flight": 0, "auth_refusals": 0, "models": {"amazon.titan-text-express-v1":
//!   {"requests": 5, "throttled": 1, "tokens_charged": 180, "peak_tokens_per_minute": 121}}}
//! ```
//!
//! - `requests`: requests with a valid body that reached the quota check, throttled included.
//! - `throttled`: requests refused by the quota (an injected ThrottlingException is not).
//! - `tokens_charged`: the sum of the settled charges.
//! - `peak_tokens_per_minute`: the largest sum, over 60 one-second buckets in a row (by
//!   request start), of the requests' charges, a request counting at its reservation until
//!   it is settled; it is sampled when a request starts.
//!
//! # Authentication
//!
//! Every InvokeModel and InvokeModelWithResponseStream request is authenticated as Bedrock
//! authenticates it, before any of its other checks (the `/_sim` control API is not). It is
//! served when it carries either
//!
//! - a SigV4 signature (`Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
//!   Signature=…`) made with the secret of a known access key, for the service
//!   [`SIGNING_SERVICE`] (`bedrock`) in any region, with an `X-Amz-Date` within
//!   [`MAX_CLOCK_SKEW`] (5 minutes) of the simulator's clock and `host` and `x-amz-date`
//!   signed, with the key's session token when it has one; or
//! - a Bedrock API key (`Authorization: Bearer <token>`) of the configured list.
//!
//! [`Simulator::new`] accepts the test key [`TEST_ACCESS_KEY_ID`] with its secret
//! [`TEST_SECRET_ACCESS_KEY`], and the bearer token [`TEST_BEARER_TOKEN`]: the gateway signs
//! its calls to a simulator with that key unless its config names another. Other
//! credentials: [`Simulator::with_auth`] with an [`Auth`] (the binary's `--access-key` and
//! `--bearer-token`); [`Auth::unverified`] (`--no-verify-auth`) serves every request, for a
//! simulator run by hand. The canonical request is rebuilt from the request as it arrived
//! (the path double-encoded, as the AWS SDKs sign for every service but S3), checked
//! against the AWS signing test suite; the signing key of each access key, date, region and
//! service is derived once and kept (at most [`MAX_CACHED_SIGNING_KEYS`]), so a request
//! costs two SHA-256 passes and one HMAC. [`Signer`] signs requests as the SDK does (with
//! `aws-sigv4`), for clients without the SDK.
//!
//! Anything else is refused with Bedrock's 403 in its error encoding, and the log line
//! (`request refused: authentication`, at `info`) says which part failed; for a signature
//! that does not match, it carries the canonical request and string to sign the simulator
//! computed. [`Simulator::auth_refusals`] counts the refusals.
//!
//! | what is wrong | `x-amzn-ErrorType` | message |
//! |---|---|---|
//! | no `Authorization` | `AccessDeniedException` | `Authorization header is missing` |
//! | a bearer token not configured | `AccessDeniedException` | `Authentication failed: Please make sure your API Key is valid.` |
//! | not `AWS4-HMAC-SHA256` with `Credential`, `SignedHeaders` and `Signature`; a part not `key=value`; a credential not ending in `aws4_request`; no or a malformed `X-Amz-Date` | `IncompleteSignatureException` | AWS's text for each (`Authorization header requires 'Signature' parameter. …`) |
//! | an unknown access key id; a session token missing, wrong or not expected | `UnrecognizedClientException` | `The security token included in the request is invalid.` |
//! | the scope's date is not `X-Amz-Date`'s day | `InvalidSignatureException` | `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: …` |
//! | the scope's service is not `bedrock`; its region is not a region's name | `InvalidSignatureException` | `Credential should be scoped to correct service: 'bedrock'. `; `Credential should be scoped to a valid region. ` |
//! | `host` not signed | `InvalidSignatureException` | `'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.` |
//! | `X-Amz-Date` more than 5 minutes behind or ahead | `InvalidSignatureException` | `Signature expired: <t> is now earlier than <now − 5 min> (<now> - 5 min.)`; `Signature not yet current: <t> is still later than <now + 5 min> (<now> + 5 min.)` |
//! | anything else the signature covers: the secret, the body (and `X-Amz-Content-SHA256`), the method, path or query, a signed header changed or absent; `x-amz-date`, `x-amz-security-token` or `x-amz-content-sha256` sent but not signed; `SignedHeaders` not lower case and sorted | `InvalidSignatureException` | `The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.` |
//!
//! # Example
//!
//! ```no_run
//! use bedrock_sim::{Behavior, ErrorKind, Fault, Quota, Simulator};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let simulator = Simulator::new();
//! // 1 000 tokens per minute for Titan Text Express; output tokens count once.
//! let quota = Quota { tokens_per_minute: Some(1_000), ..Quota::default() };
//! simulator.set_quota("amazon.titan-text-express-v1", quota)?;
//! simulator.set_behavior(
//!     "anthropic.claude-v2",
//!     Behavior {
//!         fault: Some(Fault::Error(ErrorKind::Throttling)),
//!         fault_times: Some(1),
//!         ..Behavior::default()
//!     },
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let endpoint_url = format!("http://{}", listener.local_addr()?);
//! tokio::spawn(simulator.clone().serve(listener, std::future::pending()));
//! // Point the SDK at `endpoint_url` with the test key (`TEST_ACCESS_KEY_ID`,
//! // `TEST_SECRET_ACCESS_KEY`); the first call to claude-v2 is throttled.
//! # let _ = endpoint_url;
//! # Ok(())
//! # }
//! ```

mod auth;
mod behavior;
mod control;
mod count_tokens;
mod embeddings;
mod error;
pub mod eventstream;
mod families;
mod generate;
mod guardrail;
mod hostile;
mod images;
mod invoke;
mod media_schema;
mod model_id;
mod prompt_cache;
mod quota;
mod response_stream;
mod schema;
mod simulator;
mod tools;

pub use crate::auth::sigv4;
pub use crate::auth::{
    AccessKey, Auth, MAX_CACHED_SIGNING_KEYS, MAX_CLOCK_SKEW, SIGNING_SERVICE, SignError, Signer,
    TEST_ACCESS_KEY_ID, TEST_BEARER_TOKEN, TEST_SECRET_ACCESS_KEY,
};
pub use crate::behavior::{BadBody, Behavior, ErrorKind, Fault};
pub use crate::guardrail::{BLOCKED_MESSAGE, GUARDRAIL_TRIGGER};
pub use crate::quota::{InvalidQuota, ModelStats, Quota, Stats};
pub use crate::simulator::{EVERY_MODEL, Simulator};
