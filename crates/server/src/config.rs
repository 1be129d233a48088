//! The gateway's configuration: the TOML file shape (`Raw*`, unknown keys denied)
//! and the validated [`Config`] it becomes once, at start-up.
//!
//! This is the only file that reads files or the environment.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use translator::{FamilyRef, Kind, Param};

use crate::limits::ScopeLimits;

/// Where the gateway listens when neither the file nor `--listen` says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Where the admin listener (`/metrics`, health, reload) listens by default: loopback.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";

/// A validated configuration: every alias resolved to its targets, each target to a
/// model id and a family.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// The admin listener: `/metrics`, `/healthz`, `/readyz`, `POST /-/reload`.
    pub admin_listen: SocketAddr,
    /// Logs and metrics.
    pub telemetry: TelemetryConfig,
    /// How often the config file is checked for changes and reloaded (`None`: only on
    /// SIGHUP or `POST /-/reload`).
    pub reload_poll: Option<Duration>,
    /// After a shutdown signal, how long to keep serving with `/readyz` at 503 so that
    /// load balancers stop sending traffic before the listener closes.
    pub shutdown_delay: Duration,
    /// The API listener: timeouts, caps, body limits, the drain, TLS, CORS.
    pub http: HttpConfig,
    pub upstream: UpstreamConfig,
    /// Where admission counters live and how requests wait for quota.
    pub limits: LimitsConfig,
    /// API keys callers must present; empty means the gateway is open.
    pub api_keys: Vec<ApiKey>,
    /// Upstream targets by name: those of `[targets]` and one per `model_id` alias.
    pub targets: BTreeMap<String, Arc<Target>>,
    /// Model aliases, sorted by name.
    pub models: BTreeMap<String, ModelRoute>,
    /// What is valid but worth an operator's look (an alias that routes to a legacy
    /// model): `check-config` prints them, the gateway logs them at start.
    pub warnings: Vec<String>,
    /// `[image_fetch]`: the origins images named by URL may be fetched from (none by
    /// default), and the bounds of a fetch (`image_fetch.rs`).
    pub image_fetch: crate::image_fetch::ImageFetchConfig,
    /// `[responses]`: the Responses API's bounded in-memory store, off by default
    /// (`routes/responses_store.rs`).
    pub responses: crate::routes::responses_store::StoreConfig,
}

/// Logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// A `tracing` filter (`info`, `warn,server=debug`); `RUST_LOG` wins over it.
    pub log_level: String,
    /// Prompts and answers in the logs, at `debug` only. Off by default.
    pub log_prompts: bool,
    /// Whether metrics are recorded (off: `/metrics` carries only build and process info).
    pub metrics: bool,
}

/// `log_format`: one line per event, for people or for log pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

impl Default for TelemetryConfig {
    fn default() -> TelemetryConfig {
        TelemetryConfig {
            log_format: LogFormat::Human,
            log_level: "info".to_owned(),
            log_prompts: false,
            metrics: true,
        }
    }
}

/// The API listener's limits on its callers, its drain at shutdown, TLS and CORS. Only a
/// restart changes them.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// A request's head (request line and headers) must arrive within this: from the
    /// connection's start (the TLS handshake included), or from the first byte of the
    /// next request on a kept-alive connection. Else the connection is closed.
    pub header_read_timeout: Duration,
    /// A request's whole body must arrive within this, from the end of its head (a
    /// total, not a gap between chunks: a body that trickles in cannot hold a request
    /// longer). Else 408.
    pub body_read_timeout: Duration,
    /// How long a kept-alive connection may stay idle between two requests; zero: no
    /// keep-alive (each connection closes after one answer).
    pub keep_alive_timeout: Duration,
    /// Connections open at once; over it, a few more are answered 503 and the rest wait
    /// in the kernel's backlog.
    pub max_connections: usize,
    /// Requests in flight at once (a stream until its last event); over it, 503.
    pub max_in_flight: usize,
    /// The largest body on the gateway's own and the OpenAI-compatible routes. The
    /// Bedrock passthrough takes Bedrock's own limit, [`BEDROCK_MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// After the listener closes at shutdown, how long requests and streams in flight
    /// may take to finish before open streams are ended with an error event.
    pub drain_timeout: Duration,
    /// TLS on the API listener; `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// The origins browsers may call the API from (`*`: any); empty: no CORS.
    pub cors_allowed_origins: Vec<String>,
    /// The threads that serve the API listener's connections, each with a single-threaded
    /// runtime of its own (`runtime.rs`); `None`: one per CPU the process may use.
    pub workers: Option<usize>,
}

/// The PEM files of the API listener's certificate chain and private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Bedrock's own limit on an InvokeModel body, which the passthrough keeps.
pub const BEDROCK_MAX_BODY_BYTES: usize = 25_000_000;
/// The API listener's defaults (README.md's configuration reference explains each).
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_BODY_READ_TIMEOUT_MS: u64 = 30_000;
/// Longer than the idle timeout of the load balancers in front (AWS ALB: 60 s), so that
/// they, not the gateway, close idle connections and never reuse one just closed.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT_MS: u64 = 75_000;
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_MAX_IN_FLIGHT: usize = 512;
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
pub const DEFAULT_SHUTDOWN_DELAY_MS: u64 = 5_000;
pub const DEFAULT_DRAIN_TIMEOUT_MS: u64 = 30_000;

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            header_read_timeout: Duration::from_millis(DEFAULT_HEADER_READ_TIMEOUT_MS),
            body_read_timeout: Duration::from_millis(DEFAULT_BODY_READ_TIMEOUT_MS),
            keep_alive_timeout: Duration::from_millis(DEFAULT_KEEP_ALIVE_TIMEOUT_MS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            drain_timeout: Duration::from_millis(DEFAULT_DRAIN_TIMEOUT_MS),
            tls: None,
            cors_allowed_origins: Vec::new(),
            workers: None,
        }
    }
}

/// Which Bedrock the gateway calls, always through the AWS SDK, and the one retry
/// policy of the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    pub target: UpstreamTarget,
    /// Which client carries InvokeModel and InvokeModelWithResponseStream.
    pub transport: Transport,
    /// Longest wait for Bedrock's whole answer in one non-streamed attempt, and the
    /// longest a stream may last from its attempt's start. Long: AWS advises read
    /// timeouts of up to an hour for long generations.
    pub request_timeout: Duration,
    /// Longest wait for a stream's first chunk in one attempt.
    pub first_byte_timeout: Duration,
    /// Longest wait for a connection to Bedrock (TCP and TLS), the AWS SDK's connect
    /// timeout.
    pub connect_timeout: Duration,
    /// Longest silence between two chunks of a started stream: then it ends with a
    /// timeout error.
    pub stream_idle_timeout: Duration,
    /// The whole budget of one call before its first byte: queueing, every attempt and
    /// every backoff.
    pub deadline: Duration,
    /// Attempts per target, retries included (the AWS SDK's own retries are off).
    pub max_attempts: u32,
    /// Backoff before retry `n` is uniform in `[0, min(cap, base × 2^(n-1))]` (full jitter).
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Retries may be at most this fraction of the requests of the last 10 s ...
    pub retry_budget_ratio: f64,
    /// ... plus this many per second (the floor), per target.
    pub retry_budget_min_per_sec: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamTarget {
    /// The Bedrock simulator: embedded (started in-process on a loopback port) when
    /// `endpoint_url` is `None`, else one already running there. The simulator verifies
    /// every signature: the gateway signs with `credentials`, the simulator's test key
    /// unless the config names another.
    Simulator { endpoint_url: Option<String>, credentials: SimulatorCredentials },
    /// Real Bedrock with the default AWS credential chain. `region` and `endpoint_url`
    /// override the SDK's defaults (a VPC endpoint, say); `use_fips` overrides
    /// `AWS_USE_FIPS_ENDPOINT` and the profile's `use_fips_endpoint`.
    Bedrock { region: Option<String>, endpoint_url: Option<String>, use_fips: Option<bool> },
}

/// The static keys the gateway signs its calls to a simulator with
/// (`upstream.access_key_id`, `upstream.secret_access_key`, kind = "simulator" only): test
/// credentials, never AWS's. The default is the simulator's built-in test key, which an
/// embedded simulator or `bedrock-sim` without `--access-key` accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct SimulatorCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Default for SimulatorCredentials {
    fn default() -> SimulatorCredentials {
        SimulatorCredentials {
            access_key_id: bedrock_sim::TEST_ACCESS_KEY_ID.to_owned(),
            secret_access_key: bedrock_sim::TEST_SECRET_ACCESS_KEY.to_owned(),
        }
    }
}

impl std::fmt::Debug for SimulatorCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// `upstream.transport`: the client that calls Bedrock. Both sign with SigV4, take their
/// credentials, region and endpoint from the same AWS shared config, and answer with the
/// same [`crate::upstream::UpstreamError`]s (`tests/it/conformance.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The gateway's own client (`upstream/thin.rs`): hyper, `aws-sigv4`,
    /// `aws-smithy-eventstream`, the SDK's identity cache. The default.
    Thin,
    /// The `aws-sdk-bedrockruntime` client and its orchestrator: the reference, and the
    /// fallback.
    Sdk,
}

/// `[limits]`: the backend of the counters and the per-target waiting queue.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    pub backend: LimitsBackend,
    /// Queue defaults for targets that set none.
    pub max_queue_len: usize,
    pub max_queue_wait: Duration,
    /// How long an unsettled reservation lives (a crashed replica's, say).
    pub reservation_ttl: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LimitsBackend {
    /// Counters in this process.
    Local,
    /// Counters in Redis, shared by every replica.
    Redis(RedisConfig),
}

#[derive(Clone, PartialEq)]
pub struct RedisConfig {
    pub url: String,
    /// Deadline of each Redis command.
    pub command_timeout: Duration,
    /// What happens while Redis cannot be reached.
    pub failure_mode: FailureMode,
    /// With `fail_open`, each replica admits quota ÷ this many locally.
    pub expected_replicas: u32,
    /// Prefix of every key (before the `{scope}` hash tag).
    pub key_prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Admit with local counters at quota ÷ `expected_replicas`.
    FailOpen,
    /// Refuse with 503 until Redis answers again.
    FailClosed,
}

/// How a target is served by Bedrock, from its model id (or `mode`): a bounded label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetMode {
    OnDemand,
    CrossRegion,
    Provisioned,
}

/// One upstream target: a model id in a region, in a mode, with its own quota. Aliases
/// name targets; two aliases on one target share its quota, as they share Bedrock's.
#[derive(Debug, Clone)]
pub struct Target {
    /// From `[targets.<name>]`, or the alias for a `model_id` alias: a bounded label.
    pub name: String,
    pub model_id: String,
    /// `model_id` as a metric label (an ARN's account id masked).
    pub model_label: String,
    /// Its metric handles, resolved on first use.
    pub handles: crate::metrics::TargetHandles,
    pub family: FamilyRef,
    /// The AWS region called; `None`: the upstream's.
    pub region: Option<String>,
    pub mode: TargetMode,
    pub quota: TargetQuota,
}

/// A target's quota (Bedrock's, as the account has it) and its waiting queue.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetQuota {
    pub tokens_per_minute: Option<u64>,
    pub tokens_per_day: Option<u64>,
    pub requests_per_minute: Option<u64>,
    pub max_concurrency: Option<u32>,
    /// How many quota tokens one output token costs (5 for recent Claude models).
    pub output_burndown: f64,
    pub max_queue_len: usize,
    pub max_queue_wait: Duration,
}

/// One alias: what callers name in `"model"`, and the ordered targets it routes to.
#[derive(Clone)]
pub struct ModelRoute {
    pub alias: String,
    /// The first target's model id and family (what `GET /v1/models` shows).
    pub model_id: String,
    pub family: FamilyRef,
    /// Tried in order: the first, then each fallback.
    pub targets: Vec<Arc<Target>>,
    pub defaults: Defaults,
    /// Service tier, latency, guardrail and request metadata (`[models.<alias>.bedrock]`).
    pub options: Arc<crate::options::BedrockOptions>,
}

