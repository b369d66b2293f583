"""Contracts between the parts a user sees: metrics vs alarms and dashboard, refusals, prices.

- Every metric an alarm watches or a dashboard line draws is one the aggregator really emits,
  with the same namespace, name and dimensions (otherwise the alarm never fires and the line
  stays empty, silently).
- A refused request (by Bedrock or by the gateway) reaches the tenant in Bedrock's error shape
  and leaves no usage record; a request the gateway refuses never reaches Bedrock.
- The cost a tenant is told is exactly its tokens times the models.json prices per 1M tokens.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import botocore.retries.standard
import pytest
from tollgate.budget import GATEWAY_BUDGET
from tollgate.config import priced_here
from tollgate.money import usd
from tollgate_local.apigw import authorized_event

from tests.integration.conftest import REGION, Stack, emf_datapoints, response_header, sum_of

Ref = tuple[str, str, tuple[tuple[str, str], ...]]  # namespace, metric name, sorted dimensions


def event(
    profile: str | None,
    tenant: str,
    request_id: str,
    *,
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway event as the authorizer passes it on: /model/{profile}/converse, or /invoke."""
    payload = body or json.dumps({"messages": [{"role": "user", "content": [{"text": f"Hello from {tenant}"}]}]})
    return authorized_event(profile, tenant, payload, request_id=request_id, headers=headers)


def metric_alarms() -> list[dict[str, Any]]:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
    return [alarm for page in pages for alarm in page["MetricAlarms"]]


def dashboard_lines(stack: Stack) -> list[tuple[str, Ref, dict[str, Any]]]:
    """Every metric line of the dashboard: (widget title, metric, the line's options with the widget's)."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    body = json.loads(cloudwatch.get_dashboard(DashboardName=stack.targets.dashboard_name)["DashboardBody"])
    lines = []
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        properties = widget["properties"]
        for line in properties["metrics"]:
            options = line[-1] if isinstance(line[-1], dict) else {}
            parts = line[:-1] if options else line
            # Only plain metrics, written out in full (no "." shorthand, no metric math)
            assert "." not in parts, (properties["title"], line)
            assert "expression" not in options, (properties["title"], line)
            namespace, name, *dims = parts
            assert len(dims) % 2 == 0, (properties["title"], line)
            ref = (namespace, name, tuple(sorted(zip(dims[::2], dims[1::2], strict=True))))
            lines.append((properties["title"], ref, {"stat": properties.get("stat"), **options}))
    return lines


def alarm_ref(alarm: dict[str, Any]) -> Ref:
    dims = tuple(sorted((d["Name"], d["Value"]) for d in alarm.get("Dimensions", [])))
    return (alarm.get("Namespace", ""), alarm.get("MetricName", ""), dims)


# --------------------------------------------------------------------------- metrics contract


def test_every_metric_an_alarm_or_a_dashboard_line_names_is_one_the_aggregator_emits(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one request through the gateway for every profile, aggregated from the usage stream
    gateway = stack.handler("gateway")
    profiles = stack.bundle.profiles()
    for index, profile in enumerate(profiles):
        response = gateway(event(profile.name, profile.tenant_id, f"contract-{index}"))
        assert response["statusCode"] == 200, response["body"]
    records = stack.stream().poll()
    assert len(records) == len(profiles)
    capsys.readouterr()
    assert stack.handler("aggregator")({"Records": records}) == {"batchItemFailures": []}
    points = emf_datapoints(capsys.readouterr().out)
    emitted = {(p.namespace, p.name, p.dimensions) for p in points}
    usage = {r.profile: r for r in stack.usage.scan()}

    # Then every alarm watches an emitted metric, summed over its period, and would see the usage
    alarms = metric_alarms()
    assert {a["AlarmName"] for a in alarms} == {
        f"{kind}-{p.name}"
        for p in profiles
        for kind in ("BedrockTokenCostAlarm", "BedrockTokensPerMinuteAlarm", "BedrockRequestsPerMinuteAlarm")
    }
    expected_period = {"CostUSD": 300, "TotalTokens": 60, "Requests": 60}  # "over 5 minutes", "per minute"
    for alarm in alarms:
        ref = alarm_ref(alarm)
        assert ref in emitted, f"{alarm['AlarmName']} watches {ref}, which the aggregator never emits"
        assert alarm["Statistic"] == "Sum", alarm["AlarmName"]
        assert not alarm.get("ExtendedStatistic"), alarm["AlarmName"]
        assert alarm["Period"] == expected_period[alarm["MetricName"]], alarm["AlarmName"]
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        record = usage[dict(ref[2])["Profile"]]
        seen = sum_of(points, alarm["MetricName"], ref[2])
        wanted = {"CostUSD": usd(record.cost_pusd), "TotalTokens": record.tokens.total, "Requests": 1}
        assert seen == wanted[alarm["MetricName"]], alarm["AlarmName"]
        assert seen > 0, alarm["AlarmName"]

    # And every line of the dashboard draws an emitted metric, as a sum
    lines = dashboard_lines(stack)
    assert len(lines) >= 3 * len(profiles)
    for title, ref, options in lines:
        assert ref in emitted, f"the line {ref} of widget {title!r} draws a metric the aggregator never emits"
        assert options["stat"] == "Sum", (title, ref)
    # and every profile and tenant has its lines
    drawn = {ref for _, ref, _ in lines}
    for profile in profiles:
        for name in ("CostUSD", "TotalTokens", "Requests"):
            assert ("Tollgate", name, (("Profile", profile.name), ("TenantId", profile.tenant_id))) in drawn
    for tenant in stack.bundle.config.tenants:
        assert ("Tollgate", "CostUSD", (("TenantId", tenant),)) in drawn


# --------------------------------------------------------------------------- refusals


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore sleeps up to seconds between retries; what matters here is what the tenant gets."""
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


