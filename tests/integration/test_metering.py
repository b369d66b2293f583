"""When the usage write fails after Bedrock answered: the fallback queue, the breaker, the alarm.

- The usage table refuses the record: Bedrock is called once, the tenant is answered (200,
  charged), and the very record reaches the usage table through the fallback queue and the
  recovery function, exactly once even when SQS delivers it twice; the aggregator then takes it.
- The fallback queue refuses it too: 503 (not charged), one log line with the whole record, and
  the next requests are refused before Bedrock until the breaker's interval is over.
- The template's metric filters count those log lines, as the gateway really writes them (the
  matcher is tollgate_local.logfilters), and the unmetered-calls alarm fires on them locally.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from tollgate.rollup import Granularity, period_of
from tollgate.telemetry import METERING_LOG_KEY, METERING_METRICS, MeteringOutcome, metering_filter_pattern
from tollgate.usage import UsageRecord
from tollgate_local.alarms import AlarmEvaluator
from tollgate_local.apigw import authorized_event
from tollgate_local.logfilters import FilterPattern, metric_filters_by_function
from tollgate_local.queues import QueueMapping, QueueMappingSettings
from tollgate_local.runtime import LogSink
from tollgate_local.template import load_template, queue_mappings

from tests.integration.conftest import ACCOUNT, REGION, TABLES, Stack, response_header

MISSING_QUEUE = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/no-such-queue"


def event(request_id: str) -> dict[str, Any]:
    body = {"messages": [{"role": "user", "content": [{"text": f"Hello, {request_id}"}]}]}
    return authorized_event("acme-chat", "acme", body, request_id=request_id)


@contextmanager
def gateway_log() -> Iterator[list[str]]:
    """The lines the functions' Powertools Logger writes meanwhile (exactly as Lambda would ship them)."""
    handler: logging.StreamHandler[Any] = logging.getLogger("tollgate").powertools_handler  # type: ignore[attr-defined]
    buffer = io.StringIO()
    # Set, not setStream(): that flushes the stream it replaces, which may be an earlier test's
    # closed capture (the logger is made once per process, with the stdout of that moment).
    previous, handler.stream = handler.stream, buffer
    lines: list[str] = []
    try:
        yield lines
    finally:
        handler.stream = previous
        lines.extend(line for line in buffer.getvalue().splitlines() if line.strip())


def marked(lines: list[str], outcome: MeteringOutcome) -> list[dict[str, Any]]:
    documents = [json.loads(line) for line in lines if line.startswith("{")]
    return [d for d in documents if d.get(METERING_LOG_KEY) == str(outcome)]


def recovery_mapping(stack: Stack) -> QueueMapping:
    """The template's MeteringFallbackMapping, polling the fallback queue into the recovery function."""
    (properties,) = queue_mappings().values()
    assert properties["EventSourceArn"] == {"Fn::GetAtt": ["MeteringFallbackQueue", "Arn"]}
    recovery = stack.handler("metering_recovery")
    return QueueMapping(
        QueueMappingSettings.from_template(properties),
        boto3.client("sqs", region_name=REGION),
        stack.metering["MeteringFallbackQueue"],
        lambda event, context: recovery(event),
        function_name="tollgate-test-metering-recovery",
        region=REGION,
        account_id=ACCOUNT,
    )


def drain(mapping: QueueMapping) -> None:
    while mapping.run_once():
        pass


def visible_messages(queue_url: str) -> int:
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def converse_calls(stack: Stack) -> int:
    return int(stack.standin.stats()["operations"].get("Converse", 0))


# --------------------------------------------------------------------------- the usage table fails