/// One API key, known by the SHA-256 digest of its text: the key itself is never in
/// the file. `name` identifies the caller in logs and metrics.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub name: String,
    pub sha256: [u8; 32],
    /// The aliases it may use; `None`: every alias.
    pub models: Option<BTreeSet<String>>,
    /// Its own budget: requests per minute (governor), tokens reserved and settled like
    /// route quotas (not weighted by burndown), concurrency.
    pub limits: ScopeLimits,
}

/// Parameters applied when the caller's request leaves them out.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u32>,
    pub stop: Option<Vec<String>>,
    /// Prompt caching for requests that do not say (Claude 3.5+ and Nova).
    pub cache_prompt: Option<bool>,
}

/// Every problem found in a configuration, reported together.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration {source_name}:\n  - {}", problems.join("\n  - "))]
pub struct ConfigError {
    pub source_name: String,
    pub problems: Vec<String>,
}

impl std::fmt::Debug for ModelRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelRoute")
            .field("alias", &self.alias)
            .field("targets", &self.targets.iter().map(|t| &t.name).collect::<Vec<_>>())
            .field("defaults", &self.defaults)
            .finish()
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: show its host part only.
        let host = self.url.rsplit('@').next().unwrap_or_default();
        f.debug_struct("RedisConfig")
            .field("url", &format_args!("…@{host}"))
            .field("command_timeout", &self.command_timeout)
            .field("failure_mode", &self.failure_mode)
            .field("expected_replicas", &self.expected_replicas)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("admin_listen", &self.admin_listen)
            .field("telemetry", &self.telemetry)
            .field("reload_poll", &self.reload_poll)
            .field("shutdown_delay", &self.shutdown_delay)
            .field("http", &self.http)
            .field("upstream", &self.upstream)
            .field("limits", &self.limits)
            .field("api_keys", &self.api_keys.iter().map(|k| &k.name).collect::<Vec<_>>())
            .field("targets", &self.targets.keys().collect::<Vec<_>>())
            .field("models", &self.models)
            .finish()
    }
}

/// The file as written. Unknown keys anywhere are an error naming the key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    admin_listen: Option<String>,
    log_format: Option<String>,
    log_level: Option<String>,
    log_prompts: Option<bool>,
    metrics: Option<bool>,
    reload_poll_ms: Option<u64>,
    shutdown_delay_ms: Option<u64>,
    drain_timeout_ms: Option<u64>,
    header_read_timeout_ms: Option<u64>,
    body_read_timeout_ms: Option<u64>,
    keep_alive_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    max_in_flight: Option<usize>,
    max_body_bytes: Option<usize>,
    tls_cert_file: Option<String>,
    tls_key_file: Option<String>,
    cors_allowed_origins: Option<Vec<String>>,
    workers: Option<usize>,
    #[serde(default)]
    upstream: RawUpstream,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    targets: BTreeMap<String, RawTarget>,
    #[serde(default)]
    models: BTreeMap<String, RawModel>,
    #[serde(default)]
    image_fetch: RawImageFetch,
    #[serde(default)]
    responses: RawResponses,
}

/// `[responses]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResponses {
    store_max_entries: Option<usize>,
    store_max_bytes: Option<usize>,
    store_ttl_secs: Option<u64>,
}

impl RawResponses {
    fn read(self, problems: &mut Vec<String>) -> crate::routes::responses_store::StoreConfig {
        use crate::routes::responses_store::{
            MAX_MAX_BYTES, MAX_MAX_ENTRIES, MAX_TTL, StoreConfig,
        };
        let defaults = StoreConfig::default();
        let max_entries = self.store_max_entries.unwrap_or(defaults.max_entries);
        if max_entries > MAX_MAX_ENTRIES {
            problems.push(format!(
                "`responses.store_max_entries`: {max_entries} is not in 0..={MAX_MAX_ENTRIES}"
            ));
        }
        let max_bytes = self.store_max_bytes.unwrap_or(defaults.max_bytes);
        if !(1..=MAX_MAX_BYTES).contains(&max_bytes) {
            problems.push(format!(
                "`responses.store_max_bytes`: {max_bytes} is not in 1..={MAX_MAX_BYTES}"
            ));
        }
        let ttl = self.store_ttl_secs.map_or(defaults.ttl, Duration::from_secs);
        if ttl.is_zero() || ttl > MAX_TTL {
            problems
                .push(format!("`responses.store_ttl_secs`: must be in 1..={}", MAX_TTL.as_secs()));
        }
        StoreConfig { max_entries, max_bytes, ttl }
    }
}

/// `[image_fetch]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImageFetch {
    #[serde(default)]
    allow: Vec<String>,
    max_bytes: Option<usize>,
    timeout_ms: Option<u64>,
}

impl RawImageFetch {
    fn read(self, problems: &mut Vec<String>) -> crate::image_fetch::ImageFetchConfig {
        use crate::image_fetch::{ImageFetchConfig, MAX_MAX_BYTES};
        let defaults = ImageFetchConfig::default();
        for prefix in &self.allow {
            if let Some(problem) = ImageFetchConfig::check_prefix(prefix) {
                problems.push(format!("`image_fetch.allow`: {problem}"));
            }
        }
        let max_bytes = self.max_bytes.unwrap_or(defaults.max_bytes);
        if !(1..=MAX_MAX_BYTES).contains(&max_bytes) {
            problems.push(format!(
                "`image_fetch.max_bytes`: {max_bytes} is not in 1..={MAX_MAX_BYTES}"
            ));
        }
        let timeout = self.timeout_ms.map_or(defaults.timeout, Duration::from_millis);
        if timeout.is_zero() || timeout > Duration::from_secs(60) {
            problems.push("`image_fetch.timeout_ms`: must be in 1..=60000".to_owned());
        }
        ImageFetchConfig { allow: self.allow, max_bytes, timeout }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    #[serde(default)]
    keys: Vec<RawApiKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    name: String,
    sha256: Option<String>,
    /// The name of an environment variable holding the digest (a Kubernetes Secret).
    sha256_env: Option<String>,
    models: Option<Vec<String>>,
    requests_per_minute: Option<u64>,
    tokens_per_minute: Option<u64>,
    tokens_per_day: Option<u64>,
    max_concurrency: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    kind: Option<String>,
    transport: Option<String>,
    region: Option<String>,
    endpoint_url: Option<String>,
    use_fips: Option<bool>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    request_timeout_ms: Option<u64>,
    first_byte_timeout_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
    stream_idle_timeout_ms: Option<u64>,
    deadline_ms: Option<u64>,
    max_attempts: Option<u32>,
    retry_base_ms: Option<u64>,
    retry_cap_ms: Option<u64>,
    retry_budget_ratio: Option<f64>,
    retry_budget_min_per_sec: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    backend: Option<String>,
    redis_url: Option<String>,
    redis_timeout_ms: Option<u64>,
    redis_failure_mode: Option<String>,
    expected_replicas: Option<u32>,
    key_prefix: Option<String>,
    max_queue_len: Option<usize>,
    max_queue_wait_ms: Option<u64>,
    reservation_ttl_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    model_id: String,
    family: Option<String>,
    region: Option<String>,
    mode: Option<String>,
    tokens_per_minute: Option<u64>,
    tokens_per_day: Option<u64>,
    requests_per_minute: Option<u64>,
    max_concurrency: Option<u32>,
    output_burndown: Option<f64>,
    max_queue_len: Option<usize>,
    max_queue_wait_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    /// One target, named after the alias (the short form).
    model_id: Option<String>,
    family: Option<String>,
    /// Named `[targets]`, in order: the first, then the fallbacks.
    targets: Option<Vec<String>>,
    #[serde(default)]
    defaults: Defaults,
    /// Bedrock's per-request options for this alias.
    bedrock: Option<crate::options::RawBedrockOptions>,
}

impl Config {
    /// Parses and validates a configuration file's text. Pure: no I/O; a key's
    /// `sha256_env` finds no variable.
    pub fn parse(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        Config::parse_with_env(text, source_name, &|_| None)
    }

    /// [`Config::parse`], reading `sha256_env` variables through `env`.
    pub fn parse_with_env(
        text: &str,
        source_name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
            source_name: source_name.to_owned(),
            problems: vec![e.to_string().trim_end().replace('\n', "\n    ")],
        })?;
        let mut problems = Vec::new();
        // Every unknown key and wrong type, each by its path; then, unless a value had a
        // wrong type (the file would be checked without it), every other problem.
        let config = deserialize_all::<RawConfig>(toml::Value::Table(table), &mut problems)
            .and_then(|raw| Config::from_raw(raw, env, &mut problems));
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigError { source_name: source_name.to_owned(), problems }),
        }
    }

    /// Reads and validates the file at `path`, with the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_text(path).map(|(config, _)| config)
    }

    /// [`Config::load`], and the file's text (what a reload compares against).
    pub fn load_text(path: &Path) -> Result<(Config, String), ConfigError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: source_name.clone(),
            problems: vec![format!("cannot read the file: {e}")],
        })?;
        let config = Config::parse_with_env(&text, &source_name, &process_env)?;
        Ok((config, text))
    }

    fn from_raw(
        raw: RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
        problems: &mut Vec<String>,
    ) -> Option<Config> {
        let listen = socket_address("listen", raw.listen.as_deref(), DEFAULT_LISTEN, problems);
        let admin_listen = socket_address(
            "admin_listen",
            raw.admin_listen.as_deref(),
            DEFAULT_ADMIN_LISTEN,
            problems,
        );
        let telemetry = TelemetryConfig::from_raw(&raw, problems);
        let http = HttpConfig::from_raw(&raw, problems);
        let reload_poll = match raw.reload_poll_ms {
            None | Some(0) => None,
            Some(ms) if !(100..=MAX_RELOAD_POLL_MS).contains(&ms) => {
                problems.push(format!(
                    "`reload_poll_ms`: {ms} is not in 100..={MAX_RELOAD_POLL_MS} (or 0: off)"
                ));
                None
            }
            Some(ms) => Some(Duration::from_millis(ms)),
        };
        let upstream = UpstreamConfig::from_raw(raw.upstream, problems);
        let limits = LimitsConfig::from_raw(raw.limits, problems);
        let image_fetch = raw.image_fetch.read(problems);
        let responses = raw.responses.read(problems);
        let queue_defaults = limits.as_ref().map_or(
            (DEFAULT_MAX_QUEUE_LEN, Duration::from_millis(DEFAULT_MAX_QUEUE_WAIT_MS)),
            |l| (l.max_queue_len, l.max_queue_wait),
        );
        let mut targets = BTreeMap::new();
        for (name, raw_target) in raw.targets {
            let key = format!("targets.{name}");
            check_name(&key, "a name", &name, problems);
            if let Some(target) =
                Target::from_raw(&key, &name, raw_target, queue_defaults, problems)
            {
                targets.insert(name, Arc::new(target));
            }
        }
        let mut models = BTreeMap::new();
        if raw.models.is_empty() {
            problems.push("`models`: at least one model alias is needed".to_owned());
        }
        // The targets some alias names, valid or not (an alias with problems of its own
        // does not make its targets unnamed as well).
        let named: BTreeSet<String> =
            raw.models.values().filter_map(|m| m.targets.clone()).flatten().collect();
        let raw_target_names: BTreeSet<String> = targets.keys().cloned().collect();
        for (alias, raw_model) in raw.models {
            if let Some(route) =
                ModelRoute::from_raw(&alias, raw_model, &mut targets, queue_defaults, problems)
            {
                models.insert(alias, route);
            }
        }
        for name in raw_target_names.iter().filter(|name| !named.contains(name.as_str())) {
            problems.push(format!("`targets.{name}`: no alias names this target"));
        }
        let shutdown_delay =
            Duration::from_millis(raw.shutdown_delay_ms.unwrap_or(DEFAULT_SHUTDOWN_DELAY_MS));
        if shutdown_delay > Duration::from_secs(300) {
            problems.push("`shutdown_delay_ms`: at most 300000 (five minutes)".to_owned());
        }
        let api_keys = raw
            .auth
            .keys
            .into_iter()
            .enumerate()
            .filter_map(|(i, key)| ApiKey::from_raw(i, key, &models, env, problems))
            .collect::<Vec<_>>();
        let mut names: Vec<&str> = api_keys.iter().map(|k| k.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|pair| pair[0] == pair[1]) {
            problems.push("`auth.keys`: key names must be unique".to_owned());
        }
        let mut warnings = Vec::new();
        for route in models.values() {
            for target in &route.targets {
                if let Some(note) = translator::legacy_note(&target.model_id) {
                    warnings.push(format!(
                        "`models.{}`: target {:?} is {:?}: {note}",
                        route.alias, target.name, target.model_id
                    ));
                }
            }
        }
        Some(Config {
            warnings,
            listen: listen?,
            admin_listen: admin_listen?,
            telemetry,
            reload_poll,
            shutdown_delay,
            http,
            upstream: upstream?,
            limits: limits?,
            api_keys,
            targets,
            models,
            image_fetch,
            responses,
        })
    }
}

