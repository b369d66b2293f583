"""The Bedrock stand-in, driven by real boto3 clients over HTTP, as Tollgate's code drives Bedrock."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tollgate_local import bedrock as bedrock_module
from tollgate_local.bedrock import BedrockStandIn, StandInServer

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_bedrock_runtime.type_defs import MessageTypeDef

REGION = "us-east-1"
ACCOUNT = "123456789012"
HAIKU_35 = "anthropic.claude-3-5-haiku-20241022-v1:0"
HAIKU_3 = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
FOUNDATION_ARN = f"arn:aws:bedrock:{REGION}::foundation-model/{HAIKU_35}"
US_PROFILE_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/us.{HAIKU_35}"
NO_RETRIES = Config(retries={"max_attempts": 1})
NO_FAULTS = {
    "throttle_rate": 0.0,
    "error_rate": 0.0,
    "latency_ms": 0,
    "priority_downgrade_rate": 0.0,
    "reserved_overflow_rate": 0.0,
    "latency_fallback_rate": 0.0,
}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> BedrockStandIn:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK", raising=False)
    return BedrockStandIn(region=REGION, account_id=ACCOUNT, seed=7)


@pytest.fixture
def server(standin: BedrockStandIn) -> Iterator[StandInServer]:
    running = standin.serve(port=0)
    yield running
    running.stop()


def _client(service: str, url: str, config: Config = NO_RETRIES) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=config,
    )


@pytest.fixture
def bedrock(server: StandInServer) -> BedrockClient:
    client: BedrockClient = _client("bedrock", server.url)
    return client


@pytest.fixture
def runtime(server: StandInServer) -> BedrockRuntimeClient:
    client: BedrockRuntimeClient = _client("bedrock-runtime", server.url)
    return client


@pytest.fixture
def lax_runtime(server: StandInServer) -> BedrockRuntimeClient:
    """A client that sends what botocore would refuse, so the server's own validation is tested."""
    client: BedrockRuntimeClient = _client(
        "bedrock-runtime", server.url, Config(retries={"max_attempts": 1}, parameter_validation=False)
    )
    return client


@pytest.fixture
def profile_arn(bedrock: BedrockClient) -> str:
    created = bedrock.create_inference_profile(
        inferenceProfileName="acme-chat", modelSource={"copyFrom": US_PROFILE_ARN}
    )
    return created["inferenceProfileArn"]


def _user(text: str) -> MessageTypeDef:
    return {"role": "user", "content": [{"text": text}]}


def _error_code(error: ClientError) -> str:
    return str(error.response["Error"]["Code"])


def _http(url: str, method: str = "GET", body: Any = None) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


# --------------------------------------------------------------------------- control plane


def test_application_profile_round_trip(standin: BedrockStandIn, bedrock: BedrockClient) -> None:
    # Given a profile created from an in-region foundation model, with a tag
    created = bedrock.create_inference_profile(
        inferenceProfileName="acme-chat",
        description="Tollgate profile chat of tenant acme",
        modelSource={"copyFrom": FOUNDATION_ARN},
        tags=[{"key": "tenant", "value": "acme"}],
    )
    arn = created["inferenceProfileArn"]
    profile_id = arn.rsplit("/", 1)[1]

    # Then it answers 201 with an application profile ARN and a 12-character id
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["status"] == "ACTIVE"
    assert arn.startswith(f"arn:aws:bedrock:{REGION}:{ACCOUNT}:application-inference-profile/")
    assert len(profile_id) == 12
    assert profile_id.isalnum()
    assert profile_id == profile_id.lower()

    # And Get by ARN and by id return the same profile
    by_arn = bedrock.get_inference_profile(inferenceProfileIdentifier=arn)
    by_id = bedrock.get_inference_profile(inferenceProfileIdentifier=profile_id)
    for got in (by_arn, by_id):
        assert got["inferenceProfileName"] == "acme-chat"
        assert got["inferenceProfileId"] == profile_id
        assert got["type"] == "APPLICATION"
        assert got["status"] == "ACTIVE"
        assert got["models"] == [{"modelArn": FOUNDATION_ARN}]
        assert got["createdAt"] <= got["updatedAt"]
    assert by_arn["description"] == "Tollgate profile chat of tenant acme"

    # And it is listed with typeEquals=APPLICATION, but not by default (system profiles only)
    applications = bedrock.list_inference_profiles(typeEquals="APPLICATION")["inferenceProfileSummaries"]
    assert [p["inferenceProfileArn"] for p in applications] == [arn]
    default = bedrock.list_inference_profiles()["inferenceProfileSummaries"]
    assert default
    assert {p["type"] for p in default} == {"SYSTEM_DEFINED"}
    system = bedrock.list_inference_profiles(typeEquals="SYSTEM_DEFINED")["inferenceProfileSummaries"]
    assert f"us.{HAIKU_35}" in {p["inferenceProfileId"] for p in system}

    # When it is tagged and untagged
    bedrock.tag_resource(
        resourceARN=arn, tags=[{"key": "team", "value": "search"}, {"key": "tenant", "value": "acme2"}]
    )
    tags = bedrock.list_tags_for_resource(resourceARN=arn)["tags"]
    assert sorted((t["key"], t["value"]) for t in tags) == [("team", "search"), ("tenant", "acme2")]
    bedrock.untag_resource(resourceARN=arn, tagKeys=["team", "not-there"])
    assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "tenant", "value": "acme2"}]
    assert standin.stats()["profiles"] == 1

    # And deleted, then it is gone
    bedrock.delete_inference_profile(inferenceProfileIdentifier=arn)
    with pytest.raises(bedrock.exceptions.ResourceNotFoundException):
        bedrock.get_inference_profile(inferenceProfileIdentifier=arn)
    with pytest.raises(bedrock.exceptions.ResourceNotFoundException):
        bedrock.delete_inference_profile(inferenceProfileIdentifier=profile_id)
    with pytest.raises(bedrock.exceptions.ResourceNotFoundException):
        bedrock.list_tags_for_resource(resourceARN=arn)
    assert bedrock.list_inference_profiles(typeEquals="APPLICATION")["inferenceProfileSummaries"] == []
    assert standin.stats()["profiles"] == 0


