//! Hardening as a caller sees it: nothing of the gateway's AWS account or network leaks
//! into an answer on any API shape (Bedrock's own messages that echo ARNs, access key ids
//! and internal addresses come back masked, huge ones bounded), `GET /v1/models` shows no
//! account id, the Bedrock passthrough forwards only the `X-Amzn-Bedrock-*` headers each
//! alias's policy allows, and the `Bearer` scheme is read in any case.
//!
//! A small stand-in for Bedrock ([`FakeBedrock`]) answers what the simulator never says
//! (messages with account ids in them) and shows which headers reached "Bedrock".

use std::sync::{Arc, Mutex};

use bedrock_sim::eventstream::{encode_chunk_frame, encode_exception_frame};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::harness::{Harness, TEST_MODELS};

/// A Bedrock message that echoes what must not reach a caller.
const LEAKY: &str = "1 validation error detected: Value \
    'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.x' (key AKIAIOSFODNN7EXAMPLE) \
    failed at 10.0.0.7:443 via ip-10-0-0-7.ec2.internal";
/// What [`LEAKY`] carries, none of which may be in an answer.
const SECRETS: [&str; 4] = ["123456789012", "AKIAIOSFODNN7EXAMPLE", "10.0.0.7", "ec2.internal"];

/// A stand-in for Bedrock on port 0: every call gets `answer(path)`, a whole HTTP/1.1
/// answer, and the connection is closed after it. The head of every request is kept.
struct FakeBedrock {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl FakeBedrock {
    async fn start(answer: fn(&str) -> Vec<u8>) -> FakeBedrock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let kept = heads.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let head = read_request(&mut socket).await;
                    let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
                    kept.lock().unwrap().push(head.to_ascii_lowercase());
                    let _ = socket.write_all(&answer(&path)).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        FakeBedrock { url, heads, task }
    }

    /// A gateway in front of this fake, with the test aliases and `models`.
    async fn gateway(&self, models: &str) -> Harness {
        let text = format!(
            "[upstream]\nkind = \"simulator\"\nendpoint_url = \"{}\"\nmax_attempts = 1\n\
             {TEST_MODELS}{models}",
            self.url
        );
        Harness::gateway_only(&text).await
    }

    fn last_head(&self) -> String {
        self.heads.lock().unwrap().last().cloned().unwrap_or_default()
    }

    fn n_requests(&self) -> usize {
        self.heads.lock().unwrap().len()
    }
}

