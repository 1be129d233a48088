//! Where the thin transport sends a region's calls, and the path of each operation.
//!
//! The endpoint is resolved once per region, when the transport is built, by the AWS SDK's
//! own endpoint rules for Bedrock Runtime (`aws_sdk_bedrockruntime::config::endpoint`):
//! `https://bedrock-runtime.{region}.amazonaws.com` and the other partitions' domains,
//! `bedrock-runtime-fips.{region}…` with FIPS, the dual-stack domains, and a custom
//! endpoint (a VPC endpoint, the simulator) used as it is, its path before the
//! operation's. So the thin transport calls what the SDK client would call, and refuses
//! what it would refuse (FIPS with a custom endpoint).
//!
//! The model id goes into the path as the SDK puts it there (`aws_smithy_http::label`,
//! a non-greedy label: `:` and `/` percent-encoded), so that the path, and the
//! canonical request signed over it, are the SDK's byte for byte.

use aws_sdk_bedrockruntime::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_smithy_http::label::{EncodingStrategy, fmt_string};
use http::HeaderValue;
use http::uri::{Authority, PathAndQuery, Scheme, Uri};

/// Bedrock's runtime endpoint for one region (or a custom one), ready to build each
/// request's URI from.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    scheme: Scheme,
    authority: Authority,
    /// The `Host` header: the authority without a default port, as hyper sends it and as
    /// SigV4 signs it.
    host: HeaderValue,
    /// The endpoint's own path without its trailing `/` ("" for Bedrock's).
    path_prefix: String,
    /// The endpoint as resolved, for logs.
    url: String,
}

/// The operations the thin transport carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    /// InvokeModel.
    Invoke,
    /// InvokeModelWithResponseStream.
    InvokeStream,
    /// CountTokens.
    CountTokens,
}

/// What decides a region's endpoint: the SDK's endpoint parameters.
#[derive(Debug, Clone, Default)]
pub(crate) struct EndpointParams<'a> {
    pub region: &'a str,
    pub use_fips: bool,
    pub use_dual_stack: bool,
    /// A custom endpoint (a VPC endpoint, the simulator), used as it is.
    pub endpoint_url: Option<&'a str>,
}

impl Endpoint {
    /// The endpoint the SDK's rules give for `params`.
    pub(crate) async fn resolve(params: &EndpointParams<'_>) -> Result<Endpoint, String> {
        let sdk_params = Params::builder()
            .region(params.region)
            .use_fips(params.use_fips)
            .use_dual_stack(params.use_dual_stack)
            .set_endpoint(params.endpoint_url.map(str::to_owned))
            .build()
            .map_err(|error| format!("Bedrock's endpoint parameters: {error}"))?;
        let resolved = DefaultResolver::new()
            .resolve_endpoint(&sdk_params)
            .await
            .map_err(|error| format!("Bedrock's endpoint for {:?}: {error}", params.region))?;
        Endpoint::parse(resolved.url())
    }

    /// `url` (scheme, host, optional port and path) as an endpoint.
    pub(crate) fn parse(url: &str) -> Result<Endpoint, String> {
        let uri: Uri = url.parse().map_err(|error| format!("endpoint {url:?}: {error}"))?;
        let parts = uri.into_parts();
        let scheme = parts.scheme.ok_or_else(|| format!("endpoint {url:?}: no scheme"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(format!("endpoint {url:?}: not http or https"));
        }
        let authority = parts.authority.ok_or_else(|| format!("endpoint {url:?}: no host"))?;
        let default_port = if scheme == Scheme::HTTPS { 443 } else { 80 };
        let host = match authority.port_u16() {
            Some(port) if port == default_port => authority.host(),
            _ => authority.as_str(),
        };
        let host = HeaderValue::from_str(host)
            .map_err(|error| format!("endpoint {url:?}: host {host:?}: {error}"))?;
        // The SDK ignores an endpoint's query, and puts the operation's path after the
        // endpoint's own, one `/` between them.
        let path = parts.path_and_query.as_ref().map_or("", PathAndQuery::path);
        let path_prefix = path.strip_suffix('/').unwrap_or(path).to_owned();
        Ok(Endpoint { scheme, authority, host, path_prefix, url: url.to_owned() })
    }

    /// The URI of `operation` on `model_id`.
    pub(crate) fn uri(&self, model_id: &str, operation: Operation) -> Result<Uri, String> {
        let model_id = fmt_string(model_id, EncodingStrategy::Default);
        if model_id.is_empty() {
            return Err("model_id cannot be empty or unset".to_owned());
        }
        let action = match operation {
            Operation::Invoke => "invoke",
            Operation::InvokeStream => "invoke-with-response-stream",
            Operation::CountTokens => "count-tokens",
        };
        let path = format!("{}/model/{model_id}/{action}", self.path_prefix);
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|error| format!("the request's URI: {error}"))
    }

    /// Whether the environment's proxy settings (as the SDK's client reads them) send
    /// calls to this endpoint through a proxy.
    pub(crate) fn is_proxied(&self, proxies: &hyper_util::client::proxy::matcher::Matcher) -> bool {
        let origin = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query("/")
            .build();
        origin.is_ok_and(|origin| proxies.intercept(&origin).is_some())
    }

    /// The `Host` header of every request to this endpoint.
    pub(crate) fn host(&self) -> &HeaderValue {
        &self.host
    }