/// The most problems of the file's shape (unknown keys, wrong types) reported at once.
const MAX_SHAPE_PROBLEMS: usize = 100;

/// `value` as a `T`, with every unknown key (anywhere: each table, each `[[auth.keys]]`
/// entry, each model's `defaults` and `bedrock`) and every value of the wrong type in
/// `problems`, each named by its key's path, rather than only the first as serde's
/// `deny_unknown_fields` stops at. Each problem found is taken out of the file and it is
/// read again, until it reads. `None` if a value was of the wrong type or missing: the
/// rest of the file is not checked without it, as its absence could cause problems of
/// its own.
fn deserialize_all<T: serde::de::DeserializeOwned>(
    mut value: toml::Value,
    problems: &mut Vec<String>,
) -> Option<T> {
    let mut well_typed = true;
    let mut removed: Vec<Vec<PathPart>> = Vec::new();
    for _ in 0..MAX_SHAPE_PROBLEMS {
        let error = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(raw) => return well_typed.then_some(raw),
            Err(error) => error,
        };
        let mut path = PathPart::all(error.path());
        // The deserializer appends "in `path`" on a second line: the path is said first.
        let message = error.inner().to_string();
        let message = message.lines().next().unwrap_or_default();
        let shown = error.path().to_string();
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let expected = rest.split_once("`, ").map_or("", |(_, expected)| expected);
            problems.push(format!("`{shown}`: unknown key; {expected}"));
        } else if let Some(field) =
            message.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`'))
        {
            well_typed = false;
            let mut missing = path.clone();
            missing.push(PathPart::Key(field.to_owned()));
            // A key taken out for its wrong type is not missing as well.
            if !removed.contains(&missing) {
                let at = if shown == "." { field.to_owned() } else { format!("{shown}.{field}") };
                problems.push(format!("`{at}`: missing"));
            }
        } else {
            well_typed = false;
            let at = if shown == "." { "the file".to_owned() } else { format!("`{shown}`") };
            problems.push(format!("{at}: {message}"));
        }
        // An array element goes with its whole array: taking one out would shift the
        // paths of the others.
        while matches!(path.last(), Some(PathPart::Index(_))) {
            path.pop();
        }
        if path.is_empty() || !remove_at(&mut value, &path) {
            return None;
        }
        removed.push(path);
    }
    problems.push(format!(
        "more than {MAX_SHAPE_PROBLEMS} problems with the file's keys; fix these first"
    ));
    None
}

/// One step of a key's path in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PathPart {
    Key(String),
    /// An array element.
    Index(usize),
    /// A step serde could not name; nothing under it can be taken out.
    Unknown,
}

impl PathPart {
    fn all(path: &serde_path_to_error::Path) -> Vec<PathPart> {
        path.iter()
            .map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => PathPart::Key(key.clone()),
                serde_path_to_error::Segment::Seq { index } => PathPart::Index(*index),
                _ => PathPart::Unknown,
            })
            .collect()
    }
}

/// Takes the value at `path`, which ends with a key, out of `value`.
fn remove_at(value: &mut toml::Value, path: &[PathPart]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut table = value;
    for part in parents {
        let inner = match part {
            PathPart::Key(key) => table.get_mut(key.as_str()),
            PathPart::Index(index) => table.get_mut(*index),
            PathPart::Unknown => None,
        };
        match inner {
            Some(inner) => table = inner,
            None => return false,
        }
    }
    match (last, table) {
        (PathPart::Key(key), toml::Value::Table(table)) => table.remove(key).is_some(),
        _ => false,
    }
}

fn socket_address(
    key: &str,
    text: Option<&str>,
    default: &str,
    problems: &mut Vec<String>,
) -> Option<SocketAddr> {
    let text = text.unwrap_or(default);
    match text.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            problems.push(format!(
                "`{key}`: {text:?} is not a HOST:PORT socket address (e.g. {default:?})"
            ));
            None
        }
    }
}

impl TelemetryConfig {
    fn from_raw(raw: &RawConfig, problems: &mut Vec<String>) -> TelemetryConfig {
        let defaults = TelemetryConfig::default();
        let log_format = match raw.log_format.as_deref() {
            None | Some("human") => LogFormat::Human,
            Some("json") => LogFormat::Json,
            Some(other) => {
                problems.push(format!("`log_format`: {other:?} is not \"human\" or \"json\""));
                LogFormat::Human
            }
        };
        let log_level = raw.log_level.clone().unwrap_or(defaults.log_level);
        if let Err(error) = tracing_subscriber::EnvFilter::builder().parse(&log_level) {
            problems.push(format!("`log_level`: {log_level:?} is not a tracing filter: {error}"));
        }
        TelemetryConfig {
            log_format,
            log_level,
            log_prompts: raw.log_prompts.unwrap_or(defaults.log_prompts),
            metrics: raw.metrics.unwrap_or(defaults.metrics),
        }
    }
}

impl HttpConfig {
    fn from_raw(raw: &RawConfig, problems: &mut Vec<String>) -> HttpConfig {
        let defaults = HttpConfig::default();
        let mut millis = |key: &str, value: Option<u64>, range: std::ops::RangeInclusive<u64>| {
            if let Some(ms) = value.filter(|ms| !range.contains(ms)) {
                problems.push(format!(
                    "`{key}`: {ms} is out of range ({} to {})",
                    range.start(),
                    range.end()
                ));
            }
            value.map(Duration::from_millis)
        };
        let header_read_timeout =
            millis("header_read_timeout_ms", raw.header_read_timeout_ms, 100..=300_000)
                .unwrap_or(defaults.header_read_timeout);
        let body_read_timeout =
            millis("body_read_timeout_ms", raw.body_read_timeout_ms, 100..=3_600_000)
                .unwrap_or(defaults.body_read_timeout);
        let keep_alive_timeout =
            millis("keep_alive_timeout_ms", raw.keep_alive_timeout_ms, 0..=3_600_000)
                .unwrap_or(defaults.keep_alive_timeout);
        let drain_timeout = millis("drain_timeout_ms", raw.drain_timeout_ms, 0..=3_600_000)
            .unwrap_or(defaults.drain_timeout);
        let mut count =
            |key: &str, value: Option<usize>, range: std::ops::RangeInclusive<usize>| {
                if let Some(n) = value.filter(|n| !range.contains(n)) {
                    problems.push(format!(
                        "`{key}`: {n} is out of range ({} to {})",
                        range.start(),
                        range.end()
                    ));
                }
                value
            };
        let max_connections = count("max_connections", raw.max_connections, 1..=1_000_000)
            .unwrap_or(defaults.max_connections);
        let max_in_flight = count("max_in_flight", raw.max_in_flight, 1..=1_000_000)
            .unwrap_or(defaults.max_in_flight);
        let max_body_bytes =
            count("max_body_bytes", raw.max_body_bytes, 1024..=BEDROCK_MAX_BODY_BYTES)
                .unwrap_or(defaults.max_body_bytes);
        // 0, like no value: one per CPU.
        let workers = count("workers", raw.workers, 0..=1024).filter(|&n| n > 0);
        let tls = match (&raw.tls_cert_file, &raw.tls_key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) if !cert.is_empty() && !key.is_empty() => {
                Some(TlsFiles { cert_file: PathBuf::from(cert), key_file: PathBuf::from(key) })
            }
            _ => {
                problems.push(
                    "`tls_cert_file`, `tls_key_file`: both, each a PEM file's path, or neither"
                        .to_owned(),
                );
                None
            }
        };
        let cors_allowed_origins = raw.cors_allowed_origins.clone().unwrap_or_default();
        for origin in &cors_allowed_origins {
            if !is_origin(origin) {
                problems.push(format!(
                    "`cors_allowed_origins`: {origin:?} is not an origin \
                     (scheme://host[:port], no path; or \"*\" alone)"
                ));
            }
        }
        if cors_allowed_origins.len() > 1 && cors_allowed_origins.iter().any(|o| o == "*") {
            problems.push(
                "`cors_allowed_origins`: \"*\" allows every origin; list it alone".to_owned(),
            );
        }
        HttpConfig {
            header_read_timeout,
            body_read_timeout,
            keep_alive_timeout,
            max_connections,
            max_in_flight,
            max_body_bytes,
            drain_timeout,
            tls,
            cors_allowed_origins,
            workers,
        }
    }
}

/// `*`, or a browser origin: `http` or `https`, `://`, a host of visible ASCII and an
/// optional port, nothing after.
fn is_origin(origin: &str) -> bool {
    if origin == "*" {
        return true;
    }
    let Some(rest) = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@'])
        && rest.bytes().all(|b| b.is_ascii_graphic())
}

impl TlsFiles {
    /// The certificate chain's and the private key's PEM text, read from their files.
    pub fn read(&self) -> Result<(Vec<u8>, Vec<u8>), String> {
        let read = |key: &str, path: &Path| {
            std::fs::read(path).map_err(|e| format!("`{key}`: cannot read {}: {e}", path.display()))
        };
        Ok((read("tls_cert_file", &self.cert_file)?, read("tls_key_file", &self.key_file)?))
    }
}

/// A variable of the process environment (the `sha256_env` of API keys, `RUST_LOG`).
#[expect(clippy::disallowed_methods, reason = "config.rs is where the environment is read")]
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// One non-streamed attempt: an hour, as AWS advises for long generations (Claude with
/// extended thinking, large `max_tokens`), so that no answer is cut off by default.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 3_600_000;
/// One streamed attempt's first chunk: a minute (or `request_timeout_ms`, if shorter).
pub const DEFAULT_FIRST_BYTE_TIMEOUT_MS: u64 = 60_000;
/// A connection to Bedrock: a regional endpoint or a VPC endpoint answers a TCP and TLS
/// handshake in milliseconds; three seconds is many round trips of slack.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 3_000;
/// Silence between two chunks of a started stream: two minutes. Models stream their
/// reasoning as they think, so a started stream rarely pauses even for seconds; boto3's
/// default read timeout (60 s, between any two reads) already ends the streams of every
/// caller that keeps it, and the gateway waits twice that so that it is never the
/// tighter bound of the two. SSE keep-alive comments hold the caller's side meanwhile.
pub const DEFAULT_STREAM_IDLE_TIMEOUT_MS: u64 = 120_000;

/// Queue defaults when `[limits]` sets none.
pub const DEFAULT_MAX_QUEUE_LEN: usize = 256;
pub const DEFAULT_MAX_QUEUE_WAIT_MS: u64 = 10_000;

/// Names (`what`: "a name", "an alias") become metric labels, URL segments and Redis
/// hash tags: keep them to a plain alphabet.
fn check_name(key: &str, what: &str, name: &str, problems: &mut Vec<String>) -> bool {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if !plain {
        problems.push(format!(
            "`{key}`: {what} is 1 to 64 characters of letters, digits, '-', '_', '.' or ':'"
        ));
    }
    plain
}

fn positive(key: &str, value: Option<u64>, problems: &mut Vec<String>) {
    if value == Some(0) {
        problems.push(format!("`{key}`: must be at least 1"));
    }
}

