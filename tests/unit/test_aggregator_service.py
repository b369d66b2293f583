"""The aggregator's failure reporting: a trend write that fails is a batch item failure, not a crash.

Lambda retries a DynamoDB stream from the lowest reported sequence number; a record whose rollup
write failed (a TransactionConflict on a hot MONTH row, throttling that outlasted the retries)
must be reported by its sequence number, and the records that were applied must still have
their metrics emitted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

from tollgate.ports import ApplyOutcome
from tollgate.rollup import MetricKey, Totals
from tollgate.services.aggregator import AggregatorService, stream_processor
from tollgate.usage import UsageRecord

from tests.conftest import REPO_ROOT


def stream_event(name: str = "usage-stream.json") -> dict[str, object]:
    loaded: dict[str, object] = json.loads((REPO_ROOT / "events" / name).read_text())
    return loaded


class ChunkFailingTrends:
    """A trend store that applies every record except those it is told to fail (one failed chunk)."""

    def __init__(self, failing: set[str]):
        self.failing = failing

    def apply(
        self, records: Sequence[UsageRecord], on_commit: Callable[[list[UsageRecord]], None] | None = None
    ) -> ApplyOutcome:
        outcome = ApplyOutcome()
        applied = [r for r in records if r.request_id not in self.failing]
        failed = [r for r in records if r.request_id in self.failing]
        if applied:
            outcome.applied.extend(applied)
            if on_commit is not None:
                on_commit(applied)
        if failed:
            outcome.failed.extend(failed)
            outcome.errors.append(RuntimeError("TransactionCanceledException: TransactionConflict"))
        return outcome


class RecordingMetrics:
    def __init__(self) -> None:
        self.emitted: list[Mapping[MetricKey, Totals]] = []

    def emit(self, buckets: Mapping[MetricKey, Totals]) -> None:
        self.emitted.append(buckets)


def sequence_numbers(event: dict[str, object]) -> dict[str, str]:
    records = event["Records"]
    assert isinstance(records, list)
    return {r["dynamodb"]["NewImage"]["request_id"]["S"]: r["dynamodb"]["SequenceNumber"] for r in records}


def test_a_failed_trend_write_is_reported_by_sequence_number_and_the_rest_is_emitted() -> None:
    # Given a batch of three usage records whose second record's rollup write fails
    event = stream_event()
    numbers = sequence_numbers(event)
    ids = sorted(numbers)
    metrics = RecordingMetrics()
    service = AggregatorService(trends=ChunkFailingTrends({ids[1]}), metrics=metrics)

    # When the aggregator processes it
    response = service.process(event, stream_processor())

    # Then exactly the failed record is reported, by its sequence number, for Lambda to retry
    assert response == {"batchItemFailures": [{"itemIdentifier": numbers[ids[1]]}]}
    # And the records that were applied have their metrics emitted, the failed one's not
    emitted = sum((totals.requests for buckets in metrics.emitted for totals in buckets.values()), 0)
    assert emitted == 2


def test_when_every_record_fails_to_write_the_whole_batch_is_retried() -> None:
    # Given a batch none of whose rollups can be written
    event = stream_event()
    service = AggregatorService(trends=ChunkFailingTrends(set(sequence_numbers(event))), metrics=RecordingMetrics())

    # When the aggregator processes it, then every record is reported (Lambda retries from the first)
    response = service.process(event, stream_processor())
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == sorted(
        sequence_numbers(event).values()
    )
