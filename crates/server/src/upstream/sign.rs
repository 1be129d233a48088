//! How the thin transport authenticates its requests, as the SDK client does:
//!
//! - **SigV4**, service `bedrock`, with the SDK's signing settings (the path
//!   percent-encoded twice in the canonical request, normalised, no
//!   `x-amz-content-sha256`, the session token signed), every header of the request
//!   signed but `user-agent`. The signer is our own, for its cost: it caches the day's
//!   signing key (four HMACs fewer per request) and builds the canonical request in one
//!   buffer, with the simulator's steps (`bedrock_sim::sigv4`, which pass the AWS SigV4
//!   test suite) and `aws-sigv4`'s HMACs; the tests below compare its headers byte for
//!   byte with `aws-sigv4`'s `sign` for generated requests. The credentials come from aws-config's chain (environment,
//!   profile and SSO, web identity for IRSA, the container endpoint for EKS Pod Identity
//!   and ECS, instance metadata) through the shared config's identity cache: loaded once,
//!   reused, refreshed before they expire, as for the SDK client.
//! - **A Bedrock API key** (`AWS_BEARER_TOKEN_BEDROCK`, read by aws-config's service
//!   config as the SDK reads it): `Authorization: Bearer …`, no signature.

use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sigv4::sign::v4;
use aws_smithy_async::rt::sleep::TokioSleep;
use aws_smithy_async::time::SystemTimeSource;
use aws_smithy_runtime::client::auth::no_auth::NoAuthScheme;
use aws_smithy_runtime::client::identity::IdentityCache;
use aws_smithy_runtime::client::orchestrator::endpoints::StaticUriEndpointResolver;
use aws_smithy_runtime::client::retries::strategy::NeverRetryStrategy;
use aws_smithy_runtime_api::client::auth::AuthSchemeId;
use aws_smithy_runtime_api::client::auth::static_resolver::StaticAuthSchemeOptionResolver;
use aws_smithy_runtime_api::client::identity::{
    ResolveCachedIdentity, SharedIdentityCache, SharedIdentityResolver,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::display::DisplayErrorContext;
use bedrock_sim::sigv4;
use bytes::Bytes;
use http::HeaderValue;

use crate::upstream::{UpstreamError, bounded_message, is_credentials_error};

/// The SigV4 signing name of Bedrock Runtime (the wire document §1.1).
const SIGNING_NAME: &str = "bedrock";

/// Signs (or authorizes) each request of one region's client.
#[derive(Debug)]
pub(crate) enum Signer {
    SigV4(Box<SigV4>),
    /// `Authorization: Bearer <key>`, marked sensitive.
    Bearer(HeaderValue),
}

/// SigV4 with credentials from an identity cache.
#[derive(Debug)]
pub(crate) struct SigV4 {
    region: String,
    /// Made once: the cache keeps its identity per resolver (its partition).
    resolver: SharedIdentityResolver,
    cache: SharedIdentityCache,
    /// The cache's clock and sleep (for its load timeout). The identity cache API takes
    /// them as runtime components, which must name a resolver for each of the
    /// orchestrator's other components; those are inert stand-ins, never called.
    components: RuntimeComponents,
    config_bag: ConfigBag,
    /// The last signing key derived (one credential signs every request of a client).
    signing_key: Mutex<Option<CachedKey>>,
}

impl Signer {
    /// SigV4 in `region`, with the credentials of `provider` through `cache` (the shared
    /// config's identity cache; `None`: a lazy cache of the SDK's defaults).
    pub(crate) fn sigv4(
        region: &str,
        provider: SharedCredentialsProvider,
        cache: Option<SharedIdentityCache>,
    ) -> Result<Signer, String> {
        let cache = cache.unwrap_or_else(|| IdentityCache::lazy().build());
        let resolver = SharedIdentityResolver::new(provider);
        let scheme = AuthSchemeId::new("sigv4");
        let components = RuntimeComponents::builder("bedrock-gateway thin transport")
            .with_time_source(Some(SystemTimeSource::new()))
            .with_sleep_impl(Some(TokioSleep::new()))
            .with_identity_cache(Some(cache.clone()))
            .with_identity_resolver(scheme.clone(), resolver.clone())
            .with_auth_scheme_option_resolver(Some(StaticAuthSchemeOptionResolver::new(vec![
                scheme,
            ])))
            .with_auth_scheme(NoAuthScheme::new())
            .with_endpoint_resolver(Some(StaticUriEndpointResolver::uri("http://unused")))
            .with_retry_strategy(Some(NeverRetryStrategy::new()))
            .build()
            .map_err(|error| format!("the identity cache's runtime components: {error}"))?;
        let region = region.to_owned();
        let config_bag = ConfigBag::base();
        let signing_key = Mutex::new(None);
        let sigv4 = SigV4 { region, resolver, cache, components, config_bag, signing_key };
        Ok(Signer::SigV4(Box::new(sigv4)))
    }

    /// SigV4 with fixed keys (the simulator's).
    pub(crate) fn static_keys(region: &str, credentials: Credentials) -> Result<Signer, String> {
        Signer::sigv4(region, SharedCredentialsProvider::new(credentials), None)
    }

    /// A Bedrock API key.
    pub(crate) fn bearer(token: &str) -> Result<Signer, String> {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "AWS_BEARER_TOKEN_BEDROCK is not a valid header value".to_owned())?;
        value.set_sensitive(true);
        Ok(Signer::Bearer(value))
    }

    /// Adds the `Authorization` (and `X-Amz-Date`, `X-Amz-Security-Token`) headers to
    /// `request`, whose headers are all set.
    pub(crate) async fn sign(
        &self,
        request: &mut http::Request<Bytes>,
    ) -> Result<(), UpstreamError> {
        let sigv4 = match self {
            Signer::Bearer(value) => {
                request.headers_mut().insert(http::header::AUTHORIZATION, value.clone());
                return Ok(());
            }
            Signer::SigV4(sigv4) => sigv4,
        };
        let identity = sigv4
            .cache
            .resolve_cached_identity(sigv4.resolver.clone(), &sigv4.components, &sigv4.config_bag)
            .await
            .map_err(|error| {
                let text = bounded_message(&DisplayErrorContext(&*error).to_string());
                // As the SDK client fails: no credentials is the operator's configuration;
                // a chain that did not answer in time is like an unreachable Bedrock.
                if is_credentials_error(&*error) {
                    UpstreamError::Credentials(text)
                } else {
                    UpstreamError::Unreachable(text)
                }
            })?;
        let credentials = identity.data::<Credentials>().ok_or_else(|| {
            UpstreamError::Credentials("the credential chain gave no AWS credentials".into())
        })?;
        sigv4.sign_with(credentials, SystemTime::now(), request)
    }
}

