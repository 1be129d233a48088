//! The SigV4 steps against the AWS signing test suite (`tests/fixtures/sigv4/`, copied from
//! the `aws-sigv4` crate, which took it from awslabs/aws-c-auth): for each request, the
//! canonical request rebuilt from the signed request as sent, and the signature recomputed
//! with the suite's secret.

use std::path::Path;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::*;

/// One signed request of the suite, as the service would receive it.
struct Vector {
    name: String,
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
    canonical_request: String,
    /// The secret, when the case has a `context.json` (the two older cases have none).
    secret: Option<String>,
}

fn vectors() -> Vec<Vector> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigv4");
    let mut vectors = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let signed = std::fs::read_to_string(dir.join("header-signed-request.txt")).unwrap();
        let canonical_request =
            std::fs::read_to_string(dir.join("header-canonical-request.txt")).unwrap();
        let secret = std::fs::read_to_string(dir.join("context.json")).ok().map(|text| {
            let context: Value = serde_json::from_str(&text).unwrap();
            context["credentials"]["secret_access_key"].as_str().unwrap().to_owned()
        });
        let (head, body) = signed.split_once("\n\n").unwrap_or((&signed, ""));
        let mut lines = head.lines();
        let request_line = lines.next().unwrap();
        let (method, rest) = request_line.split_once(' ').unwrap();
        let target = rest.strip_suffix(" HTTP/1.1").unwrap_or(rest);
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
            None => (target.to_owned(), None),
        };
        let mut headers = HeaderMap::new();
        for line in lines {
            let (key, value) = line.split_once(':').unwrap();
            let key = HeaderName::from_bytes(key.as_bytes()).unwrap();
            headers.append(key, HeaderValue::from_str(value).unwrap());
        }
        if secret.is_none() {
            // The two older cases sign request.txt at another time than its X-Amz-Date (the
            // SDK's own test overrides it): the request gets the canonical request's date.
            let date = canonical_request.lines().find_map(|l| l.strip_prefix("x-amz-date:"));
            headers.insert("x-amz-date", HeaderValue::from_str(date.unwrap()).unwrap());
        }
        vectors.push(Vector {
            name,
            method: method.to_owned(),
            path,
            query,
            headers,
            body: body.as_bytes().to_vec(),
            canonical_request,
            secret,
        });
    }
    vectors.sort_by(|a, b| a.name.cmp(&b.name));
    vectors
}

#[test]
fn the_aws_signing_test_suite_verifies() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 32, "the fixture folders");
    let mut n_signatures = 0;
    for vector in &vectors {
        let name = &vector.name;
        let value = vector.headers["authorization"].to_str().unwrap().trim();
        let authorization = parse_authorization(value).unwrap();
        let names = signed_header_names(authorization.signed_headers).unwrap();
        let parts = RequestParts {
            method: &vector.method,
            path: &vector.path,
            query: vector.query.as_deref(),
            headers: &vector.headers,
            authority: None,
        };
        let payload_hash = sha256_hex(&vector.body);
        let canonical =
            canonical_request(parts, &names, authorization.signed_headers, &payload_hash).unwrap();
        assert_eq!(
            String::from_utf8(canonical.clone()).unwrap(),
            vector.canonical_request,
            "{name}"
        );

        let Some(secret) = &vector.secret else { continue };
        let amz_date = vector.headers["x-amz-date"].to_str().unwrap();
        let signed_at = parse_amz_date(amz_date).unwrap();
        let key = aws_sigv4::sign::v4::generate_signing_key(
            secret,
            signed_at,
            authorization.region,
            authorization.service,
        );
        let string_to_sign = string_to_sign(amz_date, authorization.scope, &canonical);
        let signature =
            aws_sigv4::sign::v4::calculate_signature(key.as_ref(), string_to_sign.as_bytes());
        assert_eq!(signature, authorization.signature, "{name}");
        n_signatures += 1;
    }
    assert_eq!(n_signatures, 30);
}

#[test]
fn a_signature_with_anything_changed_does_not_verify() {
    // get-vanilla's request, its path, a header and its body changed in turn: the canonical
    // request differs, so the signature computed from it is not the one sent.
    let vector = vectors().into_iter().find(|vector| vector.name == "post-x-www-form-urlencoded");
    let vector = vector.unwrap();
    let value = vector.headers["authorization"].to_str().unwrap().to_owned();
    let authorization = parse_authorization(&value).unwrap();
    let names = signed_header_names(authorization.signed_headers).unwrap();
    let canonical = |path: &str, headers: &HeaderMap, body: &[u8]| {
        let parts = RequestParts { method: "POST", path, query: None, headers, authority: None };
        canonical_request(parts, &names, authorization.signed_headers, &sha256_hex(body)).unwrap()
    };
    let original = canonical("/", &vector.headers, &vector.body);
    assert_eq!(String::from_utf8(original.clone()).unwrap(), vector.canonical_request);
    assert_ne!(canonical("/x", &vector.headers, &vector.body), original);
    assert_ne!(canonical("/", &vector.headers, b"Param1=value2"), original);
    let mut headers = vector.headers.clone();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    assert_ne!(canonical("/", &headers, &vector.body), original);
    // An unsigned header may change freely.
    let mut headers = vector.headers.clone();
    headers.insert("user-agent", HeaderValue::from_static("another"));
    assert_eq!(canonical("/", &headers, &vector.body), original);
    // A signed header that is gone is named.
    let mut headers = vector.headers.clone();
    headers.remove("content-length");
    let parts =
        RequestParts { method: "POST", path: "/", query: None, headers: &headers, authority: None };
    let missing = canonical_request(parts, &names, authorization.signed_headers, "x");
    assert_eq!(missing, Err("content-length".to_owned()));
}

