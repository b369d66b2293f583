"""Converse's JSON wire format to boto3 arguments and back, via botocore's own shapes."""

from __future__ import annotations

import base64

import pytest
from tollgate.adapters.bedrock import request_from_wire, response_to_wire, validate_request
from tollgate.errors import BadRequest

PNG = b"\x89PNG\r\n\x1a\n"


def test_blobs_arrive_base64_and_become_bytes() -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "what is this?"},
                    {"image": {"format": "png", "source": {"bytes": base64.b64encode(PNG).decode()}}},
                ],
            }
        ],
        "modelId": "ignored: the gateway picks the model",
        "additionalModelRequestFields": {"top_k": 5, "nested": {"bytes": "not a blob: a document"}},
    }
    params = request_from_wire(body)
    assert params["messages"][0]["content"][1]["image"]["source"]["bytes"] == PNG
    assert "modelId" not in params
    assert params["additionalModelRequestFields"] == {"top_k": 5, "nested": {"bytes": "not a blob: a document"}}
    validate_request(params)


def test_bad_base64_and_wrong_types_are_400s_naming_the_place() -> None:
    with pytest.raises(
        BadRequest, match=r"body\.messages\[0\]\.content\[0\]\.image\.source\.bytes is not valid base64"
    ):
        request_from_wire(
            {"messages": [{"role": "user", "content": [{"image": {"format": "png", "source": {"bytes": "***"}}}]}]}
        )
    with pytest.raises(BadRequest, match=r"body\.messages must be a JSON array"):
        request_from_wire({"messages": "hello"})
    with pytest.raises(BadRequest, match="JSON object"):
        request_from_wire(["not", "an", "object"])


def test_botocore_validation_names_unknown_and_missing_fields() -> None:
    with pytest.raises(BadRequest, match="'messages' is required"):
        validate_request({})
    with pytest.raises(BadRequest, match='Unknown parameter in input: "prompt"'):
        validate_request({"messages": [{"role": "user", "content": [{"text": "x"}]}], "prompt": "x"})


def test_responses_go_back_in_wire_format() -> None:
    response = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"text": "hi"},
                    {"image": {"format": "png", "source": {"bytes": PNG}}},
                ],
            }
        },
        "stopReason": "end_turn",
        "usage": {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4},
        "metrics": {"latencyMs": 12},
        "ResponseMetadata": {"RequestId": "x"},
    }
    wire = response_to_wire(response)
    assert "ResponseMetadata" not in wire
    assert wire["output"]["message"]["content"][1]["image"]["source"]["bytes"] == base64.b64encode(PNG).decode()
    assert wire["usage"] == {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4}