impl SigV4 {
    /// Signs `request` as `aws-sigv4` does with [`SigningSettings::default()`] for
    /// `credentials` at `now` (`X-Amz-Date`, `X-Amz-Security-Token`, `Authorization`), with
    /// the day's signing key derived once per credential and day.
    pub(crate) fn sign_with(
        &self,
        credentials: &Credentials,
        now: SystemTime,
        request: &mut http::Request<Bytes>,
    ) -> Result<(), UpstreamError> {
        let amz_date = sigv4::format_amz_date(now);
        let date = &amz_date[..8];
        let headers = request.headers_mut();
        headers.insert(X_AMZ_DATE, header_text(&amz_date)?);
        match credentials.session_token() {
            Some(token) => {
                let mut value = header_text(token)?;
                value.set_sensitive(true);
                headers.insert(X_AMZ_SECURITY_TOKEN, value);
            }
            None => {
                headers.remove(X_AMZ_SECURITY_TOKEN);
            }
        }
        let mut names: Vec<&str> = request
            .headers()
            .keys()
            .map(http::HeaderName::as_str)
            .filter(|name| !UNSIGNED_HEADERS.contains(name))
            .collect();
        if request.headers().get(http::header::HOST).is_none() {
            names.push("host");
        }
        names.sort_unstable();
        names.dedup();
        let signed_headers = names.join(";");
        let authority = request.uri().authority().map(|authority| match authority.port_u16() {
            Some(port) if Some(port) != default_port(request.uri()) => authority.as_str(),
            _ => authority.host(),
        });
        let parts = sigv4::RequestParts {
            method: request.method().as_str(),
            path: request.uri().path(),
            query: request.uri().query(),
            headers: request.headers(),
            authority,
        };
        let payload_hash = sigv4::sha256_hex(request.body());
        let canonical = sigv4::canonical_request(parts, &names, &signed_headers, &payload_hash)
            .map_err(|name| UpstreamError::Sdk(format!("SigV4: no value for header {name}")))?;
        let scope = format!("{date}/{}/{SIGNING_NAME}/{}", self.region, sigv4::TERMINATOR);
        let string_to_sign = sigv4::string_to_sign(&amz_date, &scope, &canonical);
        let key = self.signing_key(credentials, date, now);
        let signature = v4::calculate_signature(key, string_to_sign.as_bytes());
        let mut authorization = header_text(&format!(
            "{} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            sigv4::ALGORITHM,
            credentials.access_key_id(),
        ))?;
        authorization.set_sensitive(true);
        request.headers_mut().insert(http::header::AUTHORIZATION, authorization);
        Ok(())
    }