/// Refuses a value over `max`: every duration, size and count has an upper bound, so
/// that none overflows the arithmetic it goes into (`Instant + Duration`, a token
/// bucket's balance, Redis' doubles).
fn at_most<T: PartialOrd + std::fmt::Display>(
    key: &str,
    value: Option<T>,
    max: T,
    problems: &mut Vec<String>,
) {
    if let Some(value) = value
        && value > max
    {
        problems.push(format!("`{key}`: {value} is more than the most allowed, {max}"));
    }
}

/// The upper bounds of durations (milliseconds) and counts; README.md lists them.
/// One attempt, its first byte, a stream's silence: four hours, four times what AWS
/// advises for the longest generations.
pub const MAX_ATTEMPT_TIMEOUT_MS: u64 = 4 * 3_600_000;
pub const MAX_CONNECT_TIMEOUT_MS: u64 = 60_000;
/// One call's whole budget, and how long a reservation may stay unsettled: a day.
pub const MAX_DEADLINE_MS: u64 = 86_400_000;
pub const MAX_RETRY_BACKOFF_MS: u64 = 600_000;
/// How often the file is polled: at least once a day.
pub const MAX_RELOAD_POLL_MS: u64 = 86_400_000;
pub const MAX_TOKENS_PER_MINUTE: u64 = 1_000_000_000_000;
pub const MAX_TOKENS_PER_DAY: u64 = 1_000_000_000_000_000;
pub const MAX_REQUESTS_PER_MINUTE: u64 = 100_000_000;
pub const MAX_CONCURRENCY: u32 = 1_000_000;
pub const MAX_RETRY_BUDGET_PER_SEC: f64 = 1_000_000.0;
/// Alias defaults: a model's output limit, `top_k`, `temperature`, stop sequences.
pub const MAX_TOKENS: u32 = 1_000_000;
pub const MAX_TOP_K: u32 = 100_000;
pub const MAX_TEMPERATURE: f64 = 5.0;
pub const MAX_STOP_SEQUENCES: usize = 64;
pub const MAX_STOP_CHARS: usize = 1_000;

/// The bounds of a quota or a key's budget, `key` the table's path.
fn check_budget(
    key: &str,
    tokens_per_minute: Option<u64>,
    tokens_per_day: Option<u64>,
    requests_per_minute: Option<u64>,
    max_concurrency: Option<u32>,
    problems: &mut Vec<String>,
) {
    positive(&format!("{key}.tokens_per_minute"), tokens_per_minute, problems);
    positive(&format!("{key}.tokens_per_day"), tokens_per_day, problems);
    positive(&format!("{key}.requests_per_minute"), requests_per_minute, problems);
    positive(&format!("{key}.max_concurrency"), max_concurrency.map(u64::from), problems);
    let key = |name: &str| format!("{key}.{name}");
    at_most(&key("tokens_per_minute"), tokens_per_minute, MAX_TOKENS_PER_MINUTE, problems);
    at_most(&key("tokens_per_day"), tokens_per_day, MAX_TOKENS_PER_DAY, problems);
    at_most(&key("requests_per_minute"), requests_per_minute, MAX_REQUESTS_PER_MINUTE, problems);
    at_most(&key("max_concurrency"), max_concurrency, MAX_CONCURRENCY, problems);
}

impl ApiKey {
    /// Whether this key may use `alias`.
    pub fn allows(&self, alias: &str) -> bool {
        self.models.as_ref().is_none_or(|models| models.contains(alias))
    }

    fn from_raw(
        index: usize,
        raw: RawApiKey,
        models: &BTreeMap<String, ModelRoute>,
        env: &dyn Fn(&str) -> Option<String>,
        problems: &mut Vec<String>,
    ) -> Option<ApiKey> {
        let key = format!("auth.keys[{index}]");
        let name_is_plain = !raw.name.is_empty()
            && raw.name.len() <= 64
            && raw.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_is_plain {
            problems.push(format!(
                "`{key}.name`: 1 to 64 characters of letters, digits, '-', '_' or '.'"
            ));
        }
        let n_problems = problems.len();
        let hex = match (&raw.sha256, &raw.sha256_env) {
            (Some(hex), None) => Some(hex.clone()),
            (None, Some(var)) => {
                let value = env(var);
                if value.is_none() {
                    problems.push(format!(
                        "`{key}.sha256_env`: the environment variable {var:?} is not set"
                    ));
                }
                value
            }
            _ => {
                problems.push(format!("`{key}`: exactly one of `sha256` and `sha256_env`"));
                None
            }
        };
        let sha256 = hex.as_deref().and_then(parse_sha256);
        if hex.is_some() && sha256.is_none() {
            let place = if raw.sha256.is_some() { "sha256" } else { "sha256_env" };
            problems.push(format!(
                "`{key}.{place}`: 64 hex digits, the SHA-256 of the key \
                 (`bedrock-gateway hash-key` prints it); never the key itself"
            ));
        }
        if let Some(allowed) = &raw.models {
            for alias in allowed.iter().filter(|alias| !models.contains_key(alias.as_str())) {
                problems.push(format!("`{key}.models`: {alias:?} is not a configured alias"));
            }
        }
        check_budget(
            &key,
            raw.tokens_per_minute,
            raw.tokens_per_day,
            raw.requests_per_minute,
            raw.max_concurrency,
            problems,
        );
        if !name_is_plain || problems.len() != n_problems {
            return None;
        }
        Some(ApiKey {
            name: raw.name,
            sha256: sha256?,
            models: raw.models.map(|m| m.into_iter().collect()),
            limits: ScopeLimits {
                tokens_per_minute: raw.tokens_per_minute,
                tokens_per_day: raw.tokens_per_day,
                requests_per_minute: raw.requests_per_minute,
                max_concurrency: raw.max_concurrency,
                adaptive: false,
            },
        })
    }
}

/// 64 hex digits as 32 bytes.
fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut digest = [0_u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}

impl UpstreamConfig {
    fn from_raw(raw: RawUpstream, problems: &mut Vec<String>) -> Option<UpstreamConfig> {
        let n_problems = problems.len();
        if let Some(url) = &raw.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            problems.push(format!(
                "`upstream.endpoint_url`: {url:?} must start with http:// or https://"
            ));
        }
        let target = match raw.kind.as_deref().unwrap_or("simulator") {
            "simulator" => {
                if raw.region.is_some() {
                    problems.push(
                        "`upstream.region`: only meaningful with kind = \"bedrock\"".to_owned(),
                    );
                }
                if raw.use_fips.is_some() {
                    problems.push(
                        "`upstream.use_fips`: only meaningful with kind = \"bedrock\"".to_owned(),
                    );
                }
                let credentials = match (raw.access_key_id, raw.secret_access_key) {
                    (None, None) => SimulatorCredentials::default(),
                    (Some(access_key_id), Some(secret_access_key)) => {
                        SimulatorCredentials { access_key_id, secret_access_key }
                    }
                    _ => {
                        problems.push(
                            "`upstream.access_key_id`, `upstream.secret_access_key`: both or \
                             neither"
                                .to_owned(),
                        );
                        SimulatorCredentials::default()
                    }
                };
                UpstreamTarget::Simulator { endpoint_url: raw.endpoint_url, credentials }
            }
            "bedrock" => {
                if let Some(region) = &raw.region {
                    check_region("upstream.region", region, problems);
                }
                if raw.access_key_id.is_some() || raw.secret_access_key.is_some() {
                    problems.push(
                        "`upstream.access_key_id`, `upstream.secret_access_key`: only with kind \
                         = \"simulator\"; Bedrock's credentials come from the default AWS \
                         chain, never from this file"
                            .to_owned(),
                    );
                }
                if raw.use_fips == Some(true) && raw.endpoint_url.is_some() {
                    problems.push(
                        "`upstream.use_fips`: a custom `endpoint_url` is called as it is; \
                         Bedrock's FIPS endpoints cannot be combined with it"
                            .to_owned(),
                    );
                }
                UpstreamTarget::Bedrock {
                    region: raw.region,
                    endpoint_url: raw.endpoint_url,
                    use_fips: raw.use_fips,
                }
            }
            other => {
                problems.push(format!(
                    "`upstream.kind`: {other:?} is not one of \"simulator\", \"bedrock\""
                ));
                return None;
            }
        };
        let transport = match raw.transport.as_deref().unwrap_or("thin") {
            "thin" => Transport::Thin,
            "sdk" => Transport::Sdk,
            other => {
                problems.push(format!(
                    "`upstream.transport`: {other:?} is not one of \"thin\", \"sdk\""
                ));
                Transport::Thin
            }
        };
        let request_timeout_ms = raw.request_timeout_ms.unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS);
        positive("upstream.request_timeout_ms", Some(request_timeout_ms), problems);
        let first_byte_timeout_ms = raw
            .first_byte_timeout_ms
            .unwrap_or(request_timeout_ms.min(DEFAULT_FIRST_BYTE_TIMEOUT_MS));
        positive("upstream.first_byte_timeout_ms", Some(first_byte_timeout_ms), problems);
        let connect_timeout_ms = raw.connect_timeout_ms.unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS);
        positive("upstream.connect_timeout_ms", Some(connect_timeout_ms), problems);
        let stream_idle_timeout_ms =
            raw.stream_idle_timeout_ms.unwrap_or(DEFAULT_STREAM_IDLE_TIMEOUT_MS);
        positive("upstream.stream_idle_timeout_ms", Some(stream_idle_timeout_ms), problems);
        let longest_attempt = request_timeout_ms.max(first_byte_timeout_ms);
        let deadline_ms = raw.deadline_ms.unwrap_or(longest_attempt.saturating_mul(2));
        if deadline_ms < longest_attempt {
            problems.push(format!(
                "`upstream.deadline_ms`: {deadline_ms} is less than one attempt's timeout \
                 ({longest_attempt}, `request_timeout_ms` or `first_byte_timeout_ms`)"
            ));
        }
        let max_attempts = raw.max_attempts.unwrap_or(3);
        if !(1..=10).contains(&max_attempts) {
            problems.push(format!("`upstream.max_attempts`: {max_attempts} is not in 1..=10"));
        }
        let retry_base_ms = raw.retry_base_ms.unwrap_or(100);
        let retry_cap_ms = raw.retry_cap_ms.unwrap_or(5_000);
        positive("upstream.retry_base_ms", Some(retry_base_ms), problems);
        if retry_cap_ms < retry_base_ms {
            problems.push("`upstream.retry_cap_ms`: must be at least `retry_base_ms`".to_owned());
        }
        let retry_budget_ratio = raw.retry_budget_ratio.unwrap_or(0.2);
        if !(0.0..=1.0).contains(&retry_budget_ratio) {
            problems.push("`upstream.retry_budget_ratio`: must be in [0, 1]".to_owned());
        }
        let retry_budget_min_per_sec = raw.retry_budget_min_per_sec.unwrap_or(5.0);
        if !(retry_budget_min_per_sec.is_finite()
            && (0.0..=MAX_RETRY_BUDGET_PER_SEC).contains(&retry_budget_min_per_sec))
        {
            problems.push(format!(
                "`upstream.retry_budget_min_per_sec`: must be in [0, {MAX_RETRY_BUDGET_PER_SEC}]"
            ));
        }
        for (name, value, max) in [
            ("request_timeout_ms", request_timeout_ms, MAX_ATTEMPT_TIMEOUT_MS),
            ("first_byte_timeout_ms", first_byte_timeout_ms, MAX_ATTEMPT_TIMEOUT_MS),
            ("connect_timeout_ms", connect_timeout_ms, MAX_CONNECT_TIMEOUT_MS),
            ("stream_idle_timeout_ms", stream_idle_timeout_ms, MAX_ATTEMPT_TIMEOUT_MS),
            ("retry_base_ms", retry_base_ms, MAX_RETRY_BACKOFF_MS),
            ("retry_cap_ms", retry_cap_ms, MAX_RETRY_BACKOFF_MS),
        ] {
            at_most(&format!("upstream.{name}"), Some(value), max, problems);
        }
        // Only when set: the default follows the attempt timeouts, already bounded.
        at_most("upstream.deadline_ms", raw.deadline_ms, MAX_DEADLINE_MS, problems);
        (problems.len() == n_problems).then(|| UpstreamConfig {
            target,
            transport,
            request_timeout: Duration::from_millis(request_timeout_ms),
            first_byte_timeout: Duration::from_millis(first_byte_timeout_ms),
            connect_timeout: Duration::from_millis(connect_timeout_ms),
            stream_idle_timeout: Duration::from_millis(stream_idle_timeout_ms),
            deadline: Duration::from_millis(deadline_ms),
            max_attempts,
            retry_base: Duration::from_millis(retry_base_ms),
            retry_cap: Duration::from_millis(retry_cap_ms),
            retry_budget_ratio,
            retry_budget_min_per_sec,
        })
    }
}

