//! Who may call the simulator: the credentials it accepts ([`Auth`]), the check of each
//! invoke request against them ([`Verifier`]: Bedrock's rules and answers, listed in the
//! crate documentation, section Authentication), the cache of signing keys, and [`Signer`]
//! for clients that call the simulator without the AWS SDK. The SigV4 steps themselves
//! (parsing, canonical request, string to sign) are `sigv4.rs`; the HMACs are `aws-sigv4`'s.
//!
//! Every refusal is logged by the handler with what failed: for a signature that does not
//! match, the canonical request and string to sign the simulator computed, to compare with
//! the signer's (its session token masked; secrets never appear).

pub mod sigv4;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use axum::http::{HeaderMap, Method, Uri, header};

use crate::auth::sigv4::{Authorization, Malformed, RequestParts};
use crate::error::BedrockError;

/// The access key id of the simulator's built-in test key; its secret is
/// [`TEST_SECRET_ACCESS_KEY`]. The gateway signs its calls to the simulator with this key
/// unless its config names another.
pub const TEST_ACCESS_KEY_ID: &str = "AKIDBEDROCKSIMULATOR";

/// The secret of [`TEST_ACCESS_KEY_ID`]. A test credential: it opens nothing but a
/// simulator.
pub const TEST_SECRET_ACCESS_KEY: &str = "bedrock-simulator/test/secret-access-key";

/// The simulator's built-in Bedrock API key, accepted as `Authorization: Bearer <token>`.
pub const TEST_BEARER_TOKEN: &str = "ABSK-bedrock-simulator-test-api-key";

/// The service name SigV4 signs Bedrock's runtime requests for (wire document §1.1).
pub const SIGNING_SERVICE: &str = "bedrock";

/// How far a request's `X-Amz-Date` may be from the simulator's clock, either way.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// The most signing keys kept; past it the cache starts again empty.
pub const MAX_CACHED_SIGNING_KEYS: usize = 1024;

/// Bedrock's answer to a signature that does not match, for every part of the request
/// that the signature covers.
pub(crate) const SIGNATURE_MISMATCH_MESSAGE: &str = "The request signature we calculated does \
    not match the signature you provided. Check your AWS Secret Access Key and signing method. \
    Consult the service documentation for details.";

/// Bedrock's answer to an access key id (or session token) it does not know.
pub(crate) const UNRECOGNIZED_CLIENT_MESSAGE: &str =
    "The security token included in the request is invalid.";

/// The credentials the simulator accepts. [`Auth::default`] holds the test key and the
/// test bearer token, and verifies.
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    /// `false` serves every request whatever its `Authorization` (the binary's
    /// `--no-verify-auth`, for a simulator run by hand). Tests and the embedded simulator
    /// always verify.
    pub verify: bool,
    /// Access key id → its secret and session token.
    pub access_keys: BTreeMap<String, AccessKey>,
    /// The Bedrock API keys accepted as `Authorization: Bearer <token>`.
    pub bearer_tokens: BTreeSet<String>,
}

/// One access key's secret, and the session token its requests must carry
/// (`X-Amz-Security-Token`, signed) when it is a temporary key.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl Default for Auth {
    fn default() -> Auth {
        Auth::with_access_key(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)
            .with_bearer_token(TEST_BEARER_TOKEN)
    }
}

impl Auth {
    /// Verifying, with one long-term access key and no bearer token.
    pub fn with_access_key(access_key_id: &str, secret_access_key: &str) -> Auth {
        let key =
            AccessKey { secret_access_key: secret_access_key.to_owned(), session_token: None };
        Auth {
            verify: true,
            access_keys: BTreeMap::from([(access_key_id.to_owned(), key)]),
            bearer_tokens: BTreeSet::new(),
        }
    }

    /// This, also accepting `token` as a bearer token.
    pub fn with_bearer_token(mut self, token: &str) -> Auth {
        self.bearer_tokens.insert(token.to_owned());
        self
    }

    /// No verification at all: every request is served.
    pub fn unverified() -> Auth {
        Auth { verify: false, ..Auth::default() }
    }
}