@pytest.mark.parametrize(
    ("geo", "regions"),
    [
        ("us", ["us-east-1", "us-east-2", "us-west-2"]),
        ("global", ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-northeast-1"]),
    ],
)
def test_profile_copied_from_a_cross_region_profile_spans_its_geography(
    bedrock: BedrockClient, geo: str, regions: list[str]
) -> None:
    model = "anthropic.claude-haiku-4-5-20251001-v1:0"
    source = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/{geo}.{model}"

    arn = bedrock.create_inference_profile(inferenceProfileName=f"p-{geo}", modelSource={"copyFrom": source})[
        "inferenceProfileArn"
    ]

    models = bedrock.get_inference_profile(inferenceProfileIdentifier=arn)["models"]
    assert [m["modelArn"] for m in models] == [f"arn:aws:bedrock:{r}::foundation-model/{model}" for r in regions]
    system = bedrock.get_inference_profile(inferenceProfileIdentifier=f"{geo}.{model}")
    assert system["type"] == "SYSTEM_DEFINED"
    assert system["models"] == models


@pytest.mark.parametrize(
    ("source", "code"),
    [
        # The model's pattern only allows foundation-model and inference-profile ARNs
        (f"arn:aws:bedrock:{REGION}:{ACCOUNT}:application-inference-profile/abcdefghijkl", "ValidationException"),
        (f"arn:aws:bedrock:{REGION}::foundation-model/not a model", "ValidationException"),
        (f"arn:aws:bedrock:eu-west-1::foundation-model/{HAIKU_35}", "ValidationException"),
        (f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/eu.{HAIKU_35}", "ResourceNotFoundException"),
        (f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/xx.{HAIKU_35}", "ResourceNotFoundException"),
        # Claude Opus 4.1 has no global profile
        (
            f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/global.anthropic.claude-opus-4-1-20250805-v1:0",
            "ResourceNotFoundException",
        ),
    ],
)
def test_create_rejects_a_bad_model_source(bedrock: BedrockClient, source: str, code: str) -> None:
    with pytest.raises(ClientError) as raised:
        bedrock.create_inference_profile(inferenceProfileName="p", modelSource={"copyFrom": source})
    assert _error_code(raised.value) == code
    assert bedrock.list_inference_profiles(typeEquals="APPLICATION")["inferenceProfileSummaries"] == []


def test_create_rejects_a_duplicate_name_with_the_modelled_status(bedrock: BedrockClient, profile_arn: str) -> None:
    with pytest.raises(bedrock.exceptions.ConflictException) as raised:
        bedrock.create_inference_profile(inferenceProfileName="acme-chat", modelSource={"copyFrom": FOUNDATION_ARN})
    # botocore's model gives ConflictException HTTP 400 in Bedrock (not 409)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_create_validates_names_and_reserved_tags(bedrock: BedrockClient) -> None:
    with pytest.raises(bedrock.exceptions.ValidationException, match="inferenceProfileName"):
        bedrock.create_inference_profile(inferenceProfileName="no spaces!", modelSource={"copyFrom": FOUNDATION_ARN})
    with pytest.raises(bedrock.exceptions.ValidationException, match="aws:"):
        bedrock.create_inference_profile(
            inferenceProfileName="p",
            modelSource={"copyFrom": FOUNDATION_ARN},
            tags=[{"key": "aws:owner", "value": "me"}],
        )


def test_create_is_idempotent_for_a_repeated_client_token(bedrock: BedrockClient) -> None:
    first = bedrock.create_inference_profile(
        inferenceProfileName="p", modelSource={"copyFrom": FOUNDATION_ARN}, clientRequestToken="token-1"
    )
    again = bedrock.create_inference_profile(
        inferenceProfileName="p", modelSource={"copyFrom": FOUNDATION_ARN}, clientRequestToken="token-1"
    )

    assert again["inferenceProfileArn"] == first["inferenceProfileArn"]
    assert len(bedrock.list_inference_profiles(typeEquals="APPLICATION")["inferenceProfileSummaries"]) == 1


def test_unknown_identifiers_are_not_found(bedrock: BedrockClient) -> None:
    unknown_arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:application-inference-profile/zzzzzzzzzzzz"
    for identifier in (unknown_arn, "zzzzzzzzzzzz"):
        with pytest.raises(bedrock.exceptions.ResourceNotFoundException):
            bedrock.get_inference_profile(inferenceProfileIdentifier=identifier)
        with pytest.raises(bedrock.exceptions.ResourceNotFoundException):
            bedrock.delete_inference_profile(inferenceProfileIdentifier=identifier)
    with pytest.raises(bedrock.exceptions.ResourceNotFoundException):
        bedrock.tag_resource(resourceARN=unknown_arn, tags=[{"key": "k", "value": "v"}])


def test_list_pages_through_every_profile_once(bedrock: BedrockClient) -> None:
    created = {
        bedrock.create_inference_profile(inferenceProfileName=f"p{i}", modelSource={"copyFrom": FOUNDATION_ARN})[
            "inferenceProfileArn"
        ]
        for i in range(5)
    }

    seen: list[str] = []
    pages = 0
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"typeEquals": "APPLICATION", "maxResults": 2}
        if token:
            kwargs["nextToken"] = token
        page = bedrock.list_inference_profiles(**kwargs)
        pages += 1
        seen += [p["inferenceProfileArn"] for p in page["inferenceProfileSummaries"]]
        token = page.get("nextToken")
        if not token:
            break

    assert pages == 3
    assert sorted(seen) == sorted(created)
    with pytest.raises(bedrock.exceptions.ValidationException):
        bedrock.list_inference_profiles(typeEquals="APPLICATION", nextToken="garbage")


def test_foundation_models_are_listed_and_described(bedrock: BedrockClient) -> None:
    summaries = bedrock.list_foundation_models(byProvider="Anthropic")["modelSummaries"]
    assert HAIKU_35 in {m["modelId"] for m in summaries}
    assert {m["providerName"] for m in summaries} == {"Anthropic"}

    details = bedrock.get_foundation_model(modelIdentifier=FOUNDATION_ARN)["modelDetails"]
    assert details["modelArn"] == FOUNDATION_ARN


# --------------------------------------------------------------------------- Converse


def test_converse_through_an_application_profile_parses_with_botocore(
    runtime: BedrockRuntimeClient, profile_arn: str
) -> None:
    response = runtime.converse(
        modelId=profile_arn,
        system=[{"text": "Answer briefly."}],
        messages=[_user("What does zanzibarquux cost per month?")],
        inferenceConfig={"maxTokens": 300, "temperature": 0.2},
    )

    message = response["output"]["message"]
    assert message["role"] == "assistant"
    assert len(message["content"]) == 1
    text = message["content"][0]["text"]
    assert text
    assert "zanzibarquux" not in text.lower()
    usage = response["usage"]
    assert set(usage) == {"inputTokens", "outputTokens", "totalTokens", "cacheReadInputTokens", "cacheWriteInputTokens"}
    assert usage["inputTokens"] > 0
    assert 0 < usage["outputTokens"] <= 300
    assert usage["cacheReadInputTokens"] == usage["cacheWriteInputTokens"] == 0
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert len(text.split()) == usage["outputTokens"]
    assert response["stopReason"] in ("end_turn", "max_tokens")
    assert isinstance(response["metrics"]["latencyMs"], int)
    assert response["metrics"]["latencyMs"] > 0
    assert response["ResponseMetadata"]["RequestId"]


def test_converse_accepts_every_kind_of_model_id(runtime: BedrockRuntimeClient, profile_arn: str) -> None:
    request = {"messages": [_user("Same prompt for every route.")]}
    answers = [
        runtime.converse(modelId=model_id, **request)  # type: ignore[arg-type]
        for model_id in (profile_arn, US_PROFILE_ARN, f"us.{HAIKU_35}", HAIKU_35, FOUNDATION_ARN)
    ]

    # All reach the same foundation model, so the same prompt gets the same answer
    assert len({a["output"]["message"]["content"][0]["text"] for a in answers}) == 1
    assert len({json.dumps(a["usage"], sort_keys=True) for a in answers}) == 1


def test_converse_is_deterministic_per_prompt(runtime: BedrockRuntimeClient, profile_arn: str) -> None:
    first = runtime.converse(modelId=profile_arn, messages=[_user("Tell me about tokens.")])
    again = runtime.converse(modelId=profile_arn, messages=[_user("Tell me about tokens.")])
    other = runtime.converse(modelId=profile_arn, messages=[_user("Tell me about money.")])

    assert first["output"] == again["output"]
    assert first["usage"] == again["usage"]
    assert other["output"] != first["output"]


def test_input_tokens_grow_with_the_prompt(runtime: BedrockRuntimeClient, profile_arn: str) -> None:
    sizes = [10, 100, 1_000, 10_000]
    counts = [
        runtime.converse(modelId=profile_arn, messages=[_user("x" * size)])["usage"]["inputTokens"] for size in sizes
    ]
    with_system = runtime.converse(modelId=profile_arn, system=[{"text": "s" * 400}], messages=[_user("x" * 1_000)])[
        "usage"
    ]["inputTokens"]

    assert counts == sorted(counts)
    assert len(set(counts)) == len(counts)
    assert counts[-1] == pytest.approx(10_000 / 4, rel=0.05)  # about 4 characters a token
    assert with_system == pytest.approx(counts[2] + 100, abs=1)  # the system prompt counts too


def test_every_message_and_image_costs_tokens(runtime: BedrockRuntimeClient, profile_arn: str) -> None:
    one = runtime.converse(modelId=profile_arn, messages=[_user("a")])["usage"]["inputTokens"]
    three = runtime.converse(
        modelId=profile_arn,
        messages=[_user("a"), {"role": "assistant", "content": [{"text": "b"}]}, _user("c")],
    )["usage"]["inputTokens"]
    image = runtime.converse(
        modelId=profile_arn,
        messages=[
            {"role": "user", "content": [{"text": "a"}, {"image": {"format": "png", "source": {"bytes": b"png"}}}]}
        ],
    )["usage"]["inputTokens"]

    assert one == 1
    assert three == 3
    assert image > 1_000  # an image has a fixed, image-sized cost


def test_max_tokens_bounds_the_answer(runtime: BedrockRuntimeClient, profile_arn: str) -> None:
    request = {"modelId": profile_arn, "messages": [_user("Write at length about budgets.")]}

    full = runtime.converse(**request, inferenceConfig={"maxTokens": 1_000})  # type: ignore[arg-type]
    cut = runtime.converse(**request, inferenceConfig={"maxTokens": 5})  # type: ignore[arg-type]

    assert full["stopReason"] == "end_turn"
    assert full["usage"]["outputTokens"] > 5
    assert cut["stopReason"] == "max_tokens"
    assert cut["usage"]["outputTokens"] == 5
    cut_words = cut["output"]["message"]["content"][0]["text"].split()
    full_words = full["output"]["message"]["content"][0]["text"].split()
    assert len(cut_words) == 5
    assert [w.rstrip(".") for w in cut_words] == [w.rstrip(".") for w in full_words[:5]]  # the same answer, cut


def test_stop_sequence_ends_the_answer(runtime: BedrockRuntimeClient, profile_arn: str) -> None:
    request = {"modelId": profile_arn, "messages": [_user("Write at length about budgets.")]}
    full = runtime.converse(**request)  # type: ignore[arg-type]
    words = full["output"]["message"]["content"][0]["text"].split()
    stop = words[3]

    stopped = runtime.converse(**request, inferenceConfig={"stopSequences": [stop]})  # type: ignore[arg-type]

    assert stopped["stopReason"] == "stop_sequence"
    assert stop not in stopped["output"]["message"]["content"][0]["text"]
    assert stopped["usage"]["outputTokens"] <= 3


def test_prompt_cache_write_then_read(standin: BedrockStandIn, runtime: BedrockRuntimeClient, profile_arn: str) -> None:
    prefix = "You are a careful billing assistant. " * 240
    system: Any = [{"text": prefix}, {"cachePoint": {"type": "default"}}]
    prefix_tokens = len(prefix) // 4
    assert prefix_tokens >= 2_048  # Claude 3.5 Haiku's minimum per cache checkpoint

    # Given no cache point, both cache counters are 0
    plain = runtime.converse(modelId=profile_arn, system=system[:1], messages=[_user("Hi")])
    assert plain["usage"]["cacheWriteInputTokens"] == plain["usage"]["cacheReadInputTokens"] == 0
    assert plain["usage"]["inputTokens"] == prefix_tokens + 1

    # When the prefix is first seen it is written, then read by the next call
    first = runtime.converse(modelId=profile_arn, system=system, messages=[_user("Hi")])
    second = runtime.converse(modelId=profile_arn, system=system, messages=[_user("Bye now")])

    assert first["usage"]["cacheWriteInputTokens"] == prefix_tokens
    assert first["usage"]["cacheReadInputTokens"] == 0
    assert first["usage"]["cacheDetails"] == [{"ttl": "5m", "inputTokens": prefix_tokens}]
    assert second["usage"]["cacheReadInputTokens"] == prefix_tokens
    assert second["usage"]["cacheWriteInputTokens"] == 0
    # The cached tokens are not counted again as input, but are part of the total
    for response in (first, second):
        usage = response["usage"]
        assert usage["inputTokens"] < prefix_tokens
        assert usage["totalTokens"] == (
            usage["inputTokens"]
            + usage["outputTokens"]
            + usage["cacheReadInputTokens"]
            + usage["cacheWriteInputTokens"]
        )
    # Caching does not change what the model says
    assert first["output"] == plain["output"]
    assert standin.stats()["tokens"]["cache_read"] == prefix_tokens


def test_growing_conversation_reads_the_old_prefix_and_writes_the_new(
    runtime: BedrockRuntimeClient, profile_arn: str
) -> None:
    # Each cache point closes at least Claude Sonnet 4.5's 1,024 tokens since the one before it
    # (a model with the 1-hour TTL)
    system = [{"text": "s" * 8_400}, {"cachePoint": {"type": "default", "ttl": "1h"}}]
    turn1 = [{"role": "user", "content": [{"text": "u" * 8_400}, {"cachePoint": {"type": "default"}}]}]
    written = runtime.converse(modelId=SONNET_45, system=system, messages=turn1)["usage"]  # type: ignore[arg-type]
    assert written["cacheDetails"] == [{"ttl": "1h", "inputTokens": 2_100}, {"ttl": "5m", "inputTokens": 2_100}]

    turn2 = [
        {"role": "user", "content": [{"text": "u" * 8_400}]},
        {"role": "assistant", "content": [{"text": "a" * 40}]},
        {"role": "user", "content": [{"text": "v" * 40}, {"cachePoint": {"type": "default"}}]},
    ]
    usage = runtime.converse(modelId=SONNET_45, system=system, messages=turn2)["usage"]  # type: ignore[arg-type]

    # The first turn's prefix (system + first user message) is found although this request
    # has no cache point there; only the new turn is written.
    assert usage["cacheReadInputTokens"] == 2_100 + 2_100
    assert usage["cacheWriteInputTokens"] == 10 + 10
    assert usage["inputTokens"] == 0


# Minimum tokens per cache checkpoint, as the Amazon Bedrock User Guide publishes them
# ("Prompt caching for faster model inference"; Nova's "1K" taken as 1,000).
PUBLISHED_CACHE_MINIMUMS = [
    ("anthropic.claude-3-7-sonnet-20250219-v1:0", 1_024),
    (HAIKU_35, 2_048),
    ("anthropic.claude-sonnet-4-20250514-v1:0", 1_024),
    (SONNET_45, 1_024),
    ("anthropic.claude-opus-4-20250514-v1:0", 1_024),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", 4_096),
    ("amazon.nova-micro-v1:0", 1_000),
    ("amazon.nova-lite-v1:0", 1_000),
    ("amazon.nova-pro-v1:0", 1_000),
    ("amazon.nova-premier-v1:0", 1_000),
]


def _cached_system(*sizes: int) -> Any:
    """A system prompt of text blocks of exactly these token counts, each followed by a cache point."""
    blocks: list[Any] = []
    for index, size in enumerate(sizes):
        blocks += [{"text": chr(ord("a") + index) * (4 * size)}, {"cachePoint": {"type": "default"}}]
    return blocks


@pytest.mark.parametrize(("model_id", "minimum"), PUBLISHED_CACHE_MINIMUMS)
def test_a_cache_point_below_the_models_minimum_is_ignored(
    runtime: BedrockRuntimeClient, model_id: str, minimum: int
) -> None:
    # Given a prefix one token short of the model's minimum before its cache point
    short = _cached_system(minimum - 1)

    # When it is sent twice, the call succeeds but nothing is written or read
    for _ in range(2):
        usage = runtime.converse(modelId=model_id, system=short, messages=[_user("Hi")])["usage"]
        assert usage["cacheWriteInputTokens"] == usage["cacheReadInputTokens"] == 0
        assert "cacheDetails" not in usage
        # Then every prompt token is billed as plain input
        assert usage["inputTokens"] == minimum - 1 + 1
        assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]


@pytest.mark.parametrize(("model_id", "minimum"), PUBLISHED_CACHE_MINIMUMS)
def test_a_cache_point_at_the_models_minimum_caches(runtime: BedrockRuntimeClient, model_id: str, minimum: int) -> None:
    # Given a prefix of exactly the model's minimum before its cache point
    system = _cached_system(minimum)

    # When it is sent twice, the first call writes it and the second reads it
    first = runtime.converse(modelId=model_id, system=system, messages=[_user("Hi")])["usage"]
    second = runtime.converse(modelId=model_id, system=system, messages=[_user("Hi")])["usage"]

    assert (first["cacheWriteInputTokens"], first["cacheReadInputTokens"], first["inputTokens"]) == (minimum, 0, 1)
    assert (second["cacheWriteInputTokens"], second["cacheReadInputTokens"], second["inputTokens"]) == (0, minimum, 1)
    # And a longer prefix caches too
    above = runtime.converse(modelId=model_id, system=_cached_system(minimum + 500), messages=[_user("Hi")])
    assert above["usage"]["cacheWriteInputTokens"] == minimum + 500


def test_each_cache_point_needs_the_minimum_since_the_one_before(runtime: BedrockRuntimeClient) -> None:
    # Claude Sonnet 4.5: 1,024 tokens a checkpoint, so the second can close no earlier than 2,048
    # Given a second cache point 1,023 tokens after the first, it is ignored: those tokens are input
    usage = runtime.converse(modelId=SONNET_45, system=_cached_system(1_024, 1_023), messages=[_user("Hi")])["usage"]
    assert usage["cacheWriteInputTokens"] == 1_024
    assert usage["cacheReadInputTokens"] == 0
    assert usage["inputTokens"] == 1_023 + 1
    assert usage["cacheDetails"] == [{"ttl": "5m", "inputTokens": 1_024}]

    # When the second closes 1,024 tokens after the first (2,048 in all), both count
    usage = runtime.converse(modelId=SONNET_45, system=_cached_system(1_024, 1_024), messages=[_user("Hi")])["usage"]
    assert usage["cacheReadInputTokens"] == 1_024  # the first prefix, cached by the call before
    assert usage["cacheWriteInputTokens"] == 1_024
    assert usage["inputTokens"] == 1
    again = runtime.converse(modelId=SONNET_45, system=_cached_system(1_024, 1_024), messages=[_user("Bye")])["usage"]
    assert (again["cacheReadInputTokens"], again["cacheWriteInputTokens"], again["inputTokens"]) == (2_048, 0, 1)

    # And an ignored cache point does not restart the count: the next one is measured from the
    # start of the prompt (1,000 + 100 tokens >= 1,024), so it caches everything before it
    usage = runtime.converse(modelId=SONNET_45, system=_cached_system(1_000, 100), messages=[_user("Hi")])["usage"]
    assert usage["cacheWriteInputTokens"] == 1_100
    assert usage["inputTokens"] == 1

    # And a cache point in the messages follows the same rule, counted from the system's one
    short_turn = [{"role": "user", "content": [{"text": "q" * 400}, {"cachePoint": {"type": "default"}}]}]
    usage = runtime.converse(modelId=SONNET_45, system=_cached_system(1_024), messages=short_turn)["usage"]  # type: ignore[arg-type]
    assert (usage["cacheReadInputTokens"], usage["cacheWriteInputTokens"], usage["inputTokens"]) == (1_024, 0, 100)


def test_the_converse_log_keeps_only_the_latest_calls(
    standin: BedrockStandIn, runtime: BedrockRuntimeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stand-in whose log of answered calls holds 3
    monkeypatch.setattr(bedrock_module, "CONVERSE_LOG_SIZE", 3)
    standin.reset()

    # When 5 calls are answered
    prompts = [f"Question number {index}" for index in range(5)]
    answers = [runtime.converse(modelId=HAIKU_35, messages=[_user(prompt)]) for prompt in prompts]

    # Then the log has the latest 3, in order, while the token totals count all 5
    assert [call["usage"] for call in standin.calls] == [answer["usage"] for answer in answers[2:]]
    assert standin.stats()["tokens"]["input"] == sum(answer["usage"]["inputTokens"] for answer in answers)


def test_cache_point_on_a_model_without_prompt_caching_is_rejected(runtime: BedrockRuntimeClient) -> None:
    with pytest.raises(runtime.exceptions.ValidationException, match="prompt caching"):
        runtime.converse(
            modelId=HAIKU_3,
            messages=[{"role": "user", "content": [{"text": "hello"}, {"cachePoint": {"type": "default"}}]}],
        )


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"messages": []}, "messages field is empty"),
        ({}, "messages field is empty"),
        ({"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}, "must start with a user message"),
        ({"messages": [_user("a"), _user("b")]}, "must alternate between user and assistant"),
        ({"messages": [{"role": "user", "content": []}]}, "content field in the Message object at messages.0"),
        ({"messages": [_user("   ")]}, "messages.0.content.0 is blank"),
        ({"messages": [{"role": "user", "content": [{}]}]}, "exactly one of its members"),
        ({"messages": [_user("a")], "inferenceConfig": {"maxTokens": 0}}, "'inferenceConfig.maxTokens'"),
        ({"messages": [_user("a")], "inferenceConfig": {"maxTokens": 9_000}}, "exceeds the model limit of 8192"),
        ({"messages": [_user("a")], "inferenceConfig": {"temperature": 2}}, "'inferenceConfig.temperature'"),
    ],
)
def test_converse_validates_like_bedrock(
    lax_runtime: BedrockRuntimeClient, profile_arn: str, request_fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(lax_runtime.exceptions.ValidationException) as raised:
        lax_runtime.converse(modelId=profile_arn, **request_fields)
    assert message in raised.value.response["Error"]["Message"]
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    "model_id",
    [
        f"arn:aws:bedrock:{REGION}:{ACCOUNT}:application-inference-profile/zzzzzzzzzzzz",
        "zzzzzzzzzzzz",
        f"xx.{HAIKU_35}",
        "global.anthropic.claude-opus-4-1-20250805-v1:0",  # no global profile for it
        "antropic.claude-3-5-haiku-20241022-v1:0",
        "not-a-model",
        f"arn:aws:bedrock:us-west-2::foundation-model/{HAIKU_35}",
    ],
)
def test_unknown_model_ids_are_invalid(runtime: BedrockRuntimeClient, model_id: str) -> None:
    # Bedrock answers ValidationException (not ResourceNotFoundException) for these
    with pytest.raises(runtime.exceptions.ValidationException, match="model identifier is invalid"):
        runtime.converse(modelId=model_id, messages=[_user("hi")])


