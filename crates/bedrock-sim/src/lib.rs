//! A local server that speaks the Amazon Bedrock runtime wire protocol, so that the real
//! `aws-sdk-bedrockruntime` client, pointed at it with `endpoint_url`, works unchanged. It
//! answers deterministically, without keys, and can inject latency and faults per model.
//!
//! # What it simulates
//!
//! - `POST /model/{modelId}/invoke` (InvokeModel) and
//!   `POST /model/{modelId}/invoke-with-response-stream` (InvokeModelWithResponseStream),
//!   routed on the raw path so that ARN ids with `%2F` work.
//! - Text model families, each with its own request validation, answer and stream-chunk
//!   shapes (the table in `families/mod.rs` lists every model id): Amazon Titan Text and
//!   Nova, Anthropic Claude Text Completions and Messages, Meta Llama 2/3/4, Mistral
//!   (`[INST]` prompt and chat bodies), Cohere Command and Command R, AI21 Jurassic-2 (no
//!   streaming, like Bedrock) and Jamba, DeepSeek-R1 and OpenAI gpt-oss (no streaming).
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
//! - Any other path answers 404 `UnknownOperationException`.
//!
//! # Steering it
//!
//! From Rust, with [`Simulator::set_behavior`]; over HTTP, with the control API:
//!
//! | request | effect |
//! |---|---|
//! | `PUT /_sim/behavior/{model_id}` with a JSON behavior | sets the behavior of one model, or of every model for `*`; 204 |
//! | `DELETE /_sim/behavior` | clears every behavior; 204 |
//! | `GET /_sim/stats` | `{"requests": n}`: requests received on the two invoke routes |
//!
//! The JSON form of a [`Behavior`]; every field is optional and unknown fields are refused:
//!
//! ```json
//! {
//!   "first_byte_latency_ms": 50,
//!   "token_latency_ms": 5,
//!   "fault": {"error": "ThrottlingException", "after_chunks": 2},
//!   "fault_times": 1
//! }
//! ```
//!
//! - `first_byte_latency_ms`: whole milliseconds slept before the response starts.
//! - `token_latency_ms`: whole milliseconds slept between stream chunks; InvokeModel sleeps
//!   it once per output token.
//! - `fault_times`: how many requests the fault hits before it stops; absent means all.
//! - `fault` is exactly one of these forms ([`Fault`]):
//!
//! | JSON | [`Fault`] |
//! |---|---|
//! | `{"error": "<Shape>"}` | `Error(kind)`: an HTTP error instead of the answer |
//! | `{"error": "<Shape>", "after_chunks": n}` | `ErrorAfterChunks(kind, n)`: an exception frame after n chunks |
//! | `{"truncate_after_chunks": n}` | `TruncateAfterChunks(n)` |
//! | `{"bad_checksum_after_chunks": n}` | `BadChecksumAfterChunks(n)` |
//! | `{"abort_after_chunks": n}` | `AbortAfterChunks(n)` |
//!
//! `<Shape>` is an error shape name such as `ThrottlingException` ([`ErrorKind::shape_name`]).
//!
//! # Example
//!
//! ```no_run
//! use bedrock_sim::{Behavior, ErrorKind, Fault, Simulator};
//!
//! # async fn example() -> std::io::Result<()> {
//! let simulator = Simulator::new();
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
//! // Point the SDK at `endpoint_url`; the first call to claude-v2 is throttled.
//! # let _ = endpoint_url;
//! # Ok(())
//! # }
//! ```

mod behavior;
mod control;
mod embeddings;
mod error;
pub mod eventstream;
mod families;
mod generate;
mod images;
mod invoke;
mod media_schema;
mod model_id;
mod response_stream;
mod schema;
mod simulator;

pub use crate::behavior::{Behavior, ErrorKind, Fault};
pub use crate::simulator::{EVERY_MODEL, Simulator};