// Secrets stay out of debug output; the key ids are not secret.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("verify", &self.verify)
            .field("access_keys", &self.access_keys)
            .field("bearer_tokens", &self.bearer_tokens.len())
            .finish()
    }
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("secret_access_key", &"<secret>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<token>"))
            .finish()
    }
}

/// Signs requests to the simulator as the AWS SDK signs Bedrock's (SigV4 for the service
/// `bedrock`, headers signed, the path double-encoded), with the SDK's own signer
/// (`aws-sigv4`), for clients that do not use the SDK.
#[derive(Clone)]
pub struct Signer {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    region: String,
}

/// A request that [`Signer::sign`] could not sign (a URL or header it cannot read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignError(String);

impl std::fmt::Display for SignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot sign the request: {}", self.0)
    }
}

impl std::error::Error for SignError {}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Signs with this key for `us-east-1`.
    pub fn new(access_key_id: &str, secret_access_key: &str) -> Signer {
        Signer {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
            session_token: None,
            region: "us-east-1".to_owned(),
        }
    }

    /// Signs with the test key ([`TEST_ACCESS_KEY_ID`]) for `us-east-1`.
    pub fn test() -> Signer {
        Signer::new(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)
    }

    /// This, for another region.
    pub fn with_region(mut self, region: &str) -> Signer {
        region.clone_into(&mut self.region);
        self
    }

    /// This, sending and signing `token` as `X-Amz-Security-Token`.
    pub fn with_session_token(mut self, token: &str) -> Signer {
        self.session_token = Some(token.to_owned());
        self
    }

    /// The headers to add to a request (`authorization`, `x-amz-date`, and
    /// `x-amz-security-token` with a session token) that signs it at `time`. `url` is the
    /// URL or path the request is sent to, as it goes on the wire (percent-encoded);
    /// `headers` are those it will carry, all signed (but `user-agent`, as the SDK does),
    /// with a `host` among them when `url` has no authority.
    pub fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        time: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, SignError> {
        self.sign_for(SIGNING_SERVICE, method, url, headers, body, time)
    }

    /// [`Signer::sign`] for another service's name (tests of the scope check).
    fn sign_for(
        &self,
        service: &str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        time: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, SignError> {
        let credentials = aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "bedrock-sim",
        );
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|error| SignError(error.to_string()))?
            .into();
        let request =
            SignableRequest::new(method, url, headers.iter().copied(), SignableBody::Bytes(body))
                .map_err(|error| SignError(error.to_string()))?;
        let (instructions, _signature) = aws_sigv4::http_request::sign(request, &params)
            .map_err(|error| SignError(error.to_string()))?
            .into_parts();
        let (signing_headers, _params) = instructions.into_parts();
        Ok(signing_headers
            .into_iter()
            .map(|header| (header.name(), header.value().to_owned()))
            .collect())
    }
}

/// The [`Auth`] of one simulator, its cache of signing keys and its count of refusals.
pub(crate) struct Verifier {
    auth: Auth,
    /// Keyed by the credential as sent (`<key>/<date>/<region>/<service>/aws4_request`),
    /// which names the secret: the access key's.
    signing_keys: Mutex<HashMap<String, SigningKey>>,
    n_refused: AtomicU64,
}

/// A derived SigV4 signing key: an HMAC-SHA256 output.
type SigningKey = [u8; 32];

/// A request the simulator does not serve: Bedrock's answer, and what failed, for the log.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) error: BedrockError,
    pub(crate) reason: String,
}

/// The request as [`Verifier::check`] reads it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignedRequest<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

impl Default for Verifier {
    fn default() -> Verifier {
        Verifier::new(Auth::default())
    }
}

impl Verifier {
    pub(crate) fn new(auth: Auth) -> Verifier {
        Verifier { auth, signing_keys: Mutex::default(), n_refused: AtomicU64::new(0) }
    }

    /// Requests refused so far.
    pub(crate) fn n_refused(&self) -> u64 {
        self.n_refused.load(Ordering::Relaxed)
    }

