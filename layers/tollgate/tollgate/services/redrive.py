"""Re-driving failed aggregation: the batches in the AggregationFailureQueue, rolled up again, exactly once.

Lambda's on-failure destination does not keep records, only where they were: the stream, the
shard, the first and last sequence numbers and arrival times (``DDBStreamBatchInfo``). The
records themselves are still in the usage table (until their TTL). A batch is re-driven by
finding its records, then applying them through the same exactly-once trend store as the
aggregator: records that were rolled up already (their marker exists) add nothing, so
re-driving twice, or a batch that overlaps others, changes no total. Their metrics are emitted
for exactly the records that were added.

Where the records are found:
* the stream, from the first to the last sequence number, while it still holds them (24 h):
  exactly the batch;
* after that, the usage table, by request time: every record of every tenant requested from
  a little before the batch's first arrival to its last (WINDOW_BEFORE). Records of other
  batches found there were aggregated already and add nothing.

A batch older than REDRIVE_WINDOW is refused: the markers of the records around it may have
expired, and applying them again could count them twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from tollgate.ports import MetricsSink, TrendStore
from tollgate.rollup import REDRIVE_WINDOW, fold_metrics
from tollgate.usage import UsageRecord, iso_utc

#: How long before its stream arrival a record may have been requested: the gateway's whole
#: budget (29 s) with room to spare. A record written later still (through the metering
#: fallback during a long DynamoDB outage) is found through the stream only.
WINDOW_BEFORE = timedelta(minutes=5)


class NotAFailedBatchError(ValueError):
    """A queue message that is not a Lambda on-failure record of a DynamoDB stream."""


def _arrival(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class FailedBatch:
    """One on-failure message: where a batch that could not be aggregated was in the usage stream."""

    message_id: str
    receipt: str
    stream_arn: str
    shard_id: str
    start_sequence: str
    end_sequence: str
    first_arrival: datetime
    last_arrival: datetime
    size: int

    @classmethod
    def from_message(cls, message_id: str, receipt: str, body: str) -> FailedBatch:
        try:
            info = json.loads(body)["DDBStreamBatchInfo"]
            return cls(
                message_id=message_id,
                receipt=receipt,
                stream_arn=str(info["streamArn"]),
                shard_id=str(info["shardId"]),
                start_sequence=str(info["startSequenceNumber"]),
                end_sequence=str(info["endSequenceNumber"]),
                first_arrival=_arrival(info["approximateArrivalOfFirstRecord"]),
                last_arrival=_arrival(info["approximateArrivalOfLastRecord"]),
                size=int(info["batchSize"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise NotAFailedBatchError(
                f"message {message_id} is not a Lambda on-failure record of a DynamoDB stream "
                f"(no DDBStreamBatchInfo: {type(exc).__name__}: {exc}); it was left in the queue"
            ) from None

    @property
    def window(self) -> tuple[datetime, datetime]:
        """The request times its records can have."""
        return self.first_arrival - WINDOW_BEFORE, self.last_arrival + timedelta(seconds=1)


class FailedBatchStream(Protocol):
    def request_ids(self, batch: FailedBatch) -> list[str] | None:
        """The request ids of the batch's records, from the stream; None when the stream no longer has them."""
        ...


class UsageHistory(Protocol):
    def request_ids_between(self, tenant_id: str, start: datetime, end: datetime) -> list[str]:
        """The request ids of a tenant's records requested from ``start`` to ``end``."""
        ...

    def items(self, request_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The usage table's items of these request ids (those that still exist), by request id."""
        ...


@dataclass
class RedriveResult:
    batch: FailedBatch
    source: Literal["stream", "usage table", "none"] = "none"
    found: int = 0
    #: Records that were not in the rollups and now are (with their metrics).
    applied: list[str] = field(default_factory=list)
    already: int = 0
    #: Records that still cannot be aggregated as they are: (request id, why).
    poison: list[tuple[str, str]] = field(default_factory=list)
    #: Records whose rollup write failed again.
    failed: list[str] = field(default_factory=list)
    #: Records named by the stream that are no longer in the usage table (expired or deleted).
    missing: list[str] = field(default_factory=list)
    refused: str = ""

    @property
    def done(self) -> bool:
        """Everything of the batch is in the rollups: its message can go."""
        return not (self.refused or self.poison or self.failed)


class Redriver:
    def __init__(
        self,
        *,
        stream: FailedBatchStream,
        usage: UsageHistory,
        trends: TrendStore,
        metrics: MetricsSink,
        tenants: Callable[[FailedBatch], Iterable[str]],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self._stream = stream
        self._usage = usage
        self._trends = trends
        self._metrics = metrics
        self._tenants = tenants
        self._clock = clock

    def redrive(self, batch: FailedBatch, *, dry_run: bool = False) -> RedriveResult:
        result = RedriveResult(batch)
        age = self._clock() - batch.last_arrival
        if age > REDRIVE_WINDOW:
            result.refused = (
                f"the batch is {age.days} days old, past the {REDRIVE_WINDOW.days}-day re-drive window: the "
                "markers that prevent counting a record twice may have expired. Compare `tollgate report` "
                f"for {iso_utc(batch.first_arrival)[:10]} with the usage table by hand."
            )
            return result
        ids = self._stream.request_ids(batch)
        if ids is not None:
            result.source = "stream"
        else:
            start, end = batch.window
            result.source = "usage table"
            ids = sorted(
                {rid for tenant in self._tenants(batch) for rid in self._usage.request_ids_between(tenant, start, end)}
            )
        items = self._usage.items(ids)
        result.missing = [rid for rid in ids if rid not in items]
        records = []
        for rid in ids:
            if rid not in items:
                continue
            try:
                records.append(UsageRecord.from_item(items[rid]))
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                result.poison.append((rid, problems))
        result.found = len(records) + len(result.poison)
        if dry_run:
            done = self._trends.aggregated(r.request_id for r in records)
            result.already = len(done)
            result.applied = [r.request_id for r in records if r.request_id not in done]
            return result
        outcome = self._trends.apply(records, on_commit=lambda committed: self._metrics.emit(fold_metrics(committed)))
        result.applied = [r.request_id for r in outcome.applied]
        result.already = len(outcome.duplicates)
        result.failed = [r.request_id for r in outcome.failed]
        return result
