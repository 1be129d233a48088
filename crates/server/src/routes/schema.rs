//! What the OpenAPI document says that the request types alone cannot: the string fields
//! that take a few values only (`schema_with` on the field), and [`refine`], run once on the
//! whole document: the API key schemes, OpenAI's request objects (a field outside the
//! documented ones only as `null`), each API's error body, and the refusals every route
//! can give before its handler runs (408, 413, 503). Schemathesis checks the document
//! against the gateway in `tests/run`.

use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, SecurityRequirement};

/// A string of one of `values`, or null.
fn one_of(values: &[&str], description: &str) -> Schema {
    let values = values.iter().map(|value| serde_json::Value::from(*value));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(values.chain([serde_json::Value::Null])))
        .description(Some(description))
        .into()
}

/// OpenAI's `service_tier`.
pub(crate) fn service_tier() -> Schema {
    one_of(
        &["auto", "default", "flex", "priority"],
        "Bedrock's service tier; `auto` leaves it to the alias (another value, such as \
         `scale`, is refused)",
    )
}

/// OpenAI's embedding `encoding_format`.
pub(crate) fn encoding_format() -> Schema {
    one_of(&["float", "base64"], "`base64`: little-endian f32s, base64-encoded")
}

/// OpenAI's image `response_format`.
pub(crate) fn image_response_format() -> Schema {
    one_of(&["b64_json"], "Only `b64_json`: `url` is refused (422), the gateway stores no image")
}

/// An embedding `input_type`.
pub(crate) fn input_type() -> Schema {
    one_of(
        &["search_document", "search_query", "classification", "clustering"],
        "What the texts are for (Cohere's `input_type`, Nova's `embeddingPurpose`)",
    )
}

/// OpenAI's image `size`.
pub(crate) fn image_size() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some("^(auto|[0-9]{1,9}x[0-9]{1,9})$"))
        .description(Some("`WIDTHxHEIGHT` in pixels, or `auto` (the model's default)"))
        .into()
}

/// An OpenAI chat message's `role`.
pub(crate) fn chat_role() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["system", "developer", "user", "assistant", "tool"]))
        .description(Some(
            "`developer` is a system message; `tool` carries a tool call's result; \
             `function` messages are refused (422)",
        ))
        .into()
}

/// A tool's or tool call's `type`: only `function`.
pub(crate) fn function_type() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["function"]))
        .description(Some("`function`: the only tool type (another is refused, 422)"))
        .into()
}

/// A content part's `type`.
pub(crate) fn content_part_type() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["text", "image_url"]))
        .description(Some(
            "Text parts, and image parts with a `data:` URL (another type is refused, 422)",
        ))
        .into()
}

/// A flag only its no-op value of which the gateway takes (`echo`).
pub(crate) fn false_only() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Boolean, Type::Null]))
        .enum_values(Some([serde_json::Value::Bool(false), serde_json::Value::Null]))
        .description(Some("Only `false` (`true` is refused, 422)"))
        .into()
}

/// The OpenAI request objects, whose fields outside the documented ones are refused (422)
/// unless null, and the no-op values OpenAI's SDKs send that they take.
const OPENAI_REQUESTS: &[&str] = &[
    "ChatCompletionRequest",
    "CompletionRequest",
    "EmbeddingsRequest",
    "ImageGenerationRequest",
    "ChatMessage",
    "ResponsesRequest",
    "InputItem",
];

/// The refusals of the listener itself, before any handler: status, error type, text.
const LISTENER_REFUSALS: &[(u16, &str, &str)] = &[
    (408, "request_timeout", "The body did not arrive within `body_read_timeout_ms`"),
    (413, "payload_too_large", "The body is over the route's limit (`max_body_bytes`)"),
    (
        503,
        "overloaded",
        "The gateway is at `max_in_flight` requests or `max_connections` connections \
         (`Retry-After: 1`)",
    ),
];

