//! Bedrock's per-request options, per alias: the service tier, latency-optimized
//! inference, a guardrail, and request metadata (key/value tags that Bedrock's model
//! invocation logs keep, for cost attribution). Each is a request header of both
//! operations (wire document §1.4).
//!
//! An alias sets them in `[models.<alias>.bedrock]`; a caller may set them per request
//! (the gateway API's `bedrock` object, OpenAI's `service_tier` and `metadata`, the
//! Bedrock passthrough's own `X-Amzn-Bedrock-*` headers) as the alias's [`Policy`] for
//! each says: `allow` (the caller's value is sent), `pin` (the alias's value is sent, a
//! caller's other value is refused) or `strip` (the caller's value is dropped without a
//! word, the alias's is sent). `caller_policy` names one per option (default: `allow`);
//! `callers_may_set`, the older form, lists the allowed ones and pins the rest. The
//! alias's value fills what the caller left out; a caller may not replace the alias's
//! guardrail, whatever the policy. The pipeline applies them to every request, on every
//! API shape, before it is sent; the passthrough forwards no other `X-Amzn-Bedrock-*`
//! request header than these (and the stream's `X-Amzn-Bedrock-Accept`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::ApiError;
use crate::upstream::RawRequest;

/// `[models.<alias>.bedrock]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBedrockOptions {
    service_tier: Option<String>,
    performance_latency: Option<String>,
    guardrail: Option<RawGuardrail>,
    request_metadata: Option<BTreeMap<String, String>>,
    /// A request metadata key whose value is the caller's API key name.
    caller_metadata_key: Option<String>,
    callers_may_set: Option<Vec<String>>,
    /// Option name → `allow`, `pin` or `strip`.
    caller_policy: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuardrail {
    identifier: String,
    version: String,
    trace: Option<String>,
}

/// One alias's options, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BedrockOptions {
    pub service_tier: Option<String>,
    pub performance_latency: Option<String>,
    pub guardrail: Option<Guardrail>,
    pub request_metadata: BTreeMap<String, String>,
    pub caller_metadata_key: Option<String>,
    pub caller_policy: CallerPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guardrail {
    pub identifier: String,
    pub version: String,
    /// `ENABLED`, `DISABLED` or `ENABLED_FULL`.
    pub trace: Option<String>,
}

/// What an alias does with a caller's value of one option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The caller's value is sent (checked); without one, the alias's.
    Allow,
    /// The alias's value is sent (or none); a caller's other value is refused with 400.
    Pin,
    /// The caller's value is dropped without an error; the alias's is sent (or none).
    Strip,
}

/// The alias's [`Policy`] for each option callers could set per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerPolicy {
    /// `X-Amzn-Bedrock-Service-Tier`.
    pub service_tier: Policy,
    /// `X-Amzn-Bedrock-PerformanceConfig-Latency`.
    pub performance_latency: Policy,
    /// `X-Amzn-Bedrock-Request-Metadata`.
    pub request_metadata: Policy,
    /// `X-Amzn-Bedrock-Trace`.
    pub trace: Policy,
    /// `X-Amzn-Bedrock-GuardrailIdentifier` and `-GuardrailVersion`: a guardrail of the
    /// caller's own, where the alias sets none (an alias's guardrail is never replaced).
    pub guardrail: Policy,
}

/// The options a policy names, as `callers_may_set` and `caller_policy` spell them.
const OPTION_NAMES: [&str; 5] =
    ["service_tier", "performance_latency", "request_metadata", "trace", "guardrail"];

/// What a caller asked for in its request (the gateway API's `bedrock` object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestOptions {
    /// `priority`, `default` or `flex`.
    pub service_tier: Option<String>,
    /// `standard` or `optimized` (latency-optimized inference, where the model has it).
    pub performance_latency: Option<String>,
    /// Tags for Bedrock's invocation logs, merged with the alias's.
    #[serde(default, deserialize_with = "crate::routes::parse::de_metadata")]
    pub request_metadata: Option<BTreeMap<String, String>>,
}

const SERVICE_TIERS: &[&str] = &["priority", "default", "flex", "reserved"];
const LATENCIES: &[&str] = &["standard", "optimized"];
const TRACES: &[&str] = &["ENABLED", "DISABLED", "ENABLED_FULL"];
/// Bedrock's limit on the `X-Amzn-Bedrock-Request-Metadata` header.
const MAX_METADATA_CHARS: usize = 8500;

