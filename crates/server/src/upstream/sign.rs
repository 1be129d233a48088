//! How the thin transport authenticates its requests, as the SDK client does:
//!
//! - **SigV4** (`aws-sigv4`), service `bedrock`, with the SDK's signing settings (the
//!   path percent-encoded twice in the canonical request, normalised, no
//!   `x-amz-content-sha256`, the session token signed), every header of the request
//!   signed but `user-agent`. The credentials come from aws-config's chain (environment,
//!   profile and SSO, web identity for IRSA, the container endpoint for EKS Pod Identity
//!   and ECS, instance metadata) through the shared config's identity cache: loaded once,
//!   reused, refreshed before they expire, as for the SDK client.
//! - **A Bedrock API key** (`AWS_BEARER_TOKEN_BEDROCK`, read by aws-config's service
//!   config as the SDK reads it): `Authorization: Bearer …`, no signature.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
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
        Ok(Signer::SigV4(Box::new(SigV4 { region, resolver, cache, components, config_bag })))
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
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&sigv4.region)
            .name(SIGNING_NAME)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|error| UpstreamError::Sdk(format!("SigV4 parameters: {error}")))?
            .into();
        let uri = request.uri().to_string();
        let mut headers = Vec::with_capacity(request.headers().len());
        for (name, value) in request.headers() {
            let value = value.to_str().map_err(|_| {
                UpstreamError::Sdk(format!("the value of header {name} is not visible ASCII"))
            })?;
            headers.push((name.as_str(), value));
        }
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(request.body()),
        )
        .map_err(|error| UpstreamError::Sdk(format!("SigV4 request: {error}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|error| UpstreamError::Sdk(format!("SigV4 signing: {error}")))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}