    /// The signing key of `credentials` on `date` (`YYYYMMDD`, the day of `now`): derived
    /// (four HMACs) when the day or the credentials change, else the cached one.
    fn signing_key(&self, credentials: &Credentials, date: &str, now: SystemTime) -> [u8; 32] {
        // A holder cannot leave the entry half-written, so a poisoned lock is usable.
        let mut cached = self.signing_key.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = cached.as_ref()
            && entry.date == date
            && entry.credentials.access_key_id() == credentials.access_key_id()
            && entry.credentials.secret_access_key() == credentials.secret_access_key()
        {
            return entry.key;
        }
        let derived = v4::generate_signing_key(
            credentials.secret_access_key(),
            now,
            &self.region,
            SIGNING_NAME,
        );
        let mut key = [0_u8; 32];
        // An HMAC-SHA256 is 32 bytes, all of which are copied.
        for (byte, derived) in key.iter_mut().zip(derived.as_ref()) {
            *byte = *derived;
        }
        *cached = Some(CachedKey { date: date.to_owned(), credentials: credentials.clone(), key });
        key
    }
}

/// The headers `aws-sigv4`'s default settings leave unsigned: the signature itself, and
/// those a proxy may change.
const UNSIGNED_HEADERS: [&str; 4] =
    ["authorization", "user-agent", "x-amzn-trace-id", "transfer-encoding"];

const X_AMZ_DATE: http::HeaderName = http::HeaderName::from_static("x-amz-date");
const X_AMZ_SECURITY_TOKEN: http::HeaderName =
    http::HeaderName::from_static("x-amz-security-token");

/// The port `uri`'s scheme implies, which the signed `host` leaves out.
fn default_port(uri: &http::Uri) -> Option<u16> {
    match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    }
}

/// `text` as a header value; SigV4's parts are visible ASCII, a session token too.
fn header_text(text: &str) -> Result<HeaderValue, UpstreamError> {
    HeaderValue::from_str(text)
        .map_err(|_| UpstreamError::Sdk("a SigV4 header value is not visible ASCII".into()))
}

/// The day's signing key of one credential (an `Arc` of the identity's, which wipes its
/// secret when the last holder drops it).
struct CachedKey {
    date: String,
    credentials: Credentials,
    key: [u8; 32],
}

