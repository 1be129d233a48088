//! Hostile input from callers, with proptest: every route of the API listener (the
//! gateway's own, the OpenAI-compatible, the Bedrock passthrough, the operations routes)
//! gets arbitrary JSON values and mutations of valid bodies, arbitrary bytes, arbitrary
//! header values and methods, and arbitrary paths. The embedded simulator answers what
//! gets through. Nothing may panic or answer 5xx: a refusal is a 4xx in the encoding of
//! the route's API, an answer is whole, and a stream ends with its own end (`done`,
//! `[DONE]`, the last frame), never with a failure of the gateway's or the simulator's.
//!
//! Each property runs [`CASES`] cases per route (proptest's random seed; a failure
//! prints the shrunk input, `PROPTEST_RNG_SEED` replays a run). A failure names the
//! route, the request and the answer.

use std::time::Duration;

use base64::Engine;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Harness, SHIPPED_CONFIG};

/// Cases per route and property.
const CASES: u32 = 128;

/// The one API key of the test config, sent with every request unless a case replaces
/// the credentials headers.
const KEY: &str = "hostile-input-secret";

/// How long one answer may take before the case fails: far above any the simulator
/// gives, so that only a hang trips it.
const ANSWER_BOUND: Duration = Duration::from_secs(60);

/// The API a route belongs to, which decides its error encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// `{"error": {"type", "message"}}`.
    Gateway,
    /// OpenAI's `{"error": {"message", "type", "param", "code"}}`.
    OpenAi,
    /// `x-amzn-ErrorType` and `{"message"}`; streams are event-stream frames.
    Bedrock,
    /// Anthropic's `{"type": "error", "error": {"type", "message"}}`.
    Anthropic,
}

/// One route and the valid requests its mutations start from: `(path, body)`.
#[derive(Debug, Clone)]
struct Route {
    api: Api,
    method: Method,
    seeds: Vec<(String, Value)>,
}

impl Route {
    fn post(api: Api, path: &str, bodies: Vec<Value>) -> Route {
        let seeds = bodies.into_iter().map(|body| (path.to_owned(), body)).collect();
        Route { api, method: Method::POST, seeds }
    }

    fn get(path: &str) -> Route {
        Route { api: Api::Gateway, method: Method::GET, seeds: vec![(path.to_owned(), json!({}))] }
    }

    fn path(&self) -> &str {
        &self.seeds[0].0
    }
}

/// The start of a PNG of `width` x `height` (signature and `IHDR`), base64: all the
/// simulator reads of an input image.
fn png(width: u32, height: u32) -> String {
    let mut png = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', 0, 0, 0, 13];
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&width.to_be_bytes());
    png.extend_from_slice(&height.to_be_bytes());
    png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    base64::engine::general_purpose::STANDARD.encode(png)
}

fn gateway_routes() -> Vec<Route> {
    let image = png(512, 512);
    vec![
        Route::post(
            Api::Gateway,
            "/v1/generate",
            vec![
                json!({"model": "claude-3-haiku", "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Tell me about tides"}],
                "max_tokens": 16, "temperature": 0.5, "top_p": 0.9, "stop": ["\n\n"]}),
                json!({"model": "titan-express", "prompt": "Tell me about tides", "max_tokens": 16,
                "stream": true}),
                json!({"model": "nova-lite", "prompt": "Hi", "max_tokens": 8, "top_k": 5,
                "cache_prompt": true, "stream": true}),
                json!({"model": "llama3-8b", "prompt": "Hi", "max_tokens": 8, "seed": 7,
                "extra": {"max_gen_len": 4}, "stop": "\n"}),
            ],
        ),
        Route::post(
            Api::Gateway,
            "/v1/embed",
            vec![
                json!({"model": "titan-embed-v2", "input": ["a", "b"], "dimensions": 256,
                "normalize": true}),
                json!({"model": "cohere-embed-english", "input": "hello",
                "input_type": "search_query"}),
                json!({"model": "nova-embed", "images": [image.clone()], "input": []}),
            ],
        ),
        Route::post(
            Api::Gateway,
            "/v1/images",
            vec![
                json!({"model": "titan-image-v2", "prompt": "a lighthouse", "n": 1, "width": 512,
                "height": 512, "seed": 1, "cfg_scale": 8.0}),
                json!({"model": "sdxl", "prompt": "a lighthouse"}),
                json!({"model": "sd3-large", "prompt": "a lighthouse", "negative_prompt": "fog"}),
            ],
        ),
        Route::post(
            Api::Gateway,
            "/v1/images/edits",
            vec![
                json!({"model": "titan-image-v2", "task": "background_removal",
                "images": [image.clone()]}),
                json!({"model": "nova-canvas", "task": "inpainting", "images": [image.clone()],
                "mask_prompt": "the sky", "prompt": "stars"}),
                json!({"model": "titan-image-v2", "task": "variation",
                "images": [image.clone(), image], "similarity_strength": 0.7, "n": 2}),
            ],
        ),
    ]
}

