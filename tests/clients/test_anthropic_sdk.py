"""The gateway's Anthropic Messages API (`/v1/messages`, `/v1/messages/count_tokens`) through
the official `anthropic` SDK: whole and streamed answers on Claude and on other families, a
tool round trip, token counting, and errors as the SDK's own exceptions."""

from __future__ import annotations

import anthropic
import pytest

MESSAGES = [{"role": "user", "content": "Tell me about the harbor at night."}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather of a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
    },
}


@pytest.fixture
def client(gateway) -> anthropic.Anthropic:
    """The Anthropic SDK pointed at the gateway (which takes no key in the test config: the
    SDK sends this one as `x-api-key`); no retries, so errors surface at once."""
    client = anthropic.Anthropic(base_url=gateway, api_key="sk-test", max_retries=0, timeout=30)
    yield client
    client.close()


@pytest.mark.parametrize("model", ["claude-3", "nova-lite", "titan"])
def test_create_and_stream_agree(client, model):
    message = client.messages.create(
        model=model, max_tokens=200, system="You are terse.", messages=MESSAGES
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == model
    assert message.stop_reason == "end_turn"
    assert [block.type for block in message.content] == ["text"]
    text = message.content[0].text
    assert text
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0

    with client.messages.stream(
        model=model, max_tokens=200, system="You are terse.", messages=MESSAGES
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == text
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == message.usage.output_tokens
    assert final.usage.input_tokens == message.usage.input_tokens


def test_a_tool_round_trip(client):
    question = {"role": "user", "content": "What is the weather in Oslo?"}
    called = client.messages.create(
        model="claude-3", max_tokens=300, tools=[WEATHER_TOOL], messages=[question]
    )
    assert called.stop_reason == "tool_use"
    calls = [block for block in called.content if block.type == "tool_use"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather" and call.id.startswith("toolu_")
    assert call.input["unit"] == "celsius" and isinstance(call.input["city"], str)

    # The same call streamed: the SDK assembles the input from the JSON pieces.
    with client.messages.stream(
        model="claude-3", max_tokens=300, tools=[WEATHER_TOOL], messages=[question]
    ) as stream:
        final = stream.get_final_message()
    streamed_calls = [block for block in final.content if block.type == "tool_use"]
    assert [(c.id, c.name, c.input) for c in streamed_calls] == [(call.id, call.name, call.input)]
    assert final.stop_reason == "tool_use"

    answered = client.messages.create(
        model="claude-3",
        max_tokens=300,
        tools=[WEATHER_TOOL],
        messages=[
            question,
            {"role": "assistant", "content": called.content},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "3 degrees, windy"}
                ],
            },
        ],
    )
    assert answered.stop_reason == "end_turn"
    assert answered.content[0].type == "text" and answered.content[0].text


def test_count_tokens(client):
    short = client.messages.count_tokens(model="claude-3", messages=MESSAGES)
    longer = client.messages.count_tokens(
        model="claude-3", system="Be brief. " * 200, messages=MESSAGES, tools=[WEATHER_TOOL]
    )
    assert 0 < short.input_tokens < longer.input_tokens


def test_errors_are_the_sdk_s_exceptions(client):
    with pytest.raises(anthropic.NotFoundError) as raised:
        client.messages.create(model="no-such-model", max_tokens=5, messages=MESSAGES)
    assert raised.value.body["type"] == "error"
    assert raised.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(
            model="claude-3", max_tokens=5, messages=MESSAGES, extra_body={"brand_new": 1}
        )
    assert raised.value.body["error"]["type"] == "invalid_request_error"
    assert "brand_new" in raised.value.body["error"]["message"]
    with pytest.raises(anthropic.UnprocessableEntityError) as raised:
        client.messages.create(model="titan", max_tokens=5, messages=MESSAGES, tools=[WEATHER_TOOL])
    assert raised.value.body["error"]["type"] == "invalid_request_error"
