"""The gateway's OpenAI-compatible API (`/v1/chat/completions`, `/v1/completions`,
`/v1/embeddings`, `/v1/images/generations`, `/v1/models`) through the official `openai` SDK."""

from __future__ import annotations

import array
import base64
import json
import sys
import urllib.request

import openai
import pytest

from conftest import MODELS

CHAT_MODELS = ["titan", "claude-v2", "claude-3", "llama3", "nova-lite", "titan-arn"]
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Tell me about the harbor at night."},
]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chat(client, model, **fields):
    return client.chat.completions.create(model=model, messages=MESSAGES, **fields)


def stream_chat(client, model, **fields):
    """The chunks of a streamed chat completion, as a list."""
    chunks = client.chat.completions.create(model=model, messages=MESSAGES, stream=True, **fields)
    return list(chunks)


def chunk_text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def floats32(values) -> array.array:
    """`values` rounded to float32, the precision the gateway answers in."""
    return array.array("f", values)


def decode_base64_floats(text: str) -> array.array:
    """OpenAI's base64 embedding: little-endian float32s."""
    vector = array.array("f")
    vector.frombytes(base64.b64decode(text))
    if sys.byteorder == "big":
        vector.byteswap()
    return vector


def assert_openai_error(error: openai.APIStatusError, status: int) -> None:
    """The status and OpenAI's error shape `{"error": {"message", "type", "param", "code"}}`."""
    assert error.status_code == status
    body = error.response.json()
    assert set(body) == {"error"}, body
    assert {"message", "type", "param", "code"} <= set(body["error"]), body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body


# --- models --------------------------------------------------------------------------------


def test_models_lists_every_alias(openai_client):
    models = openai_client.models.list()
    assert sorted(model.id for model in models) == sorted(MODELS)
    assert all(model.object == "model" for model in models)


# --- chat completions ----------------------------------------------------------------------


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_chat_whole_and_streamed_answers_are_the_same(openai_client, model):
    whole = chat(openai_client, model, max_tokens=40, temperature=0.5, top_p=0.9, n=1, user="u-1")
    assert whole.object == "chat.completion"
    assert whole.id
    assert len(whole.choices) == 1
    choice = whole.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert whole.usage.prompt_tokens > 0
    assert whole.usage.completion_tokens > 0
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens

    chunks = stream_chat(openai_client, model, max_tokens=40, temperature=0.5, top_p=0.9)
    assert chunks, "no chunk"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1, "every chunk of one completion has the same id"
    assert chunk_text(chunks) == choice.message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    finishes = [reason for reason in finishes if reason is not None]
    assert finishes == [choice.finish_reason], "one finish_reason, on the last content chunk"
    assert chunks[-1].choices[0].finish_reason == choice.finish_reason
    assert all(c.usage is None for c in chunks), "usage only with stream_options.include_usage"


def test_chat_stream_with_include_usage_ends_with_a_usage_chunk(openai_client):
    whole = chat(openai_client, "claude-3", max_tokens=25)
    chunks = stream_chat(
        openai_client, "claude-3", max_tokens=25, stream_options={"include_usage": True}
    )
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.prompt_tokens == whole.usage.prompt_tokens > 0
    assert last.usage.completion_tokens == whole.usage.completion_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])
    assert chunk_text(chunks) == whole.choices[0].message.content


@pytest.mark.parametrize("limit_field", ["max_tokens", "max_completion_tokens"])
def test_chat_length_limit_is_finish_reason_length(openai_client, limit_field):
    whole = chat(openai_client, "claude-3", **{limit_field: 3})
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage.completion_tokens == 3
    assert len(whole.choices[0].message.content.split()) == 3

    chunks = stream_chat(openai_client, "claude-3", **{limit_field: 3})
    assert chunks[-1].choices[0].finish_reason == "length"
    assert chunk_text(chunks) == whole.choices[0].message.content


def test_chat_stop_sequence_cuts_the_answer(openai_client):
    free = chat(openai_client, "claude-3", max_tokens=30).choices[0].message.content
    stop = free.split()[4]
    expected = free[: free.index(stop)]
    answer = chat(openai_client, "claude-3", max_tokens=30, stop=[stop])
    assert answer.choices[0].message.content == expected
    assert answer.choices[0].finish_reason == "stop"
    streamed = stream_chat(openai_client, "claude-3", max_tokens=30, stop=stop)
    assert chunk_text(streamed) == expected
    assert streamed[-1].choices[0].finish_reason == "stop"


def test_chat_stream_is_server_sent_events_ending_with_done(gateway):
    """The wire format itself: `data: {chunk}` lines, then `data: [DONE]`."""
    body = json.dumps({"model": "titan", "messages": MESSAGES, "max_tokens": 10, "stream": True})
    request = urllib.request.Request(
        gateway + "/v1/chat/completions",
        data=body.encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer sk-test"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        data = [
            line[len("data: "):]
            for line in response.read().decode().splitlines()
            if line.startswith("data: ")
        ]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    assert chunks and all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)