impl Default for CallerPolicy {
    fn default() -> CallerPolicy {
        CallerPolicy::all(Policy::Allow)
    }
}

impl CallerPolicy {
    fn all(policy: Policy) -> CallerPolicy {
        CallerPolicy {
            service_tier: policy,
            performance_latency: policy,
            request_metadata: policy,
            trace: policy,
            guardrail: policy,
        }
    }

    /// The policy of the option named `name` (one of [`OPTION_NAMES`]).
    fn of_mut(&mut self, name: &str) -> Option<&mut Policy> {
        match name {
            "service_tier" => Some(&mut self.service_tier),
            "performance_latency" => Some(&mut self.performance_latency),
            "request_metadata" => Some(&mut self.request_metadata),
            "trace" => Some(&mut self.trace),
            "guardrail" => Some(&mut self.guardrail),
            _ => None,
        }
    }

    /// From `callers_may_set` (listed: allowed, the rest pinned) or `caller_policy`
    /// (named: as named, the rest allowed); not both.
    fn from_raw(
        key: &str,
        may_set: Option<Vec<String>>,
        policy: Option<BTreeMap<String, String>>,
        problems: &mut Vec<String>,
    ) -> CallerPolicy {
        let names = OPTION_NAMES.map(|name| format!("{name:?}")).join(", ");
        match (may_set, policy) {
            (Some(_), Some(_)) => {
                problems.push(format!(
                    "`{key}`: `callers_may_set` and `caller_policy` say the same thing; keep \
                     `caller_policy`"
                ));
                CallerPolicy::default()
            }
            (Some(list), None) => {
                let mut policy = CallerPolicy::all(Policy::Pin);
                for item in list {
                    match policy.of_mut(&item) {
                        Some(slot) => *slot = Policy::Allow,
                        None => problems.push(format!(
                            "`{key}.callers_may_set`: {item:?} is not one of {names}"
                        )),
                    }
                }
                policy
            }
            (None, Some(table)) => {
                let mut policy = CallerPolicy::default();
                for (name, value) in table {
                    let Some(slot) = policy.of_mut(&name) else {
                        problems.push(format!(
                            "`{key}.caller_policy.{name}`: not an option; the options are {names}"
                        ));
                        continue;
                    };
                    *slot = match value.as_str() {
                        "allow" => Policy::Allow,
                        "pin" => Policy::Pin,
                        "strip" => Policy::Strip,
                        other => {
                            problems.push(format!(
                                "`{key}.caller_policy.{name}`: {other:?} is not one of \
                                 \"allow\", \"pin\", \"strip\""
                            ));
                            continue;
                        }
                    };
                }
                policy
            }
            (None, None) => CallerPolicy::default(),
        }
    }
}

fn one_of(
    key: &str,
    value: Option<String>,
    allowed: &[&str],
    problems: &mut Vec<String>,
) -> Option<String> {
    let value = value?;
    if allowed.contains(&value.as_str()) {
        Some(value)
    } else {
        problems.push(format!("`{key}`: {value:?} is not one of {allowed:?}"));
        None
    }
}

