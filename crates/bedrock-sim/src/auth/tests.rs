//! The verifier on requests signed by the SDK's own signer ([`Signer`], `aws-sigv4`), then
//! changed one part at a time: each change gets Bedrock's answer for it.

use axum::http::{HeaderName, HeaderValue, StatusCode};

use super::*;

/// The simulator's clock in these tests: 2026-01-01T12:00:00Z.
fn now() -> SystemTime {
    sigv4::parse_amz_date("20260101T120000Z").unwrap()
}

const PATH: &str = "/model/anthropic.claude-v2%3A1/invoke";
const BODY: &[u8] = br#"{"prompt":"\n\nHuman: hi\n\nAssistant:","max_tokens_to_sample":5}"#;

/// A request as the SDK sends it: `uri`, the SDK's signed headers, and a body.
struct TestRequest {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl TestRequest {
    /// The request, signed by `signer` at `time` for `service`.
    fn signed_for(signer: &Signer, service: &str, path: &str, time: SystemTime) -> TestRequest {
        let content_length = BODY.len().to_string();
        let headers = [
            ("accept", "application/json"),
            ("content-length", content_length.as_str()),
            ("content-type", "application/json"),
            ("host", "127.0.0.1:4500"),
            ("x-amz-user-agent", "aws-sdk-rust/1.7.0 api/bedrockruntime/1.153.0"),
        ];
        let signing = signer.sign_for(service, "POST", path, &headers, BODY, time).unwrap();
        let mut header_map = HeaderMap::new();
        for (name, value) in
            headers.iter().copied().chain(signing.iter().map(|(n, v)| (*n, v.as_str())))
        {
            header_map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        // Added after signing, as the SDK adds them: never signed.
        header_map.insert("user-agent", HeaderValue::from_static("aws-sdk-rust/1.7.0"));
        header_map.insert("amz-sdk-invocation-id", HeaderValue::from_static("0b7c"));
        TestRequest {
            method: Method::POST,
            uri: path.parse().unwrap(),
            headers: header_map,
            body: BODY.to_vec(),
        }
    }

    fn signed(signer: &Signer, time: SystemTime) -> TestRequest {
        TestRequest::signed_for(signer, SIGNING_SERVICE, PATH, time)
    }

    fn check(&self, verifier: &Verifier) -> Result<(), Refusal> {
        let request = SignedRequest {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            body: &self.body,
        };
        verifier.check(request, now())
    }

    fn set(&mut self, name: &'static str, value: &str) {
        self.headers.insert(name, HeaderValue::from_str(value).unwrap());
    }

    fn authorization(&self) -> String {
        self.headers["authorization"].to_str().unwrap().to_owned()
    }
}

/// Asserts Bedrock's 403 of `shape` with `message`, and returns the log's reason.
#[track_caller]
fn assert_refused(result: Result<(), Refusal>, shape: &str, message: &str) -> String {
    let refusal = result.unwrap_err();
    assert_eq!(refusal.error.status, StatusCode::FORBIDDEN, "{refusal:?}");
    assert_eq!((refusal.error.shape, refusal.error.message()), (shape, message), "{refusal:?}");
    refusal.reason
}

#[track_caller]
fn assert_mismatch(result: Result<(), Refusal>) -> String {
    assert_refused(result, "InvalidSignatureException", SIGNATURE_MISMATCH_MESSAGE)
}

#[test]
fn requests_signed_with_a_known_key_are_accepted() {
    let verifier = Verifier::default();
    TestRequest::signed(&Signer::test(), now()).check(&verifier).unwrap();
    // Another region, an ARN path, the edges of the clock window.
    let arn = "/model/arn%3Aaws%3Abedrock%3Aus-gov-west-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-v2%3A1/invoke-with-response-stream";
    let signer = Signer::test().with_region("us-gov-west-1");
    TestRequest::signed_for(&signer, SIGNING_SERVICE, arn, now()).check(&verifier).unwrap();
    for offset in [-300_i64, 300] {
        let time = if offset < 0 { now() - MAX_CLOCK_SKEW } else { now() + MAX_CLOCK_SKEW };
        TestRequest::signed(&Signer::test(), time).check(&verifier).unwrap();
    }
    // A body hash sent (and signed) by the client is checked and accepted when right.
    let signer = Signer::test();
    let hash = sigv4::sha256_hex(BODY);
    let content_length = BODY.len().to_string();
    let headers = [
        ("content-length", content_length.as_str()),
        ("host", "localhost"),
        ("x-amz-content-sha256", hash.as_str()),
    ];
    let signing = signer.sign("POST", PATH, &headers, BODY, now()).unwrap();
    let mut request = TestRequest::signed(&signer, now());
    request.headers.clear();
    for (name, value) in
        headers.iter().copied().chain(signing.iter().map(|(n, v)| (*n, v.as_str())))
    {
        request.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    request.check(&verifier).unwrap();
    assert_eq!(verifier.n_refused(), 0);
    // The signing key was derived once per credential scope.
    assert_eq!(verifier.signing_keys.lock().unwrap().len(), 2);
}

#[test]
fn a_wrong_secret_is_a_signature_mismatch_and_the_log_shows_the_canonical_request() {
    let verifier = Verifier::default();
    let signer = Signer::new(TEST_ACCESS_KEY_ID, "not-the-secret");
    let reason = assert_mismatch(TestRequest::signed(&signer, now()).check(&verifier));
    assert!(reason.contains(TEST_ACCESS_KEY_ID), "{reason}");
    assert!(reason.contains("/model/anthropic.claude-v2%253A1/invoke"), "{reason}");
    assert!(
        reason.contains(
            "AWS4-HMAC-SHA256\\n20260101T120000Z\\n20260101/us-east-1/bedrock/aws4_request"
        ),
        "{reason}"
    );
    assert!(!reason.contains(TEST_SECRET_ACCESS_KEY), "{reason}");
    assert_eq!(verifier.n_refused(), 1);
}

#[test]
fn an_unknown_access_key_is_an_unrecognized_client() {
    let signer = Signer::new("AKIDSOMEONEELSE00000", TEST_SECRET_ACCESS_KEY);
    let result = TestRequest::signed(&signer, now()).check(&Verifier::default());
    let reason = assert_refused(result, "UnrecognizedClientException", UNRECOGNIZED_CLIENT_MESSAGE);
    assert!(reason.contains("AKIDSOMEONEELSE00000"), "{reason}");
}

#[test]
fn a_tampered_body_or_signed_header_is_a_mismatch_an_unsigned_header_is_not() {
    let verifier = Verifier::default();
    let mut request = TestRequest::signed(&Signer::test(), now());
    request.body =
        br#"{"prompt":"\n\nHuman: bye\n\nAssistant:","max_tokens_to_sample":5}"#.to_vec();
    assert_mismatch(request.check(&verifier));

    for (name, value) in [
        ("content-type", "application/octet-stream"),
        ("accept", "*/*"),
        ("host", "127.0.0.1:4501"),
        ("x-amz-user-agent", "another"),
        ("x-amz-date", "20260101T120001Z"),
    ] {
        let mut request = TestRequest::signed(&Signer::test(), now());
        request.set(name, value);
        assert_mismatch(request.check(&verifier));
    }
    let mut request = TestRequest::signed(&Signer::test(), now());
    request.uri = "/model/anthropic.claude-v2%3A0/invoke".parse().unwrap();
    assert_mismatch(request.check(&verifier));
    // A header sent twice where it was signed once.
    let mut request = TestRequest::signed(&Signer::test(), now());
    request.headers.append("accept", HeaderValue::from_static("application/json"));
    assert_mismatch(request.check(&verifier));

    let mut request = TestRequest::signed(&Signer::test(), now());
    request.set("user-agent", "something else");
    request.set("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793");
    request.check(&verifier).unwrap();
}

#[test]
fn a_missing_signed_header_is_a_mismatch_that_names_it() {
    let mut request = TestRequest::signed(&Signer::test(), now());
    request.headers.remove("content-type");
    let reason = assert_mismatch(request.check(&Verifier::default()));
    assert!(reason.contains("\"content-type\""), "{reason}");
}

#[test]
fn a_stale_or_future_date_is_refused_with_awss_words() {
    let verifier = Verifier::default();
    let stale = TestRequest::signed(&Signer::test(), now() - Duration::from_secs(301));
    assert_refused(
        stale.check(&verifier),
        "InvalidSignatureException",
        "Signature expired: 20260101T115459Z is now earlier than 20260101T115500Z \
         (20260101T120000Z - 5 min.)",
    );
    let future = TestRequest::signed(&Signer::test(), now() + Duration::from_secs(3600));
    assert_refused(
        future.check(&verifier),
        "InvalidSignatureException",
        "Signature not yet current: 20260101T130000Z is still later than 20260101T120500Z \
         (20260101T120000Z + 5 min.)",
    );
}

#[test]
fn the_scope_must_be_bedrock_a_region_and_the_requests_day() {
    let verifier = Verifier::default();
    let runtime = TestRequest::signed_for(&Signer::test(), "bedrock-runtime", PATH, now());
    let reason = assert_refused(
        runtime.check(&verifier),
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'bedrock'. ",
    );
    assert!(reason.contains("bedrock-runtime"), "{reason}");
    for region in ["mars", "US-EAST-1", "us-east", "us--1", "x"] {
        let request = TestRequest::signed(&Signer::test().with_region(region), now());
        assert_refused(
            request.check(&verifier),
            "InvalidSignatureException",
            "Credential should be scoped to a valid region. ",
        );
    }
    // The scope's day changed by hand (its signature is then wrong too; the day is named).
    let mut request = TestRequest::signed(&Signer::test(), now());
    let authorization = request.authorization().replace("/20260101/", "/20251231/");
    request.set("authorization", &authorization);
    assert_refused(
        request.check(&verifier),
        "InvalidSignatureException",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '20251231' != '20260101', from '20260101T120000Z'.",
    );
}

#[test]
fn signed_headers_must_hold_host_and_the_signing_headers() {
    let verifier = Verifier::default();
    let mut request = TestRequest::signed(&Signer::test(), now());
    let authorization = request.authorization().replace(";host;", ";");
    request.set("authorization", &authorization);
    assert_refused(
        request.check(&verifier),
        "InvalidSignatureException",
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    );
    let mut request = TestRequest::signed(&Signer::test(), now());
    let authorization = request.authorization().replace(";x-amz-date", "");
    request.set("authorization", &authorization);
    let reason = assert_mismatch(request.check(&verifier));
    assert!(reason.contains("x-amz-date is sent but not in SignedHeaders"), "{reason}");
    // Unsorted or upper case: not how any signer writes the list.
    let mut request = TestRequest::signed(&Signer::test(), now());
    let authorization =
        request.authorization().replace("accept;content-length", "content-length;accept");
    request.set("authorization", &authorization);
    assert_mismatch(request.check(&verifier));
    // A body hash sent but not signed, and one signed but not the body's.
    let mut request = TestRequest::signed(&Signer::test(), now());
    request.set("x-amz-content-sha256", &sigv4::sha256_hex(BODY));
    assert_mismatch(request.check(&verifier));
    let hash = sigv4::sha256_hex(b"another body");
    let headers = [("host", "localhost"), ("x-amz-content-sha256", hash.as_str())];
    let signing = Signer::test().sign("POST", PATH, &headers, BODY, now()).unwrap();
    let mut request = TestRequest::signed(&Signer::test(), now());
    request.headers.clear();
    for (name, value) in
        headers.iter().copied().chain(signing.iter().map(|(n, v)| (*n, v.as_str())))
    {
        request.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let reason = assert_mismatch(request.check(&verifier));
    assert!(reason.contains("X-Amz-Content-SHA256"), "{reason}");
}

#[test]
fn temporary_keys_need_their_session_token_signed() {
    let mut auth = Auth::default();
    let temporary = AccessKey {
        secret_access_key: "temporary-secret".to_owned(),
        session_token: Some("session-token-of-asia".to_owned()),
    };
    auth.access_keys.insert("ASIDBEDROCKSIMULATOR".to_owned(), temporary);
    let verifier = Verifier::new(auth);
    let signer = Signer::new("ASIDBEDROCKSIMULATOR", "temporary-secret");
    TestRequest::signed(&signer.clone().with_session_token("session-token-of-asia"), now())
        .check(&verifier)
        .unwrap();

    let unrecognized = |request: TestRequest| {
        assert_refused(
            request.check(&verifier),
            "UnrecognizedClientException",
            UNRECOGNIZED_CLIENT_MESSAGE,
        )
    };
    unrecognized(TestRequest::signed(&signer, now()));
    unrecognized(TestRequest::signed(&signer.clone().with_session_token("another-token"), now()));
    // The long-term test key sent with a token it does not have.
    unrecognized(TestRequest::signed(
        &Signer::test().with_session_token("session-token-of-asia"),
        now(),
    ));
    // The right token, added after signing.
    let mut request = TestRequest::signed(&signer, now());
    request.set("x-amz-security-token", "session-token-of-asia");
    let reason = assert_mismatch(request.check(&verifier));
    assert!(reason.contains("x-amz-security-token is sent but not in SignedHeaders"), "{reason}");
    // The token does not reach the log of a mismatch.
    let wrong =
        Signer::new("ASIDBEDROCKSIMULATOR", "wrong").with_session_token("session-token-of-asia");
    let reason = assert_mismatch(TestRequest::signed(&wrong, now()).check(&verifier));
    assert!(!reason.contains("session-token-of-asia"), "{reason}");
    assert!(reason.contains("<session token>"), "{reason}");
}

#[test]
fn malformed_or_missing_authorization_gets_bedrocks_answers() {
    let verifier = Verifier::default();
    let mut request = TestRequest::signed(&Signer::test(), now());
    request.headers.remove("authorization");
    assert_refused(
        request.check(&verifier),
        "AccessDeniedException",
        "Authorization header is missing",
    );

    let valid = TestRequest::signed(&Signer::test(), now()).authorization();
    let without_signature = valid.split(", Signature=").next().unwrap().to_owned();
    let cases = [
        (
            without_signature.clone(),
            format!(
                "Authorization header requires 'Signature' parameter. Authorization={without_signature}"
            ),
        ),
        (
            "AWS4-HMAC-SHA256".to_owned(),
            "Authorization header requires 'Credential' parameter. Authorization header requires \
             'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
             Authorization=AWS4-HMAC-SHA256"
                .to_owned(),
        ),
        (
            "Basic dXNlcjpwYXNz".to_owned(),
            "Authorization header requires 'Credential' parameter. Authorization header requires \
             'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
             Authorization=Basic dXNlcjpwYXNz"
                .to_owned(),
        ),
        (
            valid.replacen("Credential=", "Credential ", 1),
            format!(
                "'Credential {}' not a valid key=value pair (missing equal-sign) in Authorization \
                 header: '{}'.",
                valid.split("Credential=").nth(1).unwrap().split(',').next().unwrap(),
                valid.replacen("Credential=", "Credential ", 1)
            ),
        ),
        (
            valid.replace("aws4_request", "aws5_request"),
            "Credential should be scoped with a valid terminator: 'aws4_request', not \
             'aws5_request'."
                .to_owned(),
        ),
    ];
    for (authorization, message) in cases {
        let mut request = TestRequest::signed(&Signer::test(), now());
        request.set("authorization", &authorization);
        assert_refused(request.check(&verifier), "IncompleteSignatureException", &message);
    }

    let mut request = TestRequest::signed(&Signer::test(), now());
    request.headers.remove("x-amz-date");
    let message = format!(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
         Authorization={valid}"
    );
    assert_refused(request.check(&verifier), "IncompleteSignatureException", &message);
    let mut request = TestRequest::signed(&Signer::test(), now());
    request.set("x-amz-date", "2026-01-01T12:00:00Z");
    assert_refused(
        request.check(&verifier),
        "IncompleteSignatureException",
        "Date must be in ISO-8601 'basic format'. Got '2026-01-01T12:00:00Z'. See \
         http://en.wikipedia.org/wiki/ISO_8601",
    );
    assert_eq!(verifier.n_refused(), 8);
}

#[test]
fn bearer_tokens_are_accepted_when_configured() {
    let verifier = Verifier::default();
    let mut request = TestRequest::signed(&Signer::test(), now());
    for scheme in ["Bearer", "bearer"] {
        request.set("authorization", &format!("{scheme} {TEST_BEARER_TOKEN}"));
        request.check(&verifier).unwrap();
    }
    request.set("authorization", "Bearer ABSK-someone-elses");
    assert_refused(
        request.check(&verifier),
        "AccessDeniedException",
        "Authentication failed: Please make sure your API Key is valid.",
    );
    let no_tokens =
        Verifier::new(Auth::with_access_key(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY));
    request.set("authorization", &format!("Bearer {TEST_BEARER_TOKEN}"));
    assert!(request.check(&no_tokens).is_err());
}

#[test]
fn without_verification_anything_is_served() {
    let verifier = Verifier::new(Auth::unverified());
    let mut request = TestRequest::signed(&Signer::new("nobody", "nothing"), now());
    request.check(&verifier).unwrap();
    request.headers.remove("authorization");
    request.check(&verifier).unwrap();
    assert_eq!(verifier.n_refused(), 0);
}

#[test]
fn the_signing_key_cache_stays_bounded() {
    let verifier = Verifier::default();
    for n in 0..(MAX_CACHED_SIGNING_KEYS + 10) {
        let signer = Signer::test().with_region(&format!("us-east-{n}"));
        TestRequest::signed(&signer, now()).check(&verifier).unwrap();
        assert!(verifier.signing_keys.lock().unwrap().len() <= MAX_CACHED_SIGNING_KEYS);
    }
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let text = format!("{:?} {:?}", Auth::default(), Signer::test());
    assert!(text.contains(TEST_ACCESS_KEY_ID), "{text}");
    assert!(!text.contains(TEST_SECRET_ACCESS_KEY), "{text}");
    assert!(!text.contains(TEST_BEARER_TOKEN), "{text}");
}
