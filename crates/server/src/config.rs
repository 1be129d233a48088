//! The gateway's configuration: the TOML file shape (`Raw*`, unknown keys denied)
//! and the validated [`Config`] it becomes once, at start-up.
//!
//! This is the only file that reads files or the environment.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use translator::{FamilyRef, Kind};

/// Where the gateway listens when neither the file nor `--listen` says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// A validated configuration: every alias resolved to a model id and a family.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// After a shutdown signal, how long to keep serving with `/readyz` at 503 so that
    /// load balancers stop sending traffic before the listener closes.
    pub shutdown_delay: Duration,
    pub upstream: UpstreamConfig,
    /// API keys callers must present; empty means the gateway is open.
    pub api_keys: Vec<ApiKey>,
    /// Model aliases, sorted by name.
    pub models: BTreeMap<String, ModelRoute>,
}

/// Which Bedrock the gateway calls, always through the AWS SDK.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    pub target: UpstreamTarget,
    /// Longest wait for Bedrock's first byte (the whole answer for non-streamed calls).
    pub request_timeout: Duration,
    /// Attempts per call, retries included, for throttling and 5xx answers (the SDK's standard mode).
    pub max_attempts: u32,
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

/// One alias: what callers name in `"model"`, and what it routes to.
#[derive(Clone)]
pub struct ModelRoute {
    pub alias: String,
    pub model_id: String,
    pub family: FamilyRef,
    pub defaults: Defaults,
}

/// One API key, known by the SHA-256 digest of its text: the key itself is never in
/// the file. `name` identifies the caller in logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    pub sha256: [u8; 32],
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
            .field("model_id", &self.model_id)
            .field("family", &self.family)
            .field("defaults", &self.defaults)
            .finish()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("shutdown_delay", &self.shutdown_delay)
            .field("upstream", &self.upstream)
            .field("api_keys", &self.api_keys.iter().map(|k| &k.name).collect::<Vec<_>>())
            .field("models", &self.models)
            .finish()
    }
}

/// The file as written. Unknown keys anywhere are an error naming the key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    shutdown_delay_ms: Option<u64>,
    #[serde(default)]
    upstream: RawUpstream,
    #[serde(default)]
    auth: RawAuth,
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
    sha256: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    kind: Option<String>,
    region: Option<String>,
    endpoint_url: Option<String>,
    request_timeout_ms: Option<u64>,
    max_attempts: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    model_id: String,
    family: Option<String>,
    #[serde(default)]
    defaults: Defaults,
}

impl Config {
    /// Parses and validates a configuration file's text. Pure: no I/O.
    pub fn parse(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            source_name: source_name.to_owned(),
            problems: vec![e.to_string().trim_end().replace('\n', "\n    ")],
        })?;
        let mut problems = Vec::new();
        let config = Config::from_raw(raw, &mut problems);
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigError { source_name: source_name.to_owned(), problems }),
        }
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: source_name.clone(),
            problems: vec![format!("cannot read the file: {e}")],
        })?;
        Config::parse(&text, &source_name)
    }

    fn from_raw(raw: RawConfig, problems: &mut Vec<String>) -> Option<Config> {
        let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                problems.push(format!(
                    "`listen`: {listen_text:?} is not a HOST:PORT socket address (e.g. \"127.0.0.1:8080\")"
                ));
                None
            }
        };
        let upstream = UpstreamConfig::from_raw(raw.upstream, problems);
        let mut models = BTreeMap::new();
        if raw.models.is_empty() {
            problems.push("`models`: at least one model alias is needed".to_owned());
        }
        for (alias, raw_model) in raw.models {
            if let Some(route) = ModelRoute::from_raw(&alias, raw_model, problems) {
                models.insert(alias, route);
            }
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
            .filter_map(|(i, key)| ApiKey::from_raw(i, key, problems))
            .collect::<Vec<_>>();
        let mut names: Vec<&str> = api_keys.iter().map(|k| k.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|pair| pair[0] == pair[1]) {
            problems.push("`auth.keys`: key names must be unique".to_owned());
        }
        Some(Config { listen: listen?, shutdown_delay, upstream: upstream?, api_keys, models })
    }
}