impl BedrockOptions {
    /// The options of alias `key` (`models.<alias>.bedrock`), every problem reported.
    pub fn from_raw(
        key: &str,
        raw: Option<RawBedrockOptions>,
        problems: &mut Vec<String>,
    ) -> BedrockOptions {
        let Some(raw) = raw else {
            return BedrockOptions::default();
        };
        let service_tier =
            one_of(&format!("{key}.service_tier"), raw.service_tier, SERVICE_TIERS, problems);
        let performance_latency = one_of(
            &format!("{key}.performance_latency"),
            raw.performance_latency,
            LATENCIES,
            problems,
        );
        let guardrail = raw.guardrail.map(|guardrail| {
            let valid_version = guardrail.version == "DRAFT"
                || (!guardrail.version.is_empty()
                    && guardrail.version.len() <= 8
                    && guardrail.version.bytes().all(|b| b.is_ascii_digit())
                    && !guardrail.version.starts_with('0'));
            if !valid_version {
                problems.push(format!(
                    "`{key}.guardrail.version`: {:?} is not a version number or \"DRAFT\"",
                    guardrail.version
                ));
            }
            if guardrail.identifier.is_empty() || guardrail.identifier.len() > 2048 {
                problems.push(format!("`{key}.guardrail.identifier`: 1 to 2048 characters"));
            }
            let trace =
                one_of(&format!("{key}.guardrail.trace"), guardrail.trace, TRACES, problems);
            Guardrail { identifier: guardrail.identifier, version: guardrail.version, trace }
        });
        let caller_policy =
            CallerPolicy::from_raw(key, raw.callers_may_set, raw.caller_policy, problems);
        let request_metadata = raw.request_metadata.unwrap_or_default();
        if let Some(name) = &raw.caller_metadata_key
            && (name.is_empty() || name.chars().count() > 256)
        {
            problems.push(format!("`{key}.caller_metadata_key`: 1 to 256 characters"));
        }
        // The alias's own tags, with the longest caller name a key allows, must fit in
        // Bedrock's header: else every request of the alias would be refused.
        let mut longest = request_metadata.clone();
        if let Some(name) = &raw.caller_metadata_key {
            longest.insert(name.clone(), "x".repeat(64));
        }
        let json_chars = serde_json::to_string(&longest).map_or(0, |json| json.chars().count());
        if json_chars > MAX_METADATA_CHARS {
            problems.push(format!(
                "`{key}.request_metadata`: {json_chars} characters as JSON (with \
                 `caller_metadata_key`'s value), more than Bedrock's {MAX_METADATA_CHARS}"
            ));
        }
        BedrockOptions {
            service_tier,
            performance_latency,
            guardrail,
            request_metadata,
            caller_metadata_key: raw.caller_metadata_key,
            caller_policy,
        }
    }

    /// Puts what a caller asked for through the gateway's own API into `request`'s
    /// headers (checked against the alias in [`BedrockOptions::apply`]).
    pub fn request_from(
        options: Option<&RequestOptions>,
        request: &mut RawRequest,
    ) -> Result<(), ApiError> {
        let Some(options) = options else {
            return Ok(());
        };
        if let Some(tier) = &options.service_tier {
            request.service_tier = Some(tier.clone());
        }
        if let Some(latency) = &options.performance_latency {
            request.performance_config_latency = Some(latency.clone());
        }
        if let Some(metadata) = &options.request_metadata {
            let json =
                serde_json::to_string(metadata).map_err(|e| ApiError::Internal(e.to_string()))?;
            request.request_metadata = Some(json);
        }
        Ok(())
    }

    /// Checks what the caller set in `request` against what the alias allows, and fills
    /// the rest from the alias. `caller`: the API key's name, for `caller_metadata_key`.
    pub fn apply(&self, request: &mut RawRequest, caller: Option<&str>) -> Result<(), ApiError> {
        let policy = self.caller_policy;
        apply_one(
            "the service tier",
            SERVICE_TIERS,
            policy.service_tier,
            &mut request.service_tier,
            self.service_tier.as_deref(),
        )?;
        apply_one(
            "the performance latency",
            LATENCIES,
            policy.performance_latency,
            &mut request.performance_config_latency,
            self.performance_latency.as_deref(),
        )?;
        self.apply_guardrail(request)?;
        self.apply_metadata(request, caller)
    }

    fn apply_guardrail(&self, request: &mut RawRequest) -> Result<(), ApiError> {
        let policy = self.caller_policy;
        if policy.guardrail == Policy::Strip {
            request.guardrail_identifier = None;
            request.guardrail_version = None;
        }
        if policy.trace == Policy::Strip {
            request.trace = None;
        }
        let asked = request.guardrail_identifier.is_some() || request.guardrail_version.is_some();
        match &self.guardrail {
            Some(guardrail) => {
                let same = request
                    .guardrail_identifier
                    .as_deref()
                    .is_none_or(|id| id == guardrail.identifier)
                    && request.guardrail_version.as_deref().is_none_or(|v| v == guardrail.version);
                if !same {
                    return Err(ApiError::BadRequest(
                        "this model alias has its own guardrail; a request may not replace it"
                            .to_owned(),
                    ));
                }
                request.guardrail_identifier = Some(guardrail.identifier.clone());
                request.guardrail_version = Some(guardrail.version.clone());
            }
            None if asked && policy.guardrail == Policy::Pin => {
                return Err(ApiError::BadRequest(
                    "this model alias does not let callers set a guardrail".to_owned(),
                ));
            }
            None => {}
        }
        let alias_trace = self.guardrail.as_ref().and_then(|g| g.trace.as_deref());
        apply_one("the trace", TRACES, policy.trace, &mut request.trace, alias_trace)
    }