/// A tool every family with tools takes.
fn weather_tool_schema() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
}

fn openai_routes() -> Vec<Route> {
    let image = format!("data:image/png;base64,{}", png(1, 1));
    vec![
        Route::post(
            Api::OpenAi,
            "/v1/chat/completions",
            vec![
                json!({"model": "claude-3-haiku", "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                        {"type": "image_url", "image_url": {"url": image}}]},
                    {"role": "assistant", "content": null, "tool_calls": [{"id": "t1",
                        "type": "function", "function": {"name": "weather",
                        "arguments": "{\"city\":\"Oslo\"}"}}]},
                    {"role": "tool", "tool_call_id": "t1", "content": "3 degrees"}],
                "tools": [{"type": "function", "function": {"name": "weather",
                    "parameters": weather_tool_schema()}}], "tool_choice": "auto"}),
                json!({"model": "nova-lite", "messages": [{"role": "user", "content": "Hi"}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "answer",
                    "schema": weather_tool_schema()}}, "stream": true}),
            ],
        ),
        Route::post(
            Api::OpenAi,
            "/v1/responses",
            vec![
                json!({"model": "claude-3-haiku", "input": "Hi", "instructions": "Be terse",
                "max_output_tokens": 16}),
                json!({"model": "nova-lite", "input": [
                    {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
                    {"type": "function_call", "call_id": "c1", "name": "weather",
                        "arguments": "{\"city\":\"Oslo\"}"},
                    {"type": "function_call_output", "call_id": "c1", "output": "3 degrees"}],
                "tools": [{"type": "function", "name": "weather",
                    "parameters": weather_tool_schema()}], "stream": true}),
            ],
        ),
        Route::post(
            Api::OpenAi,
            "/v1/chat/completions",
            vec![
                json!({"model": "claude-3-haiku", "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 16}),
                json!({"model": "llama3-8b", "messages": [
                {"role": "developer", "content": "Be terse"},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
                "stream": true, "stream_options": {"include_usage": true},
                "max_completion_tokens": 16, "n": 1, "logprobs": false,
                "service_tier": "auto", "metadata": {"team": "a"}}),
            ],
        ),
        Route::post(
            Api::OpenAi,
            "/v1/completions",
            vec![
                json!({"model": "titan-express", "prompt": "Hi", "max_tokens": 16}),
                json!({"model": "mistral-7b", "prompt": ["Hi"], "stream": true, "stop": "\n",
                "best_of": 1, "echo": false}),
            ],
        ),
        Route::post(
            Api::OpenAi,
            "/v1/embeddings",
            vec![
                json!({"model": "titan-embed-v2", "input": "hello", "encoding_format": "base64",
                "dimensions": 256}),
                json!({"model": "cohere-embed-english", "input": ["a", "b"], "user": "u"}),
            ],
        ),
        Route::post(
            Api::OpenAi,
            "/v1/images/generations",
            vec![json!({
            "model": "titan-image-v2", "prompt": "a lighthouse", "size": "512x512",
            "response_format": "b64_json", "n": 1})],
        ),
    ]
}

fn anthropic_routes() -> Vec<Route> {
    let image = png(1, 1);
    vec![
        Route::post(
            Api::Anthropic,
            "/v1/messages",
            vec![
                json!({"model": "claude-3-haiku", "max_tokens": 16, "system": "Be terse",
                "messages": [{"role": "user", "content": "Hi"}]}),
                json!({"model": "claude-3-haiku", "max_tokens": 32, "stream": true,
                "tools": [{"name": "weather", "input_schema": weather_tool_schema()}],
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                        {"type": "image", "source": {"type": "base64",
                            "media_type": "image/png", "data": image}}]},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "t1",
                        "name": "weather", "input": {"city": "Oslo"}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                        "content": "3 degrees"}]}]}),
                json!({"model": "nova-lite", "max_tokens": 16, "stream": true,
                "messages": [{"role": "user", "content": "Hi"}]}),
            ],
        ),
        Route::post(
            Api::Anthropic,
            "/v1/messages/count_tokens",
            vec![json!({"model": "claude-3-haiku",
                "messages": [{"role": "user", "content": "Hi"}]})],
        ),
    ]
}