impl Drop for FakeBedrock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request (its head, then `content-length` bytes of body); returns the head.
async fn read_request(socket: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut buffer = [0_u8; 16 * 1024];
    let mut head_end = None;
    while bytes.len() < 64 * 1024 * 1024 {
        if let Some(end) = head_end {
            let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0_usize);
            if bytes.len() >= end + 4 + length {
                return head;
            }
        }
        let n = socket.read(&mut buffer).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buffer[..n]);
        head_end = head_end.or_else(|| bytes.windows(4).position(|w| w == b"\r\n\r\n"));
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// An HTTP answer with `body` and Bedrock's error encoding (or a 200).
fn http_answer(status: u16, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut answer = format!(
        "HTTP/1.1 {status} X\r\n{headers}x-amzn-requestid: fake-request-id\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(body);
    answer
}

fn validation_error(message: &str) -> Vec<u8> {
    let body = json!({"message": message}).to_string();
    http_answer(
        400,
        "content-type: application/json\r\nx-amzn-errortype: \
         ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/\r\n",
        body.as_bytes(),
    )
}

/// A stream that starts (one Titan chunk) and then ends with a `validationException`.
fn chunk_then_exception(message: &str) -> Vec<u8> {
    let chunk = br#"{"outputText":"Hi","index":0,"totalOutputTextTokenCount":1,"completionReason":null,"inputTextTokenCount":1}"#;
    let mut body = encode_chunk_frame(chunk, None);
    let payload = json!({"message": message}).to_string();
    body.extend(encode_exception_frame("validationException", payload.as_bytes()));
    http_answer(
        200,
        "content-type: application/vnd.amazon.eventstream\r\n\
         x-amzn-bedrock-content-type: application/json\r\n",
        &body,
    )
}

fn leaky(path: &str) -> Vec<u8> {
    if path.ends_with("/invoke-with-response-stream") {
        chunk_then_exception(LEAKY)
    } else {
        validation_error(LEAKY)
    }
}

fn huge(path: &str) -> Vec<u8> {
    let message = format!("{LEAKY} {}", "caller data ".repeat(200_000));
    if path.ends_with("/invoke-with-response-stream") {
        chunk_then_exception(&message)
    } else {
        validation_error(&message)
    }
}

/// A Titan answer, whatever was asked.
fn titan_answer(_path: &str) -> Vec<u8> {
    let body = br#"{"inputTextTokenCount":1,"results":[{"tokenCount":1,"outputText":"Hi","completionReason":"FINISH"}]}"#;
    http_answer(200, "content-type: application/json\r\n", body)
}

/// Every API shape's call to a text model, whole and streamed, and the embedding and
/// image routes: (what, path, body).
fn calls() -> Vec<(&'static str, &'static str, Value)> {
    let chat = json!({"model": "titan", "messages": [{"role": "user", "content": "Hi"}]});
    let mut chat_stream = chat.clone();
    chat_stream["stream"] = json!(true);
    vec![
        ("generate", "/v1/generate", json!({"model": "titan", "prompt": "Hi"})),
        (
            "generate stream",
            "/v1/generate",
            json!({"model": "titan", "prompt": "Hi", "stream": true}),
        ),
        ("chat", "/v1/chat/completions", chat),
        ("chat stream", "/v1/chat/completions", chat_stream),
        ("completions", "/v1/completions", json!({"model": "titan", "prompt": "Hi"})),
        ("embed", "/v1/embed", json!({"model": "embed", "input": ["Hi"]})),
        ("embeddings", "/v1/embeddings", json!({"model": "embed", "input": "Hi"})),
        ("images", "/v1/images", json!({"model": "image", "prompt": "a cat"})),
        ("passthrough", "/model/titan/invoke", json!({"inputText": "Hi"})),
        (
            "passthrough stream",
            "/model/titan/invoke-with-response-stream",
            json!({"inputText": "Hi"}),
        ),
    ]
}

const OTHER_KINDS: &str = r#"
[models.embed]
model_id = "amazon.titan-embed-text-v2:0"

[models.image]
model_id = "amazon.titan-image-generator-v2:0"
"#;

/// Every answer of every call, as (what, status, headers, body text).
async fn answers(
    h: &Harness,
) -> Vec<(&'static str, StatusCode, reqwest::header::HeaderMap, String)> {
    let mut answers = Vec::new();
    for (what, path, body) in calls() {
        let response = h.http.post(h.url(path)).json(&body).send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        answers.push((what, status, headers, String::from_utf8_lossy(&bytes).into_owned()));
    }
    answers
}

#[tokio::test]
async fn bedrocks_messages_reach_callers_masked_on_every_api_shape() {
    let fake = FakeBedrock::start(leaky).await;
    let h = fake.gateway(OTHER_KINDS).await;
    for (what, status, headers, text) in answers(&h).await {
        for secret in SECRETS {
            assert!(!text.contains(secret), "{what}: {secret} in {text}");
        }
        // The message did pass on (masked), it was not dropped.
        assert!(text.contains("arn:aws:bedrock:us-east-1:<account>:"), "{what}: {text}");
        assert!(text.contains("<access-key>") && text.contains("<internal-address>:443"), "{text}");
        assert!(text.contains("<internal-host>"), "{what}: {text}");
        if what.ends_with("stream") {
            // The stream had begun: the error ends it, in the stream's own encoding.
            assert_eq!(status, StatusCode::OK, "{what}");
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {text}");
        }
        if what == "passthrough" {
            let shape = headers["x-amzn-errortype"].to_str().unwrap();
            assert!(shape.starts_with("ValidationException:"), "{shape}");
        }
    }
    assert!(fake.n_requests() >= calls().len());
}

#[tokio::test]
async fn a_huge_bedrock_message_is_cut_in_every_answer() {
    let fake = FakeBedrock::start(huge).await;
    let h = fake.gateway(OTHER_KINDS).await;
    for (what, _, _, text) in answers(&h).await {
        // The message is bounded (a few KB), the rest of the answer is small.
        assert!(text.len() < 12 * 1024, "{what}: {} bytes", text.len());
        assert!(text.contains("<account>"), "{what}: {text}");
        assert!(!text.contains("123456789012"), "{what}");
    }
}

#[tokio::test]
async fn the_model_list_shows_no_account_id() {
    let models = r#"
[models.profile]
model_id = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
family = "titan_text"
"#;
    let fake = FakeBedrock::start(titan_answer).await;
    let h = fake.gateway(models).await;
    let (status, list) = h.get("/v1/models").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!list.to_string().contains("123456789012"), "{list}");
    let entry = list["data"].as_array().unwrap().iter().find(|e| e["id"] == "profile").unwrap();
    assert_eq!(
        entry["model_id"],
        "arn:aws:bedrock:us-east-1:<account>:application-inference-profile/a1b2c3d4e5f6"
    );
    assert_eq!(entry["family"], "titan_text");
    // Foundation-model ARNs carry no account: shown as configured.
    let entry = list["data"].as_array().unwrap().iter().find(|e| e["id"] == "titan-arn").unwrap();
    assert_eq!(
        entry["model_id"],
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-lite-v1"
    );
    // Only shown masked: Bedrock is called with the configured id.
    let (status, _, body) =
        h.post("/v1/generate", &json!({"model": "profile", "prompt": "Hi"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let head = fake.last_head();
    assert!(head.contains("123456789012%3aapplication-inference-profile%2fa1b2c3d4e5f6"), "{head}");
}

const POLICIES: &str = r#"
[models.stripped]
model_id = "amazon.titan-text-express-v1"
[models.stripped.bedrock]
service_tier = "flex"
guardrail = { identifier = "gr-operator", version = "1" }
caller_policy = { service_tier = "strip", performance_latency = "strip", request_metadata = "strip", trace = "strip", guardrail = "strip" }

[models.pinned]
model_id = "amazon.titan-text-express-v1"
bedrock = { service_tier = "default", caller_policy = { service_tier = "pin", request_metadata = "pin" } }

[models.open]
model_id = "amazon.titan-text-express-v1"
"#;

/// Every `X-Amzn-Bedrock-*` request header the passthrough knows, and one it does not.
const CALLER_HEADERS: [(&str, &str); 7] = [
    ("x-amzn-bedrock-service-tier", "priority"),
    ("x-amzn-bedrock-performanceconfig-latency", "optimized"),
    ("x-amzn-bedrock-request-metadata", r#"{"ticket":"42"}"#),
    ("x-amzn-bedrock-trace", "ENABLED"),
    ("x-amzn-bedrock-guardrailidentifier", "gr-caller"),
    ("x-amzn-bedrock-guardrailversion", "7"),
    ("x-amzn-bedrock-made-up", "anything"),
];

async fn invoke_with(h: &Harness, alias: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = h.http.post(h.url(&format!("/model/{alias}/invoke")));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.json(&json!({"inputText": "Hi"})).send().await.unwrap()
}

#[tokio::test]
async fn the_passthrough_forwards_only_the_headers_the_alias_allows() {
    let fake = FakeBedrock::start(titan_answer).await;
    let h = fake.gateway(POLICIES).await;

    // Stripped: every caller header dropped without an error; the alias's own sent.
    let response = invoke_with(&h, "stripped", &CALLER_HEADERS).await;
    assert_eq!(response.status(), StatusCode::OK);
    let head = fake.last_head();
    assert!(head.contains("x-amzn-bedrock-service-tier: flex"), "{head}");
    assert!(head.contains("x-amzn-bedrock-guardrailidentifier: gr-operator"), "{head}");
    assert!(head.contains("x-amzn-bedrock-guardrailversion: 1"), "{head}");
    for absent in
        ["performanceconfig-latency", "request-metadata", "x-amzn-bedrock-trace", "made-up"]
    {
        assert!(!head.contains(absent), "{absent} reached Bedrock: {head}");
    }

    // Pinned: the alias's value, also when the caller sends the same; another is refused
    // in Bedrock's encoding, before Bedrock.
    let before = fake.n_requests();
    for (name, value) in
        [("x-amzn-bedrock-service-tier", "priority"), ("x-amzn-bedrock-request-metadata", "{}")]
    {
        let response = invoke_with(&h, "pinned", &[(name, value)]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{name}");
        let shape = response.headers()["x-amzn-errortype"].to_str().unwrap().to_owned();
        assert!(shape.starts_with("ValidationException"), "{shape}");
    }
    assert_eq!(fake.n_requests(), before, "a refused header reached Bedrock");
    let response = invoke_with(&h, "pinned", &[("x-amzn-bedrock-service-tier", "default")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(fake.last_head().contains("x-amzn-bedrock-service-tier: default"));

    // Allowed (the default): the caller's values, but never a header the gateway does not
    // model.
    let response = invoke_with(&h, "open", &CALLER_HEADERS).await;
    assert_eq!(response.status(), StatusCode::OK);
    let head = fake.last_head();
    for (name, value) in &CALLER_HEADERS[..6] {
        assert!(
            head.contains(&format!("{name}: {}", value.to_ascii_lowercase())),
            "{name}: {head}"
        );
    }
    assert!(!head.contains("made-up"), "{head}");
}

#[tokio::test]
async fn the_bearer_scheme_is_read_in_any_case() {
    let keys = format!(
        "[[auth.keys]]\nname = \"team-a\"\nsha256 = \"{}\"\n",
        server::auth::hash_key("team-a-secret")
    );
    let h = Harness::start_with("max_attempts = 1\n", &format!("{keys}{TEST_MODELS}")).await;
    let request = json!({"model": "titan", "prompt": "Hi"});
    for value in ["Bearer team-a-secret", "bearer team-a-secret", "BEARER team-a-secret"] {
        let response = h
            .http
            .post(h.url("/v1/generate"))
            .header("authorization", value)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{value}");
    }
    let response = h
        .http
        .post(h.url("/v1/generate"))
        .header("authorization", "Bearer team-a-secreT")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
