//! The API listener against callers that hold on: heads sent a byte at a time, bodies
//! that stop coming, more connections and requests than the caps, bodies over the
//! limits; and TLS and CORS. Raw TCP where a real client would not misbehave.

use std::time::{Duration, Instant};

use bedrock_sim::Behavior;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Harness, TEST_MODELS};

/// A gateway with `top_level` config keys and the test aliases, its own simulator behind.
async fn start(top_level: &str) -> Harness {
    Harness::start_with_top(top_level, "max_attempts = 1\n", TEST_MODELS).await
}

async fn connect(h: &Harness) -> TcpStream {
    TcpStream::connect(h.base_url.trim_start_matches("http://")).await.unwrap()
}

/// What the gateway sends until it closes the connection (a reset after the answer
/// counts as the close), or `None` if it is still open after `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let read = async {
        let mut buf = [0_u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read).await.ok().map(|()| received)
}

/// A raw HTTP/1.1 answer: status, head (lowercased) and body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn parse(bytes: &[u8]) -> Answer {
        let text = String::from_utf8_lossy(bytes);
        let (head, body) =
            text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head: {text:?}"));
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Answer { status, head: head.to_ascii_lowercase(), body: body.to_owned() }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

/// Sends `request` on a new connection and reads the answer until the gateway closes.
async fn exchange(h: &Harness, request: &[u8], limit: Duration) -> Answer {
    let mut stream = connect(h).await;
    stream.write_all(request).await.unwrap();
    let bytes = read_until_closed(&mut stream, limit)
        .await
        .unwrap_or_else(|| panic!("the gateway did not close"));
    Answer::parse(&bytes)
}