fn converse_routes() -> Vec<Route> {
    let seeds = |operation: &str| {
        let text = json!({"messages": [{"role": "user", "content": [{"text": "Hi"}]}],
            "system": [{"text": "Be terse"}], "inferenceConfig": {"maxTokens": 16}});
        let tools = json!({"messages": [{"role": "user", "content": [{"text": "Weather?"},
                {"image": {"format": "png", "source": {"bytes": png(1, 1)}}}]}],
            "toolConfig": {"tools": [{"toolSpec": {"name": "weather",
                "inputSchema": {"json": weather_tool_schema()}}}]}});
        let seeds = vec![
            (format!("/model/claude-3-haiku/{operation}"), tools),
            (format!("/model/nova-lite/{operation}"), text.clone()),
            (format!("/model/titan-express/{operation}"), text),
        ];
        Route { api: Api::Bedrock, method: Method::POST, seeds }
    };
    let count = Route::post(
        Api::Bedrock,
        "/model/claude-3-haiku/count-tokens",
        vec![json!({"input": {"converse": {"messages": [{"role": "user",
            "content": [{"text": "Hi"}]}]}}})],
    );
    vec![seeds("converse"), seeds("converse-stream"), count]
}

fn bedrock_routes() -> Vec<Route> {
    let seeds = |operation: &str| {
        let titan = json!({"inputText": "Tell me about lighthouses",
            "textGenerationConfig": {"maxTokenCount": 12}});
        let claude = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 16,
            "messages": [{"role": "user", "content": "Hi"}]});
        let mut seeds = vec![
            (format!("/model/titan-express/{operation}"), titan),
            (format!("/model/claude-3-haiku/{operation}"), claude.clone()),
            (format!("/model/anthropic.claude-3-haiku-20240307-v1%3A0/{operation}"), claude),
            (
                format!("/model/llama3-8b/{operation}"),
                json!({"prompt": "Hi", "max_gen_len": 12, "temperature": 0.5}),
            ),
        ];
        if operation == "invoke" {
            seeds.push(("/model/titan-embed-v2/invoke".to_owned(), json!({"inputText": "hi"})));
        }
        Route { api: Api::Bedrock, method: Method::POST, seeds }
    };
    vec![seeds("invoke"), seeds("invoke-with-response-stream")]
}

fn operations_routes() -> Vec<Route> {
    ["/v1/models", "/v1/limits", "/healthz", "/readyz", "/openapi.json"]
        .into_iter()
        .map(Route::get)
        .collect()
}

/// A simulator and a gateway with the shipped config's models and one API key, on a
/// runtime the synchronous proptest runner blocks on. `harness` drops first.
struct Env {
    harness: Harness,
    runtime: tokio::runtime::Runtime,
}

impl Env {
    fn start() -> Env {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let at = SHIPPED_CONFIG.find("[models.").unwrap();
        let keys = format!(
            "[[auth.keys]]\nname = \"hostile\"\nsha256 = \"{}\"\n",
            server::auth::hash_key(KEY)
        );
        let models = format!("{keys}{}", &SHIPPED_CONFIG[at..]);
        let harness = runtime.block_on(Harness::start_with("max_attempts = 1\n", &models));
        Env { harness, runtime }
    }

    /// Sends one request and checks the answer against `route`'s API.
    fn check(&self, route: &Route, request: Request) -> Result<(), TestCaseError> {
        let answer = self.runtime.block_on(self.send(&request));
        let answer = answer.map_err(|e| TestCaseError::fail(format!("{request:?}: {e}")))?;
        check_answer(route.api, &request, &answer).map_err(|e| {
            TestCaseError::fail(format!("{e}\nrequest: {request:?}\nanswer: {answer}"))
        })
    }

    async fn send(&self, request: &Request) -> Result<Answer, String> {
        let h = &self.harness;
        let mut builder =
            h.http.request(request.method.clone(), h.url(&request.path)).body(request.body.clone());
        let replaces_credentials =
            request.headers.iter().any(|(name, _)| name == "authorization" || name == "x-api-key");
        if !replaces_credentials {
            builder = builder.header("x-api-key", KEY);
        }
        if !request.headers.iter().any(|(name, _)| name == "content-type") {
            builder = builder.header("content-type", "application/json");
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        let exchange = async {
            let response = builder.send().await.map_err(|e| format!("no answer: {e:?}"))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(|e| format!("body cut off: {e:?}"))?;
            Ok(Answer { status, headers, body: body.to_vec() })
        };
        tokio::time::timeout(ANSWER_BOUND, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("no whole answer within {ANSWER_BOUND:?}")))
    }
}

/// One request of a case.
#[derive(Clone)]
struct Request {
    method: Method,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {:?} {}", self.method, self.path, self.headers, shown(&self.body))
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?} {}", self.status, self.headers, shown(&self.body))
    }
}