/// Completes the document (see the module docs).
pub fn refine(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        "bearer".to_owned(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("A gateway API key, as `Authorization: Bearer <key>`"))
                .build(),
        )),
    );
    components.security_schemes.insert(
        "api_key".to_owned(),
        RefOr::T(SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "x-api-key",
            "A gateway API key",
        )))),
    );
    components.schemas.insert("OpenAiErrorBody".to_owned(), openai_error_body().into());
    components.schemas.insert("BedrockErrorBody".to_owned(), bedrock_error_body().into());
    // The variants of the internally tagged enums refuse unknown fields (serde's
    // `deny_unknown_fields`), which utoipa says of structs only.
    for name in ["PartSchema", "ResponseFormatSchema"] {
        if let Some(RefOr::T(Schema::OneOf(one_of))) = components.schemas.get_mut(name) {
            for item in &mut one_of.items {
                if let RefOr::T(Schema::Object(object)) = item {
                    object.additional_properties =
                        Some(Box::new(AdditionalProperties::FreeForm(false)));
                }
            }
        }
    }
    for name in OPENAI_REQUESTS {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(*name) {
            object.additional_properties = Some(Box::new(AdditionalProperties::RefOr(RefOr::T(
                ObjectBuilder::new().schema_type(Type::Null).into(),
            ))));
            if *name == "ChatCompletionRequest" {
                for flag in ["logprobs", "store"] {
                    object.properties.insert(flag.to_owned(), false_only().into());
                }
            }
        }
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let api = if path.starts_with("/model/") {
            Api::Bedrock
        } else if crate::routes::openai::PATHS.contains(&path.as_str()) {
            Api::OpenAi
        } else {
            Api::Gateway
        };
        let probe = ["/healthz", "/readyz", "/openapi.json"].contains(&path.as_str());
        for (operation, has_body) in
            [(item.get.as_mut(), false), (item.post.as_mut(), true), (item.delete.as_mut(), false)]
                .into_iter()
        {
            let Some(operation) = operation else { continue };
            if !probe {
                // Required when the config lists API keys; without an `[auth]` table, none.
                operation.security = Some(vec![
                    SecurityRequirement::default(),
                    SecurityRequirement::new("bearer", Vec::<String>::new()),
                    SecurityRequirement::new("api_key", Vec::<String>::new()),
                ]);
            }
            refine_responses(operation, api, has_body, probe);
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Api {
    Gateway,
    OpenAi,
    Bedrock,
}

/// The listener's refusals, and the error body of each error range in the API's shape.
fn refine_responses(operation: &mut Operation, api: Api, has_body: bool, probe: bool) {
    let body = match api {
        Api::Gateway => "ErrorBody",
        Api::OpenAi => "OpenAiErrorBody",
        Api::Bedrock => "BedrockErrorBody",
    };
    let error = |description: &str| -> Response {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(body))).build();
        let mut response =
            ResponseBuilder::new().description(description).content("application/json", content);
        if api == Api::Bedrock {
            response = response.header(
                "x-amzn-ErrorType",
                utoipa::openapi::header::HeaderBuilder::new()
                    .description(Some("The error shape, `<Shape>:<namespace>`"))
                    .build(),
            );
        }
        response.build()
    };
    let responses = &mut operation.responses.responses;
    for range in ["4XX", "5XX"] {
        let description = match responses.get(range) {
            Some(RefOr::T(response)) => response.description.clone(),
            _ => continue,
        };
        responses.insert(range.to_owned(), RefOr::T(error(&description)));
    }
    for (status, kind, text) in LISTENER_REFUSALS {
        if probe || (!has_body && *status != 503) {
            continue;
        }
        let description = format!("{text} (`{kind}`)");
        responses.entry(status.to_string()).or_insert_with(|| RefOr::T(error(&description)));
    }
}

/// OpenAI's error object; `code` is the gateway's error type.
fn openai_error_body() -> Schema {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    let detail = ObjectBuilder::new()
        .property("message", string())
        .property("type", string())
        .property(
            "param",
            ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null])),
        )
        .property("code", string())
        .required("message")
        .required("type")
        .required("param")
        .required("code");
    ObjectBuilder::new().property("error", detail).required("error").into()
}

/// Bedrock's error body; the shape is in `x-amzn-ErrorType`.
fn bedrock_error_body() -> Schema {
    ObjectBuilder::new()
        .property("message", ObjectBuilder::new().schema_type(Type::String))
        .required("message")
        .into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_documented_refinement_names_a_schema_of_the_document() {
        let doc = serde_json::to_value(crate::app::openapi()).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in super::OPENAI_REQUESTS {
            assert_eq!(schemas[*name]["additionalProperties"]["type"], "null", "{name}");
        }
        let chat = &doc["paths"]["/v1/chat/completions"]["post"]["responses"];
        assert_eq!(
            chat["413"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/OpenAiErrorBody"
        );
        let probe = &doc["paths"]["/healthz"]["get"];
        assert!(probe.get("security").is_none() && probe["responses"].get("503").is_none());
    }
}
