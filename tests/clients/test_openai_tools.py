"""The OpenAI SDK's chat completions with tools (a full round trip, whole and streamed), an
image part and structured output; LangChain's `bind_tools` and `with_structured_output` on
`ChatOpenAI`. All against the gateway, Claude and Nova behind it (the simulator calls the
tool while the last message is not a tool result, then answers in text)."""

from __future__ import annotations

import json

import pytest

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}
QUESTION = {"role": "user", "content": "What is the weather in Oslo?"}
PNG_DATA_URL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGMAAQAABQABDQottAAAAABJRU5ErkJggg=="
)


@pytest.mark.parametrize("model", ["claude-3", "nova-lite"])
def test_a_tool_round_trip(openai_client, model):
    asked = openai_client.chat.completions.create(model=model, messages=[QUESTION], tools=[WEATHER])
    choice = asked.choices[0]
    assert choice.finish_reason == "tool_calls", asked
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["city"], str) and arguments["unit"] == "c"

    result = {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 3}'}
    answered = openai_client.chat.completions.create(
        model=model, messages=[QUESTION, choice.message.model_dump(exclude_none=True), result], tools=[WEATHER]
    )
    assert answered.choices[0].finish_reason == "stop"
    assert answered.choices[0].message.content.strip()
    assert not answered.choices[0].message.tool_calls


@pytest.mark.parametrize("model", ["claude-3", "nova-lite"])
def test_a_streamed_tool_call_is_the_same_call(openai_client, model):
    whole = openai_client.chat.completions.create(model=model, messages=[QUESTION], tools=[WEATHER])
    (expected,) = whole.choices[0].message.tool_calls
    chunks = list(
        openai_client.chat.completions.create(
            model=model, messages=[QUESTION], tools=[WEATHER], stream=True
        )
    )
    pieces = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert pieces and all(piece.index == 0 for piece in pieces)
    assert pieces[0].id == expected.id and pieces[0].function.name == "get_weather"
    arguments = "".join(piece.function.arguments or "" for piece in pieces)
    assert json.loads(arguments) == json.loads(expected.function.arguments)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]


def test_the_sdk_s_stream_helper_accumulates_the_call(openai_client):
    with openai_client.chat.completions.stream(
        model="claude-3", messages=[QUESTION], tools=[WEATHER]
    ) as stream:
        final = stream.get_final_completion()
    (call,) = final.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["unit"] == "c"


@pytest.mark.parametrize("model", ["claude-3", "nova-lite"])
def test_an_image_part(openai_client, model):
    content = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": PNG_DATA_URL}},
    ]
    answer = openai_client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}]
    )
    assert answer.choices[0].message.content.strip()


def test_a_remote_image_url_is_refused_not_fetched(openai_client):
    import openai

    content = [{"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest"}}]
    with pytest.raises(openai.UnprocessableEntityError):
        openai_client.chat.completions.create(
            model="claude-3", messages=[{"role": "user", "content": content}]
        )


def test_structured_output_through_a_forced_tool_call(openai_client):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    }
    answer = openai_client.chat.completions.create(
        model="claude-3",
        messages=[{"role": "user", "content": "The largest city of Norway?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    parsed = json.loads(choice.message.content)
    assert isinstance(parsed["city"], str) and parsed["population"] == 1


def test_langchain_bind_tools_and_with_structured_output(gateway):
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel

    llm = ChatOpenAI(
        model="claude-3", base_url=gateway + "/v1", api_key="sk-test", max_retries=0, timeout=30
    )

    def get_weather(city: str) -> str:
        """The current weather in a city."""
        return f"3 degrees in {city}"

    with_tools = llm.bind_tools([get_weather])
    question = HumanMessage("What is the weather in Oslo?")
    asked = with_tools.invoke([question])
    (call,) = asked.tool_calls
    assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str)
    result = ToolMessage(get_weather(**call["args"]), tool_call_id=call["id"])
    answered = with_tools.invoke([question, asked, result])
    assert answered.content and not answered.tool_calls

    streamed = None
    for chunk in with_tools.stream([question]):
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed.tool_calls[0]["name"] == "get_weather"
    assert streamed.tool_calls[0]["args"] == call["args"]

    class City(BaseModel):
        """A city and its population."""

        name: str
        population: int

    for method in ["json_schema", "function_calling"]:
        city = llm.with_structured_output(City, method=method).invoke("The largest city of Norway?")
        assert isinstance(city, City) and isinstance(city.name, str), method


def test_langchain_on_the_responses_api(gateway):
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        model="claude-3",
        base_url=gateway + "/v1",
        api_key="sk-test",
        max_retries=0,
        timeout=30,
        use_responses_api=True,
    )
    answer = llm.invoke("Tell me about the harbor.")
    assert answer.text.strip()
    streamed = "".join(chunk.text for chunk in llm.stream("Tell me about the harbor."))
    assert streamed == answer.text

    def get_weather(city: str) -> str:
        """The current weather in a city."""
        return f"3 degrees in {city}"

    with_tools = llm.bind_tools([get_weather])
    question = HumanMessage("What is the weather in Oslo?")
    asked = with_tools.invoke([question])
    (call,) = asked.tool_calls
    assert call["name"] == "get_weather"
    result = ToolMessage(get_weather(**call["args"]), tool_call_id=call["id"])
    answered = with_tools.invoke([question, asked, result])
    assert answered.text.strip() and not answered.tool_calls