/// The body as text, cut for failure messages.
fn shown(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let cut: String = text.chars().take(600).collect();
    if cut.len() < text.len() { format!("{cut}…") } else { cut }
}

// ---------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------

#[test]
fn gateway_routes_refuse_hostile_json_in_their_encoding() {
    json_bodies(gateway_routes());
}

#[test]
fn gateway_routes_refuse_hostile_bytes_in_their_encoding() {
    byte_bodies(gateway_routes());
}

#[test]
fn gateway_routes_take_any_headers_and_method() {
    headers_and_methods(gateway_routes());
}

#[test]
fn openai_routes_refuse_hostile_json_in_their_encoding() {
    json_bodies(openai_routes());
}

#[test]
fn openai_routes_refuse_hostile_bytes_in_their_encoding() {
    byte_bodies(openai_routes());
}

#[test]
fn openai_routes_take_any_headers_and_method() {
    headers_and_methods(openai_routes());
}

#[test]
fn anthropic_routes_refuse_hostile_json_in_their_encoding() {
    json_bodies(anthropic_routes());
}

#[test]
fn anthropic_routes_refuse_hostile_bytes_in_their_encoding() {
    byte_bodies(anthropic_routes());
}

#[test]
fn anthropic_routes_take_any_headers_and_method() {
    headers_and_methods(anthropic_routes());
}

#[test]
fn converse_routes_refuse_hostile_json_in_their_encoding() {
    json_bodies(converse_routes());
}

#[test]
fn converse_routes_refuse_hostile_bytes_in_their_encoding() {
    byte_bodies(converse_routes());
}

#[test]
fn bedrock_routes_refuse_hostile_json_in_their_encoding() {
    json_bodies(bedrock_routes());
}

#[test]
fn bedrock_routes_refuse_hostile_bytes_in_their_encoding() {
    byte_bodies(bedrock_routes());
}

