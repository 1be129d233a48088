//! Bedrock's per-request options, per alias: the service tier, latency-optimized
//! inference, a guardrail, and request metadata (key/value tags that Bedrock's model
//! invocation logs keep, for cost attribution). Each is a request header of both
//! operations (wire document §1.4).
//!
//! An alias sets them in `[models.<alias>.bedrock]`; a caller may set them per request
//! (the gateway API's `bedrock` object, OpenAI's `service_tier` and `metadata`, the
//! Bedrock passthrough's own headers) where the alias allows it (`callers_may_set`,
//! default: all of them). The alias's value fills what the caller left out; a caller
//! may not replace the alias's guardrail. The pipeline applies them to every request,
//! on every API shape, before it is sent.

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
    pub callers_may_set: CallerMay,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guardrail {
    pub identifier: String,
    pub version: String,
    /// `ENABLED`, `DISABLED` or `ENABLED_FULL`.
    pub trace: Option<String>,
}

/// What callers of an alias may set per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerMay {
    pub service_tier: bool,
    pub performance_latency: bool,
    pub request_metadata: bool,
    pub trace: bool,
    /// A guardrail of their own, where the alias sets none.
    pub guardrail: bool,
}

/// What a caller asked for in its request (the gateway API's `bedrock` object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestOptions {
    /// `priority`, `default` or `flex`.
    pub service_tier: Option<String>,
    /// `standard` or `optimized` (latency-optimized inference, where the model has it).
    pub performance_latency: Option<String>,
    /// Tags for Bedrock's invocation logs, merged with the alias's.
    pub request_metadata: Option<BTreeMap<String, String>>,
}

const SERVICE_TIERS: &[&str] = &["priority", "default", "flex", "reserved"];
const LATENCIES: &[&str] = &["standard", "optimized"];
const TRACES: &[&str] = &["ENABLED", "DISABLED", "ENABLED_FULL"];
/// Bedrock's limit on the `X-Amzn-Bedrock-Request-Metadata` header.
const MAX_METADATA_CHARS: usize = 8500;

impl Default for CallerMay {
    fn default() -> CallerMay {
        CallerMay {
            service_tier: true,
            performance_latency: true,
            request_metadata: true,
            trace: true,
            guardrail: true,
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
        let mut callers_may_set = CallerMay::default();
        if let Some(list) = raw.callers_may_set {
            callers_may_set = CallerMay {
                service_tier: false,
                performance_latency: false,
                request_metadata: false,
                trace: false,
                guardrail: false,
            };
            for item in list {
                match item.as_str() {
                    "service_tier" => callers_may_set.service_tier = true,
                    "performance_latency" => callers_may_set.performance_latency = true,
                    "request_metadata" => callers_may_set.request_metadata = true,
                    "trace" => callers_may_set.trace = true,
                    "guardrail" => callers_may_set.guardrail = true,
                    other => problems.push(format!(
                        "`{key}.callers_may_set`: {other:?} is not one of \"service_tier\", \
                         \"performance_latency\", \"request_metadata\", \"trace\", \"guardrail\""
                    )),
                }
            }
        }
        BedrockOptions {
            service_tier,
            performance_latency,
            guardrail,
            request_metadata: raw.request_metadata.unwrap_or_default(),
            caller_metadata_key: raw.caller_metadata_key,
            callers_may_set,
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
        let may = self.callers_may_set;
        let refuse = |what: &str| {
            Err(ApiError::BadRequest(format!(
                "this model alias does not let callers set {what}; its operator sets it"
            )))
        };
        match &request.service_tier {
            Some(_) if !may.service_tier => return refuse("the service tier"),
            Some(tier) if !SERVICE_TIERS.contains(&tier.as_str()) => {
                return Err(ApiError::BadRequest(format!(
                    "service tier {tier:?} is not one of {SERVICE_TIERS:?}"
                )));
            }
            Some(_) => {}
            None => request.service_tier.clone_from(&self.service_tier),
        }
        match &request.performance_config_latency {
            Some(_) if !may.performance_latency => return refuse("the performance latency"),
            Some(latency) if !LATENCIES.contains(&latency.as_str()) => {
                return Err(ApiError::BadRequest(format!(
                    "performance latency {latency:?} is not one of {LATENCIES:?}"
                )));
            }
            Some(_) => {}
            None => request.performance_config_latency.clone_from(&self.performance_latency),
        }
        self.apply_guardrail(request)?;
        self.apply_metadata(request, caller)
    }

    fn apply_guardrail(&self, request: &mut RawRequest) -> Result<(), ApiError> {
        let may = self.callers_may_set;
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
            None if asked && !may.guardrail => {
                return Err(ApiError::BadRequest(
                    "this model alias does not let callers set a guardrail".to_owned(),
                ));
            }
            None => {}
        }
        match &request.trace {
            Some(_) if !may.trace => Err(ApiError::BadRequest(
                "this model alias does not let callers set the trace".to_owned(),
            )),
            Some(_) => Ok(()),
            None => {
                request.trace = self.guardrail.as_ref().and_then(|g| g.trace.clone());
                Ok(())
            }
        }
    }

    fn apply_metadata(
        &self,
        request: &mut RawRequest,
        caller: Option<&str>,
    ) -> Result<(), ApiError> {
        let asked = match &request.request_metadata {
            Some(_) if !self.callers_may_set.request_metadata => {
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