# --- completions ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["titan", "claude-v2", "llama3"])
def test_completions_whole_and_streamed_answers_are_the_same(openai_client, model):
    prompt = "Once upon a time by the river"
    whole = openai_client.completions.create(model=model, prompt=prompt, max_tokens=30)
    assert whole.object == "text_completion"
    assert len(whole.choices) == 1
    text = whole.choices[0].text
    assert isinstance(text, str) and text.strip()
    assert whole.choices[0].finish_reason in ("stop", "length")
    assert whole.usage.prompt_tokens > 0
    assert whole.usage.completion_tokens > 0

    chunks = list(
        openai_client.completions.create(model=model, prompt=prompt, max_tokens=30, stream=True)
    )
    assert chunks
    assert "".join(c.choices[0].text for c in chunks if c.choices) == text
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason


def test_completions_length_limit(openai_client):
    whole = openai_client.completions.create(model="titan", prompt="Count with me", max_tokens=2)
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage.completion_tokens == 2


# --- embeddings ----------------------------------------------------------------------------


def test_embeddings_float_with_dimensions(openai_client):
    result = openai_client.embeddings.create(
        model="titan-embed", input="a quiet harbor", dimensions=256, encoding_format="float"
    )
    assert result.object == "list"
    assert len(result.data) == 1
    assert result.data[0].object == "embedding"
    assert result.data[0].index == 0
    vector = result.data[0].embedding
    assert len(vector) == 256
    assert all(isinstance(x, float) for x in vector)
    assert any(x != 0.0 for x in vector)
    assert result.usage.prompt_tokens > 0


def test_embeddings_list_input_keeps_order(openai_client):
    texts = ["first text", "second text", "third text"]
    batch = openai_client.embeddings.create(
        model="titan-embed", input=texts, dimensions=512, encoding_format="float"
    )
    assert [item.index for item in batch.data] == [0, 1, 2]
    for text, item in zip(texts, batch.data):
        single = openai_client.embeddings.create(
            model="titan-embed", input=text, dimensions=512, encoding_format="float"
        )
        assert len(item.embedding) == 512
        assert floats32(item.embedding) == floats32(single.data[0].embedding)
    assert batch.data[0].embedding != batch.data[1].embedding


def test_embeddings_base64_is_the_float_vector(openai_client):
    as_floats = openai_client.embeddings.create(
        model="titan-embed", input="a quiet harbor", dimensions=512, encoding_format="float"
    )
    as_base64 = openai_client.embeddings.create(
        model="titan-embed", input="a quiet harbor", dimensions=512, encoding_format="base64"
    )
    encoded = as_base64.data[0].embedding
    assert isinstance(encoded, str)
    decoded = decode_base64_floats(encoded)
    assert len(decoded) == 512
    assert decoded == floats32(as_floats.data[0].embedding)


def test_embeddings_sdk_default_encoding(openai_client):
    """Without `encoding_format` the SDK asks for base64 and decodes it itself."""
    result = openai_client.embeddings.create(model="titan-embed", input="hello", dimensions=1024)
    assert len(result.data[0].embedding) == 1024
    assert all(isinstance(x, float) for x in result.data[0].embedding)


# --- images --------------------------------------------------------------------------------


def test_images_b64_json_is_a_png(openai_client):
    result = openai_client.images.generate(
        model="titan-image", prompt="a lighthouse at dawn", n=1, response_format="b64_json"
    )
    assert len(result.data) == 1
    image = base64.b64decode(result.data[0].b64_json)
    assert image.startswith(PNG_SIGNATURE)
    assert image[12:16] == b"IHDR"
    width, height = int.from_bytes(image[16:20], "big"), int.from_bytes(image[20:24], "big")
    assert width > 0 and height > 0


# --- errors --------------------------------------------------------------------------------


def test_unknown_model_is_not_found(openai_client):
    with pytest.raises(openai.NotFoundError) as caught:
        chat(openai_client, "no-such-model")
    assert_openai_error(caught.value, 404)
    with pytest.raises(openai.NotFoundError):
        openai_client.embeddings.create(model="no-such-model", input="x", encoding_format="float")


def test_bad_request_is_bad_request(openai_client):
    with pytest.raises(openai.BadRequestError) as caught:
        chat(openai_client, "claude-3", max_tokens=-5)
    assert_openai_error(caught.value, 400)


@pytest.mark.parametrize(
    "fields",
    [
        {"n": 2},
        {"logprobs": True},
        {
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "get_time", "parameters": {"type": "object"}},
                }
            ]
        },
    ],
    ids=["n=2", "logprobs", "tools"],
)
def test_unsupported_field_is_refused(openai_client, fields):
    # Titan has no tools: they are refused (422 naming the family), never dropped.
    with pytest.raises((openai.BadRequestError, openai.UnprocessableEntityError)) as caught:
        chat(openai_client, "titan", **fields)
    assert_openai_error(caught.value, caught.value.status_code)
    assert caught.value.status_code in (400, 422)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_upstream_throttling_is_rate_limit_error(openai_client, simulator, stream):
    simulator.set_behavior(MODELS["claude-3"], {"fault": {"error": "ThrottlingException"}})
    with pytest.raises(openai.RateLimitError) as caught:
        result = chat(openai_client, "claude-3", max_tokens=10, stream=stream)
        if stream:
            list(result)
    assert_openai_error(caught.value, 429)