#[test]
fn bedrock_routes_take_any_headers_method_and_model_id() {
    headers_and_methods(bedrock_routes());
    let env = Env::start();
    let route = &bedrock_routes()[0];
    let segment = proptest::collection::vec(
        prop_oneof![
            "[A-Za-z0-9._:~-]{1,8}",
            "%[0-9A-Fa-f]{2}",
            "%[0-9A-Za-z]{0,2}",
            proptest::sample::select(vec!["titan-express", "%2F", "..", ".", "%00", "%FF", "/"])
                .prop_map(str::to_owned),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat());
    let operation =
        proptest::sample::select(vec!["invoke", "invoke-with-response-stream", "converse", ""]);
    run("/model/{modelId}/…", (segment, operation), |(segment, operation)| {
        let body = serde_json::to_vec(&route.seeds[0].1).unwrap();
        let path = format!("/model/{segment}/{operation}");
        let route = Route { api: api_of(&path), ..route.clone() };
        let request = Request { method: Method::POST, path, headers: Vec::new(), body };
        env.check(&route, request)
    });
}

#[test]
fn operations_and_unknown_paths_take_any_headers_method_and_path() {
    headers_and_methods(operations_routes());
    let env = Env::start();
    let route = Route::get("/v1/unknown");
    let path = proptest::collection::vec(
        prop_oneof![
            "[A-Za-z0-9._~-]{1,8}",
            "%[0-9A-Fa-f]{2}",
            proptest::sample::select(vec!["v1", "model", "..", "%2F", "openai", "images"])
                .prop_map(str::to_owned),
        ],
        1..5,
    )
    .prop_map(|parts| format!("/{}", parts.join("/")));
    let method = proptest::sample::select(vec![Method::GET, Method::POST, Method::DELETE]);
    run("unknown paths", (path, method), |(path, method)| {
        let route = Route { api: api_of(&path), ..route.clone() };
        let request = Request { method, path, headers: Vec::new(), body: b"{}".to_vec() };
        env.check(&route, request)
    });
}

/// The API of the path the gateway receives: the client resolves `.` and `..` segments.
fn api_of(path: &str) -> Api {
    let url = reqwest::Url::parse(&format!("http://127.0.0.1{path}")).unwrap();
    let path = url.path();
    if path.starts_with("/model/") {
        Api::Bedrock
    } else if server::routes::openai::PATHS.contains(&path) {
        Api::OpenAi
    } else if server::routes::anthropic::PATHS.contains(&path) {
        Api::Anthropic
    } else {
        Api::Gateway
    }
}

/// Mutations of each route's valid bodies, and arbitrary JSON values.
fn json_bodies(routes: Vec<Route>) {
    let env = Env::start();
    for route in &routes {
        let seeds = route.seeds.clone();
        let seed = proptest::sample::select(seeds);
        let body = (seed, prop_oneof![3 => Just(None), 1 => json_value().prop_map(Some)])
            .prop_flat_map(|((path, body), arbitrary)| match arbitrary {
                Some(value) => (Just(path), Just(value)).boxed(),
                None => (Just(path), mutated(body)).boxed(),
            });
        run(route.path(), body, |(path, body)| {
            let body = serde_json::to_vec(&body).unwrap();
            let request = Request { method: route.method.clone(), path, headers: Vec::new(), body };
            env.check(route, request)
        });
    }
}

/// Arbitrary bytes, and valid bodies cut short, with bytes flipped, or not UTF-8.
fn byte_bodies(routes: Vec<Route>) {
    let env = Env::start();
    for route in &routes {
        let seed = proptest::sample::select(route.seeds.clone());
        let damage = (
            any::<prop::sample::Index>(),
            proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        );
        let body = (seed, damage, proptest::collection::vec(any::<u8>(), 0..256), 0_u8..3)
            .prop_map(|((path, body), (cut, flips), arbitrary, kind)| {
                let mut bytes = serde_json::to_vec(&body).unwrap();
                match kind {
                    0 => bytes = arbitrary,
                    1 => bytes.truncate(cut.index(bytes.len() + 1)),
                    _ => {
                        for (at, byte) in flips {
                            let at = at.index(bytes.len());
                            bytes[at] = byte;
                        }
                    }
                }
                (path, bytes)
            });
        run(route.path(), body, |(path, body)| {
            let request = Request { method: route.method.clone(), path, headers: Vec::new(), body };
            env.check(route, request)
        });
    }
}

/// A valid body with up to four headers of any value (the credentials, content
/// negotiation, request id, Bedrock's options among the names), under any method.
fn headers_and_methods(routes: Vec<Route>) {
    let env = Env::start();
    for route in &routes {
        let method = prop_oneof![
            6 => Just(route.method.clone()),
            1 => proptest::sample::select(vec![
                Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH,
                Method::OPTIONS]),
        ];
        let headers = proptest::collection::vec((header_name(), header_value()), 0..5);
        let seed = proptest::sample::select(route.seeds.clone());
        run(route.path(), (seed, headers, method), |((path, body), headers, method)| {
            let body = serde_json::to_vec(&body).unwrap();
            env.check(route, Request { method, path, headers, body })
        });
    }
}

fn run<S: Strategy>(what: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let config = Config { failure_persistence: None, ..Config::with_cases(CASES) };
    let mut runner = TestRunner::new(config);
    if let Err(failure) = runner.run(&strategy, test) {
        panic!("{what}: {failure}");
    }
}

// ---------------------------------------------------------------------------------
// What an answer must be
// ---------------------------------------------------------------------------------

/// The gateway's error types that say the gateway or Bedrock failed, not the caller.
const SERVER_SIDE: &[&str] = &[
    "internal",
    "malformed_upstream",
    "upstream_error",
    "upstream_unavailable",
    "upstream_timeout",
    "upstream_misconfigured",
    "limits_unavailable",
    "shutting_down",
];

fn check_answer(api: Api, request: &Request, answer: &Answer) -> Result<(), String> {
    let status = answer.status;
    if status.is_server_error() {
        return Err(format!("a server error: {status}"));
    }
    let content_type = answer
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if status.is_success() {
        return check_success(api, request, &content_type, &answer.body);
    }
    if !status.is_client_error() {
        return Err(format!("neither an answer nor a refusal: {status}"));
    }
    // A refusal: in the API's own encoding, saying what is wrong.
    let body: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| format!("a refusal that is not JSON ({e})"))?;
    match api {
        Api::Gateway => {
            let error = &body["error"];
            let kind = error["type"].as_str().ok_or("no error.type")?;
            nonempty(&error["message"])?;
            if SERVER_SIDE.contains(&kind) {
                return Err(format!("a caller refused as a server failure: {kind}"));
            }
        }
        Api::OpenAi => {
            let error = &body["error"];
            nonempty(&error["message"])?;
            error["type"].as_str().ok_or("no error.type")?;
            error["code"].as_str().ok_or("no error.code")?;
            if error.get("param").is_none() {
                return Err("no error.param".to_owned());
            }
        }
        Api::Anthropic => {
            if body["type"] != "error" {
                return Err(format!("an Anthropic error without `type: error`: {body}"));
            }
            let error = &body["error"];
            nonempty(&error["message"])?;
            error["type"].as_str().ok_or("no error.type")?;
        }
        Api::Bedrock => {
            let shape = answer
                .headers
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .ok_or("no x-amzn-ErrorType")?;
            if shape.is_empty() || shape.starts_with(':') {
                return Err(format!("an empty error shape: {shape:?}"));
            }
            nonempty(&body["message"])?;
        }
    }
    Ok(())
}