def test_deleted_profile_can_no_longer_be_called(
    bedrock: BedrockClient, runtime: BedrockRuntimeClient, profile_arn: str
) -> None:
    runtime.converse(modelId=profile_arn, messages=[_user("hi")])
    bedrock.delete_inference_profile(inferenceProfileIdentifier=profile_arn)

    with pytest.raises(runtime.exceptions.ValidationException):
        runtime.converse(modelId=profile_arn, messages=[_user("hi")])


def test_errors_use_the_rest_json_wire_shape(server: StandInServer, profile_arn: str) -> None:
    # A raw client sees what botocore parses: status, x-amzn-ErrorType and {"message"}
    path = urllib.parse.quote(profile_arn, safe="")
    status, headers, body = _http(f"{server.url}/model/{path}/converse", "POST", {"messages": []})
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "ValidationException"
    assert set(body) == {"message"}

    status, headers, body = _http(f"{server.url}/model/{path}/converse", "POST", b"{not json")
    assert (status, headers["x-amzn-ErrorType"]) == (400, "ValidationException")

    status, headers, _ = _http(f"{server.url}/no/such/operation")
    assert (status, headers["x-amzn-ErrorType"]) == (404, "UnknownOperationException")


def test_tool_definitions_count_and_cache_before_the_system_prompt(runtime: BedrockRuntimeClient) -> None:
    tool: Any = {
        "toolSpec": {
            "name": "lookup_price",
            # long enough (about 2,350 tokens) to clear Claude 3.5 Haiku's 2,048 per cache checkpoint
            "description": "Look up the list price of a model in a region. " * 200,
            "inputSchema": {"json": {"type": "object", "properties": {}}},
        }
    }
    tools: Any = {"tools": [tool, {"cachePoint": {"type": "default"}}]}
    request: Any = {"modelId": HAIKU_35, "system": [{"text": "s" * 400}], "messages": [_user("hi")]}

    without = runtime.converse(**request)["usage"]
    first = runtime.converse(**request, toolConfig=tools)["usage"]
    second = runtime.converse(**request, toolConfig=tools)["usage"]

    assert first["cacheWriteInputTokens"] > 0  # the tool definitions, before the cache point
    assert second["cacheReadInputTokens"] == first["cacheWriteInputTokens"]
    assert first["inputTokens"] == without["inputTokens"]  # system + message, after the cache point