    /// Whether `request` may be served at `now` (the simulator's clock).
    pub(crate) fn check(&self, request: SignedRequest<'_>, now: SystemTime) -> Result<(), Refusal> {
        if !self.auth.verify {
            return Ok(());
        }
        let result = self.authenticate(request, now);
        if result.is_err() {
            self.n_refused.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn authenticate(&self, request: SignedRequest<'_>, now: SystemTime) -> Result<(), Refusal> {
        let Some(value) = request.headers.get(header::AUTHORIZATION) else {
            return Err(refusal(
                "AccessDeniedException",
                "Authorization header is missing",
                "no Authorization header",
            ));
        };
        let Ok(value) = value.to_str() else {
            return Err(incomplete(
                missing_parameters(&["Credential", "Signature", "SignedHeaders"], "<not ASCII>"),
                "the Authorization header is not ASCII",
            ));
        };
        if let Some((scheme, token)) = value.split_once(' ')
            && scheme.eq_ignore_ascii_case("bearer")
        {
            return self.check_bearer(token.trim());
        }
        let authorization = parse(value)?;
        let headers = request.headers;
        let Some(amz_date) = headers.get("x-amz-date") else {
            let message = format!(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
                 header. Authorization={value}"
            );
            return Err(incomplete(message, "no X-Amz-Date header"));
        };
        let amz_date = amz_date.to_str().unwrap_or("\u{fffd}");
        let Some(signed_at) = sigv4::parse_amz_date(amz_date) else {
            let message = format!(
                "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See \
                 http://en.wikipedia.org/wiki/ISO_8601"
            );
            return Err(incomplete(message, "X-Amz-Date is not YYYYMMDD'T'HHMMSS'Z'"));
        };
        let key = self.known_key(&authorization, headers)?;
        check_scope(&authorization, amz_date)?;
        let signed_header_names = check_signed_headers(&authorization, headers)?;
        check_time(signed_at, amz_date, now)?;

        let payload_hash = sigv4::sha256_hex(request.body);
        if let Some(sent) = headers.get("x-amz-content-sha256")
            && sent.as_bytes() != payload_hash.as_bytes()
        {
            return Err(mismatch(format!(
                "X-Amz-Content-SHA256 {sent:?} is not the SHA-256 of the {}-byte body, {payload_hash}",
                request.body.len()
            )));
        }
        let parts = RequestParts {
            method: request.method.as_str(),
            path: request.uri.path(),
            query: request.uri.query(),
            headers,
            authority: request.uri.authority().map(|authority| authority.as_str()),
        };
        let canonical_request = sigv4::canonical_request(
            parts,
            &signed_header_names,
            authorization.signed_headers,
            &payload_hash,
        )
        .map_err(|name| mismatch(format!("the signed header {name:?} is not in the request")))?;
        let string_to_sign =
            sigv4::string_to_sign(amz_date, authorization.scope, &canonical_request);
        let signing_key = self.signing_key(&authorization, &key.secret_access_key, signed_at);
        let expected = v4::calculate_signature(signing_key, string_to_sign.as_bytes());
        if !sigv4::constant_time_eq(expected.as_bytes(), authorization.signature.as_bytes()) {
            let mut canonical = String::from_utf8_lossy(&canonical_request).into_owned();
            if let Some(token) = &key.session_token {
                canonical = canonical.replace(token.as_str(), "<session token>");
            }
            return Err(mismatch(format!(
                "the signature is not the one computed with the secret of {}: canonical \
                 request {canonical:?}, string to sign {string_to_sign:?}",
                authorization.access_key_id
            )));
        }
        Ok(())
    }

    fn check_bearer(&self, token: &str) -> Result<(), Refusal> {
        if self.auth.bearer_tokens.contains(token) {
            return Ok(());
        }
        Err(refusal(
            "AccessDeniedException",
            "Authentication failed: Please make sure your API Key is valid.",
            "a bearer token that is not configured",
        ))
    }

    /// The access key the request names, with the session token it must carry.
    fn known_key(
        &self,
        authorization: &Authorization<'_>,
        headers: &HeaderMap,
    ) -> Result<&AccessKey, Refusal> {
        let unrecognized = |reason: String| {
            refusal("UnrecognizedClientException", UNRECOGNIZED_CLIENT_MESSAGE, reason)
        };
        let id = authorization.access_key_id;
        let Some(key) = self.auth.access_keys.get(id) else {
            return Err(unrecognized(format!("the access key id {id:?} is not configured")));
        };
        let sent = headers.get("x-amz-security-token").map(|token| token.as_bytes());
        match (&key.session_token, sent) {
            (None, None) => Ok(key),
            (Some(token), Some(sent)) if sigv4::constant_time_eq(token.as_bytes(), sent) => Ok(key),
            (Some(_), None) => {
                Err(unrecognized(format!("no X-Amz-Security-Token for the temporary key {id}")))
            }
            (Some(_), Some(_)) => {
                Err(unrecognized(format!("X-Amz-Security-Token is not the session token of {id}")))
            }
            (None, Some(_)) => Err(unrecognized(format!(
                "an X-Amz-Security-Token with the long-term key {id}, which has none"
            ))),
        }
    }

    /// The signing key of the request's credential, derived at most once per credential.
    fn signing_key(
        &self,
        authorization: &Authorization<'_>,
        secret: &str,
        signed_at: SystemTime,
    ) -> SigningKey {
        // A holder cannot leave the map half-updated, so a poisoned lock is usable.
        let mut keys = self.signing_keys.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = keys.get(authorization.credential) {
            return *key;
        }
        // The scope's date is the request's (checked): the key is derived for that day.
        let derived = v4::generate_signing_key(
            secret,
            signed_at,
            authorization.region,
            authorization.service,
        );
        let mut key = [0_u8; 32];
        // An HMAC-SHA256 is 32 bytes, all of which are copied.
        for (byte, derived) in key.iter_mut().zip(derived.as_ref()) {
            *byte = *derived;
        }
        if keys.len() >= MAX_CACHED_SIGNING_KEYS {
            keys.clear();
        }
        keys.insert(authorization.credential.to_owned(), key);
        key
    }
}

fn parse(value: &str) -> Result<Authorization<'_>, Refusal> {
    let scheme = value.split_whitespace().next().unwrap_or_default();
    if scheme != sigv4::ALGORITHM {
        let message = missing_parameters(&["Credential", "Signature", "SignedHeaders"], value);
        let reason = format!("the Authorization scheme {scheme:?} is not {}", sigv4::ALGORITHM);
        return Err(incomplete(message, reason));
    }
    sigv4::parse_authorization(value).map_err(|malformed| match malformed {
        Malformed::NotKeyValue(part) => incomplete(
            format!(
                "'{part}' not a valid key=value pair (missing equal-sign) in Authorization \
                 header: '{value}'."
            ),
            format!("the Authorization part {part:?} is not key=value"),
        ),
        Malformed::Missing(names) => incomplete(
            missing_parameters(&names, value),
            format!("the Authorization header has no {}", names.join(", ")),
        ),
        Malformed::BadTerminator(last) => incomplete(
            format!(
                "Credential should be scoped with a valid terminator: '{}', not '{last}'.",
                sigv4::TERMINATOR
            ),
            "the credential is not <key>/<date>/<region>/<service>/aws4_request",
        ),
    })
}

/// The scope: the request's own date, the service `bedrock`, a region's name.
fn check_scope(authorization: &Authorization<'_>, amz_date: &str) -> Result<(), Refusal> {
    let day = amz_date.get(..8).unwrap_or_default();
    if authorization.date != day {
        let message = format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{day}', from '{amz_date}'.",
            authorization.date
        );
        let reason = "the credential scope's date is not X-Amz-Date's";
        return Err(refusal("InvalidSignatureException", message, reason));
    }
    if authorization.service != SIGNING_SERVICE {
        return Err(refusal(
            "InvalidSignatureException",
            format!("Credential should be scoped to correct service: '{SIGNING_SERVICE}'. "),
            format!("the credential scope's service is {:?}", authorization.service),
        ));
    }
    if !is_region(authorization.region) {
        return Err(refusal(
            "InvalidSignatureException",
            "Credential should be scoped to a valid region. ",
            format!("the credential scope's region {:?} is not a region", authorization.region),
        ));
    }
    Ok(())
}