fn nonempty(message: &Value) -> Result<(), String> {
    match message.as_str() {
        Some(text) if !text.trim().is_empty() => Ok(()),
        _ => Err(format!("no error message: {message}")),
    }
}

/// A 2xx: a whole JSON answer, a PNG asked for, or a stream that ends as it should.
fn check_success(
    api: Api,
    request: &Request,
    content_type: &str,
    body: &[u8],
) -> Result<(), String> {
    if content_type.starts_with("text/event-stream") {
        let text = std::str::from_utf8(body).map_err(|e| format!("SSE not UTF-8: {e}"))?;
        return match api {
            Api::OpenAi if request.path.starts_with("/v1/responses") => {
                check_responses_stream(text)
            }
            Api::OpenAi => check_openai_stream(text),
            Api::Anthropic => check_anthropic_stream(text),
            _ => check_gateway_stream(text),
        };
    }
    if content_type.starts_with("application/vnd.amazon.eventstream") {
        return check_event_stream(body);
    }
    if content_type.starts_with("image/png") {
        return match body.starts_with(b"\x89PNG\r\n\x1a\n") {
            true => Ok(()),
            false => Err("image/png that is not a PNG".to_owned()),
        };
    }
    if request.method == Method::OPTIONS || request.path == "/healthz" || body.is_empty() {
        return Ok(());
    }
    serde_json::from_slice::<Value>(body).map(|_| ()).map_err(|e| format!("a 2xx not JSON: {e}"))
}

/// The gateway's SSE: `delta` events, then `done`, or an `error` of the caller's making.
fn check_gateway_stream(text: &str) -> Result<(), String> {
    let events: Vec<(String, String)> = text
        .split("\n\n")
        .filter_map(|block| {
            let mut event = "message".to_owned();
            let mut data = None;
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event = name.trim().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data = Some(value.trim().to_owned());
                }
            }
            Some((event, data?))
        })
        .collect();
    let Some((last, data)) = events.last() else {
        return Err("an empty stream".to_owned());
    };
    match last.as_str() {
        "done" => Ok(()),
        "error" => {
            let body: Value = serde_json::from_str(data).map_err(|e| e.to_string())?;
            let kind = body["error"]["type"].as_str().unwrap_or_default();
            match SERVER_SIDE.contains(&kind) {
                true => Err(format!("the stream failed on the server side: {data}")),
                false => Ok(()),
            }
        }
        other => Err(format!("the stream ended with {other:?}, not done or error")),
    }
}

/// The named SSE events of a stream: `(event, data)`.
fn named_events(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = "message".to_owned();
            let mut data = None;
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event = name.trim().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data = Some(value.trim().to_owned());
                }
            }
            Some((event, data?))
        })
        .collect()
}

/// Anthropic's SSE: `message_start` ... `message_stop`, or an `error` of the caller's making.
fn check_anthropic_stream(text: &str) -> Result<(), String> {
    let events = named_events(text);
    match events.last() {
        Some((last, _)) if last == "message_stop" => Ok(()),
        Some((last, data)) if last == "error" => {
            let body: Value = serde_json::from_str(data).map_err(|e| e.to_string())?;
            match body["error"]["type"].as_str() {
                Some("api_error" | "overloaded_error") => {
                    Err(format!("the stream failed on the server side: {data}"))
                }
                _ => Ok(()),
            }
        }
        other => Err(format!("the stream ended with {other:?}, not message_stop or error")),
    }
}

/// The Responses API's SSE: `response.created` ... `response.completed` (or `.incomplete`),
/// or `error` then `response.failed` of the caller's making.
fn check_responses_stream(text: &str) -> Result<(), String> {
    let events = named_events(text);
    match events.last().map(|(event, _)| event.as_str()) {
        Some("response.completed" | "response.incomplete") => Ok(()),
        Some("response.failed") => {
            let error = events.iter().rev().find(|(event, _)| event == "error");
            let Some((_, data)) = error else { return Err("response.failed without error".into()) };
            let body: Value = serde_json::from_str(data).map_err(|e| e.to_string())?;
            match SERVER_SIDE.contains(&body["code"].as_str().unwrap_or_default()) {
                true => Err(format!("the stream failed on the server side: {data}")),
                false => Ok(()),
            }
        }
        other => Err(format!("the stream ended with {other:?}, not response.completed")),
    }
}