def test_the_app_is_a_plain_wsgi_callable(standin: BedrockStandIn) -> None:
    from werkzeug.test import Client

    client = Client(standin)
    switched = client.post("/_local/faults", json={"error_rate": 1})
    failing = client.get("/inference-profiles?type=SYSTEM_DEFINED&maxResults=1")
    client.post("/_local/faults", json={"error_rate": 0})
    listed = client.get("/inference-profiles?type=SYSTEM_DEFINED&maxResults=1")

    assert switched.status_code == 200
    assert (failing.status_code, failing.headers["x-amzn-ErrorType"]) == (500, "InternalServerException")
    assert listed.status_code == 200
    page = json.loads(listed.get_data())
    assert len(page["inferenceProfileSummaries"]) == 1
    assert page["nextToken"]
    assert standin.stats()["operations"] == {"ListInferenceProfiles": 2}


# --------------------------------------------------------------------------- what Bedrock served

HAIKU_45 = "anthropic.claude-haiku-4-5-20251001-v1:0"
OPUS_46 = "anthropic.claude-opus-4-6-v1"
NOVA_PRO = "amazon.nova-pro-v1:0"
LLAMA_31_70B = "meta.llama3-1-70b-instruct-v1:0"
LLAMA_31_405B = "meta.llama3-1-405b-instruct-v1:0"


