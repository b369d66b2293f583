"""Re-driving the AggregationFailureQueue: failed batches rolled up again, exactly once, metrics included.

The batches fail for real: the template's event source mapping (local emulation) delivers them
to the real aggregator, which fails while the trend table cannot be written, until the retries
run out and the on-failure message lands in the queue. Then the cause is fixed and the batches
are re-driven, from the stream (within its 24 hours) or, after that, from the usage table.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from tollgate.adapters.cloudwatch import CloudWatchMetricsSink, metric_datums
from tollgate.adapters.dynamodb import DynamoUsageStore, UsageStreamBatches, to_ddb
from tollgate.adapters.emf import EmfMetricsSink
from tollgate.rollup import REDRIVE_WINDOW, Granularity, Totals, fold_metrics, total
from tollgate.services.redrive import FailedBatch, NotAFailedBatchError, Redriver
from tollgate_local.esm import MappingSettings, StreamMapping
from tollgate_local.functions import LocalLambdaContext
from tollgate_local.runtime import emf_metric_data
from tollgate_local.template import load_template

from tests.integration.conftest import REGION, STACK, TABLES, Stack
from tests.integration.test_exactly_once import ledger, send_requests


def rollups(stack: Stack) -> Totals:
    return total(row.totals for row in stack.trends.all_rows(Granularity.DAY))


class Outage:
    """The aggregator as Lambda runs it, failing while the trend table is out of reach."""

    def __init__(self, stack: Stack):
        self.handler = stack.handler("aggregator")
        self.down = True

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        if self.down:
            raise RuntimeError("TrendTable unreachable")
        return self.handler(event)


def fail_into_queue(stack: Stack, count: int, seed: int, *, bisect: bool = True) -> None:
    """``count`` requests whose aggregation fails until the retries run out (template settings;
    without ``bisect``, each batch fails whole: one message)."""
    send_requests(stack, count, seed=seed)
    properties = load_template()["Resources"]["UsageStreamMapping"]["Properties"]
    queue_arn = f"arn:aws:sqs:{REGION}:123456789012:{stack.queue_url.rsplit('/', 1)[1]}"
    settings = replace(
        MappingSettings.from_template(properties),
        on_failure_destination=queue_arn,
        batching_window_seconds=0,
        bisect_on_function_error=bisect,
    )
    mapping = StreamMapping(
        settings,
        stack.stream(),
        Outage(stack),
        sqs_client=boto3.client("sqs", region_name=REGION),
        queue_url=stack.queue_url,
        function_name=f"{STACK}-aggregator",
        context_factory=lambda: LocalLambdaContext(function_name=f"{STACK}-aggregator"),
        sleep=lambda _: None,
    )
    while mapping.run_once():
        pass


def failed_batches(stack: Stack) -> list[FailedBatch]:
    """Every message of the failure queue (each received once: they stay invisible for a minute)."""
    sqs = boto3.client("sqs", region_name=REGION)
    found: list[FailedBatch] = []
    while messages := sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
        "Messages", []
    ):
        found.extend(FailedBatch.from_message(m["MessageId"], m["ReceiptHandle"], m["Body"]) for m in messages)
    return found


class StreamExpired(UsageStreamBatches):
    """The stream after 24 hours: it no longer holds the batch."""

    def request_ids(self, batch: FailedBatch) -> list[str] | None:
        return None


def redriver(stack: Stack, *, stream: Any = None, now: datetime | None = None) -> Redriver:
    return Redriver(
        stream=stream or UsageStreamBatches(boto3.client("dynamodbstreams", region_name=REGION)),
        usage=DynamoUsageStore(stack.dynamodb, TABLES["UsageTable"]),
        trends=stack.trends,
        metrics=CloudWatchMetricsSink(boto3.client("cloudwatch", region_name=REGION), "Tollgate"),
        tenants=lambda batch: sorted(stack.bundle.config.tenants),
        clock=lambda: now or datetime.now(UTC),
    )


def requests_metric(stack: Stack) -> float:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    total_requests = 0.0
    # per profile: moto's GetMetricStatistics also counts datapoints whose dimensions are a superset
    for profile in stack.bundle.profiles():
        stats = cloudwatch.get_metric_statistics(
            Namespace="Tollgate",
            MetricName="Requests",
            Dimensions=[{"Name": "TenantId", "Value": profile.tenant_id}, {"Name": "Profile", "Value": profile.name}],
            StartTime=datetime.now(UTC) - timedelta(hours=1),
            EndTime=datetime.now(UTC) + timedelta(minutes=1),
            Period=60,
            Statistics=["Sum"],
        )
        total_requests += sum(p["Sum"] for p in stats["Datapoints"])
    return total_requests


@pytest.mark.parametrize("expired", [False, True], ids=["from the stream", "from the usage table"])
def test_failed_batches_are_rolled_up_once_with_their_metrics(stack: Stack, expired: bool) -> None:
    # Given 12 requests whose aggregation failed until Lambda gave up: their batches are in the queue
    fail_into_queue(stack, 12, seed=21)
    batches = failed_batches(stack)
    assert sum(b.size for b in batches) == 12
    assert rollups(stack) == Totals()

    # When the cause is fixed and every batch is re-driven, twice
    tool = redriver(stack, stream=StreamExpired(None) if expired else None)
    first = [tool.redrive(batch) for batch in batches]
    again = [tool.redrive(batch) for batch in batches]

    # Then every record is in the rollups exactly once, and in the metrics exactly once
    assert rollups(stack) == ledger(stack)
    assert all(r.done and r.source == ("usage table" if expired else "stream") for r in first + again)
    assert sum(len(r.applied) for r in first) == 12
    assert sum(len(r.applied) for r in again) == 0
    assert requests_metric(stack) == 12


def test_a_dry_run_changes_nothing_and_says_what_it_would_add(stack: Stack) -> None:
    fail_into_queue(stack, 5, seed=22, bisect=False)
    (batch,) = failed_batches(stack)
    result = redriver(stack).redrive(batch, dry_run=True)
    assert len(result.applied) == 5
    assert rollups(stack) == Totals()


def test_a_poison_record_keeps_its_batch_in_the_queue_and_is_named(stack: Stack) -> None:
    # Given a failed batch one of whose usage items is malformed
    fail_into_queue(stack, 5, seed=23, bisect=False)
    (batch,) = failed_batches(stack)
    victim = sorted(UsageStreamBatches(boto3.client("dynamodbstreams", region_name=REGION)).request_ids(batch) or [])[0]
    stack.dynamodb.update_item(
        TableName=TABLES["UsageTable"],
        Key=to_ddb({"request_id": victim}),
        UpdateExpression="SET cost_pusd = :bad",
        ExpressionAttributeValues=to_ddb({":bad": -1}),
    )

    # When it is re-driven, then the others are rolled up and the batch is not done
    result = redriver(stack).redrive(batch)
    assert not result.done
    assert [rid for rid, _ in result.poison] == [victim]
    assert "cost_pusd" in result.poison[0][1]
    assert len(result.applied) == 4


def test_a_batch_older_than_the_redrive_window_is_refused(stack: Stack) -> None:
    fail_into_queue(stack, 3, seed=24, bisect=False)
    (batch,) = failed_batches(stack)
    later = batch.last_arrival + REDRIVE_WINDOW + timedelta(hours=1)
    result = redriver(stack, now=later).redrive(batch)
    assert not result.done
    assert "re-drive window" in result.refused
    assert rollups(stack) == Totals()


def test_a_message_that_is_not_a_failed_batch_is_refused_by_name() -> None:
    with pytest.raises(NotAFailedBatchError, match="m-1 is not a Lambda on-failure record"):
        FailedBatch.from_message("m-1", "r", '{"hello": "world"}')


def test_putmetricdata_writes_what_cloudwatch_logs_makes_of_the_aggregators_emf(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the metrics of some records, through EMF (the aggregator) and through PutMetricData (redrive)
    send_requests(stack, 12, seed=25)
    buckets = fold_metrics(stack.usage.scan())
    capsys.readouterr()
    EmfMetricsSink("Tollgate").emit(buckets)
    emf = emf_metric_data(capsys.readouterr().out.splitlines())["Tollgate"]

    # Then both are the same datapoints: names, dimensions, units, values, minutes
    def canonical(datums: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted(
            (d["MetricName"], tuple(sorted((x["Name"], x["Value"]) for x in d["Dimensions"])), d["Unit"],
             d["Value"] if "Value" in d else d["Values"][0],
             d["Timestamp"])
            for d in datums
        )  # fmt: skip

    assert canonical(metric_datums(buckets)) == canonical(emf)
