"""The gateway's Bedrock-native passthrough (`/model/{modelId}/invoke` and
`/invoke-with-response-stream`) through boto3's `bedrock-runtime` client, with each model
family's own body, by alias, by plain model id and by ARN."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import pytest
from botocore.exceptions import ClientError, EventStreamError

from conftest import MODELS, bedrock_client

PROMPT = "Tell me about the harbor at night."


@dataclass(frozen=True)
class Family:
    """A model family's native body, and where its text sits in answers and stream chunks."""

    alias: str
    body: dict
    answer_text: Callable[[dict], str]
    chunk_text: Callable[[dict], str]


def nova_chunk_text(chunk: dict) -> str:
    return chunk.get("contentBlockDelta", {}).get("delta", {}).get("text", "")


def claude_messages_chunk_text(chunk: dict) -> str:
    if chunk.get("type") == "content_block_delta":
        return chunk["delta"].get("text", "")
    return ""


FAMILIES = {
    "titan_text": Family(
        alias="titan",
        body={"inputText": PROMPT, "textGenerationConfig": {"maxTokenCount": 30}},
        answer_text=lambda answer: answer["results"][0]["outputText"],
        chunk_text=lambda chunk: chunk.get("outputText") or "",
    ),
    "anthropic_claude_text": Family(
        alias="claude-v2",
        body={"prompt": f"\n\nHuman: {PROMPT}\n\nAssistant:", "max_tokens_to_sample": 30},
        answer_text=lambda answer: answer["completion"],
        chunk_text=lambda chunk: chunk.get("completion") or "",
    ),
    "anthropic_claude_messages": Family(
        alias="claude-3",
        body={
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 30,
            "system": "You are terse.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
        },
        answer_text=lambda answer: "".join(
            block["text"] for block in answer["content"] if block["type"] == "text"
        ),
        chunk_text=claude_messages_chunk_text,
    ),
    "meta_llama3": Family(
        alias="llama3",
        body={
            "prompt": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
            f"{PROMPT}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            "max_gen_len": 30,
        },
        answer_text=lambda answer: answer["generation"],
        chunk_text=lambda chunk: chunk.get("generation") or "",
    ),
    "amazon_nova": Family(
        alias="nova-lite",
        body={
            "schemaVersion": "messages-v1",
            "system": [{"text": "You are terse."}],
            "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
            "inferenceConfig": {"maxTokens": 30},
        },
        answer_text=lambda answer: "".join(
            block.get("text", "") for block in answer["output"]["message"]["content"]
        ),
        chunk_text=nova_chunk_text,
    ),
}

TITAN = FAMILIES["titan_text"]