def test_a_request_bedrock_refuses_gets_bedrocks_error_and_leaves_no_usage_record(
    stack: Stack, no_backoff: None
) -> None:
    gateway = stack.handler("gateway")
    cases = [
        # (Bedrock's state, status, x-amzn-ErrorType the tenant's boto3 client turns into its exception)
        ({"throttle_rate": 1.0}, {429}, {"ThrottlingException"}),
        (
            {"throttle_rate": 0.0, "error_rate": 1.0},
            {500, 503},
            {"InternalServerException", "ServiceUnavailableException"},
        ),
    ]
    for index, (faults, statuses, error_types) in enumerate(cases):
        stack.standin.set_faults(**faults)

        response = gateway(event("acme-chat", "acme", f"refused-by-bedrock-{index}"))

        assert response["statusCode"] in statuses, faults
        assert response_header(response, "x-amzn-ErrorType") in error_types, faults
        assert json.loads(response["body"])["message"], faults
        assert response_header(response, "x-tollgate-cost-usd") is None, faults
        assert list(stack.usage.scan()) == [], faults
        assert stack.stream().poll() == [], faults  # so nothing reaches the rollups or the metrics either
    stats = stack.standin.stats()
    assert stats["throttled"] >= 1
    assert stats["errors"] >= 1
    assert stats["answered"] == 0


def test_the_gateway_tries_a_throttled_call_at_most_twice(stack: Stack, no_backoff: None) -> None:
    stack.standin.set_faults(throttle_rate=1.0)

    response = stack.handler("gateway")(event("acme-chat", "acme", "throttled"))

    assert response["statusCode"] == 429
    # The tenant's own client retries too, and retries multiply: one retry at most here
    assert stack.standin.stats()["operations"]["Converse"] == 2