/// OpenAI's SSE: chunks, then `[DONE]`, or an error chunk of the caller's making.
fn check_openai_stream(text: &str) -> Result<(), String> {
    let data: Vec<&str> =
        text.split("\n\n").filter_map(|block| block.trim().strip_prefix("data: ")).collect();
    match data.last() {
        Some(&"[DONE]") => Ok(()),
        Some(last) => {
            let body: Value = serde_json::from_str(last).map_err(|e| e.to_string())?;
            let code = body["error"]["code"].as_str().ok_or("ended without [DONE]")?;
            match SERVER_SIDE.contains(&code) {
                true => Err(format!("the stream failed on the server side: {last}")),
                false => Ok(()),
            }
        }
        None => Err("an empty stream".to_owned()),
    }
}

/// Bedrock's event stream: whole frames of chunks, and no exception (the simulator
/// refuses a bad body before the stream starts).
fn check_event_stream(body: &[u8]) -> Result<(), String> {
    let frames = frames(body)?;
    if frames.is_empty() {
        return Err("an empty event stream".to_owned());
    }
    for (headers, payload) in &frames {
        let kind = headers.iter().find(|(name, _)| name == ":message-type").map(|(_, v)| v);
        if kind.map(String::as_str) != Some("event") {
            return Err(format!("a frame that is not an event: {headers:?} {}", shown(payload)));
        }
    }
    Ok(())
}

/// The frames of an event stream: each one's string headers and payload.
type Frame = (Vec<(String, String)>, Vec<u8>);

fn frames(mut bytes: &[u8]) -> Result<Vec<Frame>, String> {
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 16 {
            return Err(format!("{} bytes after the last whole frame", bytes.len()));
        }
        let (total, headers_len) = (be32(bytes), be32(&bytes[4..]));
        if total > bytes.len() || total < 16 + headers_len {
            return Err(format!("a frame of {total} bytes with {headers_len} of headers"));
        }
        let mut headers_block = &bytes[12..12 + headers_len];
        let mut headers = Vec::new();
        while !headers_block.is_empty() {
            let name_len = usize::from(headers_block[0]);
            let name = String::from_utf8_lossy(&headers_block[1..1 + name_len]).into_owned();
            let rest = &headers_block[1 + name_len..];
            if rest[0] != 7 {
                return Err(format!("header {name:?} is not a string"));
            }
            let value_len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
            let value = String::from_utf8_lossy(&rest[3..3 + value_len]).into_owned();
            headers.push((name, value));
            headers_block = &rest[3 + value_len..];
        }
        frames.push((headers, bytes[12 + headers_len..total - 4].to_vec()));
        bytes = &bytes[total..];
    }
    Ok(frames)
}

// ---------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------

/// The request fields of every API shape, and a few of the model bodies.
const KEYS: &[&str] = &[
    "model",
    "prompt",
    "messages",
    "role",
    "content",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "seed",
    "extra",
    "stream",
    "stream_options",
    "include_usage",
    "bedrock",
    "service_tier",
    "performance_latency",
    "request_metadata",
    "cache_prompt",
    "n",
    "user",
    "metadata",
    "best_of",
    "echo",
    "input",
    "images",
    "dimensions",
    "normalize",
    "input_type",
    "encoding_format",
    "size",
    "response_format",
    "negative_prompt",
    "width",
    "height",
    "cfg_scale",
    "task",
    "mask_prompt",
    "mask_image",
    "outpainting_mode",
    "similarity_strength",
    "type",
    "text",
    "name",
    "tools",
    "logprobs",
    "inputText",
    "textGenerationConfig",
    "maxTokenCount",
    "anthropic_version",
    "max_gen_len",
    "schemaVersion",
    "inferenceConfig",
    "maxTokens",
];

/// Strings the routes read: aliases of every kind, enum values, an image.
fn known_strings() -> Vec<String> {
    let mut strings: Vec<String> = [
        "titan-express",
        "claude-3-haiku",
        "nova-lite",
        "llama3-8b",
        "j2-ultra",
        "titan-embed-v2",
        "nova-embed",
        "titan-image-v2",
        "nova-canvas",
        "sdxl",
        "unknown",
        "system",
        "user",
        "assistant",
        "developer",
        "tool",
        "auto",
        "default",
        "flex",
        "priority",
        "scale",
        "float",
        "base64",
        "b64_json",
        "url",
        "variation",
        "inpainting",
        "outpainting",
        "background_removal",
        "precise",
        "search_query",
        "search_document",
        "classification",
        "clustering",
        "text",
        "image_url",
        "512x512",
        "0x0",
        "99999x1",
        "x",
        "",
        " ",
        "\u{0}",
        "bedrock-2023-05-31",
        "messages-v1",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    strings.push(png(512, 512));
    strings.push(png(0, u32::MAX));
    strings.push(format!("data:image/png;base64,{}", png(64, 64)));
    strings
}

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        3 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
    .boxed()
}