def test_a_record_the_usage_table_refuses_arrives_through_the_fallback_queue_exactly_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a gateway whose usage writes fail (here: its table is not there)
    monkeypatch.setenv("USAGE_TABLE", "tollgate-test-no-such-table")
    gateway = stack.handler("gateway")

    # When a tenant calls
    with gateway_log() as lines:
        response = gateway(event("deferred-1"))

    # Then Bedrock was called once and the tenant answered and charged as usual
    assert response["statusCode"] == 200, response["body"]
    assert converse_calls(stack) == 1
    cost = response_header(response, "x-tollgate-cost-usd")
    assert response_header(response, "x-tollgate-request-id") == "deferred-1"
    assert cost is not None
    assert float(cost) > 0
    assert stack.usage.get("deferred-1") is None  # not yet: the record is in the fallback queue
    (deferred,) = marked(lines, MeteringOutcome.DEFERRED)
    assert deferred["request_id"] == "deferred-1"
    assert marked(lines, MeteringOutcome.UNMETERED) == []

    # and SQS delivers the message twice (at least once, as SQS does)
    sqs = boto3.client("sqs", region_name=REGION)
    queue = stack.metering["MeteringFallbackQueue"]
    (message,) = sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0)["Messages"]
    sqs.send_message(QueueUrl=queue, MessageBody=message["Body"])
    monkeypatch.setenv("USAGE_TABLE", TABLES["UsageTable"])  # the recovery function's table
    mapping = recovery_mapping(stack)
    drain(mapping)

    # Then the very record is in the usage table, once, and the queue is empty
    record = stack.usage.get("deferred-1")
    assert record is not None
    assert (record.tenant_id, record.profile, record.cost_usd) == ("acme", "acme-chat", cost)
    (call,) = stack.standin.calls
    assert record.input_tokens == call["usage"]["inputTokens"]
    assert record.output_tokens == call["usage"]["outputTokens"]
    assert mapping.stats() == {"invocations": 1, "messages_deleted": 2, "messages_failed": 0}
    assert visible_messages(queue) == 0
    # and the stream carries it once, so the aggregator counts it once
    (inserted,) = stack.stream().poll()
    assert stack.handler("aggregator")({"Records": [inserted]}) == {"batchItemFailures": []}
    day = period_of(Granularity.DAY, record.requested_at)
    (row,) = [r for r in stack.trends.rows(Granularity.DAY, day) if r.key.profile == "acme-chat"]
    assert (row.totals.requests, row.totals.cost_pusd) == (1, record.cost_pusd)


def test_a_message_that_cannot_be_written_ends_in_the_dead_letter_queue_and_the_rest_proceeds(
    stack: Stack,
) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    queue = stack.metering["MeteringFallbackQueue"]
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "0"})  # redeliver at once
    good = UsageRecord.model_validate(
        {
            "request_id": "good-1", "tenant_id": "acme", "profile": "acme-chat",
            "model_id": "anthropic.claude-haiku-4-5-20251001-v1:0", "scope": "global", "route": "converse",
            "key_id": "acmekey01", "requested_at": datetime(2026, 11, 26, 12, 0, 0, 123000, tzinfo=UTC),
            "input_tokens": 10, "output_tokens": 5,
            "cache_read_tokens": 0, "cache_write_tokens": 0, "cost_pusd": 35_000_000, "price_version": "v",
            "latency_ms": 100, "expires_at": 2_000_000_000,
        }
    )  # fmt: skip
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(good.to_item()))
    sqs.send_message(QueueUrl=queue, MessageBody='{"request_id": "poison"}')
    mapping = recovery_mapping(stack)

    for _ in range(10):
        drain(mapping)

    assert stack.usage.get("good-1") == good
    assert visible_messages(queue) == 0
    dead = sqs.receive_message(QueueUrl=stack.metering["MeteringDeadLetterQueue"])["Messages"]
    assert [m["Body"] for m in dead] == ['{"request_id": "poison"}']
    max_receives = load_template()["Resources"]["MeteringFallbackQueue"]["Properties"]["RedrivePolicy"][
        "maxReceiveCount"
    ]
    assert mapping.stats()["messages_failed"] == max_receives  # delivered maxReceiveCount times, then moved


# --------------------------------------------------------------------------- both fail


def both_failing(stack: Stack, monkeypatch: pytest.MonkeyPatch, breaker_seconds: str = "30") -> Callable[..., Any]:
    monkeypatch.setenv("USAGE_TABLE", "tollgate-test-no-such-table")
    monkeypatch.setenv("METERING_FALLBACK_QUEUE_URL", MISSING_QUEUE)
    monkeypatch.setenv("METERING_BREAKER_SECONDS", breaker_seconds)
    return stack.handler("gateway")


