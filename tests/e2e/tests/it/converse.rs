//! Bedrock's Converse, ConverseStream and CountTokens through the real AWS SDK for Rust
//! pointed at the gateway, which translates them to each family's InvokeModel (the
//! simulator behind it answers InvokeModel only): text by alias and by model id, a
//! streamed answer the same as the whole one, a tool round trip, images, and errors in
//! Bedrock's shapes.

use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ContentBlockStart, ConversationRole, ConverseOutput,
    ConverseStreamOutput, ConverseTokensRequest, CountTokensInput, ImageBlock, ImageFormat,
    ImageSource, InferenceConfiguration, Message, StopReason, SystemContentBlock, Tool,
    ToolConfiguration, ToolInputSchema, ToolResultBlock, ToolResultContentBlock, ToolSpecification,
    ToolUseBlock,
};
use aws_smithy_types::Document;
use base64::Engine;
use serde_json::json;

use crate::harness::Harness;
use crate::passthrough::client;

const MODELS: &str = r#"
[models.titan]
model_id = "amazon.titan-text-express-v1"

[models.claude-3-haiku]
model_id = "anthropic.claude-3-haiku-20240307-v1:0"

[models.nova-lite]
model_id = "us.amazon.nova-lite-v1:0"

[models.llama3]
model_id = "meta.llama3-8b-instruct-v1:0"
"#;

async fn start() -> Harness {
    Harness::start_with("max_attempts = 1\n", MODELS).await
}

fn user(text: &str) -> Message {
    Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(text.to_owned()))
        .build()
        .unwrap()
}

fn answer_text(output: &ConverseOutput) -> String {
    let ConverseOutput::Message(message) = output else { panic!("{output:?}") };
    message.content.iter().filter_map(|block| block.as_text().ok()).cloned().collect()
}

#[tokio::test]
async fn converse_answers_every_family_in_its_shape_and_the_stream_says_the_same() {
    let h = start().await;
    let sdk = client(&h.base_url);
    for model in ["titan", "claude-3-haiku", "nova-lite", "llama3", "us.amazon.nova-lite-v1:0"] {
        let whole = sdk
            .converse()
            .model_id(model)
            .system(SystemContentBlock::Text("Be brief.".to_owned()))
            .messages(user("Tell me about the harbor."))
            .inference_config(InferenceConfiguration::builder().max_tokens(40).build())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{model}: {e:?}"));
        let text = answer_text(whole.output().unwrap());
        assert!(!text.trim().is_empty(), "{model}");
        assert_eq!(whole.stop_reason(), &StopReason::EndTurn, "{model}");
        let usage = whole.usage().unwrap();
        assert!(usage.input_tokens() > 0 && usage.output_tokens() > 0, "{model}: {usage:?}");
        assert_eq!(usage.total_tokens(), usage.input_tokens() + usage.output_tokens());
        assert!(whole.metrics().is_some(), "{model}");

        // The same request, streamed: the same text, in Converse's event order.
        let mut stream = sdk
            .converse_stream()
            .model_id(model)
            .system(SystemContentBlock::Text("Be brief.".to_owned()))
            .messages(user("Tell me about the harbor."))
            .inference_config(InferenceConfiguration::builder().max_tokens(40).build())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{model}: {e:?}"));
        let mut kinds = Vec::new();
        let mut streamed = String::new();
        while let Some(event) = stream.stream.recv().await.unwrap() {
            match &event {
                ConverseStreamOutput::ContentBlockDelta(delta) => {
                    assert_eq!(delta.content_block_index(), 0);
                    if let Some(ContentBlockDelta::Text(text)) = delta.delta() {
                        streamed.push_str(text);
                    }
                    if kinds.last() != Some(&"delta") {
                        kinds.push("delta");
                    }
                }
                ConverseStreamOutput::MessageStart(_) => kinds.push("start"),
                ConverseStreamOutput::ContentBlockStop(_) => kinds.push("stop"),
                ConverseStreamOutput::MessageStop(stop) => {
                    assert_eq!(stop.stop_reason(), &StopReason::EndTurn);
                    kinds.push("message_stop");
                }
                ConverseStreamOutput::Metadata(metadata) => {
                    let usage = metadata.usage().unwrap();
                    assert_eq!(usage.output_tokens(), whole.usage().unwrap().output_tokens());
                    kinds.push("metadata");
                }
                other => panic!("{model}: {other:?}"),
            }
        }
        assert_eq!(kinds, ["start", "delta", "stop", "message_stop", "metadata"], "{model}");
        assert_eq!(streamed, text, "{model}");
    }
}