/// An arbitrary JSON value: the leaves weighted to the edges (huge, negative and
/// fractional numbers, the strings the routes read), objects keyed by their fields.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        proptest::sample::select(vec![
            json!(0),
            json!(-1),
            json!(1),
            json!(2),
            json!(0.5),
            json!(1e300),
            json!(-1e-300),
            json!(4_294_967_295_u64),
            json!(4_294_967_296_u64),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(2048),
            json!(2049),
        ]),
        proptest::sample::select(known_strings()).prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
    .boxed()
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(Value),
    Remove,
    Insert(String, Value),
}

/// `seed` with up to four mutations at random places.
fn mutated(seed: Value) -> BoxedStrategy<Value> {
    let mutation = prop_oneof![
        4 => json_value().prop_map(Mutation::Replace),
        2 => Just(Mutation::Remove),
        2 => (key(), json_value()).prop_map(|(key, value)| Mutation::Insert(key, value)),
    ];
    proptest::collection::vec((any::<prop::sample::Index>(), mutation), 0..5)
        .prop_map(move |mutations| {
            let mut value = seed.clone();
            for (at, mutation) in mutations {
                let n_nodes = count_nodes(&value);
                mutate(&mut value, at.index(n_nodes), mutation);
            }
            value
        })
        .boxed()
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Applies `mutation` at the node numbered `at` in pre-order (the root is 0); removing
/// the root replaces it by null.
fn mutate(value: &mut Value, at: usize, mutation: Mutation) {
    fn walk(value: &mut Value, at: &mut usize, mutation: &mut Option<Mutation>) -> bool {
        if *at == 0 {
            match mutation.take() {
                Some(Mutation::Replace(new)) => *value = new,
                Some(Mutation::Insert(key, new)) => match value {
                    Value::Object(map) => {
                        map.insert(key, new);
                    }
                    Value::Array(items) => items.push(new),
                    other => *other = new,
                },
                Some(Mutation::Remove) => return true,
                None => {}
            }
            return false;
        }
        *at -= 1;
        match value {
            Value::Array(items) => {
                for index in 0..items.len() {
                    if walk(&mut items[index], at, mutation) {
                        items.remove(index);
                    }
                    if mutation.is_none() {
                        return false;
                    }
                }
            }
            Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for key in keys {
                    if map.get_mut(&key).is_some_and(|child| walk(child, at, mutation)) {
                        map.remove(&key);
                    }
                    if mutation.is_none() {
                        return false;
                    }
                }
            }
            _ => {}
        }
        false
    }
    let (mut at, mut mutation) = (at, Some(mutation));
    if walk(value, &mut at, &mut mutation) {
        *value = Value::Null;
    }
}

/// Header names the gateway reads, and arbitrary ones; not the framing headers, which
/// the HTTP client owns.
fn header_name() -> BoxedStrategy<HeaderName> {
    let read = proptest::sample::select(vec![
        "content-type",
        "accept",
        "authorization",
        "x-api-key",
        "x-request-id",
        "content-encoding",
        "origin",
        "x-amzn-bedrock-accept",
        "x-amzn-bedrock-trace",
        "x-amzn-bedrock-guardrailidentifier",
        "x-amzn-bedrock-guardrailversion",
        "x-amzn-bedrock-performanceconfig-latency",
        "x-amzn-bedrock-service-tier",
        "x-amzn-bedrock-request-metadata",
        "x-amz-date",
        "x-amz-security-token",
    ])
    .prop_map(HeaderName::from_static);
    let arbitrary = "x-[a-z0-9-]{1,24}".prop_map(|name| HeaderName::try_from(name).unwrap());
    prop_oneof![4 => read, 1 => arbitrary].boxed()
}

/// Any bytes a header value may hold (visible ASCII, tabs, and bytes over 0x7f), and the
/// values the gateway tells apart.
fn header_value() -> BoxedStrategy<HeaderValue> {
    let bytes =
        proptest::collection::vec(prop_oneof![0x20_u8..0x7f, 0x80_u8..=0xff, Just(b'\t')], 0..48)
            .prop_filter_map("not a header value", |bytes| HeaderValue::from_bytes(&bytes).ok());
    let known = proptest::sample::select(vec![
        "application/json",
        "text/event-stream",
        "image/png",
        "application/octet-stream",
        "*/*",
        "text/event-stream, image/png",
        "Bearer hostile-input-secret",
        "Bearer ",
        "bearer hostile-input-secret",
        "Basic aGk6aGk=",
        "hostile-input-secret",
        "gzip",
        "ENABLED",
        "DISABLED",
        "optimized",
        "standard",
        "priority",
        "flex",
        "{\"a\":\"b\"}",
        "{",
        "gr-1",
        "DRAFT",
    ])
    .prop_map(HeaderValue::from_static);
    prop_oneof![known, bytes].boxed()
}
