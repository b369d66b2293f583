"""Every file in events/ through its handler, in-process, as `sam local invoke` would deliver it."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from tollgate.money import usd
from tollgate.rollup import Granularity, Totals, total
from tollgate.usage import UsageRecord
from tollgate_local.sample_events import main as check_sample_events

from tests.integration.conftest import Stack, emf_datapoints, load_event, response_header, sum_of


def test_events_dir_is_what_the_generator_writes() -> None:
    assert check_sample_events(["--check"]) == 0


def test_converse_event_answers_in_bedrock_format_and_charges_one_record(stack: Stack) -> None:
    response = stack.handler("gateway")(load_event("converse.json"))
    assert response["statusCode"] == 200, response["body"]
    body = json.loads(response["body"])
    assert body["output"]["message"]["role"] == "assistant"
    assert body["usage"]["inputTokens"] > 0
    request_id = response_header(response, "x-tollgate-request-id")
    assert request_id == "sample-converse"
    record = stack.usage.get(request_id)
    assert record is not None
    assert response_header(response, "x-tollgate-cost-usd") == record.cost_usd
    assert (record.tenant_id, record.profile, record.route) == ("acme", "acme-chat", "converse")
    assert record.input_tokens == body["usage"]["inputTokens"]
    assert record.output_tokens == body["usage"]["outputTokens"]
    # Claude Haiku 4.5 (global): $1 / $5 per 1M input / output tokens
    assert usd(record.cost_pusd) == Decimal(record.input_tokens) / 10**6 + Decimal(record.output_tokens) * 5 / 10**6
    # Bedrock was called through the application inference profile of acme-chat
    (call,) = stack.standin.calls
    assert call["model_id"].startswith("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/")


@pytest.mark.parametrize(
    ("event", "status", "error_type", "message"),
    [
        ("converse-other-tenant.json", 403, "AccessDeniedException", "not one of your profiles; your profiles: acme-"),
        ("converse-malformed-body.json", 400, "ValidationException", "not valid JSON"),
        ("converse-invalid-request.json", 400, "ValidationException", "body.messages must be a JSON array"),
        ("invoke-no-profile.json", 400, "ValidationException", "name the profile"),
    ],
)
def test_refused_events_never_reach_bedrock_nor_leave_a_record(
    stack: Stack, event: str, status: int, error_type: str, message: str
) -> None:
    response = stack.handler("gateway")(load_event(event))
    assert response["statusCode"] == status
    assert response_header(response, "x-amzn-ErrorType") == error_type
    assert message in json.loads(response["body"])["message"]
    assert list(stack.usage.scan()) == []
    assert stack.standin.calls == []


@pytest.mark.parametrize(
    ("event", "profile"), [("invoke-by-profile.json", "acme-search"), ("invoke-by-tags.json", "acme-chat")]
)
def test_invoke_events_select_the_profile_by_header(stack: Stack, event: str, profile: str) -> None:
    response = stack.handler("gateway")(load_event(event))
    assert response["statusCode"] == 200, response["body"]
    body = json.loads(response["body"])
    assert body["profile"] == profile
    record = stack.usage.get(body["request_id"])
    assert record is not None
    assert record.cost_usd == body["cost_usd"]
    assert record.route == "invoke"
    assert body["output"]["message"]["content"][0]["text"]


def test_authorizer_event_allows_the_sample_key_for_its_tenant(stack: Stack) -> None:
    policy = stack.handler("authorizer")(load_event("authorizer.json"))
    assert policy["principalId"] == "acme"
    assert policy["context"] == {"tenant_id": "acme", "key_id": "acmesample"}
    (statement,) = policy["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    # Cached per key by API Gateway, so it must cover every route of the API
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:tollgatelocal/prod/*/*"]


def test_authorizer_denies_unknown_and_revoked_keys_with_a_reason(stack: Stack) -> None:
    authorize = stack.handler("authorizer")
    unknown = authorize(load_event("authorizer-unknown-key.json"))
    assert unknown["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert "not recognised" in unknown["context"]["reason"]
    stack.key_store.revoke("acmesample")
    revoked = authorize(load_event("authorizer.json"))
    assert revoked["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert revoked["context"]["reason"] == "the API key acmesample has been revoked"


def test_authorizer_rejects_a_malformed_header_with_401(stack: Stack) -> None:
    event = load_event("authorizer.json") | {"authorizationToken": "Basic abc"}
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        stack.handler("authorizer")(event)


def test_usage_stream_event_rolls_up_and_emits_metrics(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    event = load_event("usage-stream.json")
    records = [UsageRecord.from_item(_image(r)) for r in event["Records"]]
    result = stack.handler("aggregator")(event)
    assert result == {"batchItemFailures": []}
    expected = total(Totals.of(r) for r in records)
    for granularity in Granularity:
        assert total(row.totals for row in stack.trends.all_rows(granularity)) == expected
    points = emf_datapoints(capsys.readouterr().out)
    assert sum_of(points, "Requests", (("Profile", "acme-chat"), ("TenantId", "acme"))) == 1
    assert sum_of(points, "CostUSD", (("TenantId", "globex"),)) == usd(records[2].cost_pusd)


def test_a_poison_record_is_reported_and_the_rest_proceeds(stack: Stack) -> None:
    event = load_event("usage-stream-with-poison.json")
    poison = event["Records"][1]["dynamodb"]["SequenceNumber"]
    result = stack.handler("aggregator")(event)
    assert result == {"batchItemFailures": [{"itemIdentifier": poison}]}
    assert total(row.totals for row in stack.trends.all_rows(Granularity.DAY)).requests == 2


def test_metering_recovery_event_writes_the_deferred_record_once_and_reports_the_bad_message(stack: Stack) -> None:
    event = load_event("metering-recovery.json")
    good, bad = event["Records"]
    recovery = stack.handler("metering_recovery")
    for _ in range(2):  # delivered twice: still one record
        assert recovery(event) == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    expected = UsageRecord.from_item(json.loads(good["body"]))
    assert list(stack.usage.scan()) == [expected]
    assert len(stack.stream().poll()) == 1


@pytest.mark.parametrize("request_type", ["create", "update", "delete"])
def test_provisioner_events_answer_cloudformation(stack: Stack, cfn_responses, request_type: str) -> None:  # type: ignore[no-untyped-def]
    handler = stack.handler("provisioner")
    module = stack.modules["provisioner"]
    # moto has no GetLayerVersionByArn: read config from the repository instead of the layer version
    module.config_from_layer = lambda settings, arn: stack.bundle
    event = load_event(f"provisioner-{request_type}.json")
    event["ResponseURL"] = cfn_responses.url
    event["ResourceProperties"] |= {
        "TopicArn": stack.targets.topic_arn,
        "AdminTopicArn": stack.targets.admin_topic_arn,
        "StackName": stack.targets.stack,
        "ArtifactsBucket": stack.targets.artifacts_bucket,
    }
    handler(event)
    (answer,) = cfn_responses.bodies
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "tollgate-test-tollgate-profiles"
    owned = [p for p in stack.standin.profiles() if p["tags"].get("tollgate:stack") == "tollgate-test"]
    if request_type == "delete":
        assert owned == []
        assert "deleted" in answer["Data"]["Summary"]
    else:
        assert len(owned) == len(stack.bundle.profiles())
        assert "unchanged" in answer["Data"]["Summary"]  # the stack fixture provisioned it already


def _image(record: dict[str, object]) -> dict[str, object]:
    from boto3.dynamodb.types import TypeDeserializer

    image = record["dynamodb"]["NewImage"]  # type: ignore[index]
    return {k: TypeDeserializer().deserialize(v) for k, v in image.items()}  # type: ignore[union-attr]