#[tokio::test]
async fn heads_sent_a_byte_at_a_time_are_closed_at_the_header_timeout() {
    let h = start("header_read_timeout_ms = 500").await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        // Taken before the connect: the gateway's own clock for the head starts at its
        // accept, never earlier, so a loaded machine cannot make the close look early.
        let started = Instant::now();
        let stream = connect(&h).await;
        let (mut read, mut write) = stream.into_split();
        // A head that never ends, one byte every 50 ms.
        let writer = tokio::spawn(async move {
            if write.write_all(b"GET /v1/models HTTP/1.1\r\nhost: a\r\nx-slow: ").await.is_err() {
                return;
            }
            for _ in 0..600 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if write.write_all(b"a").await.is_err() {
                    return;
                }
            }
        });
        let reader = tokio::spawn(async move {
            let mut buf = [0_u8; 1024];
            let mut received = 0;
            loop {
                match read.read(&mut buf).await {
                    Ok(0) | Err(_) => return (started.elapsed(), received),
                    Ok(n) => received += n,
                }
            }
        });
        slow.push((writer, reader));
    }
    for (writer, reader) in slow {
        let (open_for, received) = tokio::time::timeout(Duration::from_secs(20), reader)
            .await
            .expect("a slow head was held past 20 s")
            .unwrap();
        assert!(open_for >= Duration::from_millis(500), "closed before the timeout: {open_for:?}");
        assert_eq!(received, 0, "no answer to a head that never came whole");
        writer.abort();
    }
    // The gateway serves as before.
    assert_eq!(h.get("/v1/models").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_body_that_stops_coming_gets_408_in_each_apis_encoding() {
    let h = start("body_read_timeout_ms = 500").await;
    let held = |path: &str| {
        format!("POST {path} HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\n{{\"model\":")
    };
    let limit = Duration::from_secs(20);
    let answer = exchange(&h, held("/v1/generate").as_bytes(), limit).await;
    assert_eq!(answer.status, 408, "{}", answer.body);
    assert_eq!(answer.json()["error"]["type"], "request_timeout");
    let answer = exchange(&h, held("/v1/chat/completions").as_bytes(), limit).await;
    assert_eq!(answer.status, 408);
    assert_eq!(answer.json()["error"]["code"], "request_timeout");
    assert_eq!(answer.json()["error"]["type"], "invalid_request_error");
    let answer = exchange(&h, held("/model/titan/invoke").as_bytes(), limit).await;
    assert_eq!(answer.status, 408);
    assert!(answer.head.contains("x-amzn-errortype: validationexception"), "{}", answer.head);
    assert!(answer.json()["message"].as_str().unwrap().contains("500 ms"), "{}", answer.body);

    // The deadline is the whole body's: a body that trickles in without pause is cut too.
    let mut stream = connect(&h).await;
    stream
        .write_all(b"POST /v1/generate HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    let (mut read, mut write) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..400 {
            if write.write_all(b"1\r\n \r\n").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(limit, read.read_to_end(&mut bytes)).await.expect("still open");
    trickle.abort();
    let answer = Answer::parse(&bytes);
    assert_eq!(answer.status, 408, "{}", answer.body);
    assert_eq!(h.sim.request_count(), 0);
}

#[tokio::test]
async fn connections_over_the_cap_get_a_prompt_503_while_the_open_ones_are_served() {
    let h = start("max_connections = 2\nheader_read_timeout_ms = 60000").await;
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
    let models = h.url("/v1/models");
    // One place: a kept-alive client connection; the other: a head that never ends.
    assert_eq!(client.get(&models).send().await.unwrap().status(), StatusCode::OK);
    let mut holder = connect(&h).await;
    holder.write_all(b"GET /v1/models HTTP/1.1\r\nhost: a\r\n").await.unwrap();
    // Give the gateway the holder's connection before the next one comes.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let limit = Duration::from_secs(10);
    let answer = exchange(&h, b"GET /v1/models HTTP/1.1\r\nhost: a\r\n\r\n", limit).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(answer.head.contains("retry-after: 1"), "{}", answer.head);
    assert!(answer.head.contains("connection: close"), "{}", answer.head);
    assert_eq!(answer.json()["error"]["type"], "overloaded");
    let chat = b"POST /v1/chat/completions HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\n{}";
    let answer = exchange(&h, chat, limit).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json()["error"]["code"], "overloaded");

    // Meanwhile the open connection is served.
    for _ in 0..3 {
        assert_eq!(client.get(&models).send().await.unwrap().status(), StatusCode::OK);
    }
    // Once the holder goes, its place is free for a new connection.
    drop(holder);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let fresh = reqwest::Client::new();
        let status = fresh.get(&models).send().await.unwrap().status();
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "the holder's place was not given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn requests_over_the_in_flight_cap_get_503_with_retry_after_in_each_encoding() {
    let h = start("max_in_flight = 1").await;
    h.sim.set_behavior(
        "anthropic.claude-v2:1",
        Behavior { token_latency: Duration::from_millis(300), ..Behavior::default() },
    );
    // A stream holds the one place until its last event.
    let stream = h
        .http
        .post(h.url("/v1/generate"))
        .json(&json!({"model": "claude", "prompt": "Hi", "max_tokens": 4, "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);

    let (status, headers, body) =
        h.post("/v1/generate", &json!({"model": "titan", "prompt": "Hi"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body["error"]["type"], "overloaded");
    let (status, headers, body) = h
        .post(
            "/v1/chat/completions",
            &json!({"model": "titan", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body["error"]["code"], "overloaded");
    let (status, headers, body) = h.post("/model/titan/invoke", &json!({"inputText": "Hi"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "1");
    assert!(
        headers["x-amzn-errortype"].to_str().unwrap().starts_with("ServiceUnavailableException")
    );
    assert!(body["message"].as_str().unwrap().contains("in flight"), "{body}");
    // Probes are never refused for load.
    assert_eq!(h.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(h.get("/readyz").await.0, StatusCode::OK);

    let text = stream.text().await.unwrap();
    assert!(text.contains("event: done"), "{text}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, _) =
            h.post("/v1/generate", &json!({"model": "titan", "prompt": "Hi"})).await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "the stream's place was not given back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_content_length_over_the_limit_is_a_413_before_the_body_is_read() {
    // A body timeout longer than the test waits: an answer can only come before the body.
    let h = start("body_read_timeout_ms = 600000").await;
    let limit = Duration::from_secs(10);
    let head = |path: &str, length: u64| {
        format!("POST {path} HTTP/1.1\r\nhost: a\r\ncontent-length: {length}\r\n\r\n{{\"model\":")
    };
    let answer = exchange(&h, head("/v1/generate", 1_000_000_000).as_bytes(), limit).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_eq!(answer.json()["error"]["type"], "payload_too_large");
    assert!(answer.json()["error"]["message"].as_str().unwrap().contains("10485760"));
    assert!(answer.head.contains("connection: close"), "{}", answer.head);
    let answer = exchange(&h, head("/v1/embeddings", 1_000_000_000).as_bytes(), limit).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["error"]["code"], "payload_too_large");
    let answer = exchange(&h, head("/model/titan/invoke", 26_000_000).as_bytes(), limit).await;
    assert_eq!(answer.status, 413);
    assert!(answer.head.contains("x-amzn-errortype: validationexception"), "{}", answer.head);
    assert!(answer.json()["message"].as_str().unwrap().contains("25000000"), "{}", answer.body);
    assert_eq!(h.sim.request_count(), 0);
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_cut_with_a_413() {
    let h = start("max_body_bytes = 65536").await;
    let chunks =
        (0..64).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 16 * 1024])));
    let response = h
        .http
        .post(h.url("/v1/generate"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "payload_too_large");
    assert!(body["error"]["message"].as_str().unwrap().contains("65536"), "{body}");
    // A body within the limit is served as before.
    let (status, _, body) =
        h.post("/v1/generate", &json!({"model": "titan", "prompt": "Hi"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_passthrough_takes_a_20_mb_body_but_not_26_mb() {
    let h = start("").await;
    let body = |bytes: usize| {
        let text = "a ".repeat(bytes / 2);
        json!({"inputText": text}).to_string()
    };
    let response = h
        .http
        .post(h.url("/model/titan/invoke"))
        .header("content-type", "application/json")
        .body(body(20_000_000))
        .send()
        .await
        .unwrap();
    assert_ne!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(h.sim.request_count(), 1, "the 20 MB body was forwarded to Bedrock");
    let _ = response.bytes().await;
    // The gateway's own routes stay at `max_body_bytes` (10 MiB by default).
    let (status, _, _) = h.post_raw("/v1/generate", body(11 * 1024 * 1024)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let mut stream = connect(&h).await;
    let oversized = body(26_000_000);
    let head = format!(
        "POST /model/titan/invoke HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        oversized.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move { write.write_all(oversized.as_bytes()).await });
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut bytes)).await;
    writer.abort();
    let answer = Answer::parse(&bytes);
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_eq!(h.sim.request_count(), 1, "the 26 MB body was not forwarded");
}

/// A self-signed certificate for 127.0.0.1, its PEM files in a fresh directory.
struct TestCert {
    dir: std::path::PathBuf,
    cert_pem: String,
}

impl TestCert {
    fn new() -> TestCert {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let dir = std::env::temp_dir().join(format!("gw-tls-{}", uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        TestCert { dir, cert_pem: cert.pem() }
    }

    fn config(&self) -> String {
        format!(
            "tls_cert_file = {:?}\ntls_key_file = {:?}\n",
            self.dir.join("cert.pem"),
            self.dir.join("key.pem")
        )
    }
}

impl Drop for TestCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    format!("{}-{}", std::process::id(), nanos.as_nanos())
}

#[tokio::test]
async fn tls_serves_https_with_the_configured_certificate() {
    let _ = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cert = TestCert::new();
    let h = start(&cert.config()).await;
    let https = h.base_url.replace("http://", "https://");
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let response = client
        .post(format!("{https}/v1/generate"))
        .json(&json!({"model": "titan", "prompt": "Hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    let body: Value = response.json().await.unwrap();
    assert!(body["text"].is_string(), "{body}");
    // Plain HTTP on the TLS port gets no answer.
    assert!(reqwest::Client::new().get(h.url("/healthz")).send().await.is_err());
    // A client that does not trust the certificate is refused.
    assert!(
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .build()
            .unwrap()
            .get(format!("{https}/healthz"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_bad_certificate_or_key_stops_the_start_naming_the_file() {
    let cert = TestCert::new();
    std::fs::write(cert.dir.join("key.pem"), "not a key\n").unwrap();
    let text = format!("{}[upstream]\nkind = \"simulator\"\n{TEST_MODELS}", cert.config());
    let config = server::Config::parse(&text, "test").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = tokio::time::timeout(
        Duration::from_secs(30),
        server::run(listener, config.clone(), std::future::pending()),
    )
    .await
    .expect("the gateway started with a bad key")
    .unwrap_err()
    .to_string();
    assert!(error.contains("tls_key_file") && error.contains("key.pem"), "{error}");

    let missing = text.replace("cert.pem", "missing.pem");
    let config = server::Config::parse(&missing, "test").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error =
        server::run(listener, config, std::future::pending()).await.unwrap_err().to_string();
    assert!(error.contains("tls_cert_file") && error.contains("missing.pem"), "{error}");
}

#[tokio::test]
async fn cors_preflights_are_answered_for_the_configured_origins_only() {
    let key_digest = server::auth::hash_key("cors-key");
    let h = start(&format!(
        "cors_allowed_origins = [\"https://app.example\"]\n[[auth.keys]]\nname = \"web\"\nsha256 = \"{key_digest}\"\n"
    ))
    .await;
    let preflight = |origin: &'static str| {
        h.http
            .request(reqwest::Method::OPTIONS, h.url("/v1/chat/completions"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    // No API key on a preflight: browsers send none.
    let response = preflight("https://app.example").await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "https://app.example");
    assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let allowed = headers["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{allowed}");

    let response = preflight("https://elsewhere.example").await.unwrap();
    assert!(response.headers().get("access-control-allow-origin").is_none());

    // The answers themselves carry the headers, errors included.
    let response = h
        .http
        .post(h.url("/v1/generate"))
        .header("origin", "https://app.example")
        .json(&json!({"model": "titan", "prompt": "Hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["access-control-allow-origin"], "https://app.example");
    let exposed = response.headers()["access-control-expose-headers"].to_str().unwrap();
    assert!(exposed.contains("x-request-id"), "{exposed}");
    let response = h
        .http
        .post(h.url("/v1/generate"))
        .header("origin", "https://app.example")
        .bearer_auth("cors-key")
        .json(&json!({"model": "titan", "prompt": "Hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], "https://app.example");
}

#[tokio::test]
async fn without_configured_origins_there_is_no_cors() {
    let h = start("").await;
    let response = h
        .http
        .request(reqwest::Method::OPTIONS, h.url("/v1/generate"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().get("access-control-allow-origin").is_none());
}