def test_when_neither_takes_the_record_the_tenant_gets_a_503_and_retries_cost_nothing_until_the_breaker_closes(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = both_failing(stack, monkeypatch, breaker_seconds="1")

    with gateway_log() as lines:
        refused = gateway(event("unmetered-1"))

    # Then: 503, not charged, and one log line that carries the whole record Bedrock billed
    assert refused["statusCode"] == 503
    assert response_header(refused, "x-amzn-ErrorType") == "ServiceUnavailableException"
    assert "it was not charged" in json.loads(refused["body"])["message"]
    assert response_header(refused, "x-tollgate-cost-usd") is None
    assert converse_calls(stack) == 1
    (line,) = marked(lines, MeteringOutcome.UNMETERED)
    record = UsageRecord.from_item(line["record"])
    (call,) = stack.standin.calls
    assert (record.request_id, record.input_tokens, record.output_tokens) == (
        "unmetered-1",
        call["usage"]["inputTokens"],
        call["usage"]["outputTokens"],
    )
    assert list(stack.usage.scan()) == []

    # The client's retries are refused before Bedrock while the breaker is open
    for attempt in range(3):
        retried = gateway(event(f"unmetered-retry-{attempt}"))
        assert retried["statusCode"] == 503
        assert "not calling the model" in json.loads(retried["body"])["message"]
    assert converse_calls(stack) == 1

    # and once its interval is over, the next request reaches Bedrock again
    time.sleep(1.1)
    gateway(event("unmetered-2"))
    assert converse_calls(stack) == 2


# --------------------------------------------------------------------------- metric filters and the alarm


def template_filters() -> dict[str, FilterPattern]:
    """The template's metric filters on the gateway's log group, by the metric they count into."""
    sam = load_template()
    parameters = {name: str(spec.get("Default", "")) for name, spec in sam["Parameters"].items()}
    resolve = _resolver(parameters)
    return {f.metric_name: f.pattern for f in metric_filters_by_function(sam, resolve)["GatewayFunction"]}


def _resolver(parameters: dict[str, str]) -> Callable[[Any], Any]:
    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            return parameters[value["Ref"]] if set(value) == {"Ref"} else {k: resolve(v) for k, v in value.items()}
        return [resolve(v) for v in value] if isinstance(value, list) else value

    return resolve


def test_the_templates_filter_patterns_select_exactly_the_lines_the_gateway_logs(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    filters = template_filters()
    assert set(filters) == set(METERING_METRICS.values())
    for outcome, metric in METERING_METRICS.items():
        assert filters[metric].text == metering_filter_pattern(outcome)

    # Lines as the gateway really logs them: a deferred call, then an unmetered one
    monkeypatch.setenv("USAGE_TABLE", "tollgate-test-no-such-table")
    with gateway_log() as deferred_lines:
        assert stack.handler("gateway")(event("f-1"))["statusCode"] == 200
    gateway = both_failing(stack, monkeypatch)
    with gateway_log() as unmetered_lines:
        assert gateway(event("f-2"))["statusCode"] == 503
    lines = deferred_lines + unmetered_lines
    assert len(lines) >= 2

    for outcome, expected in ((MeteringOutcome.DEFERRED, deferred_lines), (MeteringOutcome.UNMETERED, unmetered_lines)):
        counted = [line for line in lines if filters[METERING_METRICS[outcome]].matches(line)]
        assert counted == [line for line in expected if json.loads(line).get(METERING_LOG_KEY) == outcome]
        assert len(counted) == 1, outcome


def test_the_unmetered_line_is_counted_and_fires_the_alarm_locally(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given the template's metric filters and its unmetered-calls alarm, as local mode sets them up
    sam = load_template()
    parameters = {name: str(spec.get("Default", "")) for name, spec in sam["Parameters"].items()}
    resolve = _resolver({**parameters, "AlertTopic": stack.targets.topic_arn})
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    alarm = resolve(sam["Resources"]["UnmeteredCallsAlarm"]["Properties"])
    cloudwatch.put_metric_alarm(AlarmName="UnmeteredCallsAlarm", **alarm)
    sink = LogSink(tmp_path, cloudwatch, metric_filters_by_function(sam, resolve))
    sqs = boto3.client("sqs", region_name=REGION)
    inbox = sqs.create_queue(QueueName="admin-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns", region_name=REGION).subscribe(
        TopicArn=stack.targets.topic_arn, Protocol="sqs", Endpoint=inbox_arn
    )
    # judged on the running minute (no wait for late data), so that the test does not depend on the clock
    evaluator = AlarmEvaluator(
        cloudwatch, boto3.client("sns", region_name=REGION), region=REGION, account_id=ACCOUNT, late_data_seconds=0
    )
    evaluator.evaluate()
    assert evaluator.states()["UnmeteredCallsAlarm"] == "OK"

    # When a call cannot be metered and the gateway's log goes through the log sink
    gateway = both_failing(stack, monkeypatch)
    with gateway_log() as lines:
        assert gateway(event("alarm-1"))["statusCode"] == 503
    sink.deliver("GatewayFunction", "\n".join(lines))

    # Then the metric counts one unmetered call and none deferred
    now = datetime.now(UTC)

    def total(metric: str) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace=parameters["MetricNamespace"], MetricName=metric, StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=1), Period=60, Statistics=["Sum"],
        )["Datapoints"]  # fmt: skip
        return sum(p["Sum"] for p in points)

    assert total(METERING_METRICS[MeteringOutcome.UNMETERED]) == 1
    assert total(METERING_METRICS[MeteringOutcome.DEFERRED]) == 0
    # and the alarm goes to ALARM and notifies the alert topic
    evaluator.evaluate()
    assert evaluator.states()["UnmeteredCallsAlarm"] == "ALARM"
    subjects = []
    while batch := sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", []):
        subjects += [json.loads(m["Body"])["Subject"] for m in batch]
        sqs.delete_message_batch(
            QueueUrl=inbox, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )
    assert any(subject.startswith('ALARM: "UnmeteredCallsAlarm"') for subject in subjects), subjects
    assert (tmp_path / "GatewayFunction.log").read_text().count('"metering":"unmetered"') == 1