/// The signed header list: well formed, with `host` and `x-amz-date`, and with every
/// header of the signing protocol that the request carries.
fn check_signed_headers<'a>(
    authorization: &Authorization<'a>,
    headers: &HeaderMap,
) -> Result<Vec<&'a str>, Refusal> {
    let Some(names) = sigv4::signed_header_names(authorization.signed_headers) else {
        return Err(mismatch(format!(
            "SignedHeaders {:?} is not lower case, sorted and without repeats",
            authorization.signed_headers
        )));
    };
    if !names.contains(&"host") {
        return Err(refusal(
            "InvalidSignatureException",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            format!("host is not in SignedHeaders {:?}", authorization.signed_headers),
        ));
    }
    for name in ["x-amz-date", "x-amz-security-token", "x-amz-content-sha256"] {
        if headers.contains_key(name) && !names.contains(&name) {
            return Err(mismatch(format!(
                "{name} is sent but not in SignedHeaders {:?}",
                authorization.signed_headers
            )));
        }
    }
    Ok(names)
}

/// `X-Amz-Date` within [`MAX_CLOCK_SKEW`] of `now`, either way.
fn check_time(signed_at: SystemTime, amz_date: &str, now: SystemTime) -> Result<(), Refusal> {
    let earliest = now.checked_sub(MAX_CLOCK_SKEW).unwrap_or(SystemTime::UNIX_EPOCH);
    if (earliest..=now + MAX_CLOCK_SKEW).contains(&signed_at) {
        return Ok(());
    }
    let now_text = sigv4::format_amz_date(now);
    let minutes = MAX_CLOCK_SKEW.as_secs() / 60;
    if signed_at < earliest {
        let earliest = sigv4::format_amz_date(earliest);
        let message = format!(
            "Signature expired: {amz_date} is now earlier than {earliest} ({now_text} - {minutes} \
             min.)"
        );
        return Err(refusal("InvalidSignatureException", message, "X-Amz-Date is too old"));
    }
    if signed_at > now + MAX_CLOCK_SKEW {
        let latest = sigv4::format_amz_date(now + MAX_CLOCK_SKEW);
        let message = format!(
            "Signature not yet current: {amz_date} is still later than {latest} ({now_text} + \
             {minutes} min.)"
        );
        return Err(refusal("InvalidSignatureException", message, "X-Amz-Date is in the future"));
    }
    Ok(())
}