#[tokio::test]
async fn a_tool_round_trip_and_an_image_through_converse() {
    let h = start().await;
    let sdk = client(&h.base_url);
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}},
                        "required": ["city"]});
    let tool = Tool::ToolSpec(
        ToolSpecification::builder()
            .name("weather")
            .description("The weather in a city")
            .input_schema(ToolInputSchema::Json(document(&schema)))
            .build()
            .unwrap(),
    );
    let tools = ToolConfiguration::builder().tools(tool).build().unwrap();
    for model in ["claude-3-haiku", "nova-lite"] {
        let asked = sdk
            .converse()
            .model_id(model)
            .messages(user("What is the weather in Oslo?"))
            .tool_config(tools.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{model}: {e:?}"));
        assert_eq!(asked.stop_reason(), &StopReason::ToolUse, "{model}");
        let ConverseOutput::Message(message) = asked.output().unwrap() else { panic!() };
        let call = message
            .content
            .iter()
            .find_map(|block| block.as_tool_use().ok())
            .unwrap_or_else(|| panic!("{model}: {message:?}"));
        assert_eq!(call.name(), "weather");
        let input = json_of(call.input());
        assert!(input["city"].is_string(), "{model}: {input}");

        let result = ToolResultBlock::builder()
            .tool_use_id(call.tool_use_id())
            .content(ToolResultContentBlock::Text("3 degrees and clear".to_owned()))
            .build()
            .unwrap();
        let answered = sdk
            .converse()
            .model_id(model)
            .messages(user("What is the weather in Oslo?"))
            .messages(message.clone())
            .messages(
                Message::builder()
                    .role(ConversationRole::User)
                    .content(ContentBlock::ToolResult(result))
                    .build()
                    .unwrap(),
            )
            .tool_config(tools.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{model}: {e:?}"));
        assert_eq!(answered.stop_reason(), &StopReason::EndTurn, "{model}");
        assert!(!answer_text(answered.output().unwrap()).is_empty(), "{model}");

        // Streamed, the call is a tool-use block: its start, then its input in pieces.
        let mut stream = sdk
            .converse_stream()
            .model_id(model)
            .messages(user("What is the weather in Oslo?"))
            .tool_config(tools.clone())
            .send()
            .await
            .unwrap();
        let (mut started, mut input, mut stop) = (None, String::new(), None);
        while let Some(event) = stream.stream.recv().await.unwrap() {
            match event {
                ConverseStreamOutput::ContentBlockStart(start) => {
                    if let Some(ContentBlockStart::ToolUse(tool_use)) = start.start() {
                        started =
                            Some((tool_use.tool_use_id().to_owned(), tool_use.name().to_owned()));
                    }
                }
                ConverseStreamOutput::ContentBlockDelta(delta) => {
                    if let Some(ContentBlockDelta::ToolUse(piece)) = delta.delta() {
                        input.push_str(piece.input());
                    }
                }
                ConverseStreamOutput::MessageStop(message_stop) => {
                    stop = Some(message_stop.stop_reason().clone());
                }
                _ => {}
            }
        }
        let (id, name) = started.unwrap_or_else(|| panic!("{model}: no tool-use block"));
        assert_eq!((id.as_str(), name.as_str()), (call.tool_use_id(), "weather"), "{model}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&input).unwrap(), input_value(call));
        assert_eq!(stop, Some(StopReason::ToolUse));
    }

    // An image block reaches a model that takes images.
    let png = Blob::new(PNG_1X1.to_vec());
    let image = ImageBlock::builder()
        .format(ImageFormat::Png)
        .source(ImageSource::Bytes(png))
        .build()
        .unwrap();
    let message = Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text("What is in this picture?".to_owned()))
        .content(ContentBlock::Image(image))
        .build()
        .unwrap();
    for model in ["claude-3-haiku", "nova-lite"] {
        let answer = sdk.converse().model_id(model).messages(message.clone()).send().await.unwrap();
        assert!(!answer_text(answer.output().unwrap()).is_empty(), "{model}");
    }
    // Titan takes neither: a ValidationException naming what it cannot honour.
    let error = sdk.converse().model_id("titan").messages(message).send().await.unwrap_err();
    let error = error.into_service_error();
    assert_eq!(error.code(), Some("ValidationException"));
    assert!(error.message().unwrap().contains("image"), "{error:?}");
    let error = sdk
        .converse()
        .model_id("titan")
        .messages(user("Hi"))
        .tool_config(tools)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(error.code(), Some("ValidationException"));
    assert!(error.message().unwrap().contains("tools"), "{error:?}");
}

#[tokio::test]
async fn converse_errors_and_count_tokens_in_bedrock_s_shapes() {
    let h = start().await;
    let sdk = client(&h.base_url);
    let error = sdk
        .converse()
        .model_id("not-configured")
        .messages(user("Hi"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(error.code(), Some("ResourceNotFoundException"));
    let error = sdk
        .converse()
        .model_id("claude-3-haiku")
        .messages(user("Hi"))
        .inference_config(InferenceConfiguration::builder().temperature(7.0).build())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(error.code(), Some("ValidationException"), "{error:?}");
    assert!(error.message().unwrap().contains("temperature"), "{error:?}");

    // Claude 3 Haiku does not count tokens on Bedrock: the count is the gateway's estimate,
    // and says so; a longer conversation counts more.
    let count = |text: &'static str| {
        let sdk = sdk.clone();
        async move {
            let request = ConverseTokensRequest::builder().messages(user(text)).build();
            let output = sdk
                .count_tokens()
                .model_id("claude-3-haiku")
                .input(CountTokensInput::Converse(request))
                .send()
                .await
                .unwrap();
            output.input_tokens()
        }
    };
    let short = count("Hi").await;
    let long =
        count("Tell me everything about the harbor at night, the boats and the lights.").await;
    assert!(short > 0 && long > short, "{short} {long}");
    let (status, headers, body) = h
        .post(
            "/model/claude-3-haiku/count-tokens",
            &json!({"input": {"converse": {"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-gateway-token-count-source"], "estimate");
    assert_eq!(body["inputTokens"], short);
}

#[tokio::test]
async fn count_tokens_is_bedrock_s_count_where_the_model_counts_else_the_estimate() {
    let models = format!(
        "{MODELS}\n[models.claude-3-5-haiku]\nmodel_id = \"us.anthropic.claude-3-5-haiku-20241022-v1:0\"\n"
    );
    let h = Harness::start_with("max_attempts = 1\nfirst_byte_timeout_ms = 500\n", &models).await;
    let sdk = client(&h.base_url);
    let text = "How many tokens does this question about the harbor at night use?";
    let system = SystemContentBlock::Text("Be brief.".to_owned());

    // A `converse` input: Bedrock's count, what Converse reports for the same request.
    let request =
        ConverseTokensRequest::builder().messages(user(text)).system(system.clone()).build();
    let counted = sdk
        .count_tokens()
        .model_id("claude-3-5-haiku")
        .input(CountTokensInput::Converse(request))
        .send()
        .await
        .unwrap();
    let answered = sdk
        .converse()
        .model_id("claude-3-5-haiku")
        .messages(user(text))
        .system(system)
        .send()
        .await
        .unwrap();
    assert_eq!(counted.input_tokens(), answered.usage().unwrap().input_tokens());
    let converse_input = json!({"input": {"converse": {
        "messages": [{"role": "user", "content": [{"text": text}]}],
        "system": [{"text": "Be brief."}]}}});
    let (status, headers, body) =
        h.post("/model/claude-3-5-haiku/count-tokens", &converse_input).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-gateway-token-count-source"], "bedrock");
    assert_eq!(body, json!({"inputTokens": counted.input_tokens()}));

    // An `invokeModel` input: the caller's body as it is, counted as InvokeModel reports it.
    let claude = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
        "messages": [{"role": "user", "content": "Count the words of this short sentence."}]});
    let encoded = base64::engine::general_purpose::STANDARD.encode(claude.to_string());
    let invoke_input = json!({"input": {"invokeModel": {"body": encoded}}});
    let (status, headers, body) =
        h.post("/model/claude-3-5-haiku/count-tokens", &invoke_input).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-gateway-token-count-source"], "bedrock");
    let (status, invoked, answer) = h.post("/model/claude-3-5-haiku/invoke", &claude).await;
    assert_eq!(status, 200, "{answer}");
    let reported: u64 =
        invoked["x-amzn-bedrock-input-token-count"].to_str().unwrap().parse().unwrap();
    assert_eq!(body, json!({"inputTokens": reported}));

    // A Bedrock that does not answer in time: the estimate.
    let slow = json!({"first_byte_latency_ms": 3000});
    h.sim.set_behavior(
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        serde_json::from_value(slow).unwrap(),
    );
    let (status, headers, body) =
        h.post("/model/claude-3-5-haiku/count-tokens", &converse_input).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-gateway-token-count-source"], "estimate");
    h.sim.clear_behaviors();

    // A model that does not count (Nova): the estimate; an error Bedrock answers with
    // otherwise is the answer, in Bedrock's encoding.
    let nova = json!({"messages": [{"role": "user", "content": [{"text": "Hi"}]}]});
    let encoded = base64::engine::general_purpose::STANDARD.encode(nova.to_string());
    let (status, headers, body) = h
        .post(
            "/model/nova-lite/count-tokens",
            &json!({"input": {"invokeModel": {"body": encoded}}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-gateway-token-count-source"], "estimate");
    let denied = json!({"fault": {"error": "AccessDeniedException"}, "fault_times": 1});
    h.sim.set_behavior(
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        serde_json::from_value(denied).unwrap(),
    );
    let error = sdk
        .count_tokens()
        .model_id("claude-3-5-haiku")
        .input(CountTokensInput::Converse(
            ConverseTokensRequest::builder().messages(user("Hi")).build(),
        ))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(error.code(), Some("AccessDeniedException"), "{error:?}");
    h.sim.clear_behaviors();
}

/// A 1×1 PNG.
const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

fn input_value(call: &ToolUseBlock) -> serde_json::Value {
    json_of(call.input())
}

/// A JSON value as the SDK's document type.
fn document(value: &serde_json::Value) -> Document {
    match value {
        serde_json::Value::Null => Document::Null,
        serde_json::Value::Bool(b) => Document::Bool(*b),
        serde_json::Value::Number(n) => match n.as_u64() {
            Some(u) => Document::Number(aws_smithy_types::Number::PosInt(u)),
            None => Document::Number(aws_smithy_types::Number::Float(n.as_f64().unwrap())),
        },
        serde_json::Value::String(s) => Document::String(s.clone()),
        serde_json::Value::Array(items) => Document::Array(items.iter().map(document).collect()),
        serde_json::Value::Object(map) => {
            Document::Object(map.iter().map(|(k, v)| (k.clone(), document(v))).collect())
        }
    }
}

/// The SDK's document type as a JSON value.
fn json_of(document: &Document) -> serde_json::Value {
    match document {
        Document::Null => serde_json::Value::Null,
        Document::Bool(b) => json!(b),
        Document::Number(n) => match *n {
            aws_smithy_types::Number::PosInt(u) => json!(u),
            aws_smithy_types::Number::NegInt(i) => json!(i),
            aws_smithy_types::Number::Float(f) => json!(f),
        },
        Document::String(s) => json!(s),
        Document::Array(items) => items.iter().map(json_of).collect(),
        Document::Object(map) => {
            serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), json_of(v))).collect())
        }
    }
}
