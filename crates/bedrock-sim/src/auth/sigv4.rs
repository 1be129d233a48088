//! SigV4 as the service reads it (AWS "Create a signed AWS API request"): the
//! `Authorization` header taken apart, and the canonical request and string to sign rebuilt
//! from the request exactly as it arrived. Nothing here knows Bedrock's rules or its error
//! texts (`auth.rs` does): these are the pure steps, checked against the AWS signing test
//! suite (`tests.rs`, `tests/fixtures/sigv4/`).
//!
//! The gateway's own signer (`server::upstream::sign`) builds its canonical request and
//! string to sign with these same steps, so they are public (`bedrock_sim::sigv4`); what
//! keeps the two ends honest is that these steps pass the AWS suite and the gateway's
//! signatures are compared byte for byte with `aws-sigv4`'s.
//!
//! The canonical URI is the one the AWS SDKs sign for every service but S3: the raw path as
//! received, dot segments and empty segments removed, then percent-encoded once more (a
//! model id's `:` arrives as `%3A` and is signed as `%253A`).

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

/// The one algorithm of SigV4 with HMAC: the `Authorization` header's scheme and the
/// string to sign's first line.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The last part of every credential scope.
pub const TERMINATOR: &str = "aws4_request";

/// The parts of an `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authorization<'a> {
    /// `<access key id>/<date>/<region>/<service>/aws4_request`, as sent.
    pub(crate) credential: &'a str,
    pub(crate) access_key_id: &'a str,
    /// `<date>/<region>/<service>/aws4_request`: the credential scope.
    pub(crate) scope: &'a str,
    /// `YYYYMMDD`, as sent (not checked here).
    pub(crate) date: &'a str,
    pub(crate) region: &'a str,
    pub(crate) service: &'a str,
    /// `a;b;c`, as sent.
    pub(crate) signed_headers: &'a str,
    pub(crate) signature: &'a str,
}

/// Why an `Authorization` header of the `AWS4-HMAC-SHA256` scheme could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// A comma-separated part without `=`.
    NotKeyValue(String),
    /// The parameters missing, of `Credential`, `Signature`, `SignedHeaders` (AWS's order).
    Missing(Vec<&'static str>),
    /// A credential that is not five `/`-separated parts ending in `aws4_request`; holds
    /// its last part.
    BadTerminator(String),
}

/// Reads an `Authorization` header value that starts with [`ALGORITHM`].
pub(crate) fn parse_authorization(value: &str) -> Result<Authorization<'_>, Malformed> {
    let parameters = value.strip_prefix(ALGORITHM).unwrap_or(value);
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in parameters.split(',').map(str::trim).filter(|part| !part.is_empty()) {
        let Some((key, parameter)) = part.split_once('=') else {
            return Err(Malformed::NotKeyValue(part.to_owned()));
        };
        match key.trim() {
            "Credential" => credential = Some(parameter.trim()),
            "SignedHeaders" => signed_headers = Some(parameter.trim()),
            "Signature" => signature = Some(parameter.trim()),
            // Other parameters are not SigV4's; AWS ignores them too.
            _ => {}
        }
    }
    let missing: Vec<&'static str> = [
        ("Credential", credential.is_none()),
        ("Signature", signature.is_none()),
        ("SignedHeaders", signed_headers.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, is_missing)| is_missing.then_some(name))
    .collect();
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(Malformed::Missing(missing));
    };
    let mut parts = credential.split('/');
    let (Some(access_key_id), Some(date), Some(region), Some(service), Some(TERMINATOR), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        let last = credential.rsplit('/').next().unwrap_or_default();
        return Err(Malformed::BadTerminator(last.to_owned()));
    };
    let scope = &credential[access_key_id.len() + 1..];
    Ok(Authorization {
        credential,
        access_key_id,
        scope,
        date,
        region,
        service,
        signed_headers,
        signature,
    })
}

/// The names of `SignedHeaders`, if they are as every signer writes them: lower case,
/// sorted, each once, none empty. A list in any other form cannot be the canonical
/// request's, so it is refused rather than reordered.
pub(crate) fn signed_header_names(signed_headers: &str) -> Option<Vec<&str>> {
    let names: Vec<&str> = signed_headers.split(';').collect();
    let well_formed = names.iter().all(|name| {
        !name.is_empty()
            && name.bytes().all(|byte| byte.is_ascii_graphic() && !byte.is_ascii_uppercase())
    });
    let sorted = names.windows(2).all(|pair| pair[0] < pair[1]);
    (well_formed && sorted).then_some(names)
}

/// The request as it arrived, as far as the canonical request reads it.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The raw path, still percent-encoded as sent.
    pub path: &'a str,
    /// The raw query, without `?`.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The URI's authority (HTTP/2's `:authority`), used for a signed `host` when the
    /// request carries no `Host` header.
    pub authority: Option<&'a str>,
}