def test_a_model_slower_than_the_read_timeout_is_called_once_and_the_tenant_is_told_nothing_was_charged(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A timed-out call may have been billed: asked again it would be billed twice (and answered never)."""
    monkeypatch.setenv("BEDROCK_READ_TIMEOUT_SECONDS", "1")
    budget = GATEWAY_BUDGET.with_bedrock_read(1)
    stack.standin.set_faults(latency_ms=2500)  # Bedrock answers, but only after the read timeout
    gateway = stack.handler("gateway")

    started = time.monotonic()
    response = gateway(event("acme-chat", "acme", "too-slow"))
    waited = time.monotonic() - started

    assert response["statusCode"] == 408
    assert response_header(response, "x-amzn-ErrorType") == "ModelTimeoutException"
    assert json.loads(response["body"])["message"] == "the model did not answer within 1 s; nothing was charged"
    assert response_header(response, "x-tollgate-cost-usd") is None
    assert stack.standin.stats()["operations"]["Converse"] == 1
    # within the budget: the handler's own (here: cold) work, then one attempt of connect + read
    assert waited < budget.before_model_seconds + budget.bedrock.connect_seconds + budget.bedrock.read_seconds
    assert list(stack.usage.scan()) == []
    assert stack.stream().poll() == []


def test_a_request_the_gateway_refuses_never_reaches_bedrock_and_leaves_no_usage_record(stack: Stack) -> None:
    gateway = stack.handler("gateway")
    cases = [
        # (what the tenant does, the event, status, x-amzn-ErrorType, part of the message)
        ("names another tenant's profile", event("globex-assistant", "acme", "r1"), 403, "AccessDeniedException",
         "not one of your profiles; your profiles: acme-chat, acme-search"),
        ("selects another tenant's profile by header", event(None, "acme", "r2",
         headers={"x-tollgate-profile": "globex-assistant"}), 403, "AccessDeniedException", "not one of your profiles"),
        ("selects another tenant's profile by tags", event(None, "acme", "r3",
         headers={"tags": json.dumps([{"key": "Application", "value": "Assistant"}])}), 403, "AccessDeniedException",
         "the tags match none of your profiles"),
        ("sends a body that is not JSON", event("acme-chat", "acme", "r4", body='{"messages": [}'), 400,
         "ValidationException", "not valid JSON"),
        ("names a profile that does not exist", event("acme-nope", "acme", "r5"), 403, "AccessDeniedException",
         "not one of your profiles"),
    ]  # fmt: skip
    for what, request, status, error_type, message in cases:
        response = gateway(request)
        assert response["statusCode"] == status, what
        assert response_header(response, "x-amzn-ErrorType") == error_type, what
        assert message in json.loads(response["body"])["message"], what
        assert list(stack.usage.scan()) == [], what
        assert stack.standin.calls == [], what
        assert "Converse" not in stack.standin.stats()["operations"], what


def seen_by_tenant(response: dict[str, Any]) -> tuple[int, str | None, str]:
    message = json.loads(response["body"])["message"]
    return response["statusCode"], response_header(response, "x-amzn-ErrorType"), message


def test_another_tenants_profiles_and_missing_ones_look_the_same_to_a_tenant(stack: Stack) -> None:
    """A tenant must not learn other tenants' profile names or tags by probing the gateway."""
    gateway = stack.handler("gateway")
    pairs = [
        # (another tenant's profile or tags, a name or tags nobody has)
        (event("globex-assistant", "acme", "p1"), event("globex-nothing", "acme", "p2")),
        (event(None, "acme", "p3", headers={"x-tollgate-profile": "globex-assistant"}),
         event(None, "acme", "p4", headers={"x-tollgate-profile": "globex-nothing"})),
        (event(None, "acme", "p5", headers={"inference-profile-id": "initech-coder"}),
         event(None, "acme", "p6", headers={"inference-profile-id": "initech-nothing"})),
        (event(None, "acme", "p7", headers={"tags": json.dumps([{"key": "Application", "value": "Assistant"}])}),
         event(None, "acme", "p8", headers={"tags": json.dumps([{"key": "Application", "value": "Nothing"}])})),
        (event(None, "acme", "p9", headers={"tags": json.dumps({"TenantID": "globex"})}),
         event(None, "acme", "p10", headers={"tags": json.dumps({"TenantID": "nobody"})})),
    ]  # fmt: skip
    for others, nobodys in pairs:
        seen = seen_by_tenant(gateway(others))
        assert seen == seen_by_tenant(gateway(nobodys))
        assert seen[:2] == (403, "AccessDeniedException")
        assert seen[2].endswith("your profiles: acme-chat, acme-search")
    assert list(stack.usage.scan()) == []
    assert "Converse" not in stack.standin.stats()["operations"]


# --------------------------------------------------------------------------- prices


def test_the_cost_a_tenant_is_told_is_its_tokens_times_the_models_json_prices_per_million(stack: Stack) -> None:
    # Given a global profile, and the models.json row in force for its model and scope in the stack's region
    profile = stack.bundle.profile("globex-assistant")
    assert profile is not None
    assert profile.scope == "global"
    today = datetime.now(UTC).date()
    catalog = stack.bundle.catalog
    rows = [
        r
        for r in catalog.models[profile.model_id].prices
        if r.dimensions == ("global", "default", "standard", "standard") and priced_here(catalog, r, REGION)
    ]
    row = max((r for r in rows if r.effective_from <= today), key=lambda r: r.effective_from)
    assert stack.bundle.catalog.unit == "USD per 1M tokens"
    assert row.cache_read is not None
    assert row.cache_write is not None
    per_token = {
        "inputTokens": row.input,
        "outputTokens": row.output,
        "cacheReadInputTokens": row.cache_read,
        "cacheWriteInputTokens": row.cache_write,
    }

    # When it makes two requests sharing a cached prompt prefix (the first writes it, the second reads it);
    # ~1,350 tokens, over the 1,024 that Claude Sonnet 4.5 needs before a cache checkpoint
    system = [{"text": "You are Globex's analyst assistant. " * 150}, {"cachePoint": {"type": "default"}}]
    gateway = stack.handler("gateway")
    responses = []
    for index in range(2):
        body = {"system": system, "messages": [{"role": "user", "content": [{"text": f"Question {index}"}]}]}
        response = gateway(event("globex-assistant", "globex", f"price-{index}", body=json.dumps(body)))
        assert response["statusCode"] == 200, response["body"]
        responses.append(response)

    # Then each answer's cost is exactly what Bedrock reported, times the price per 1M tokens
    billed = [call["usage"] for call in stack.standin.calls]
    assert billed[0].get("cacheWriteInputTokens", 0) > 0
    assert billed[1].get("cacheReadInputTokens", 0) > 0
    for response, usage in zip(responses, billed, strict=True):
        expected = sum(
            (Decimal(usage.get(kind, 0)) * price for kind, price in per_token.items()), Decimal(0)
        ) / Decimal(10**6)
        told = Decimal(response_header(response, "x-tollgate-cost-usd") or "nan")
        assert told == expected
        record = stack.usage.get(response_header(response, "x-tollgate-request-id") or "")
        assert record is not None
        assert usd(record.cost_pusd) == expected
        assert record.price_version == f"{profile.model_id}@global@{','.join(row.regions)}@{row.effective_from}"
    # (the geographic cross-region row differs from the global one, so a price from the wrong scope would show above)
    geo_row = next(r for r in catalog.models[profile.model_id].prices if r.scope == "cross-region")
    assert row.input != geo_row.input