class _Clock:
    """A monotonic clock the test moves on by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += minutes * 60


@pytest.mark.parametrize(
    ("model_id", "tier"),
    [(NOVA_PRO, "default"), (NOVA_PRO, "priority"), (NOVA_PRO, "flex"), (SONNET_45, "reserved"), (HAIKU_45, "default")],
)
def test_each_tier_is_served_and_reported(
    standin: BedrockStandIn, runtime: BedrockRuntimeClient, model_id: str, tier: Any
) -> None:
    response = runtime.converse(modelId=model_id, messages=[_user("hi")], serviceTier={"type": tier})

    assert response["serviceTier"] == {"type": tier}
    assert standin.stats()["service_tiers"] == {tier: 1}
    assert standin.calls[-1]["service_tier"] == tier


def test_a_call_that_names_no_tier_is_reported_as_served_at_default(
    runtime: BedrockRuntimeClient, profile_arn: str
) -> None:
    response = runtime.converse(modelId=profile_arn, messages=[_user("hi")])

    assert response["serviceTier"] == {"type": "default"}
    assert "performanceConfig" not in response  # asked for nothing: not echoed


def test_priority_generates_faster_and_flex_slower(runtime: BedrockRuntimeClient) -> None:
    def latency(tier: Any) -> int:
        request: Any = {"modelId": NOVA_PRO, "messages": [_user("Write at length about budgets.")]}
        return runtime.converse(**request, serviceTier={"type": tier})["metrics"]["latencyMs"]

    assert latency("priority") < latency("default") < latency("flex")


@pytest.mark.parametrize(
    ("model_id", "tier", "message"),
    [
        (HAIKU_45, "priority", "service tier priority is not supported"),
        (HAIKU_45, "flex", "service tier flex is not supported"),
        (LLAMA_31_70B, "priority", "service tier priority is not supported"),
        (HAIKU_45, "reserved", "Reservation not found."),
        (NOVA_PRO, "reserved", "Reservation not found."),
    ],
)
def test_a_tier_the_model_does_not_offer_is_refused(
    standin: BedrockStandIn, runtime: BedrockRuntimeClient, model_id: str, tier: Any, message: str
) -> None:
    with pytest.raises(runtime.exceptions.ValidationException, match=message) as raised:
        runtime.converse(modelId=model_id, messages=[_user("hi")], serviceTier={"type": tier})

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    stats = standin.stats()
    assert (stats["answered"], stats["rejected"], stats["tokens"]["input"]) == (0, 1, 0)  # nothing served


def test_priority_downgrade_fault_serves_priority_calls_at_default(
    standin: BedrockStandIn, runtime: BedrockRuntimeClient
) -> None:
    # Given every priority call downgraded
    standin.set_faults(priority_downgrade_rate=1)

    # Then a priority call is served, and reported, at the default tier; flex is untouched
    priority = runtime.converse(modelId=NOVA_PRO, messages=[_user("hi")], serviceTier={"type": "priority"})
    flex = runtime.converse(modelId=NOVA_PRO, messages=[_user("hi")], serviceTier={"type": "flex"})
    assert priority["serviceTier"] == {"type": "default"}
    assert flex["serviceTier"] == {"type": "flex"}
    assert [call["service_tier"] for call in standin.calls] == ["default", "flex"]

    # And at a share of one half, some are served at priority and some at default, as drawn
    # from the seed: the same after a reset
    def served() -> list[str]:
        standin.reset()
        standin.set_faults(priority_downgrade_rate=0.5)
        return [
            runtime.converse(modelId=NOVA_PRO, messages=[_user("hi")], serviceTier={"type": "priority"})["serviceTier"][
                "type"
            ]
            for _ in range(30)
        ]

    first = served()
    assert set(first) == {"priority", "default"}
    assert served() == first


def test_reserved_overflow_fault_serves_reserved_calls_at_default(
    standin: BedrockStandIn, runtime: BedrockRuntimeClient
) -> None:
    standin.set_faults(reserved_overflow_rate=1)

    response = runtime.converse(modelId=SONNET_45, messages=[_user("hi")], serviceTier={"type": "reserved"})

    assert response["serviceTier"] == {"type": "default"}
    assert standin.stats()["service_tiers"] == {"default": 1}


def _cached_turn(system_tokens: int, message_tokens: int, question: str = "Hi") -> dict[str, Any]:
    """A request whose system prompt ends in a 1-hour cache point and whose first user message
    ends in a 5-minute one, with these many tokens before each."""
    return {
        "system": [{"text": "s" * (4 * system_tokens)}, {"cachePoint": {"type": "default", "ttl": "1h"}}],
        "messages": [
            {"role": "user", "content": [{"text": "m" * (4 * message_tokens)}, {"cachePoint": {"type": "default"}}]},
            {"role": "assistant", "content": [{"text": "Noted."}]},
            _user(question),
        ],
    }


def test_one_hour_cache_write_is_reported_and_read_back_within_the_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    clock = _Clock()
    standin = BedrockStandIn(region=REGION, account_id=ACCOUNT, clock=clock)
    with standin.serve() as running:
        runtime = _client("bedrock-runtime", running.url)
        # Claude Haiku 4.5: 4,096 tokens a checkpoint, both TTLs
        request = _cached_turn(5_000, 4_200)

        # When the prompt is first sent, both parts are written, 1h listed before 5m
        first = runtime.converse(modelId=HAIKU_45, **request)["usage"]
        assert first["cacheDetails"] == [{"ttl": "1h", "inputTokens": 5_000}, {"ttl": "5m", "inputTokens": 4_200}]
        assert first["cacheWriteInputTokens"] == 9_200  # their sum
        assert first["cacheReadInputTokens"] == 0

        # And 10 minutes later the 5-minute part has expired but the 1-hour part is read
        clock.advance(10)
        second = runtime.converse(modelId=HAIKU_45, **request)["usage"]
        assert second["cacheReadInputTokens"] == 5_000
        assert second["cacheDetails"] == [{"ttl": "5m", "inputTokens": 4_200}]  # only what was written
        assert second["cacheWriteInputTokens"] == 4_200

        # And the read restarted the hour: 59 minutes on it is still there, even through a
        # request whose cache point there asks for 5 minutes only
        clock.advance(59)
        five_minute_point: Any = {
            "system": [{"text": "s" * 20_000}, {"cachePoint": {"type": "default"}}],
            "messages": [_user("Bye")],
        }
        third = runtime.converse(modelId=HAIKU_45, **five_minute_point)["usage"]
        assert (third["cacheReadInputTokens"], third["cacheWriteInputTokens"]) == (5_000, 0)
        assert "cacheDetails" not in third

        # But an hour after its last use it is gone, and written again
        clock.advance(61)
        fourth = runtime.converse(modelId=HAIKU_45, **request)["usage"]
        assert fourth["cacheReadInputTokens"] == 0
        assert fourth["cacheDetails"] == [{"ttl": "1h", "inputTokens": 5_000}, {"ttl": "5m", "inputTokens": 4_200}]


def test_a_five_minute_cache_entry_lives_five_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    clock = _Clock()
    standin = BedrockStandIn(region=REGION, account_id=ACCOUNT, clock=clock)
    with standin.serve() as running:
        runtime = _client("bedrock-runtime", running.url)
        request: Any = {"system": _cached_system(1_024), "messages": [_user("Hi")]}

        assert runtime.converse(modelId=SONNET_45, **request)["usage"]["cacheWriteInputTokens"] == 1_024
        clock.advance(4.9)
        assert runtime.converse(modelId=SONNET_45, **request)["usage"]["cacheReadInputTokens"] == 1_024
        clock.advance(4.9)  # 4.9 minutes after the hit that restarted it
        assert runtime.converse(modelId=SONNET_45, **request)["usage"]["cacheReadInputTokens"] == 1_024
        clock.advance(5.1)
        expired = runtime.converse(modelId=SONNET_45, **request)["usage"]
        assert (expired["cacheReadInputTokens"], expired["cacheWriteInputTokens"]) == (0, 1_024)


@pytest.mark.parametrize(
    ("model_id", "message"),
    [
        (HAIKU_35, "Extra inputs are not permitted"),
        ("anthropic.claude-sonnet-4-20250514-v1:0", "Extra inputs are not permitted"),
        (NOVA_PRO, "Extended TTL prompt caching is only supported for Anthropic models"),
    ],
)
def test_one_hour_ttl_is_refused_on_a_model_without_it(
    standin: BedrockStandIn, runtime: BedrockRuntimeClient, model_id: str, message: str
) -> None:
    system: Any = [{"text": "s" * 12_000}, {"cachePoint": {"type": "default", "ttl": "1h"}}]

    with pytest.raises(runtime.exceptions.ValidationException, match=message):
        runtime.converse(modelId=model_id, system=system, messages=[_user("Hi")])

    # And the same prompt with the 5-minute TTL is cached
    system[1] = {"cachePoint": {"type": "default", "ttl": "5m"}}
    usage = runtime.converse(modelId=model_id, system=system, messages=[_user("Hi")])["usage"]
    assert usage["cacheDetails"] == [{"ttl": "5m", "inputTokens": 3_000}]
    assert standin.stats()["answered"] == 1


def test_a_one_hour_cache_point_after_a_five_minute_one_is_refused(runtime: BedrockRuntimeClient) -> None:
    request = _cached_turn(5_000, 4_200)
    request["system"][1]["cachePoint"]["ttl"] = "5m"
    request["messages"][0]["content"][1]["cachePoint"]["ttl"] = "1h"

    with pytest.raises(runtime.exceptions.ValidationException, match="must not come after"):
        runtime.converse(modelId=HAIKU_45, **request)


def test_latency_optimized_is_served_and_reported(
    standin: BedrockStandIn, bedrock: BedrockClient, runtime: BedrockRuntimeClient
) -> None:
    # Nova Pro is latency-optimized through the us. profile from us-east-1
    us_profile = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/us.{NOVA_PRO}"
    application = bedrock.create_inference_profile(inferenceProfileName="fast", modelSource={"copyFrom": us_profile})
    request: Any = {"messages": [_user("Write at length about budgets.")]}

    optimized = [
        runtime.converse(modelId=model_id, **request, performanceConfig={"latency": "optimized"})
        for model_id in (f"us.{NOVA_PRO}", us_profile, application["inferenceProfileArn"])
    ]
    standard = runtime.converse(modelId=f"us.{NOVA_PRO}", **request, performanceConfig={"latency": "standard"})

    for response in optimized:
        assert response["performanceConfig"] == {"latency": "optimized"}
        assert response["metrics"]["latencyMs"] < standard["metrics"]["latencyMs"]
        assert response["output"] == standard["output"]
    assert standard["performanceConfig"] == {"latency": "standard"}
    assert standin.stats()["latency"] == {"standard": 1, "optimized": 3}
    assert [call["latency"] for call in standin.calls] == ["optimized"] * 3 + ["standard"]


@pytest.mark.parametrize(
    "model_id",
    [
        NOVA_PRO,  # in-region: latency-optimized is served through the us. profile only
        f"arn:aws:bedrock:{REGION}::foundation-model/{NOVA_PRO}",
        f"global.{HAIKU_45}",
        f"us.{HAIKU_45}",  # not a latency-optimized model
        f"us.{LLAMA_31_70B}",  # latency-optimized from us-east-2 and us-west-2, not from us-east-1
    ],
)
def test_latency_optimized_is_refused_where_it_is_not_offered(
    standin: BedrockStandIn, runtime: BedrockRuntimeClient, model_id: str
) -> None:
    with pytest.raises(runtime.exceptions.ValidationException, match="Latency-optimized inference is not supported"):
        runtime.converse(modelId=model_id, messages=[_user("hi")], performanceConfig={"latency": "optimized"})

    assert standin.stats()["answered"] == 0
    # And standard latency is served there
    response = runtime.converse(modelId=model_id, messages=[_user("hi")], performanceConfig={"latency": "standard"})
    assert response["performanceConfig"] == {"latency": "standard"}


def test_latency_fallback_fault_serves_optimized_calls_at_standard(
    standin: BedrockStandIn, runtime: BedrockRuntimeClient
) -> None:
    # Given the latency-optimized quota used up: Bedrock serves (and charges) standard
    standin.set_faults(latency_fallback_rate=1)

    response = runtime.converse(
        modelId=f"us.{NOVA_PRO}", messages=[_user("hi")], performanceConfig={"latency": "optimized"}
    )

    assert response["performanceConfig"] == {"latency": "standard"}
    assert standin.stats()["latency"] == {"standard": 1, "optimized": 0}


def test_llama_405b_serves_optimized_only_up_to_11k_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # Latency-optimized Llama 3.1 405B is offered from us-east-2
    with BedrockStandIn(region="us-east-2", account_id=ACCOUNT).serve() as running:
        runtime = _client("bedrock-runtime", running.url)

        def served(prompt_tokens: int) -> str:
            response = runtime.converse(
                modelId=f"us.{LLAMA_31_405B}",
                messages=[_user("x" * (4 * prompt_tokens))],
                inferenceConfig={"maxTokens": 5},
                performanceConfig={"latency": "optimized"},
            )
            assert response["usage"]["outputTokens"] == 5
            return str(response["performanceConfig"]["latency"])

        assert served(10_995) == "optimized"  # 11,000 tokens in all
        assert served(10_996) == "standard"


def test_a_250k_token_prompt_is_served_by_a_model_with_a_1m_window(runtime: BedrockRuntimeClient) -> None:
    prompt = "x" * 1_000_000  # 250,000 tokens

    response = runtime.converse(modelId=f"global.{OPUS_46}", messages=[_user(prompt)])

    assert response["usage"]["inputTokens"] == 250_000
    assert response["stopReason"] == "end_turn"


def test_a_prompt_above_the_window_is_refused(standin: BedrockStandIn, runtime: BedrockRuntimeClient) -> None:
    # Claude Haiku 4.5 has 200K tokens
    with pytest.raises(runtime.exceptions.ValidationException, match="Input is too long for requested model"):
        runtime.converse(modelId=HAIKU_45, messages=[_user("x" * 800_004)])

    # What the window holds is served
    assert runtime.converse(modelId=HAIKU_45, messages=[_user("x" * 800_000)])["usage"]["inputTokens"] == 200_000
    assert standin.stats()["answered"] == 1


def test_claude_sonnet_4_5_takes_a_1m_prompt_with_the_context_1m_beta(runtime: BedrockRuntimeClient) -> None:
    request: Any = {"modelId": f"global.{SONNET_45}", "messages": [_user("x" * 1_000_000)]}

    with pytest.raises(runtime.exceptions.ValidationException, match="Input is too long"):
        runtime.converse(**request)
    response = runtime.converse(**request, additionalModelRequestFields={"anthropic_beta": ["context-1m-2025-08-07"]})
    assert response["usage"]["inputTokens"] == 250_000


def test_the_model_table_uses_only_values_bedrock_defines() -> None:
    # Every tier, TTL and id in the stand-in's table is one botocore's model allows, every model
    # offers the default tier, and a latency-optimized model names US source regions
    tiers = set(bedrock_module._shape("bedrock-runtime", "ServiceTierType").enum)  # type: ignore[attr-defined]
    ttls = set(bedrock_module._shape("bedrock-runtime", "CacheTTL").enum)  # type: ignore[attr-defined]
    pattern = bedrock_module._model_id_pattern()
    for model in bedrock_module._CATALOG.values():
        assert pattern.fullmatch(model.model_id), model.model_id
        assert "default" in model.tiers, model.model_id
        assert model.tiers <= tiers, model.model_id
        assert "5m" in model.cache_ttls, model.model_id
        assert model.cache_ttls <= ttls, model.model_id
        assert model.prompt_caching or model.cache_ttls == {"5m"}, model.model_id
        assert model.latency_optimized_regions <= set(bedrock_module._GEO_REGIONS["us"]), model.model_id
        assert 0 < model.max_output_tokens < model.context_window, model.model_id


# --------------------------------------------------------------------------- faults, stats, auth


def test_throttle_rate_one_throttles_every_call(standin: BedrockStandIn, runtime: BedrockRuntimeClient) -> None:
    standin.set_faults(throttle_rate=1)

    with pytest.raises(runtime.exceptions.ThrottlingException) as raised:
        runtime.converse(modelId=HAIKU_35, messages=[_user("hi")])

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert raised.value.response["Error"]["Message"] == "Too many requests, please wait before trying again."
    stats = standin.stats()
    assert stats["throttled"] >= 1
    assert stats["throttled"] == stats["calls"]  # botocore's legacy mode may retry once
    assert stats["answered"] == 0


def test_error_rate_one_fails_with_modelled_server_errors(standin: BedrockStandIn, server: StandInServer) -> None:
    # Without retries (botocore backs off before retrying a 5xx): one call, one fault
    bedrock = _client("bedrock", server.url, Config(retries={"max_attempts": 0}))
    runtime = _client("bedrock-runtime", server.url, Config(retries={"max_attempts": 0}))
    standin.set_faults(error_rate=1)

    runtime_codes = set()
    for _ in range(10):
        with pytest.raises(ClientError) as raised:
            runtime.converse(modelId=HAIKU_35, messages=[_user("hi")])
        runtime_codes.add(_error_code(raised.value))
    with pytest.raises(bedrock.exceptions.InternalServerException):
        bedrock.list_inference_profiles()  # ServiceUnavailableException is not modelled for it

    assert runtime_codes == {"InternalServerException", "ServiceUnavailableException"}
    assert standin.stats()["errors"] == standin.stats()["calls"] == 11


def test_latency_is_added_and_reported(standin: BedrockStandIn, runtime: BedrockRuntimeClient) -> None:
    standin.set_faults(latency_ms=300)

    started = time.monotonic()
    response = runtime.converse(modelId=HAIKU_35, messages=[_user("hi")])
    elapsed = time.monotonic() - started

    assert elapsed >= 0.3
    assert response["metrics"]["latencyMs"] >= 300


def test_faults_are_switched_over_http_while_running(server: StandInServer, runtime: BedrockRuntimeClient) -> None:
    faults_url = f"{server.url}/_local/faults"
    status, _, current = _http(faults_url)
    assert (status, current) == (200, NO_FAULTS)

    # When throttling is switched on over HTTP, the running server throttles
    status, _, current = _http(faults_url, "POST", {"throttle_rate": 1})
    assert (status, current["throttle_rate"]) == (200, 1.0)
    with pytest.raises(runtime.exceptions.ThrottlingException):
        runtime.converse(modelId=HAIKU_35, messages=[_user("hi")])

    # And switched off again, it answers
    _http(faults_url, "POST", {"throttle_rate": 0})
    runtime.converse(modelId=HAIKU_35, messages=[_user("hi")])

    # Bad settings are refused and change nothing
    bad_settings = (
        {"throttle_rate": 1.5},
        {"error_rate": "x"},
        {"latency_ms": -1},
        {"latency_ms": 0.5},
        {"priority_downgrade_rate": 2},
        {"latency_fallback_rate": True},
        {"nope": 1},
        [1],
    )
    for bad in bad_settings:
        status, _, body = _http(faults_url, "POST", bad)
        assert status == 400
        assert body["message"]
    assert _http(faults_url)[2] == NO_FAULTS

    # Stats count it all; reset clears faults and stats
    status, _, stats = _http(f"{server.url}/_local/stats")
    assert status == 200
    assert stats["operations"] == {"Converse": stats["calls"]}
    assert stats["throttled"] >= 1
    assert stats["answered"] == 1
    _http(faults_url, "POST", {"latency_ms": 5})
    status, _, after = _http(f"{server.url}/_local/reset", "POST", {})
    assert status == 200
    assert after["faults"] == NO_FAULTS
    assert after["stats"]["calls"] == 0


def test_reset_keeps_profiles(standin: BedrockStandIn, bedrock: BedrockClient, profile_arn: str) -> None:
    standin.reset()

    assert standin.stats()["profiles"] == 1
    assert bedrock.get_inference_profile(inferenceProfileIdentifier=profile_arn)["inferenceProfileArn"] == profile_arn


def test_fault_draws_are_reproducible_for_a_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def outcomes(seed: int) -> list[str]:
        standin = BedrockStandIn(seed=seed)
        standin.set_faults(throttle_rate=0.3, error_rate=0.3)
        with standin.serve() as running:
            client = _client("bedrock-runtime", running.url, Config(retries={"max_attempts": 0}))
            seen = []
            for _ in range(30):
                try:
                    client.converse(modelId=HAIKU_35, messages=[_user("hi")])
                    seen.append("ok")
                except ClientError as error:
                    seen.append(_error_code(error))
            return seen

    first = outcomes(1)
    assert outcomes(1) == first
    assert {"ok", "ThrottlingException"} <= set(first)
    assert outcomes(2) != first


def test_bearer_token_client_works_unmodified(
    monkeypatch: pytest.MonkeyPatch, standin: BedrockStandIn, server: StandInServer
) -> None:
    # Given only an API key in the environment, as a tenant would have it
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "somekey")

    client = boto3.client("bedrock-runtime", endpoint_url=server.url, region_name=REGION)
    response = client.converse(modelId=HAIKU_35, messages=[_user("hi")])

    assert response["output"]["message"]["role"] == "assistant"
    assert standin.stats()["auth"] == {"sigv4": 0, "bearer": 1, "none": 0}


def test_concurrent_calls_are_all_counted(standin: BedrockStandIn, server: StandInServer) -> None:
    errors: list[BaseException] = []
    clients = [_client("bedrock-runtime", server.url) for _ in range(8)]  # boto3.client() is not thread-safe

    def work(worker: int) -> None:
        client = clients[worker]
        try:
            for call in range(5):
                client.converse(modelId=HAIKU_35, messages=[_user(f"worker {worker} call {call}")])
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    stats = standin.stats()
    assert stats["calls"] == stats["answered"] == 40
    assert stats["tokens"]["output"] > 0


def test_stop_frees_the_port(standin: BedrockStandIn) -> None:
    running = standin.serve()
    port = running.port
    running.stop()
    running.stop()  # a second stop is harmless

    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # and the port can be taken again


# --------------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(min_size=1, max_size=3_000).filter(lambda t: t.strip()),
    max_tokens=st.integers(min_value=1, max_value=600),
)
def test_output_never_exceeds_max_tokens(
    runtime: BedrockRuntimeClient, profile_arn: str, text: str, max_tokens: int
) -> None:
    response = runtime.converse(modelId=profile_arn, messages=[_user(text)], inferenceConfig={"maxTokens": max_tokens})

    usage = response["usage"]
    assert 1 <= usage["outputTokens"] <= max_tokens
    if usage["outputTokens"] < max_tokens:
        assert response["stopReason"] == "end_turn"
    if response["stopReason"] == "max_tokens":
        assert usage["outputTokens"] == max_tokens
    assert usage["inputTokens"] == max(1, -(-len(text) // 4))
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.text(min_size=1, max_size=500).filter(lambda t: t.strip()), extra=st.text(min_size=1, max_size=500))
def test_a_longer_prompt_never_costs_fewer_input_tokens(
    runtime: BedrockRuntimeClient, profile_arn: str, base: str, extra: str
) -> None:
    short = runtime.converse(modelId=profile_arn, messages=[_user(base)])["usage"]["inputTokens"]
    longer = runtime.converse(modelId=profile_arn, messages=[_user(base + extra)])["usage"]["inputTokens"]

    assert longer >= short