    /// The endpoint as resolved.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn resolved(params: EndpointParams<'_>) -> Result<String, String> {
        Endpoint::resolve(&params).await.map(|endpoint| endpoint.url().to_owned())
    }

    #[tokio::test]
    async fn regions_fips_dual_stack_and_partitions_resolve_as_the_sdk_does() {
        let region = |region| EndpointParams { region, ..EndpointParams::default() };
        let cases = [
            (region("us-east-1"), "https://bedrock-runtime.us-east-1.amazonaws.com"),
            (region("eu-west-3"), "https://bedrock-runtime.eu-west-3.amazonaws.com"),
            (
                EndpointParams { use_fips: true, ..region("us-east-1") },
                "https://bedrock-runtime-fips.us-east-1.amazonaws.com",
            ),
            (
                EndpointParams { use_fips: true, ..region("us-gov-west-1") },
                "https://bedrock-runtime-fips.us-gov-west-1.amazonaws.com",
            ),
            (
                EndpointParams { use_dual_stack: true, ..region("us-east-1") },
                "https://bedrock-runtime.us-east-1.api.aws",
            ),
            (region("cn-north-1"), "https://bedrock-runtime.cn-north-1.amazonaws.com.cn"),
            (
                EndpointParams {
                    endpoint_url: Some(
                        "https://vpce-0a1b.bedrock-runtime.us-east-1.vpce.amazonaws.com",
                    ),
                    ..region("us-east-1")
                },
                "https://vpce-0a1b.bedrock-runtime.us-east-1.vpce.amazonaws.com",
            ),
        ];
        for (params, expected) in cases {
            assert_eq!(resolved(params.clone()).await.as_deref(), Ok(expected), "{params:?}");
        }
        let fips_and_custom = EndpointParams {
            use_fips: true,
            endpoint_url: Some("http://127.0.0.1:1"),
            ..region("us-east-1")
        };
        let error = resolved(fips_and_custom).await.unwrap_err();
        assert!(error.contains("FIPS and custom endpoint are not supported"), "{error}");
    }

    #[test]
    fn model_ids_are_encoded_as_one_path_segment_after_the_endpoints_path() {
        let endpoint = Endpoint::parse("http://127.0.0.1:8080").unwrap();
        let uri = |id| endpoint.uri(id, Operation::Invoke).unwrap().to_string();
        assert_eq!(
            uri("anthropic.claude-v2:1"),
            "http://127.0.0.1:8080/model/anthropic.claude-v2%3A1/invoke"
        );
        let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.x:0";
        assert_eq!(
            uri(arn),
            "http://127.0.0.1:8080/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3A\
             inference-profile%2Fus.anthropic.x%3A0/invoke"
        );
        assert_eq!(uri("a b+c~d_e.f-g"), "http://127.0.0.1:8080/model/a%20b%2Bc~d_e.f-g/invoke");
        assert!(endpoint.uri("", Operation::Invoke).is_err());
        let stream = endpoint.uri("amazon.titan-text-express-v1", Operation::InvokeStream);
        assert_eq!(
            stream.unwrap().path(),
            "/model/amazon.titan-text-express-v1/invoke-with-response-stream"
        );
        let count =
            endpoint.uri("anthropic.claude-3-5-haiku-20241022-v1:0", Operation::CountTokens);
        assert_eq!(
            count.unwrap().path(),
            "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/count-tokens"
        );
        let prefixed = Endpoint::parse("https://proxy.example/bedrock/?ignored=1").unwrap();
        assert_eq!(
            prefixed.uri("m", Operation::Invoke).unwrap().to_string(),
            "https://proxy.example/bedrock/model/m/invoke"
        );
    }

    #[test]
    fn an_endpoint_is_proxied_when_the_proxy_settings_say_so() {
        use hyper_util::client::proxy::matcher::Matcher;
        let endpoint = Endpoint::parse("https://bedrock-runtime.us-east-1.amazonaws.com").unwrap();
        let local = Endpoint::parse("http://127.0.0.1:9000").unwrap();
        let proxies = Matcher::builder().https("http://proxy.internal:3128").build();
        assert!(endpoint.is_proxied(&proxies));
        assert!(!local.is_proxied(&proxies), "an HTTPS proxy only");
        let bypass = Matcher::builder()
            .all("http://proxy.internal:3128")
            .no("127.0.0.1,.amazonaws.com")
            .build();
        assert!(!endpoint.is_proxied(&bypass) && !local.is_proxied(&bypass));
        assert!(!endpoint.is_proxied(&Matcher::builder().build()));
    }

    #[test]
    fn the_host_header_drops_a_default_port() {
        let host = |url| Endpoint::parse(url).unwrap().host().to_str().unwrap().to_owned();
        assert_eq!(
            host("https://bedrock-runtime.us-east-1.amazonaws.com:443"),
            "bedrock-runtime.us-east-1.amazonaws.com"
        );
        assert_eq!(host("http://localhost:80"), "localhost");
        assert_eq!(host("http://127.0.0.1:9000"), "127.0.0.1:9000");
        assert_eq!(host("https://h:80"), "h:80");
        assert!(Endpoint::parse("ftp://h").is_err());
        assert!(Endpoint::parse("/just/a/path").is_err());
    }
}