impl std::fmt::Debug for CachedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedKey").field("date", &self.date).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_smithy_runtime_api::client::identity::Identity;
    use proptest::prelude::*;

    use super::*;

    /// The request as the thin transport builds it, with `extra` headers.
    fn request(uri: &str, body: &[u8], extra: &[(String, String)]) -> http::Request<Bytes> {
        let uri: http::Uri = uri.parse().unwrap();
        let mut builder = http::Request::builder().method("POST").uri(uri.clone());
        if let Some(authority) = uri.authority() {
            builder = builder.header("host", authority.as_str());
        }
        builder = builder
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .header("user-agent", "bedrock-gateway/test");
        for (name, value) in extra {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder.body(Bytes::copy_from_slice(body)).unwrap()
    }

    /// `request` signed by `aws-sigv4` with the SDK's settings.
    fn reference(request: &mut http::Request<Bytes>, credentials: &Credentials, now: SystemTime) {
        let identity: Identity = credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(SIGNING_NAME)
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let uri = request.uri().to_string();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(request.body()),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(request);
    }

    fn ours(credentials: &Credentials) -> Box<SigV4> {
        let provider = SharedCredentialsProvider::new(credentials.clone());
        match Signer::sigv4("us-east-1", provider, None).unwrap() {
            Signer::SigV4(sigv4) => sigv4,
            Signer::Bearer(_) => unreachable!(),
        }
    }

    fn signed_headers(request: &http::Request<Bytes>) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        headers
    }

    fn assert_same(
        uri: &str,
        body: &[u8],
        extra: &[(String, String)],
        credentials: &Credentials,
        signer: &SigV4,
        now: SystemTime,
    ) {
        let mut expected = request(uri, body, extra);
        reference(&mut expected, credentials, now);
        let mut actual = request(uri, body, extra);
        signer.sign_with(credentials, now, &mut actual).unwrap();
        assert_eq!(signed_headers(&actual), signed_headers(&expected), "{uri}");
        assert!(actual.headers()["authorization"].is_sensitive());
    }

    const URIS: [&str; 6] = [
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.titan-text-express-v1/invoke",
        "https://bedrock-runtime.us-east-1.amazonaws.com:443/model/anthropic.claude-v2%3A1/invoke-with-response-stream",
        "http://127.0.0.1:4500/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc/invoke",
        "http://localhost:80/model/meta.llama3-8b-instruct-v1%3A0/invoke",
        "https://vpce-0abc.bedrock-runtime.us-east-1.vpce.amazonaws.com/model/us.amazon.nova-lite-v1%3A0/invoke",
        "http://127.0.0.1:4500/model/a/./b/../invoke?x=1&a=b%20c",
    ];

    #[test]
    fn the_own_signer_writes_what_aws_sigv4_writes_with_and_without_a_session_token() {
        let now = UNIX_EPOCH + Duration::from_secs(1_764_620_000);
        let plain = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        );
        let session = Credentials::new(
            "ASIAEXAMPLE",
            "secret/with+symbols",
            Some("FwoGZXIvYXdzEPT//////////wEaDEXAMPLETOKEN=".into()),
            None,
            "test",
        );
        for credentials in [&plain, &session] {
            let signer = ours(credentials);
            for uri in URIS {
                let extra = [
                    ("x-amzn-bedrock-trace".to_owned(), "ENABLED".to_owned()),
                    (
                        "x-amzn-bedrock-guardrailidentifier".to_owned(),
                        "  gr  two   spaces ".to_owned(),
                    ),
                    ("x-amzn-trace-id".to_owned(), "Root=1-abc".to_owned()),
                ];
                assert_same(uri, br#"{"inputText":"hi"}"#, &extra, credentials, &signer, now);
                assert_same(uri, b"", &[], credentials, &signer, now);
            }
        }
    }

    #[test]
    fn the_cached_signing_key_follows_the_day_and_the_credentials() {
        let first = Credentials::new("AKIDFIRST", "first-secret", None, None, "test");
        let rotated = Credentials::new("AKIDFIRST", "rotated-secret", None, None, "test");
        let signer = ours(&first);
        let day = UNIX_EPOCH + Duration::from_secs(1_764_633_599); // 23:59:59
        let next_day = day + Duration::from_secs(1);
        for (credentials, now) in
            [(&first, day), (&first, next_day), (&rotated, next_day), (&first, next_day)]
        {
            assert_same(URIS[0], b"{}", &[], credentials, &signer, now);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_request_is_signed_as_aws_sigv4_signs_it(
            model in "[a-zA-Z0-9.:/%-]{1,40}",
            body in proptest::collection::vec(any::<u8>(), 0..300),
            value in "[ -~]{0,30}",
            seconds in 0_u64..4_000_000_000,
            token in proptest::option::of("[A-Za-z0-9+/=]{1,60}"),
        ) {
            let encoded: String = model
                .bytes()
                .map(|byte| match byte {
                    b':' => "%3A".to_owned(),
                    b'/' => "%2F".to_owned(),
                    other => char::from(other).to_string(),
                })
                .collect();
            let uri = format!("https://bedrock-runtime.eu-west-1.amazonaws.com/model/{encoded}/invoke");
            let credentials = Credentials::new("AKIDPROP", "prop/secret+key", token, None, "test");
            let signer = ours(&credentials);
            let now = UNIX_EPOCH + Duration::from_secs(seconds);
            let extra = [("x-amzn-bedrock-requestmetadata".to_owned(), value.trim().to_owned())];
            assert_same(&uri, &body, &extra, &credentials, &signer, now);
        }
    }
}