def invoke(client, model_id: str, family: Family) -> tuple[str, dict]:
    """InvokeModel: the answer's text, checked for the passthrough's headers."""
    response = client.invoke_model(
        modelId=model_id,
        body=json.dumps(family.body),
        contentType="application/json",
        accept="application/json",
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["contentType"].startswith("application/json")
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert int(headers["x-amzn-bedrock-input-token-count"]) > 0, headers
    assert int(headers["x-amzn-bedrock-output-token-count"]) > 0, headers
    answer = json.loads(response["body"].read())
    text = family.answer_text(answer)
    assert isinstance(text, str) and text.strip(), answer
    return text, headers


def stream_chunks(client, model_id: str, family: Family) -> list[dict]:
    """InvokeModelWithResponseStream: every event's decoded `chunk.bytes`, in order."""
    response = client.invoke_model_with_response_stream(
        modelId=model_id, body=json.dumps(family.body), contentType="application/json"
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["contentType"] == "application/json"
    chunks = []
    for event in response["body"]:
        assert set(event) == {"chunk"}, event
        chunks.append(json.loads(event["chunk"]["bytes"]))
    return chunks


def stream_text(client, model_id: str, family: Family) -> str:
    chunks = stream_chunks(client, model_id, family)
    assert len(chunks) > 1, chunks
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["inputTokenCount"] > 0 and metrics["outputTokenCount"] > 0, metrics
    assert all("amazon-bedrock-invocationMetrics" not in chunk for chunk in chunks[:-1])
    return "".join(family.chunk_text(chunk) for chunk in chunks)


# --- answers -------------------------------------------------------------------------------


@pytest.mark.parametrize("family_id", FAMILIES)
def test_invoke_and_stream_by_alias_and_by_model_id(bedrock, family_id):
    family = FAMILIES[family_id]
    by_alias, _ = invoke(bedrock, family.alias, family)
    by_model_id, _ = invoke(bedrock, MODELS[family.alias], family)
    assert by_model_id == by_alias
    assert stream_text(bedrock, family.alias, family) == by_alias
    assert stream_text(bedrock, MODELS[family.alias], family) == by_alias


def test_invoke_and_stream_by_arn(bedrock):
    """The ARN alias's model id, sent as the ARN itself (percent-encoded `:` and `/`)."""
    arn = MODELS["titan-arn"]
    assert arn.startswith("arn:aws:bedrock:")
    by_arn, _ = invoke(bedrock, arn, TITAN)
    assert by_arn == invoke(bedrock, "titan-arn", TITAN)[0]
    assert by_arn == invoke(bedrock, "titan", TITAN)[0], "the same Bedrock model answers"
    assert stream_text(bedrock, arn, TITAN) == by_arn


def test_bearer_token_from_the_environment(gateway_tls, monkeypatch):
    """boto3 sends `Authorization: Bearer <AWS_BEARER_TOKEN_BEDROCK>` instead of SigV4. It
    sends a bearer token over HTTPS only, so this client reaches the gateway through a TLS
    front (a load balancer's part in a deployment)."""
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key-test")
    client = bedrock_client(gateway_tls.url, verify=gateway_tls.ca_file)
    sent = []
    client.meta.events.register(
        "before-send.bedrock-runtime.*",
        lambda request, **_: sent.append(request.headers.get("Authorization")),
    )
    text, _ = invoke(client, "titan", TITAN)
    assert stream_text(client, "titan", TITAN) == text
    assert [header.decode() if isinstance(header, bytes) else header for header in sent] == [
        "Bearer bedrock-api-key-test"
    ] * 2


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", ["amazon.titan-text-lite-v1", "no-such-alias"])
def test_unconfigured_model_is_refused(bedrock, model_id):
    for call in (bedrock.invoke_model, bedrock.invoke_model_with_response_stream):
        with pytest.raises(ClientError) as caught:
            call(modelId=model_id, body=json.dumps(TITAN.body), contentType="application/json")
        error = caught.value.response
        assert error["Error"]["Code"] == "ResourceNotFoundException", error
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert model_id in error["Error"]["Message"], error


def test_bedrock_validation_error_passes_through(bedrock):
    """A Titan body sent to a Claude model: Bedrock's own ValidationException, as it is."""
    with pytest.raises(bedrock.exceptions.ValidationException) as caught:
        bedrock.invoke_model(
            modelId="claude-3", body=json.dumps(TITAN.body), contentType="application/json"
        )
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert caught.value.response["Error"]["Message"]


def test_throttling_is_throttling_exception(bedrock, simulator):
    simulator.set_behavior(MODELS["titan"], {"fault": {"error": "ThrottlingException"}})
    for call in (bedrock.invoke_model, bedrock.invoke_model_with_response_stream):
        with pytest.raises(bedrock.exceptions.ThrottlingException) as caught:
            call(modelId="titan", body=json.dumps(TITAN.body), contentType="application/json")
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert caught.value.response["Error"]["Code"] == "ThrottlingException"


def test_throttling_inside_the_stream_raises_while_iterating(bedrock, simulator):
    simulator.set_behavior(
        MODELS["claude-3"], {"fault": {"error": "ThrottlingException", "after_chunks": 3}}
    )
    family = FAMILIES["anthropic_claude_messages"]
    response = bedrock.invoke_model_with_response_stream(
        modelId="claude-3", body=json.dumps(family.body), contentType="application/json"
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    received = []
    with pytest.raises(EventStreamError) as caught:
        for event in response["body"]:
            received.append(json.loads(event["chunk"]["bytes"]))
    assert len(received) == 3, received
    assert caught.value.response["Error"]["Code"] == "throttlingException"
    assert caught.value.response["Error"]["Message"]
