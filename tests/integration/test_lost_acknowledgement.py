"""Metrics exactly once even when DynamoDB's answer to a committed transaction is lost.

A TransactWriteItems can commit while its answer never arrives (a read timeout, a dropped
connection, a 500 after the commit). botocore then sends the same transaction again, which
fails on the markers the first attempt wrote; or the error reaches the aggregator. Either way
the records are in the rollups, and their metrics must be emitted exactly once: not dropped as
"replayed", not emitted twice when the batch is delivered again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from tollgate.adapters.dynamodb import DynamoTrendStore
from tollgate.adapters.emf import EmfMetricsSink
from tollgate.rollup import Granularity, Totals, total
from tollgate.services.aggregator import AggregatorService, stream_processor
from tollgate.telemetry import MetricName

from tests.integration.conftest import TABLES, Stack, emf_datapoints, sum_of, sums_by_dimension_set
from tests.integration.test_exactly_once import ledger, send_requests


class LosingAnswers:
    """A DynamoDB client whose chosen TransactWriteItems calls commit and then lose their answer.

    ``mode`` says what the caller then sees: "retried" - the same request is sent again, as
    botocore's retry does, and its answer (a cancellation on our own markers) comes back;
    "timeout" - a read timeout; "timeout-unreadable" - a read timeout, and the markers cannot
    be read back either; "not-sent" - a timeout before anything reached DynamoDB.
    """

    def __init__(self, client: Any, mode: str, lose: Callable[[int], bool]):
        self._client = client
        self._mode = mode
        self._lose = lose
        self.calls = 0
        self.reads_fail = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.calls += 1
        if not self._lose(self.calls):
            return self._client.transact_write_items(**kwargs)
        timeout = ReadTimeoutError(endpoint_url="http://dynamodb")
        if self._mode == "not-sent":
            raise timeout
        self._client.transact_write_items(**kwargs)  # committed; its answer is lost
        if self._mode == "retried":
            return self._client.transact_write_items(**kwargs)
        if self._mode == "timeout-unreadable":
            self.reads_fail = True
        raise timeout

    def batch_get_item(self, **kwargs: Any) -> Any:
        if self.reads_fail:
            self.reads_fail = False
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "try again"}}, "BatchGetItem")
        return self._client.batch_get_item(**kwargs)


def aggregate(stack: Stack, client: Any, records: list[dict[str, Any]], batch: int) -> list[dict[str, Any]]:
    service = AggregatorService(
        trends=DynamoTrendStore(client, TABLES["TrendTable"]), metrics=EmfMetricsSink("Tollgate")
    )
    failures = []
    for start in range(0, len(records), batch):
        failures.extend(
            service.process({"Records": records[start : start + batch]}, stream_processor())["batchItemFailures"]
        )
    return failures


def rollups(stack: Stack) -> Totals:
    return total(row.totals for row in stack.trends.all_rows(Granularity.DAY))


@pytest.mark.parametrize("mode", ["retried", "timeout"])
def test_a_commit_whose_answer_is_lost_emits_its_metrics_once(
    stack: Stack, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    # Given 60 metered requests, and a DynamoDB that loses the answer of every other transaction
    send_requests(stack, 60, seed=3)
    records = stack.stream().poll()
    client = LosingAnswers(stack.dynamodb, mode, lose=lambda call: call % 2 == 1)

    # When they are aggregated in batches of 10, and then every batch is delivered again
    assert aggregate(stack, client, records, batch=10) == []
    assert aggregate(stack, stack.dynamodb, records, batch=10) == []

    # Then rollups and metrics both equal the usage records: nothing lost, nothing twice
    expected = ledger(stack)
    assert rollups(stack) == expected
    points = emf_datapoints(capsys.readouterr().out)
    assert set(sums_by_dimension_set(points, MetricName.REQUESTS).values()) == {expected.requests}
    assert set(sums_by_dimension_set(points, MetricName.TOTAL_TOKENS).values()) == {expected.tokens.total}


def test_a_transaction_that_never_reached_dynamodb_is_retried_by_the_stream(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a batch whose transaction times out before it was sent
    send_requests(stack, 10, seed=4)
    records = stack.stream().poll()
    client = LosingAnswers(stack.dynamodb, "not-sent", lose=lambda call: call == 1)

    # When it is aggregated, then every record is reported failed, and nothing was added
    assert len(aggregate(stack, client, records, batch=10)) == 10
    assert rollups(stack) == Totals()
    # And when Lambda delivers the batch again, it is counted once, metrics included
    assert aggregate(stack, client, records, batch=10) == []
    expected = ledger(stack)
    assert rollups(stack) == expected
    points = emf_datapoints(capsys.readouterr().out)
    assert set(sums_by_dimension_set(points, MetricName.REQUESTS).values()) == {expected.requests}


def test_what_can_be_lost_a_commit_unconfirmed_because_its_markers_cannot_be_read(
    stack: Stack, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """README "Exactly once": the one case in which metrics are lost (rollups are not)."""
    # Given a batch whose transaction commits, loses its answer, and whose markers cannot be read back
    send_requests(stack, 10, seed=5)
    records = stack.stream().poll()
    client = LosingAnswers(stack.dynamodb, "timeout-unreadable", lose=lambda call: call == 1)

    # When it is aggregated, and delivered again
    failures = aggregate(stack, client, records, batch=10)
    assert len(failures) == 10
    assert aggregate(stack, client, records, batch=10) == []

    # Then the rollups are exact, the metrics of that transaction are missing, and the log says which
    assert rollups(stack) == ledger(stack)
    out = capsys.readouterr().out
    assert sum_of(emf_datapoints(out), MetricName.REQUESTS) == 0
    assert "metrics of these records are not emitted" in out + caplog.text