impl ApiKey {
    fn from_raw(index: usize, raw: RawApiKey, problems: &mut Vec<String>) -> Option<ApiKey> {
        let key = format!("auth.keys[{index}]");
        let name_is_plain = !raw.name.is_empty()
            && raw.name.len() <= 64
            && raw.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_is_plain {
            problems.push(format!(
                "`{key}.name`: 1 to 64 characters of letters, digits, '-', '_' or '.'"
            ));
        }
        let Some(sha256) = parse_sha256(&raw.sha256) else {
            problems.push(format!(
                "`{key}.sha256`: 64 hex digits, the SHA-256 of the key \
                 (`bedrock-gateway hash-key` prints it); never the key itself"
            ));
            return None;
        };
        name_is_plain.then_some(ApiKey { name: raw.name, sha256 })
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
                    let valid = !region.is_empty()
                        && region
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                    if !valid {
                        problems.push(format!(
                            "`upstream.region`: {region:?} is not an AWS region name (e.g. \"us-east-1\")"
                        ));
                    }
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
        let request_timeout_ms = raw.request_timeout_ms.unwrap_or(60_000);
        if request_timeout_ms == 0 {
            problems.push("`upstream.request_timeout_ms`: must be at least 1".to_owned());
        }
        let max_attempts = raw.max_attempts.unwrap_or(3);
        if !(1..=10).contains(&max_attempts) {
            problems.push(format!("`upstream.max_attempts`: {max_attempts} is not in 1..=10"));
        }
        (problems.len() == n_problems).then(|| UpstreamConfig {
            target,
            request_timeout: Duration::from_millis(request_timeout_ms),
            max_attempts,
        })
    }
}

impl ModelRoute {
    /// What kind of model the alias routes to (text, embedding, image).
    pub fn kind(&self) -> Kind {
        self.family.kind()
    }

    fn from_raw(alias: &str, raw: RawModel, problems: &mut Vec<String>) -> Option<ModelRoute> {
        let n_problems = problems.len();
        let key = format!("models.{alias}");
        // Aliases become metric labels and URL segments: keep them to a plain alphabet.
        let alias_is_plain = !alias.is_empty()
            && alias.len() <= 64
            && alias.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
        if !alias_is_plain {
            problems.push(format!(
                "`{key}`: an alias is 1 to 64 characters of letters, digits, '-', '_', '.' or ':'"
            ));
        }
        if raw.model_id.trim().is_empty() || raw.model_id.len() > 2048 {
            problems.push(format!("`{key}.model_id`: must be 1 to 2048 characters"));
        }
        let family = match raw.family.as_deref() {
            Some(id) => translator::family_by_id(id).or_else(|| {
                let known: Vec<&str> = translator::FAMILIES.iter().map(|f| f.id()).collect();
                problems.push(format!(
                    "`{key}.family`: unknown family {id:?}; known families: {}",
                    known.join(", ")
                ));
                None
            }),
            None => translator::family_for(&raw.model_id).or_else(|| {
                problems.push(format!(
                    "`{key}.model_id`: no model family is known for {:?}; name one with `family = \"...\"`",
                    raw.model_id
                ));
                None
            }),
        };
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
        if let Some(family) = family
            && family.kind() != Kind::Text
            && raw.defaults != Defaults::default()
        {
            problems.push(format!(
                "`{key}.defaults`: only text models take defaults; {:?} is an {} model",
                raw.model_id,
                family.kind().as_str()
            ));
        }
        if problems.len() != n_problems {
            return None;
        }
        Some(ModelRoute {
            alias: alias.to_owned(),
            model_id: raw.model_id,
            family: family?,
            defaults: raw.defaults,
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
}