    fn apply_metadata(
        &self,
        request: &mut RawRequest,
        caller: Option<&str>,
    ) -> Result<(), ApiError> {
        let policy = self.caller_policy.request_metadata;
        if policy == Policy::Strip {
            request.request_metadata = None;
        }
        let asked = match &request.request_metadata {
            Some(_) if policy == Policy::Pin => {
                return Err(ApiError::BadRequest(
                    "this model alias does not let callers set request metadata".to_owned(),
                ));
            }
            Some(json) => serde_json::from_str::<BTreeMap<String, String>>(json).map_err(|_| {
                ApiError::BadRequest(
                    "request metadata must be a JSON object of string values".to_owned(),
                )
            })?,
            None => BTreeMap::new(),
        };
        if asked.is_empty()
            && self.request_metadata.is_empty()
            && self.caller_metadata_key.is_none()
        {
            return Ok(());
        }
        // The caller's tags first; the operator's win on the same key.
        let mut merged = asked;
        merged.extend(self.request_metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let (Some(key), Some(caller)) = (&self.caller_metadata_key, caller) {
            merged.insert(key.clone(), caller.to_owned());
        }
        let json = serde_json::to_string(&merged).map_err(|e| ApiError::Internal(e.to_string()))?;
        if json.chars().count() > MAX_METADATA_CHARS {
            return Err(ApiError::BadRequest(format!(
                "request metadata is longer than Bedrock's {MAX_METADATA_CHARS} characters"
            )));
        }
        request.request_metadata = Some(json);
        Ok(())
    }
}

/// One option whose caller's value is `asked` (set in place to what is sent), under
/// `policy`, with the alias's value `alias`: `what` names it in a refusal.
fn apply_one(
    what: &str,
    allowed: &[&str],
    policy: Policy,
    asked: &mut Option<String>,
    alias: Option<&str>,
) -> Result<(), ApiError> {
    match (policy, asked.as_deref()) {
        (Policy::Strip, _) | (_, None) => {
            *asked = alias.map(str::to_owned);
            Ok(())
        }
        (Policy::Pin, Some(value)) if Some(value) != alias => Err(ApiError::BadRequest(format!(
            "this model alias does not let callers set {what}; its operator sets it"
        ))),
        (Policy::Pin, Some(_)) => Ok(()),
        (Policy::Allow, Some(value)) if !allowed.contains(&value) => {
            Err(ApiError::BadRequest(format!("{what} {value:?} is not one of {allowed:?}")))
        }
        (Policy::Allow, Some(_)) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(toml_text: &str) -> (BedrockOptions, Vec<String>) {
        let raw: RawBedrockOptions = toml::from_str(toml_text).unwrap();
        let mut problems = Vec::new();
        (BedrockOptions::from_raw("models.x.bedrock", Some(raw), &mut problems), problems)
    }

    #[test]
    fn the_alias_fills_what_the_caller_left_out() {
        let (options, problems) = options(
            r#"
            service_tier = "flex"
            performance_latency = "optimized"
            guardrail = { identifier = "gr1", version = "3", trace = "ENABLED" }
            request_metadata = { team = "search" }
            caller_metadata_key = "caller"
            "#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let mut request =
            RawRequest { service_tier: Some("priority".into()), ..RawRequest::default() };
        options.apply(&mut request, Some("team-a")).unwrap();
        assert_eq!(request.service_tier.as_deref(), Some("priority"));
        assert_eq!(request.performance_config_latency.as_deref(), Some("optimized"));
        assert_eq!(request.guardrail_identifier.as_deref(), Some("gr1"));
        assert_eq!(request.guardrail_version.as_deref(), Some("3"));
        assert_eq!(request.trace.as_deref(), Some("ENABLED"));
        assert_eq!(
            request.request_metadata.as_deref(),
            Some(r#"{"caller":"team-a","team":"search"}"#)
        );
    }

    #[test]
    fn callers_are_held_to_what_the_alias_allows() {
        let (options, _) = options(
            r#"
            guardrail = { identifier = "gr1", version = "DRAFT" }
            callers_may_set = ["request_metadata"]
            request_metadata = { team = "search" }
            "#,
        );
        let mut tier =
            RawRequest { service_tier: Some("priority".into()), ..RawRequest::default() };
        assert!(options.apply(&mut tier, None).unwrap_err().to_string().contains("service tier"));
        let mut other =
            RawRequest { guardrail_identifier: Some("mine".into()), ..RawRequest::default() };
        assert!(options.apply(&mut other, None).unwrap_err().to_string().contains("guardrail"));
        // The operator's tag wins over the caller's on the same key.
        let mut tags = RawRequest {
            request_metadata: Some(r#"{"team":"spoofed","ticket":"42"}"#.into()),
            ..RawRequest::default()
        };
        options.apply(&mut tags, None).unwrap();
        assert_eq!(tags.request_metadata.as_deref(), Some(r#"{"team":"search","ticket":"42"}"#));
        let mut bad = RawRequest { request_metadata: Some("[1]".into()), ..RawRequest::default() };
        assert!(options.apply(&mut bad, None).is_err());
    }

    #[test]
    fn each_option_is_allowed_pinned_or_stripped_as_the_policy_says() {
        let (alias, problems) = options(
            r#"
            service_tier = "flex"
            performance_latency = "standard"
            guardrail = { identifier = "gr1", version = "2", trace = "ENABLED" }
            request_metadata = { team = "search" }
            caller_policy = { service_tier = "strip", performance_latency = "pin", trace = "allow", request_metadata = "strip", guardrail = "strip" }
            "#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        // Stripped: the caller's value is dropped without a word; the alias's is sent.
        let mut request = RawRequest {
            service_tier: Some("priority".into()),
            request_metadata: Some(r#"{"ticket":"42"}"#.into()),
            guardrail_identifier: Some("mine".into()),
            guardrail_version: Some("9".into()),
            trace: Some("DISABLED".into()),
            ..RawRequest::default()
        };
        alias.apply(&mut request, None).unwrap();
        assert_eq!(request.service_tier.as_deref(), Some("flex"));
        assert_eq!(request.request_metadata.as_deref(), Some(r#"{"team":"search"}"#));
        assert_eq!(request.guardrail_identifier.as_deref(), Some("gr1"));
        assert_eq!(request.guardrail_version.as_deref(), Some("2"));
        // Allowed: the caller's trace is sent.
        assert_eq!(request.trace.as_deref(), Some("DISABLED"));
        // Pinned: the alias's own value is accepted, another is refused.
        let mut same = RawRequest {
            performance_config_latency: Some("standard".into()),
            ..RawRequest::default()
        };
        alias.apply(&mut same, None).unwrap();
        let mut other = RawRequest {
            performance_config_latency: Some("optimized".into()),
            ..RawRequest::default()
        };
        let error = alias.apply(&mut other, None).unwrap_err().to_string();
        assert!(error.contains("performance latency"), "{error}");
        // Without an alias value, a pinned option is sent as none and refused if asked.
        let (bare, _) = options("caller_policy = { service_tier = \"pin\", trace = \"strip\" }");
        let mut asked = RawRequest { service_tier: Some("flex".into()), ..RawRequest::default() };
        assert!(bare.apply(&mut asked, None).is_err());
        let mut traced = RawRequest { trace: Some("ENABLED".into()), ..RawRequest::default() };
        bare.apply(&mut traced, None).unwrap();
        assert_eq!(traced.trace, None);
    }

    #[test]
    fn a_policy_is_checked_when_the_config_loads() {
        let (_, problems) = options(
            r#"
            caller_policy = { service_tier = "maybe", colour = "allow" }
            "#,
        );
        let text = problems.join("\n");
        assert!(text.contains("caller_policy.service_tier") && text.contains("maybe"), "{text}");
        assert!(text.contains("caller_policy.colour"), "{text}");
        let (_, problems) = options("callers_may_set = []\ncaller_policy = {}");
        assert!(problems.join("").contains("keep `caller_policy`"), "{problems:?}");
        // Tags the alias itself sets that Bedrock's header cannot carry.
        let big = format!("request_metadata = {{ a = \"{}\" }}", "x".repeat(9000));
        let (_, problems) = options(&big);
        assert!(problems.join("").contains("request_metadata"), "{problems:?}");
    }

    #[test]
    fn invalid_options_are_named() {
        let (_, problems) = options(
            r#"
            service_tier = "gold"
            performance_latency = "fast"
            guardrail = { identifier = "", version = "01", trace = "on" }
            callers_may_set = ["everything"]
            "#,
        );
        let text = problems.join("\n");
        for key in [
            "service_tier",
            "performance_latency",
            "guardrail.version",
            "guardrail.identifier",
            "guardrail.trace",
            "callers_may_set",
        ] {
            assert!(text.contains(key), "{key} in {text}");
        }
    }
}