fn check_region(key: &str, region: &str, problems: &mut Vec<String>) {
    let valid = !region.is_empty()
        && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        problems
            .push(format!("`{key}`: {region:?} is not an AWS region name (e.g. \"us-east-1\")"));
    }
}

impl LimitsConfig {
    fn from_raw(raw: RawLimits, problems: &mut Vec<String>) -> Option<LimitsConfig> {
        let n_problems = problems.len();
        let redis_keys_set = raw.redis_url.is_some()
            || raw.redis_timeout_ms.is_some()
            || raw.redis_failure_mode.is_some()
            || raw.expected_replicas.is_some()
            || raw.key_prefix.is_some();
        let backend = match raw.backend.as_deref().unwrap_or("local") {
            "local" => {
                if redis_keys_set {
                    problems.push(
                        "`limits`: redis_url, redis_timeout_ms, redis_failure_mode, \
                         expected_replicas and key_prefix need backend = \"redis\""
                            .to_owned(),
                    );
                }
                Some(LimitsBackend::Local)
            }
            "redis" => RedisConfig::from_raw(&raw, problems).map(LimitsBackend::Redis),
            other => {
                problems.push(format!(
                    "`limits.backend`: {other:?} is not one of \"local\", \"redis\""
                ));
                None
            }
        };
        let max_queue_len = raw.max_queue_len.unwrap_or(DEFAULT_MAX_QUEUE_LEN);
        let max_queue_wait_ms = raw.max_queue_wait_ms.unwrap_or(DEFAULT_MAX_QUEUE_WAIT_MS);
        let reservation_ttl_ms = raw.reservation_ttl_ms.unwrap_or(600_000);
        if reservation_ttl_ms < 1_000 {
            problems.push("`limits.reservation_ttl_ms`: at least 1000".to_owned());
        }
        at_most("limits.reservation_ttl_ms", Some(reservation_ttl_ms), MAX_DEADLINE_MS, problems);
        if max_queue_len > 100_000 {
            problems.push("`limits.max_queue_len`: at most 100000".to_owned());
        }
        if max_queue_wait_ms > 600_000 {
            problems.push("`limits.max_queue_wait_ms`: at most 600000 (ten minutes)".to_owned());
        }
        if problems.len() != n_problems {
            return None;
        }
        Some(LimitsConfig {
            backend: backend?,
            max_queue_len,
            max_queue_wait: Duration::from_millis(max_queue_wait_ms),
            reservation_ttl: Duration::from_millis(reservation_ttl_ms),
        })
    }
}

impl RedisConfig {
    fn from_raw(raw: &RawLimits, problems: &mut Vec<String>) -> Option<RedisConfig> {
        let n_problems = problems.len();
        let url = raw.redis_url.clone().unwrap_or_default();
        if url.starts_with("rediss://") {
            // The client is built without TLS: the gateway would refuse to start.
            problems.push(
                "`limits.redis_url`: rediss:// (Redis over TLS) is not supported by this build; \
                 use redis://HOST:PORT on a private network"
                    .to_owned(),
            );
        } else if !url.starts_with("redis://") {
            problems.push(
                "`limits.redis_url`: needed with backend = \"redis\": redis://HOST:PORT".to_owned(),
            );
        }
        let failure_mode = match raw.redis_failure_mode.as_deref().unwrap_or("fail_open") {
            "fail_open" => FailureMode::FailOpen,
            "fail_closed" => FailureMode::FailClosed,
            other => {
                problems.push(format!(
                    "`limits.redis_failure_mode`: {other:?} is not one of \"fail_open\", \
                     \"fail_closed\""
                ));
                FailureMode::FailOpen
            }
        };
        let command_timeout_ms = raw.redis_timeout_ms.unwrap_or(10);
        if !(1..=5_000).contains(&command_timeout_ms) {
            problems.push("`limits.redis_timeout_ms`: must be in 1..=5000".to_owned());
        }
        let expected_replicas = raw.expected_replicas.unwrap_or(1);
        if !(1..=1_000).contains(&expected_replicas) {
            problems.push("`limits.expected_replicas`: must be in 1..=1000".to_owned());
        }
        let key_prefix = raw.key_prefix.clone().unwrap_or_else(|| "gw".to_owned());
        check_name("limits.key_prefix", "a name", &key_prefix, problems);
        (problems.len() == n_problems).then(|| RedisConfig {
            url,
            command_timeout: Duration::from_millis(command_timeout_ms),
            failure_mode,
            expected_replicas,
            key_prefix,
        })
    }
}

impl TargetMode {
    /// A bounded label: `on_demand`, `cross_region`, `provisioned`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetMode::OnDemand => "on_demand",
            TargetMode::CrossRegion => "cross_region",
            TargetMode::Provisioned => "provisioned",
        }
    }

    /// The mode a model id implies: a geography prefix (`us.`, `eu.`, `global.`, …) or an
    /// inference-profile ARN is a cross-region profile, a provisioned-model ARN is
    /// provisioned, anything else on demand.
    pub fn of_model_id(model_id: &str) -> TargetMode {
        if model_id.contains(":provisioned-model/") {
            return TargetMode::Provisioned;
        }
        if model_id.contains("inference-profile/") {
            return TargetMode::CrossRegion;
        }
        let id = model_id.rsplit('/').next().unwrap_or(model_id);
        let geography = id.split('.').next().unwrap_or_default();
        if ["us", "eu", "apac", "ap", "jp", "au", "ca", "us-gov", "global"].contains(&geography) {
            TargetMode::CrossRegion
        } else {
            TargetMode::OnDemand
        }
    }
}

impl Target {
    /// The admission scope of this target's quota.
    pub fn scope_limits(&self) -> ScopeLimits {
        ScopeLimits {
            tokens_per_minute: self.quota.tokens_per_minute,
            tokens_per_day: self.quota.tokens_per_day,
            requests_per_minute: self.quota.requests_per_minute,
            max_concurrency: self.quota.max_concurrency,
            adaptive: true,
        }
    }

    /// Whether the quota counts tokens (then every alias on it needs a `max_tokens`).
    pub fn has_token_quota(&self) -> bool {
        self.quota.tokens_per_minute.is_some() || self.quota.tokens_per_day.is_some()
    }

    fn from_raw(
        key: &str,
        name: &str,
        raw: RawTarget,
        queue_defaults: (usize, Duration),
        problems: &mut Vec<String>,
    ) -> Option<Target> {
        let n_problems = problems.len();
        let family = resolve_family(key, &raw.model_id, raw.family.as_deref(), problems);
        if let Some(region) = &raw.region {
            // With the simulator the region is only a label: it answers for every region.
            check_region(&format!("{key}.region"), region, problems);
        }
        let mode = match raw.mode.as_deref() {
            None => TargetMode::of_model_id(&raw.model_id),
            Some("on_demand") => TargetMode::OnDemand,
            Some("cross_region") => TargetMode::CrossRegion,
            Some("provisioned") => TargetMode::Provisioned,
            Some(other) => {
                problems.push(format!(
                    "`{key}.mode`: {other:?} is not one of \"on_demand\", \"cross_region\", \
                     \"provisioned\""
                ));
                TargetMode::OnDemand
            }
        };
        check_budget(
            key,
            raw.tokens_per_minute,
            raw.tokens_per_day,
            raw.requests_per_minute,
            raw.max_concurrency,
            problems,
        );
        let output_burndown = raw.output_burndown.unwrap_or(1.0);
        if !(output_burndown.is_finite() && (1.0..=100.0).contains(&output_burndown)) {
            problems.push(format!("`{key}.output_burndown`: must be in [1, 100]"));
        }
        if raw.max_queue_wait_ms.is_some_and(|ms| ms > 600_000) {
            problems.push(format!("`{key}.max_queue_wait_ms`: at most 600000 (ten minutes)"));
        }
        if raw.max_queue_len.is_some_and(|n| n > 100_000) {
            problems.push(format!("`{key}.max_queue_len`: at most 100000"));
        }
        let quota = TargetQuota {
            tokens_per_minute: raw.tokens_per_minute,
            tokens_per_day: raw.tokens_per_day,
            requests_per_minute: raw.requests_per_minute,
            max_concurrency: raw.max_concurrency,
            output_burndown,
            max_queue_len: raw.max_queue_len.unwrap_or(queue_defaults.0),
            max_queue_wait: raw.max_queue_wait_ms.map_or(queue_defaults.1, Duration::from_millis),
        };
        if problems.len() != n_problems {
            return None;
        }
        Some(Target {
            name: name.to_owned(),
            model_label: crate::metrics::model_label(&raw.model_id),
            handles: crate::metrics::TargetHandles::default(),
            model_id: raw.model_id,
            family: family?,
            region: raw.region,
            mode,
            quota,
        })
    }
}

/// An alias's `defaults` against the family of one of its targets, with the translator's
/// own knowledge of it: a default the family does not honour (`top_k` for Titan,
/// `cache_prompt` for a family without prompt caching), or one its model refuses (more
/// stop sequences than it takes, a `max_tokens` over its limit) would have every request
/// that leaves it out refused; it is the operator's error, said now, not the caller's.
fn check_defaults(key: &str, defaults: &Defaults, target: &Target, problems: &mut Vec<String>) {
    let FamilyRef::Text(family) = target.family else {
        return;
    };
    let set = [
        (Param::MaxTokens, defaults.max_tokens.is_some()),
        (Param::Temperature, defaults.temperature.is_some()),
        (Param::TopP, defaults.top_p.is_some()),
        (Param::TopK, defaults.top_k.is_some()),
        (Param::Stop, defaults.stop.as_ref().is_some_and(|stop| !stop.is_empty())),
        (Param::CachePrompt, defaults.cache_prompt == Some(true)),
    ];
    let n_problems = problems.len();
    for (param, _) in
        set.iter().filter(|(param, is_set)| *is_set && !family.params().contains(param))
    {
        problems.push(format!(
            "`{key}.defaults.{}`: the {} family (target {:?}) does not take it",
            param.field_name(),
            family.id(),
            target.name
        ));
    }
    if problems.len() != n_problems {
        return;
    }
    // A request of one short prompt with only the defaults set, as the translator would
    // encode it for the model; compared with the same request without them, so that
    // only what the defaults cause is reported.
    let probe = |with_defaults: bool| {
        let mut request =
            translator::UnifiedRequest { prompt: Some("x".to_owned()), ..Default::default() };
        if with_defaults {
            request.max_tokens = defaults.max_tokens;
            request.temperature = defaults.temperature;
            request.top_p = defaults.top_p;
            request.top_k = defaults.top_k;
            request.stop = defaults.stop.clone().unwrap_or_default();
            request.cache_prompt = defaults.cache_prompt.unwrap_or(false);
        }
        translator::encode_text_request(family, &request)
    };
    if let (Ok(_), Err(error)) = (probe(false), probe(true)) {
        let text = error.to_string();
        let field = set
            .iter()
            .map(|(param, _)| param.field_name())
            .find(|name| text.contains(&format!("`{name}`")));
        let at = field.map_or_else(|| format!("{key}.defaults"), |f| format!("{key}.defaults.{f}"));
        problems.push(format!("`{at}`: {text} (target {:?})", target.name));
    }
}

