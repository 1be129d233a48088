//! The gateway's configuration: the TOML file shape (`Raw*`, unknown keys denied)
//! and the validated [`Config`] it becomes once, at start-up.
//!
//! This is the only file that reads files or the environment.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use translator::{FamilyRef, Kind};

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

/// Which Bedrock the gateway calls, always through the AWS SDK, and the one retry
/// policy of the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    pub target: UpstreamTarget,
    /// Longest wait for Bedrock's whole answer in one non-streamed attempt. Long: AWS
    /// advises read timeouts of up to an hour for long generations.
    pub request_timeout: Duration,
    /// Longest wait for a stream's first chunk in one attempt.
    pub first_byte_timeout: Duration,
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
    /// `endpoint_url` is `None`, else one already running there. Static dummy credentials.
    Simulator { endpoint_url: Option<String> },
    /// Real Bedrock with the default AWS credential chain. `region` and `endpoint_url`
    /// override the SDK's defaults (a VPC endpoint, say).
    Bedrock { region: Option<String>, endpoint_url: Option<String> },
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
    region: Option<String>,
    endpoint_url: Option<String>,
    request_timeout_ms: Option<u64>,
    first_byte_timeout_ms: Option<u64>,
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
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            source_name: source_name.to_owned(),
            problems: vec![e.to_string().trim_end().replace('\n', "\n    ")],
        })?;
        let mut problems = Vec::new();
        let config = Config::from_raw(raw, env, &mut problems);
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
        let reload_poll = match raw.reload_poll_ms {
            None | Some(0) => None,
            Some(ms) if ms < 100 => {
                problems.push("`reload_poll_ms`: at least 100 (or 0: off)".to_owned());
                None
            }
            Some(ms) => Some(Duration::from_millis(ms)),
        };
        let upstream = UpstreamConfig::from_raw(raw.upstream, problems);
        let limits = LimitsConfig::from_raw(raw.limits, problems);
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
        for (alias, raw_model) in raw.models {
            if let Some(route) =
                ModelRoute::from_raw(&alias, raw_model, &mut targets, queue_defaults, problems)
            {
                models.insert(alias, route);
            }
        }
        let used: BTreeSet<&str> =
            models.values().flat_map(|r| r.targets.iter().map(|t| t.name.as_str())).collect();
        for name in targets.keys().filter(|name| !used.contains(name.as_str())) {
            problems.push(format!("`targets.{name}`: no alias names this target"));
        }
        let shutdown_delay = Duration::from_millis(raw.shutdown_delay_ms.unwrap_or(0));
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
            upstream: upstream?,
            limits: limits?,
            api_keys,
            targets,
            models,
        })
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
        positive(&format!("{key}.requests_per_minute"), raw.requests_per_minute, problems);
        positive(&format!("{key}.tokens_per_minute"), raw.tokens_per_minute, problems);
        positive(&format!("{key}.tokens_per_day"), raw.tokens_per_day, problems);
        positive(&format!("{key}.max_concurrency"), raw.max_concurrency.map(u64::from), problems);
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
                UpstreamTarget::Simulator { endpoint_url: raw.endpoint_url }
            }
            "bedrock" => {
                if let Some(region) = &raw.region {
                    check_region("upstream.region", region, problems);
                }
                UpstreamTarget::Bedrock { region: raw.region, endpoint_url: raw.endpoint_url }
            }
            other => {
                problems.push(format!(
                    "`upstream.kind`: {other:?} is not one of \"simulator\", \"bedrock\""
                ));
                return None;
            }
        };
        let request_timeout_ms = raw.request_timeout_ms.unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS);
        positive("upstream.request_timeout_ms", Some(request_timeout_ms), problems);
        let first_byte_timeout_ms = raw
            .first_byte_timeout_ms
            .unwrap_or(request_timeout_ms.min(DEFAULT_FIRST_BYTE_TIMEOUT_MS));
        positive("upstream.first_byte_timeout_ms", Some(first_byte_timeout_ms), problems);
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
        if !(retry_budget_min_per_sec.is_finite() && retry_budget_min_per_sec >= 0.0) {
            problems.push("`upstream.retry_budget_min_per_sec`: must be >= 0".to_owned());
        }
        (problems.len() == n_problems).then(|| UpstreamConfig {
            target,
            request_timeout: Duration::from_millis(request_timeout_ms),
            first_byte_timeout: Duration::from_millis(first_byte_timeout_ms),
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
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            problems.push(
                "`limits.redis_url`: needed with backend = \"redis\": redis://HOST:PORT \
                 or rediss://HOST:PORT"
                    .to_owned(),
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
        positive(&format!("{key}.tokens_per_minute"), raw.tokens_per_minute, problems);
        positive(&format!("{key}.tokens_per_day"), raw.tokens_per_day, problems);
        positive(&format!("{key}.requests_per_minute"), raw.requests_per_minute, problems);
        positive(&format!("{key}.max_concurrency"), raw.max_concurrency.map(u64::from), problems);
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
        Some(id) => translator::family_by_id(id).or_else(|| {
            let known: Vec<&str> = translator::FAMILIES.iter().map(|f| f.id()).collect();
            problems.push(format!(
                "`{key}.family`: unknown family {id:?}; known families: {}",
                known.join(", ")
            ));
            None
        }),
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
        if defaults.max_tokens == Some(0) {
            problems.push(format!("`{key}.defaults.max_tokens`: must be at least 1"));
        }
        if defaults.temperature.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
            problems.push(format!("`{key}.defaults.temperature`: must be >= 0"));
        }
        if defaults.top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
            problems.push(format!("`{key}.defaults.top_p`: must be in (0, 1]"));
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
        assert_eq!(config.upstream.target, UpstreamTarget::Simulator { endpoint_url: None });
        assert_eq!(config.upstream.max_attempts, 3);
        assert_eq!(config.models["titan"].family.id(), "titan_text");
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
}
