"""The gateway's Responses API (`/v1/responses`) and `GET /v1/models/{id}` through the
official `openai` SDK: `responses.create` whole and streamed, `responses.stream`, a
function-call round trip on Claude, a conversation continued by `previous_response_id`
with `responses.retrieve` and `responses.delete` (the suite's gateway has the store on,
`conftest.py`), and `models.retrieve`."""

from __future__ import annotations

import json

import openai
import pytest

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.mark.parametrize("model", ["claude-3", "nova-lite", "llama3"])
def test_responses_create_whole_and_streamed_agree(openai_client, model):
    response = openai_client.responses.create(
        model=model, instructions="Be terse.", input="Tell me about tides", max_output_tokens=200
    )
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status == "completed" and response.model == model
    assert response.output_text
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens

    events = list(
        openai_client.responses.create(
            model=model, instructions="Be terse.", input="Tell me about tides",
            max_output_tokens=200, stream=True,
        )
    )
    assert [event.type for event in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1].type == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == response.output_text
    assert events[-1].response.output_text == response.output_text


def test_responses_stream_helper_accumulates_the_answer(openai_client):
    with openai_client.responses.stream(model="claude-3", input="Tell me about tides") as stream:
        deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert final.status == "completed"
    assert final.output_text == deltas and deltas


def test_a_function_call_round_trip(openai_client):
    first = openai_client.responses.create(
        model="claude-3", input="Weather in Oslo?", tools=[WEATHER_TOOL]
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather" and call.status == "completed"
    assert isinstance(json.loads(call.arguments)["city"], str)

    with openai_client.responses.stream(
        model="claude-3", input="Weather in Oslo?", tools=[WEATHER_TOOL]
    ) as stream:
        pieces = "".join(
            e.delta for e in stream if e.type == "response.function_call_arguments.delta"
        )
        streamed = stream.get_final_response()
    streamed_call = [item for item in streamed.output if item.type == "function_call"][0]
    assert pieces == streamed_call.arguments == call.arguments

    second = openai_client.responses.create(
        model="claude-3",
        tools=[WEATHER_TOOL],
        input=[
            {"role": "user", "content": "Weather in Oslo?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name,
             "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "12 C, sunny"},
        ],
    )
    assert second.output_text
    assert all(item.type == "message" for item in second.output)


def test_a_conversation_is_continued_retrieved_and_deleted(openai_client):
    first = openai_client.responses.create(
        model="claude-3", instructions="Be terse.", input="Tell me about tides"
    )
    assert first.store is True
    second = openai_client.responses.create(
        model="claude-3", previous_response_id=first.id, input="And the moon?"
    )
    assert second.previous_response_id == first.id and second.output_text
    # The same answer as the whole conversation sent again (without the instructions,
    # which OpenAI does not carry over), so the model saw the first turn.
    again = openai_client.responses.create(
        model="claude-3",
        store=False,
        input=[
            {"role": "user", "content": "Tell me about tides"},
            {"role": "assistant", "content": first.output_text},
            {"role": "user", "content": "And the moon?"},
        ],
    )
    assert again.store is False
    assert (again.output_text, again.usage.input_tokens) == (
        second.output_text,
        second.usage.input_tokens,
    )

    with openai_client.responses.stream(
        model="claude-3", previous_response_id=second.id, input="Thanks"
    ) as stream:
        streamed = stream.get_final_response()
    retrieved = openai_client.responses.retrieve(streamed.id)
    assert (retrieved.id, retrieved.output_text) == (streamed.id, streamed.output_text)
    assert retrieved.previous_response_id == second.id

    openai_client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError) as missing:
        openai_client.responses.create(
            model="claude-3", previous_response_id=first.id, input="Hi"
        )
    assert missing.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.retrieve(again.id)


def test_unsupported_requests_are_refused_clearly(openai_client):
    with pytest.raises(openai.BadRequestError) as refused:
        openai_client.responses.create(
            model="claude-3", input=[{"type": "item_reference", "id": "msg_1"}]
        )
    assert refused.value.body["param"] == "input"
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.create(model="no-such-model", input="Hi")


def test_models_retrieve(openai_client):
    model = openai_client.models.retrieve("claude-3")
    assert (model.id, model.object, model.owned_by) == ("claude-3", "model", "bedrock")
    with pytest.raises(openai.NotFoundError) as missing:
        openai_client.models.retrieve("no-such-model")
    assert missing.value.body["code"] == "model_not_found"