/// The family of `model_id`: named with `family`, or found from the id.
fn resolve_family(
    key: &str,
    model_id: &str,
    family: Option<&str>,
    problems: &mut Vec<String>,
) -> Option<FamilyRef> {
    if model_id.trim().is_empty() || model_id.len() > 2048 {
        problems.push(format!("`{key}.model_id`: must be 1 to 2048 characters"));
        return None;
    }
    match family {
        Some(id) => {
            let Some(named) = translator::family_by_id(id) else {
                let known: Vec<&str> = translator::FAMILIES.iter().map(|f| f.id()).collect();
                problems.push(format!(
                    "`{key}.family`: unknown family {id:?}; known families: {}",
                    known.join(", ")
                ));
                return None;
            };
            // `family` is for ids that name no model (provisioned models, application
            // inference profiles); it may not contradict one that does.
            if let Some(routed) = translator::family_for(model_id)
                && routed.id() != named.id()
            {
                problems.push(format!(
                    "`{key}.family`: {id:?} contradicts the model id {model_id:?}, which is \
                     of the {:?} family; leave `family` out",
                    routed.id()
                ));
                return None;
            }
            Some(named)
        }
        None => translator::family_for(model_id).or_else(|| {
            problems.push(format!(
                "`{key}.model_id`: no model family is known for {model_id:?}; name one with \
                 `family = \"...\"`"
            ));
            None
        }),
    }
}

impl ModelRoute {
    /// What kind of model the alias routes to (text, embedding, image).
    pub fn kind(&self) -> Kind {
        self.family.kind()
    }