/// Whether `region` has the shape of an AWS region's name: `us-east-1`, `us-gov-west-1`,
/// `ap-southeast-2`. The simulator answers for every region, so the shape is all it checks.
fn is_region(region: &str) -> bool {
    let Some((words, number)) = region.rsplit_once('-') else {
        return false;
    };
    let Some((first, middle)) = words.split_once('-') else {
        return false;
    };
    let letters = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase());
    first.len() == 2
        && letters(first)
        && middle.split('-').all(letters)
        && !number.is_empty()
        && number.bytes().all(|byte| byte.is_ascii_digit())
}

/// AWS's text for the `Authorization` parameters missing, with the header echoed.
fn missing_parameters(names: &[&str], value: &str) -> String {
    let mut message = String::new();
    for name in names {
        message.push_str(&format!("Authorization header requires '{name}' parameter. "));
    }
    message.push_str(&format!("Authorization={value}"));
    message
}

fn refusal(shape: &'static str, message: impl Into<String>, reason: impl Into<String>) -> Refusal {
    Refusal { error: BedrockError::forbidden(shape, message), reason: reason.into() }
}

fn incomplete(message: impl Into<String>, reason: impl Into<String>) -> Refusal {
    refusal("IncompleteSignatureException", message, reason)
}

fn mismatch(reason: impl Into<String>) -> Refusal {
    refusal("InvalidSignatureException", SIGNATURE_MISMATCH_MESSAGE, reason)
}

#[cfg(test)]
mod tests;
