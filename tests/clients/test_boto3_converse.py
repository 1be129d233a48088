"""boto3's `converse`, `converse_stream` and `count_tokens` against the gateway, which
translates them to each family's InvokeModel: text, a system prompt, an image, a tool round
trip, and errors in Bedrock's shapes."""

from __future__ import annotations

import base64
import json

import pytest
from botocore.exceptions import ClientError

from conftest import MODELS

# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGMAAQAABQABDQottAAAAABJRU5ErkJggg=="
)

WEATHER_TOOL = {
    "toolSpec": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "inputSchema": {
            "json": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            }
        },
    }
}

QUESTION = [{"role": "user", "content": [{"text": "What is the weather in Oslo?"}]}]


def answer_text(response: dict) -> str:
    return "".join(block.get("text", "") for block in response["output"]["message"]["content"])


def stream_events(response: dict) -> list[dict]:
    return list(response["stream"])


@pytest.mark.parametrize("model", ["claude-3", "nova-lite", "titan", "llama3"])
def test_converse_and_converse_stream_agree(bedrock, model):
    request = dict(
        modelId=model,
        system=[{"text": "You are terse."}],
        messages=[{"role": "user", "content": [{"text": "Tell me about the harbor."}]}],
        inferenceConfig={"maxTokens": 200, "temperature": 0.5},
    )
    whole = bedrock.converse(**request)
    text = answer_text(whole)
    assert text.strip(), whole
    assert whole["stopReason"] == "end_turn"
    usage = whole["usage"]
    assert usage["inputTokens"] > 0 and usage["outputTokens"] > 0
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert whole["metrics"]["latencyMs"] >= 0

    events = stream_events(bedrock.converse_stream(**request))
    assert list(events[0]) == ["messageStart"] and events[0]["messageStart"]["role"] == "assistant"
    streamed = "".join(
        e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e
    )
    assert streamed == text
    assert [list(e)[0] for e in events[-3:]] == ["contentBlockStop", "messageStop", "metadata"]
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == usage["outputTokens"]

    # By the Bedrock model id the alias routes to: the same model, the same answer.
    assert answer_text(bedrock.converse(**{**request, "modelId": MODELS[model]})) == text


@pytest.mark.parametrize("model", ["claude-3", "nova-lite"])
def test_a_tool_round_trip(bedrock, model):
    tool_config = {"tools": [WEATHER_TOOL]}
    asked = bedrock.converse(modelId=model, messages=QUESTION, toolConfig=tool_config)
    assert asked["stopReason"] == "tool_use", asked
    message = asked["output"]["message"]
    calls = [block["toolUse"] for block in message["content"] if "toolUse" in block]
    assert len(calls) == 1 and calls[0]["name"] == "get_weather"
    assert isinstance(calls[0]["input"]["city"], str)

    result = {
        "toolResult": {
            "toolUseId": calls[0]["toolUseId"],
            "content": [{"json": {"temperature_c": 3, "sky": "clear"}}],
        }
    }
    history = QUESTION + [message, {"role": "user", "content": [result]}]
    answered = bedrock.converse(modelId=model, messages=history, toolConfig=tool_config)
    assert answered["stopReason"] == "end_turn"
    assert answer_text(answered).strip()

    # Streamed: a tool-use block start, its input in pieces, then `tool_use`.
    events = stream_events(
        bedrock.converse_stream(modelId=model, messages=QUESTION, toolConfig=tool_config)
    )
    starts = [e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e]
    assert starts == [{"toolUseId": calls[0]["toolUseId"], "name": "get_weather"}]
    pieces = [
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "toolUse" in e.get("contentBlockDelta", {}).get("delta", {})
    ]
    assert json.loads("".join(pieces)) == calls[0]["input"]
    assert [e["messageStop"]["stopReason"] for e in events if "messageStop" in e] == ["tool_use"]


@pytest.mark.parametrize("model", ["claude-3", "nova-lite"])
def test_an_image_is_read(bedrock, model):
    content = [{"text": "What is in this picture?"}, {"image": {"format": "png", "source": {"bytes": PNG}}}]
    response = bedrock.converse(modelId=model, messages=[{"role": "user", "content": content}])
    assert answer_text(response).strip()


def test_what_a_family_cannot_honour_is_a_validation_exception(bedrock):
    with pytest.raises(bedrock.exceptions.ValidationException) as caught:
        bedrock.converse(modelId="titan", messages=QUESTION, toolConfig={"tools": [WEATHER_TOOL]})
    assert "tools" in caught.value.response["Error"]["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as caught:
        bedrock.converse(modelId="no-such-alias", messages=QUESTION)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_count_tokens_is_the_gateway_s_estimate(bedrock):
    def count(text: str) -> dict:
        return bedrock.count_tokens(
            modelId="claude-3",
            input={"converse": {"messages": [{"role": "user", "content": [{"text": text}]}]}},
        )

    short, long = count("Hi"), count("Tell me all about the harbor at night, its boats and lights.")
    assert 0 < short["inputTokens"] < long["inputTokens"]
    headers = short["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-gateway-token-count-source"] == "estimate"