#[test]
fn bedrock_paths_are_signed_double_encoded() {
    // What the Rust SDK signs for a Claude id and an ARN (wire document §1.1, §1.3).
    let mut path = Vec::new();
    uri_encode(normalize_path("/model/anthropic.claude-v2%3A1/invoke").as_bytes(), true, &mut path);
    assert_eq!(String::from_utf8(path).unwrap(), "/model/anthropic.claude-v2%253A1/invoke");
    let arn = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Fanthropic.claude-v2/invoke-with-response-stream";
    let mut path = Vec::new();
    uri_encode(normalize_path(arn).as_bytes(), true, &mut path);
    assert_eq!(
        String::from_utf8(path).unwrap(),
        "/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A%253Afoundation-model%252Fanthropic.claude-v2/invoke-with-response-stream"
    );
    for (raw, normalized) in [
        ("", "/"),
        ("/", "/"),
        ("//", "/"),
        ("/a/./b/../c", "/a/c"),
        ("/a/b/", "/a/b/"),
        ("/a/b/.", "/a/b/"),
        ("/../a", "/a"),
        ("/a//b", "/a/b"),
    ] {
        assert_eq!(normalize_path(raw), normalized, "{raw:?}");
    }
}

#[test]
fn authorization_headers_are_taken_apart() {
    let value = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-west-2/bedrock/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=abc";
    let parsed = parse_authorization(value).unwrap();
    assert_eq!(parsed.access_key_id, "AKID");
    assert_eq!(parsed.scope, "20260101/us-west-2/bedrock/aws4_request");
    assert_eq!((parsed.date, parsed.region, parsed.service), ("20260101", "us-west-2", "bedrock"));
    assert_eq!((parsed.signed_headers, parsed.signature), ("host;x-amz-date", "abc"));
    // Without spaces after the commas, as some signers write it.
    let compact = value.replace(", ", ",");
    assert_eq!(parse_authorization(&compact).unwrap(), parsed);

    assert_eq!(
        parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-west-2/bedrock/aws4_request"
        ),
        Err(Malformed::Missing(vec!["Signature", "SignedHeaders"]))
    );
    assert_eq!(
        parse_authorization("AWS4-HMAC-SHA256 Credential AKID, SignedHeaders=host, Signature=x"),
        Err(Malformed::NotKeyValue("Credential AKID".to_owned()))
    );
    for credential in
        ["AKID/20260101/us-west-2/bedrock/aws5_request", "AKID/20260101/bedrock/aws4_request"]
    {
        let value =
            format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=x");
        assert!(
            matches!(parse_authorization(&value), Err(Malformed::BadTerminator(_))),
            "{credential}"
        );
    }

    assert_eq!(signed_header_names("host;x-amz-date"), Some(vec!["host", "x-amz-date"]));
    for bad in ["x-amz-date;host", "Host;x-amz-date", "host;;x-amz-date", "host;host", ""] {
        assert_eq!(signed_header_names(bad), None, "{bad:?}");
    }
}

#[test]
fn amz_dates_round_trip() {
    for text in ["19700101T000000Z", "20150830T123600Z", "20240229T235959Z", "21000301T010203Z"] {
        assert_eq!(format_amz_date(parse_amz_date(text).unwrap()), text);
    }
    let t = parse_amz_date("20150830T123600Z").unwrap();
    assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_440_938_160);
    for bad in [
        "20150830T123600",
        "2015-08-30T12:36:00Z",
        "20150230T123600Z",
        "20230229T000000Z",
        "20151301T000000Z",
        "20150830T243600Z",
        "20150830t123600Z",
        "2015083OT123600Z",
        "",
    ] {
        assert_eq!(parse_amz_date(bad), None, "{bad:?}");
    }
}

#[test]
fn header_values_are_trimmed_and_their_spaces_collapsed() {
    for (raw, trimmed) in [
        ("value", "value"),
        ("  value  ", "value"),
        ("a   b  c", "a b c"),
        ("\"a   b\"", "\"a b\""),
        ("   ", ""),
        ("tab\tstays", "tab\tstays"),
    ] {
        let mut out = Vec::new();
        push_trimmed(raw.as_bytes(), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), trimmed, "{raw:?}");
    }
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"abcd"));
}