/// The canonical request: method, canonical URI, canonical query, the signed headers with
/// their values, the signed header list and the payload hash, one per line. `Err` names a
/// signed header the request does not carry.
pub fn canonical_request(
    request: RequestParts<'_>,
    signed_header_names: &[&str],
    signed_headers: &str,
    payload_hash: &str,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(256 + 64 * signed_header_names.len());
    out.extend_from_slice(request.method.as_bytes());
    out.push(b'\n');
    uri_encode(normalize_path(request.path).as_bytes(), true, &mut out);
    out.push(b'\n');
    canonical_query(request.query.unwrap_or_default(), &mut out);
    out.push(b'\n');
    for name in signed_header_names {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut values = request.headers.get_all(*name).iter().peekable();
        if values.peek().is_none() {
            match (*name, request.authority) {
                ("host", Some(authority)) => out.extend_from_slice(authority.as_bytes()),
                _ => return Err((*name).to_owned()),
            }
        }
        let mut first = true;
        for value in values {
            if !first {
                out.push(b',');
            }
            first = false;
            push_trimmed(value.as_bytes(), &mut out);
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    Ok(out)
}

/// `AWS4-HMAC-SHA256`, the request time, the credential scope and the hex SHA-256 of the
/// canonical request, one per line.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    let mut text = String::with_capacity(ALGORITHM.len() + amz_date.len() + scope.len() + 67);
    for part in [ALGORITHM, "\n", amz_date, "\n", scope, "\n"] {
        text.push_str(part);
    }
    push_hex(&Sha256::digest(canonical_request), &mut text);
    text
}

/// The lower-case hex SHA-256 of `bytes`: the payload hash and the canonical request's.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(2 * bytes.len());
    push_hex(bytes, &mut text);
    text
}

fn push_hex(bytes: &[u8], text: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

/// Whether two byte strings are equal, in time that depends on their lengths only.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The path with dot segments and empty segments removed (RFC 3986 §5.2.4), as the AWS
/// SDKs normalize it before signing; `/` for an empty path.
fn normalize_path(path: &str) -> Cow<'_, str> {
    if path.starts_with('/') && !path.contains("/.") && !path.contains("//") {
        return Cow::Borrowed(path);
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut normalized = String::with_capacity(path.len() + 1);
    for segment in &segments {
        normalized.push('/');
        normalized.push_str(segment);
    }
    let ends_with_slash = ["/", "/.", "/..", "/./", "/../"].iter().any(|end| path.ends_with(end));
    if normalized.is_empty() || (ends_with_slash && !normalized.ends_with('/')) {
        normalized.push('/');
    }
    Cow::Owned(normalized)
}

/// The query's parameters decoded (`+` as a space, as form encoding has it), each name and
/// value percent-encoded again, sorted by name then value, joined by `&`.
fn canonical_query(query: &str, out: &mut Vec<u8>) {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let encode = |text: &str| {
                let mut encoded = Vec::with_capacity(text.len());
                uri_encode(form_decode(text).as_bytes(), false, &mut encoded);
                encoded
            };
            (encode(name), encode(value))
        })
        .collect();
    pairs.sort();
    for (idx, (name, value)) in pairs.iter().enumerate() {
        if idx > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(value);
    }
}

/// `%XX` escapes and `+` decoded; a bad escape is kept as it is; bytes that are not UTF-8
/// become U+FFFD (as the SDKs' form decoding does).
fn form_decode(text: &str) -> String {
    let raw = text.as_bytes();
    let mut decoded = Vec::with_capacity(raw.len());
    let mut idx = 0;
    while idx < raw.len() {
        let escaped = (raw[idx] == b'%')
            .then(|| Some((hex_digit(*raw.get(idx + 1)?)?, hex_digit(*raw.get(idx + 2)?)?)))
            .flatten();
        match (raw[idx], escaped) {
            (_, Some((high, low))) => {
                decoded.push(high << 4 | low);
                idx += 3;
            }
            (b'+', None) => {
                decoded.push(b' ');
                idx += 1;
            }
            (byte, None) => {
                decoded.push(byte);
                idx += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).and_then(|digit| u8::try_from(digit).ok())
}

/// Percent-encodes every byte but the unreserved characters (`A-Z a-z 0-9 - . _ ~`) and,
/// with `keep_slash`, `/`; upper-case hex, as SigV4 wants.
fn uri_encode(bytes: &[u8], keep_slash: bool, out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in bytes {
        let unreserved = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~');
        if unreserved || (keep_slash && byte == b'/') {
            out.push(byte);
        } else {
            out.extend_from_slice(&[
                b'%',
                DIGITS[usize::from(byte >> 4)],
                DIGITS[usize::from(byte & 0x0f)],
            ]);
        }
    }
}

/// A header value with its leading and trailing spaces removed and each run of spaces made
/// one, as the canonical headers have them.
fn push_trimmed(value: &[u8], out: &mut Vec<u8>) {
    let start = value.iter().position(|byte| *byte != b' ').unwrap_or(value.len());
    let end = value.iter().rposition(|byte| *byte != b' ').map_or(start, |idx| idx + 1);
    let mut previous_space = false;
    for &byte in &value[start..end] {
        if byte == b' ' && previous_space {
            continue;
        }
        previous_space = byte == b' ';
        out.push(byte);
    }
}

/// The time of an `X-Amz-Date` value, `YYYYMMDD'T'HHMMSS'Z'` (ISO 8601 basic format, UTC).
pub(crate) fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = text.get(range)?;
        digits.bytes().all(|byte| byte.is_ascii_digit()).then(|| digits.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if year < 1970 || !(1..=days_in_month).contains(&day) || hour > 23 || minute > 59 || second > 59
    {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).ok()?))
}

/// `time` as an `X-Amz-Date` value, to the second (times before 1970 as 1970).
pub fn format_amz_date(time: SystemTime) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    let (hour, minute, second) = (of_day / 3600, of_day % 3600 / 60, of_day % 60);
    format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}Z")
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