    fn from_raw(
        alias: &str,
        raw: RawModel,
        targets: &mut BTreeMap<String, Arc<Target>>,
        queue_defaults: (usize, Duration),
        problems: &mut Vec<String>,
    ) -> Option<ModelRoute> {
        let n_problems = problems.len();
        let key = format!("models.{alias}");
        let alias_is_plain = check_name(&key, "an alias", alias, problems);
        let route_targets: Vec<Arc<Target>> = match (raw.model_id, raw.targets) {
            (Some(model_id), None) => {
                if targets.contains_key(alias) {
                    problems.push(format!(
                        "`{key}`: a `model_id` alias is its own target, and `targets.{alias}` \
                         exists too; rename one"
                    ));
                }
                let family = resolve_family(&key, &model_id, raw.family.as_deref(), problems);
                family
                    .map(|family| {
                        let target = Arc::new(Target {
                            name: alias.to_owned(),
                            mode: TargetMode::of_model_id(&model_id),
                            model_label: crate::metrics::model_label(&model_id),
                            handles: crate::metrics::TargetHandles::default(),
                            model_id,
                            family,
                            region: None,
                            quota: TargetQuota {
                                tokens_per_minute: None,
                                tokens_per_day: None,
                                requests_per_minute: None,
                                max_concurrency: None,
                                output_burndown: 1.0,
                                max_queue_len: queue_defaults.0,
                                max_queue_wait: queue_defaults.1,
                            },
                        });
                        if alias_is_plain && !targets.contains_key(alias) {
                            targets.insert(alias.to_owned(), target.clone());
                        }
                        vec![target]
                    })
                    .unwrap_or_default()
            }
            (None, Some(names)) => {
                if raw.family.is_some() {
                    problems.push(format!(
                        "`{key}.family`: set the family on the target, not on an alias with \
                         `targets`"
                    ));
                }
                if names.is_empty() {
                    problems.push(format!("`{key}.targets`: name at least one target"));
                }
                let mut seen = BTreeSet::new();
                names
                    .iter()
                    .filter_map(|name| {
                        if !seen.insert(name.as_str()) {
                            problems.push(format!("`{key}.targets`: {name:?} is listed twice"));
                        }
                        let target = targets.get(name).cloned();
                        if target.is_none() {
                            problems.push(format!(
                                "`{key}.targets`: {name:?} is not a valid `[targets.{name}]`"
                            ));
                        }
                        target
                    })
                    .collect()
            }
            (Some(_), Some(_)) | (None, None) => {
                problems.push(format!("`{key}`: exactly one of `model_id` and `targets`"));
                Vec::new()
            }
        };
        let first = route_targets.first().cloned();
        if let Some(first) = &first {
            for target in &route_targets[1..] {
                if target.family.kind() != first.family.kind() {
                    problems.push(format!(
                        "`{key}.targets`: {:?} is an {} model, {:?} an {} model; the targets \
                         of one alias are of one kind",
                        first.name,
                        first.family.kind().as_str(),
                        target.name,
                        target.family.kind().as_str()
                    ));
                }
            }
        }
        let options = crate::options::BedrockOptions::from_raw(
            &format!("{key}.bedrock"),
            raw.bedrock,
            problems,
        );
        let defaults = &raw.defaults;
        let n_before_defaults = problems.len();
        if defaults.max_tokens == Some(0) {
            problems.push(format!("`{key}.defaults.max_tokens`: must be at least 1"));
        }
        if defaults.temperature.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
            problems.push(format!("`{key}.defaults.temperature`: must be >= 0"));
        }
        if defaults.top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
            problems.push(format!("`{key}.defaults.top_p`: must be in (0, 1]"));
        }
        at_most(&format!("{key}.defaults.max_tokens"), defaults.max_tokens, MAX_TOKENS, problems);
        at_most(&format!("{key}.defaults.top_k"), defaults.top_k, MAX_TOP_K, problems);
        if defaults.temperature.is_some_and(|t| t > MAX_TEMPERATURE) {
            problems.push(format!("`{key}.defaults.temperature`: at most {MAX_TEMPERATURE}"));
        }
        if let Some(stop) = &defaults.stop {
            if stop.len() > MAX_STOP_SEQUENCES {
                problems
                    .push(format!("`{key}.defaults.stop`: at most {MAX_STOP_SEQUENCES} sequences"));
            }
            if stop.iter().any(|s| s.is_empty() || s.chars().count() > MAX_STOP_CHARS) {
                problems.push(format!(
                    "`{key}.defaults.stop`: each sequence is 1 to {MAX_STOP_CHARS} characters"
                ));
            }
        }
        if problems.len() == n_before_defaults {
            let mut checked = BTreeSet::new();
            for target in &route_targets {
                if checked.insert(target.family.id()) {
                    check_defaults(&key, defaults, target, problems);
                }
            }
        }
        if let Some(first) = &first {
            let kind = first.family.kind();
            if kind != Kind::Text && raw.defaults != Defaults::default() {
                problems.push(format!(
                    "`{key}.defaults`: only text models take defaults; {:?} is an {} model",
                    first.model_id,
                    kind.as_str()
                ));
            }
            let quota_target = route_targets.iter().find(|t| t.has_token_quota());
            if kind == Kind::Text
                && defaults.max_tokens.is_none()
                && let Some(target) = quota_target
            {
                problems.push(format!(
                    "`{key}.defaults.max_tokens`: needed, because target {:?} has a token \
                     quota: a request without `max_tokens` is reserved with this default",
                    target.name
                ));
            }
        }
        if problems.len() != n_problems {
            return None;
        }
        let first = first?;
        Some(ModelRoute {
            alias: alias.to_owned(),
            model_id: first.model_id.clone(),
            family: first.family,
            targets: route_targets,
            defaults: raw.defaults,
            options: Arc::new(options),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [models.titan]
        model_id = "amazon.titan-text-express-v1"
    "#;

    #[test]
    fn minimal_file_gets_defaults() {
        let config = Config::parse(MINIMAL, "test").unwrap();
        assert_eq!(config.listen, DEFAULT_LISTEN.parse().unwrap());
        let credentials = SimulatorCredentials::default();
        assert_eq!(
            config.upstream.target,
            UpstreamTarget::Simulator { endpoint_url: None, credentials }
        );
        assert_eq!(config.upstream.max_attempts, 3);
        assert_eq!(config.models["titan"].family.id(), "titan_text");
    }

    #[test]
    fn simulator_keys_are_the_test_key_unless_set_and_only_for_the_simulator() {
        let default = SimulatorCredentials::default();
        assert_eq!(default.access_key_id, bedrock_sim::TEST_ACCESS_KEY_ID);
        assert_eq!(default.secret_access_key, bedrock_sim::TEST_SECRET_ACCESS_KEY);
        let text = format!(
            "[upstream]\nkind = \"simulator\"\naccess_key_id = \"AKIDOWN\"\n\
             secret_access_key = \"own-secret\"\n{MINIMAL}"
        );
        let UpstreamTarget::Simulator { credentials, .. } =
            Config::parse(&text, "test").unwrap().upstream.target
        else {
            panic!("not the simulator");
        };
        assert_eq!(credentials.access_key_id, "AKIDOWN");
        assert_eq!(credentials.secret_access_key, "own-secret");
        assert!(!format!("{credentials:?}").contains("own-secret"));

        let half = format!("[upstream]\naccess_key_id = \"AKIDOWN\"\n{MINIMAL}");
        let err = Config::parse(&half, "test").unwrap_err().to_string();
        assert!(err.contains("both or neither"), "{err}");
        let bedrock = format!(
            "[upstream]\nkind = \"bedrock\"\nregion = \"us-east-1\"\n\
             secret_access_key = \"x\"\n{MINIMAL}"
        );
        let err = Config::parse(&bedrock, "test").unwrap_err().to_string();
        assert!(err.contains("only with kind = \"simulator\""), "{err}");
    }

    #[test]
    fn the_transport_is_thin_unless_set_and_fips_is_for_bedrock_without_a_custom_endpoint() {
        let config = Config::parse(MINIMAL, "test").unwrap();
        assert_eq!(config.upstream.transport, Transport::Thin);
        let sdk = format!("[upstream]\ntransport = \"sdk\"\n{MINIMAL}");
        assert_eq!(Config::parse(&sdk, "test").unwrap().upstream.transport, Transport::Sdk);
        let other = format!("[upstream]\ntransport = \"curl\"\n{MINIMAL}");
        let err = Config::parse(&other, "test").unwrap_err().to_string();
        assert!(err.contains("`upstream.transport`: \"curl\" is not one of"), "{err}");
        let fips = format!(
            "[upstream]\nkind = \"bedrock\"\nregion = \"us-gov-west-1\"\nuse_fips = true\n{MINIMAL}"
        );
        let target = Config::parse(&fips, "test").unwrap().upstream.target;
        assert!(
            matches!(target, UpstreamTarget::Bedrock { use_fips: Some(true), .. }),
            "{target:?}"
        );
        let custom = format!(
            "[upstream]\nkind = \"bedrock\"\nuse_fips = true\n\
             endpoint_url = \"https://vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com\"\n{MINIMAL}"
        );
        let err = Config::parse(&custom, "test").unwrap_err().to_string();
        assert!(err.contains("`upstream.use_fips`: a custom `endpoint_url`"), "{err}");
        let simulator = format!("[upstream]\nuse_fips = false\n{MINIMAL}");
        let err = Config::parse(&simulator, "test").unwrap_err().to_string();
        assert!(
            err.contains("`upstream.use_fips`: only meaningful with kind = \"bedrock\""),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let text = format!("{MINIMAL}\nlisten_addr = \"x\"\n");
        let err = Config::parse(&text, "test").unwrap_err().to_string();
        assert!(err.contains("listen_addr"), "{err}");
        let text = MINIMAL.replace("model_id =", "modelid =");
        let err = Config::parse(&text, "test").unwrap_err().to_string();
        assert!(err.contains("modelid"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            listen = "nowhere"
            [upstream]
            kind = "bedrock"
            region = "US EAST"
            max_attempts = 0
            [models.x]
            model_id = "acme.unknown-model-v1"
            [models."bad alias!"]
            model_id = "amazon.titan-text-express-v1"
            family = "nope"
        "#;
        let err = Config::parse(text, "test").unwrap_err();
        let all = err.problems.join("\n");
        for needle in [
            "`listen`",
            "upstream.region",
            "upstream.max_attempts",
            "models.x.model_id",
            "bad alias!",
            "nope",
        ] {
            assert!(all.contains(needle), "missing {needle} in {all}");
        }
    }

    #[test]
    fn family_override_and_arn_ids() {
        let text = r#"
            [models.custom]
            model_id = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefghijkl"
            family = "titan_text"
            [models.profile]
            model_id = "us.anthropic.claude-v2:1"
        "#;
        let config = Config::parse(text, "test").unwrap();
        assert_eq!(config.models["custom"].family.id(), "titan_text");
        assert_eq!(config.models["profile"].family.id(), "anthropic_claude_text");
    }

    #[test]
    fn an_alias_on_a_legacy_model_is_valid_with_a_warning() {
        let text = "[models.old]\nmodel_id = \"anthropic.claude-v2:1\"\n\
                    [models.new]\nmodel_id = \"anthropic.claude-3-haiku-20240307-v1:0\"\n";
        let config = Config::parse(text, "test").unwrap();
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        assert!(config.warnings[0].contains("models.old") && config.warnings[0].contains("legacy"));
    }

    #[test]
    fn attempt_timeouts_default_long_for_whole_answers_and_short_for_first_chunks() {
        let config = Config::parse(MINIMAL, "test").unwrap();
        assert_eq!(config.upstream.request_timeout, Duration::from_secs(3600));
        assert_eq!(config.upstream.first_byte_timeout, Duration::from_secs(60));
        assert_eq!(config.upstream.deadline, Duration::from_secs(7200));
        assert_eq!(config.upstream.connect_timeout, Duration::from_secs(3));
        assert_eq!(config.upstream.stream_idle_timeout, Duration::from_secs(120));
        let text = format!(
            "[upstream]\nconnect_timeout_ms = 250\nstream_idle_timeout_ms = 5000\n{MINIMAL}"
        );
        let config = Config::parse(&text, "test").unwrap();
        assert_eq!(config.upstream.connect_timeout, Duration::from_millis(250));
        assert_eq!(config.upstream.stream_idle_timeout, Duration::from_secs(5));
        let text =
            format!("[upstream]\nconnect_timeout_ms = 0\nstream_idle_timeout_ms = 0\n{MINIMAL}");
        let error = Config::parse(&text, "test").unwrap_err().to_string();
        assert!(error.contains("upstream.connect_timeout_ms"), "{error}");
        assert!(error.contains("upstream.stream_idle_timeout_ms"), "{error}");
        // A short request timeout bounds the first chunk's too, unless it is set.
        let text = format!("[upstream]\nrequest_timeout_ms = 200\n{MINIMAL}");
        let config = Config::parse(&text, "test").unwrap();
        assert_eq!(config.upstream.first_byte_timeout, Duration::from_millis(200));
        let text = format!(
            "[upstream]\nrequest_timeout_ms = 1000\nfirst_byte_timeout_ms = 5000\n\
             deadline_ms = 2000\n{MINIMAL}"
        );
        let error = Config::parse(&text, "test").unwrap_err().to_string();
        assert!(error.contains("deadline_ms"), "{error}");
    }

    #[test]
    fn targets_quotas_limits_and_keys() {
        let text = r#"
            [upstream]
            retry_base_ms = 50
            [limits]
            backend = "redis"
            redis_url = "redis://:secret@redis.internal:6379"
            redis_failure_mode = "fail_closed"
            expected_replicas = 3
            [targets.sonnet-us]
            model_id = "us.anthropic.claude-sonnet-4-20250514-v1:0"
            output_burndown = 5
            tokens_per_minute = 200000
            [targets.sonnet-eu]
            model_id = "eu.anthropic.claude-sonnet-4-20250514-v1:0"
            region = "eu-west-1"
            [models.sonnet]
            targets = ["sonnet-us", "sonnet-eu"]
            defaults = { max_tokens = 1024 }
            [models.titan]
            model_id = "amazon.titan-text-express-v1"
            [[auth.keys]]
            name = "team"
            sha256_env = "TEAM_SHA"
            models = ["sonnet"]
            tokens_per_minute = 1000
        "#;
        let digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let env = |name: &str| (name == "TEAM_SHA").then(|| digest.to_owned());
        let config = Config::parse_with_env(text, "test", &env).unwrap();
        let route = &config.models["sonnet"];
        let names: Vec<&str> = route.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["sonnet-us", "sonnet-eu"]);
        assert_eq!(route.targets[0].mode, TargetMode::CrossRegion);
        assert_eq!(route.targets[0].quota.output_burndown, 5.0);
        assert_eq!(route.targets[1].region.as_deref(), Some("eu-west-1"));
        assert_eq!(config.targets["titan"].mode, TargetMode::OnDemand);
        let LimitsBackend::Redis(redis) = &config.limits.backend else { panic!() };
        assert_eq!(redis.failure_mode, FailureMode::FailClosed);
        assert!(!format!("{redis:?}").contains("secret"));
        let key = &config.api_keys[0];
        assert!(key.allows("sonnet") && !key.allows("titan"));
        assert_eq!(key.limits.tokens_per_minute, Some(1000));
        // Without the variable, the key is refused by name.
        let err = Config::parse(text, "test").unwrap_err().to_string();
        assert!(err.contains("TEAM_SHA"), "{err}");
    }

    #[test]
    fn every_new_problem_is_reported_at_once() {
        let text = r#"
            [limits]
            backend = "redis"
            redis_failure_mode = "maybe"
            [targets.q]
            model_id = "amazon.titan-text-express-v1"
            tokens_per_minute = 0
            output_burndown = 0.5
            mode = "spot"
            [targets.orphan]
            model_id = "amazon.titan-text-lite-v1"
            [targets.image]
            model_id = "amazon.titan-image-generator-v2:0"
            tokens_per_day = 10
            [models.a]
            targets = ["q", "missing", "image"]
            [models.b]
            targets = ["image"]
            [targets.lite]
            model_id = "amazon.titan-text-lite-v1"
            [models.d]
            targets = ["lite", "image"]
            [models.c]
            model_id = "amazon.titan-text-express-v1"
            targets = ["q"]
            [[auth.keys]]
            name = "k"
            sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            models = ["nope"]
        "#;
        let err = Config::parse(text, "test").unwrap_err();
        let all = err.problems.join("\n");
        for needle in [
            "limits.redis_url",
            "limits.redis_failure_mode",
            "targets.q.tokens_per_minute",
            "targets.q.output_burndown",
            "targets.q.mode",
            "no alias names this target",
            "\"missing\" is not a valid `[targets.missing]`",
            "of one kind",
            "models.c`: exactly one of",
            "auth.keys[0].models",
        ] {
            assert!(all.contains(needle), "missing {needle} in {all}");
        }
    }

    #[test]
    fn a_token_quota_needs_a_max_tokens_default() {
        let text = r#"
            [targets.q]
            model_id = "amazon.titan-text-express-v1"
            tokens_per_minute = 1000
            [models.a]
            targets = ["q"]
        "#;
        let err = Config::parse(text, "test").unwrap_err().to_string();
        assert!(err.contains("models.a.defaults.max_tokens") && err.contains("\"q\""), "{err}");
        let fixed =
            text.replace("targets = [\"q\"]", "targets = [\"q\"]\ndefaults = { max_tokens = 10 }");
        assert!(Config::parse(&fixed, "test").is_ok());
    }

    #[test]
    fn the_api_listeners_keys_have_defaults_and_ranges() {
        let config = Config::parse(MINIMAL, "test").unwrap();
        assert_eq!(config.http, HttpConfig::default());
        assert_eq!(config.shutdown_delay, Duration::from_secs(5));
        assert_eq!(config.http.header_read_timeout, Duration::from_secs(10));
        assert_eq!(config.http.body_read_timeout, Duration::from_secs(30));
        assert_eq!(config.http.drain_timeout, Duration::from_secs(30));
        assert_eq!(config.http.max_body_bytes, 10 * 1024 * 1024);
        assert!(config.http.tls.is_none() && config.http.cors_allowed_origins.is_empty());
        assert_eq!(config.http.workers, None, "one per CPU");
        let workers = |text: &str| Config::parse(&format!("{text}\n{MINIMAL}"), "test").unwrap();
        assert_eq!(workers("workers = 0").http.workers, None, "0: one per CPU as well");
        assert_eq!(workers("workers = 3").http.workers, Some(3));

        let text = format!(
            "header_read_timeout_ms = 500\nbody_read_timeout_ms = 700\nkeep_alive_timeout_ms = 0\n\
             max_connections = 3\nmax_in_flight = 2\nmax_body_bytes = 4096\ndrain_timeout_ms = 0\n\
             tls_cert_file = \"c.pem\"\ntls_key_file = \"k.pem\"\n\
             cors_allowed_origins = [\"https://a.example\", \"http://localhost:3000\"]\n{MINIMAL}"
        );
        let http = Config::parse(&text, "test").unwrap().http;
        assert_eq!(http.header_read_timeout, Duration::from_millis(500));
        assert_eq!(http.body_read_timeout, Duration::from_millis(700));
        assert_eq!(http.keep_alive_timeout, Duration::ZERO);
        assert_eq!((http.max_connections, http.max_in_flight, http.max_body_bytes), (3, 2, 4096));
        assert_eq!(http.drain_timeout, Duration::ZERO);
        let tls = http.tls.unwrap();
        assert_eq!((tls.cert_file.to_str(), tls.key_file.to_str()), (Some("c.pem"), Some("k.pem")));
        assert_eq!(http.cors_allowed_origins.len(), 2);

        let text = format!(
            "header_read_timeout_ms = 0\nbody_read_timeout_ms = 50\nmax_connections = 0\n\
             max_in_flight = 0\nmax_body_bytes = 26000000\ndrain_timeout_ms = 4000000\nworkers = 1025\n\
             tls_cert_file = \"c.pem\"\n\
             cors_allowed_origins = [\"*\", \"https://a.example/path\", \"a.example\"]\n{MINIMAL}"
        );
        let error = Config::parse(&text, "test").unwrap_err().to_string();
        for key in [
            "`header_read_timeout_ms`: 0",
            "`body_read_timeout_ms`: 50",
            "`max_connections`: 0",
            "`max_in_flight`: 0",
            "`max_body_bytes`: 26000000 is out of range (1024 to 25000000)",
            "`drain_timeout_ms`",
            "`workers`: 1025 is out of range (0 to 1024)",
            "`tls_cert_file`, `tls_key_file`: both",
            "\"https://a.example/path\" is not an origin",
            "\"a.example\" is not an origin",
            "\"*\" allows every origin; list it alone",
        ] {
            assert!(error.contains(key), "{key} not in {error}");
        }
    }

    #[test]
    fn unknown_keys_everywhere_are_reported_together_with_the_other_problems() {
        let text = r#"
            listen_addr = "x"
            [upstream]
            max_attempts = 0
            timeout_ms = 5
            [targets.t]
            model_id = "amazon.titan-text-lite-v1"
            quota = 5
            [models.t]
            targets = ["t"]
            [models.x]
            model_id = "amazon.titan-text-express-v1"
            modelid = "typo"
            defaults = { max_tokens = 10, top_kk = 5 }
            [models.x.bedrock]
            servce_tier = "flex"
            guardrail = { identifier = "g", version = "1", tracing = "on" }
            [[auth.keys]]
            name = "a"
            sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            [[auth.keys]]
            name = "b"
            sha265 = "typo"
        "#;
        let err = Config::parse(text, "test").unwrap_err();
        let all = err.problems.join("\n");
        for needle in [
            "`listen_addr`: unknown key",
            "`upstream.timeout_ms`: unknown key",
            "`targets.t.quota`: unknown key",
            "`models.x.modelid`: unknown key; expected one of `model_id`",
            "`models.x.defaults.top_kk`: unknown key",
            "`models.x.bedrock.servce_tier`: unknown key",
            "`models.x.bedrock.guardrail.tracing`: unknown key",
            "`auth.keys[1].sha265`: unknown key",
            // And, with the unknown keys set aside, what the rest of the file gets wrong.
            "upstream.max_attempts",
            "auth.keys[1]`: exactly one of `sha256` and `sha256_env`",
        ] {
            assert!(all.contains(needle), "missing {needle} in\n{all}");
        }
        assert_eq!(err.problems.len(), 10, "{all}");
    }

    #[test]
    fn every_value_of_the_wrong_type_is_reported_by_its_path() {
        let text = r#"
            reload_poll_ms = "often"
            [upstream]
            max_attempts = -1
            [targets.t]
            model_id = 42
            [models.x]
            model_id = "amazon.titan-text-express-v1"
            defaults = { stop = "END" }
            colour = "red"
            [[auth.keys]]
            name = "k"
            sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            models = ["x", 3]
        "#;
        let err = Config::parse(text, "test").unwrap_err();
        let all = err.problems.join("\n");
        for needle in [
            "`reload_poll_ms`: invalid type: string \"often\"",
            "`upstream.max_attempts`: invalid value: integer `-1`",
            "`targets.t.model_id`: invalid type: integer `42`",
            "`models.x.defaults.stop`: invalid type",
            "`models.x.colour`: unknown key",
            "`auth.keys[0].models[1]`: invalid type: integer `3`",
        ] {
            assert!(all.contains(needle), "missing {needle} in\n{all}");
        }
        // A value taken out for its type is not also reported missing, and the rest of
        // the file is not checked without it (no "no alias names this target").
        assert!(!all.contains("missing") && !all.contains("no alias"), "{all}");
        assert_eq!(err.problems.len(), 6, "{all}");
        // A table without its required key.
        let err = Config::parse("[targets.t]\nregion = \"us-east-1\"\n", "test").unwrap_err();
        assert!(err.problems.join("\n").contains("`targets.t.model_id`: missing"), "{err}");
    }

    #[test]
    fn alias_defaults_are_checked_against_every_targets_family() {
        let cases = [
            // A default the family does not take.
            ("amazon.titan-text-express-v1", "top_k = 5", "models.a.defaults.top_k"),
            (
                "amazon.titan-text-express-v1",
                "cache_prompt = true",
                "models.a.defaults.cache_prompt",
            ),
            // One the model refuses: more stop sequences, more tokens than it takes.
            (
                "us.deepseek.r1-v1:0",
                "stop = [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\"]",
                "models.a.defaults.stop",
            ),
            ("us.deepseek.r1-v1:0", "max_tokens = 40000", "models.a.defaults.max_tokens"),
            (
                "cohere.command-text-v14",
                "stop = [\"a\",\"b\",\"c\",\"d\",\"e\"]",
                "models.a.defaults.stop",
            ),
        ];
        for (model_id, defaults, key) in cases {
            let text =
                format!("[models.a]\nmodel_id = \"{model_id}\"\ndefaults = {{ {defaults} }}\n");
            let err = Config::parse(&text, "test").unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("\"a\""), "{model_id} {defaults}: {err}");
        }
        // What the family takes is accepted.
        let fine = "[models.a]\nmodel_id = \"us.deepseek.r1-v1:0\"\n\
                    defaults = { max_tokens = 1000, stop = [\"END\"], temperature = 0.5 }\n\
                    [models.b]\nmodel_id = \"anthropic.claude-3-haiku-20240307-v1:0\"\n\
                    defaults = { max_tokens = 100, top_k = 5 }\n";
        Config::parse(fine, "test").unwrap();
        // A fallback target of another family must honour the defaults too.
        let text = r#"
            [targets.claude]
            model_id = "anthropic.claude-3-haiku-20240307-v1:0"
            [targets.titan]
            model_id = "amazon.titan-text-express-v1"
            [models.a]
            targets = ["claude", "titan"]
            defaults = { max_tokens = 100, top_k = 5 }
        "#;
        let err = Config::parse(text, "test").unwrap_err().to_string();
        assert!(err.contains("models.a.defaults.top_k") && err.contains("\"titan\""), "{err}");
        // Absurd values, whatever the family.
        let text = "[models.a]\nmodel_id = \"anthropic.claude-3-haiku-20240307-v1:0\"\n\
                    defaults = { max_tokens = 4000000000, top_k = 4000000000, temperature = 1e9 }\n";
        let err = Config::parse(text, "test").unwrap_err();
        let all = err.problems.join("\n");
        for key in ["defaults.max_tokens", "defaults.top_k", "defaults.temperature"] {
            assert!(all.contains(key), "{key} in {all}");
        }
    }

    #[test]
    fn a_family_that_contradicts_the_model_id_is_refused() {
        let text = "[models.a]\nmodel_id = \"amazon.titan-text-express-v1\"\n\
                    family = \"anthropic_claude_text\"\n";
        let err = Config::parse(text, "test").unwrap_err().to_string();
        assert!(err.contains("models.a.family") && err.contains("titan_text"), "{err}");
        let same =
            "[models.a]\nmodel_id = \"amazon.titan-text-express-v1\"\nfamily = \"titan_text\"\n";
        assert!(Config::parse(same, "test").is_ok());
        // An application inference profile names no model: it needs `family`.
        let profile = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2";
        let text = format!("[models.a]\nmodel_id = \"{profile}\"\n");
        let err = Config::parse(&text, "test").unwrap_err().to_string();
        assert!(err.contains("models.a.model_id") && err.contains("family"), "{err}");
        let text = format!("{text}family = \"anthropic_claude_messages\"\n");
        let config = Config::parse(&text, "test").unwrap();
        assert_eq!(config.models["a"].family.id(), "anthropic_claude_messages");
    }

    #[test]
    fn every_duration_and_count_has_an_upper_bound() {
        // TOML integers are 64-bit signed: u64::MAX is no number there, i64::MAX the largest.
        let text = format!("[upstream]\nrequest_timeout_ms = {}\n{MINIMAL}", u64::MAX);
        assert!(Config::parse(&text, "test").is_err());
        let huge = i64::MAX;
        let text = format!(
            r#"
            reload_poll_ms = {huge}
            [upstream]
            request_timeout_ms = {huge}
            first_byte_timeout_ms = {huge}
            connect_timeout_ms = {huge}
            stream_idle_timeout_ms = {huge}
            deadline_ms = {huge}
            retry_base_ms = {huge}
            retry_cap_ms = {huge}
            retry_budget_min_per_sec = 1e300
            [limits]
            reservation_ttl_ms = {huge}
            [targets.t]
            model_id = "amazon.titan-text-express-v1"
            tokens_per_minute = {huge}
            tokens_per_day = {huge}
            requests_per_minute = {huge}
            max_concurrency = 4294967295
            [models.t]
            targets = ["t"]
            defaults = {{ max_tokens = 10 }}
            [[auth.keys]]
            name = "k"
            sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            tokens_per_minute = {huge}
            requests_per_minute = {huge}
            "#
        );
        let err = Config::parse(&text, "test").unwrap_err();
        let all = err.problems.join("\n");
        for key in [
            "`reload_poll_ms`",
            "`upstream.request_timeout_ms`",
            "`upstream.first_byte_timeout_ms`",
            "`upstream.connect_timeout_ms`",
            "`upstream.stream_idle_timeout_ms`",
            "`upstream.deadline_ms`",
            "`upstream.retry_base_ms`",
            "`upstream.retry_cap_ms`",
            "`upstream.retry_budget_min_per_sec`",
            "`limits.reservation_ttl_ms`",
            "`targets.t.tokens_per_minute`",
            "`targets.t.tokens_per_day`",
            "`targets.t.requests_per_minute`",
            "`targets.t.max_concurrency`",
            "`auth.keys[0].tokens_per_minute`",
            "`auth.keys[0].requests_per_minute`",
        ] {
            assert!(all.contains(key), "{key} not refused in\n{all}");
        }
        // At the bounds the file is valid, and no duration overflows an `Instant`.
        let text = format!(
            r#"
            reload_poll_ms = {MAX_RELOAD_POLL_MS}
            [upstream]
            request_timeout_ms = {MAX_ATTEMPT_TIMEOUT_MS}
            first_byte_timeout_ms = {MAX_ATTEMPT_TIMEOUT_MS}
            connect_timeout_ms = {MAX_CONNECT_TIMEOUT_MS}
            stream_idle_timeout_ms = {MAX_ATTEMPT_TIMEOUT_MS}
            deadline_ms = {MAX_DEADLINE_MS}
            retry_base_ms = {MAX_RETRY_BACKOFF_MS}
            retry_cap_ms = {MAX_RETRY_BACKOFF_MS}
            [limits]
            reservation_ttl_ms = {MAX_DEADLINE_MS}
            [targets.t]
            model_id = "amazon.titan-text-express-v1"
            tokens_per_minute = {MAX_TOKENS_PER_MINUTE}
            tokens_per_day = {MAX_TOKENS_PER_DAY}
            requests_per_minute = {MAX_REQUESTS_PER_MINUTE}
            max_concurrency = {MAX_CONCURRENCY}
            [models.t]
            targets = ["t"]
            defaults = {{ max_tokens = 10 }}
            "#
        );
        let config = Config::parse(&text, "test").unwrap();
        let upstream = &config.upstream;
        let now = tokio::time::Instant::now();
        for duration in [
            upstream.request_timeout,
            upstream.first_byte_timeout,
            upstream.stream_idle_timeout,
            upstream.deadline,
            upstream.retry_cap,
            config.limits.reservation_ttl,
            config.reload_poll.unwrap(),
        ] {
            let end = now.checked_add(duration).and_then(|end| end.checked_add(upstream.deadline));
            assert!(end.is_some(), "{duration:?}");
        }
    }

    #[test]
    fn redis_over_tls_is_refused_by_this_build() {
        let text = "[limits]\nbackend = \"redis\"\nredis_url = \"rediss://r:6379\"\n\
                    [models.a]\nmodel_id = \"amazon.titan-text-express-v1\"\n";
        let err = Config::parse(text, "test").unwrap_err();
        assert!(err.problems.iter().any(|p| p.contains("rediss:// (Redis over TLS)")), "{err:?}");
    }

    #[test]
    fn the_responses_store_is_off_by_default_and_bounded() {
        use crate::routes::responses_store::StoreConfig;
        let config = Config::parse(MINIMAL, "test").unwrap();
        assert_eq!(
            config.responses,
            StoreConfig {
                max_entries: 0,
                max_bytes: 64 * 1024 * 1024,
                ttl: Duration::from_secs(3600)
            }
        );
        let text = format!(
            "[responses]\nstore_max_entries = 100000\nstore_max_bytes = 1073741824\n\
             store_ttl_secs = 86400\n{MINIMAL}"
        );
        assert_eq!(
            Config::parse(&text, "test").unwrap().responses,
            StoreConfig {
                max_entries: 100_000,
                max_bytes: 1024 * 1024 * 1024,
                ttl: Duration::from_secs(86_400)
            }
        );
        let text = format!(
            "[responses]\nstore_max_entries = 100001\nstore_max_bytes = 1073741825\n\
             store_ttl_secs = 86401\n{MINIMAL}"
        );
        let err = Config::parse(&text, "test").unwrap_err();
        assert_eq!(
            err.problems,
            [
                "`responses.store_max_entries`: 100001 is not in 0..=100000",
                "`responses.store_max_bytes`: 1073741825 is not in 1..=1073741824",
                "`responses.store_ttl_secs`: must be in 1..=86400",
            ]
        );
        let text = format!("[responses]\nstore_max_bytes = 0\nstore_ttl_secs = 0\n{MINIMAL}");
        let err = Config::parse(&text, "test").unwrap_err();
        assert_eq!(
            err.problems,
            [
                "`responses.store_max_bytes`: 0 is not in 1..=1073741824",
                "`responses.store_ttl_secs`: must be in 1..=86400",
            ]
        );
        let text = format!("[responses]\nstore = true\n{MINIMAL}");
        let err = Config::parse(&text, "test").unwrap_err().to_string();
        assert!(err.contains("responses.store") && err.contains("unknown key"), "{err}");
        let text = format!("[responses]\nstore_max_entries = -1\n{MINIMAL}");
        let err = Config::parse(&text, "test").unwrap_err().to_string();
        assert!(err.contains("responses.store_max_entries"), "{err}");
    }
}
