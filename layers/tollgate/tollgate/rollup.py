"""Folding usage records into deltas: trend rows (hour/day/month) and metric buckets (minute).

Pure code. The aggregator folds a batch before it writes, so a busy tenant costs one update
per rollup row per batch instead of one per request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from tollgate.pricing import TokenCounts
from tollgate.usage import UsageRecord


class Granularity(StrEnum):
    HOUR = "HOUR"
    DAY = "DAY"
    MONTH = "MONTH"


_PERIOD_FORMATS = {
    Granularity.HOUR: "%Y-%m-%dT%H",
    Granularity.DAY: "%Y-%m-%d",
    Granularity.MONTH: "%Y-%m",
}


def period_of(granularity: Granularity, at: datetime) -> str:
    """The UTC period containing ``at``: '2026-11-26T16', '2026-11-26' or '2026-11'."""
    return at.astimezone(UTC).strftime(_PERIOD_FORMATS[granularity])


@dataclass(frozen=True)
class Totals:
    """Additive usage totals: requests, tokens by kind, cost in pico-dollars."""

    requests: int = 0
    tokens: TokenCounts = field(default_factory=TokenCounts)
    cost_pusd: int = 0

    @classmethod
    def of(cls, record: UsageRecord) -> Totals:
        return cls(1, record.tokens, record.cost_pusd)

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.requests + other.requests, self.tokens + other.tokens, self.cost_pusd + other.cost_pusd)


def total(items: Iterable[Totals]) -> Totals:
    result = Totals()
    for item in items:
        result = result + item
    return result


@dataclass(frozen=True, order=True)
class RollupKey:
    """One trend row: a period of one granularity, for one tenant, profile, model and service tier."""

    granularity: Granularity
    period: str
    tenant_id: str
    profile: str
    model_id: str
    tier: str = "default"


def rollup_keys(record: UsageRecord) -> list[RollupKey]:
    return [
        RollupKey(g, period_of(g, record.requested_at), record.tenant_id, record.profile, record.model_id, record.tier)
        for g in Granularity
    ]


def fold(records: Iterable[UsageRecord]) -> dict[RollupKey, Totals]:
    deltas: dict[RollupKey, Totals] = {}
    for record in records:
        delta = Totals.of(record)
        for key in rollup_keys(record):
            deltas[key] = deltas.get(key, Totals()) + delta
    return deltas


@dataclass(frozen=True, order=True)
class MetricKey:
    """One metric datapoint: the minute the requests were made in, for one tenant, profile and tier."""

    minute: datetime
    tenant_id: str
    profile: str
    tier: str = "default"


def minute_of(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def fold_metrics(records: Iterable[UsageRecord]) -> dict[MetricKey, Totals]:
    buckets: dict[MetricKey, Totals] = {}
    for record in records:
        key = MetricKey(minute_of(record.requested_at), record.tenant_id, record.profile, record.tier)
        buckets[key] = buckets.get(key, Totals()) + Totals.of(record)
    return buckets


#: How long the aggregator keeps a record's "already aggregated" marker. A record may be delivered
#: again for as long as its failed batch can be re-driven from the AggregationFailureQueue (its
#: MessageRetentionPeriod: 14 days, a test checks the template), so markers outlive that by a
#: day; `tollgate redrive` refuses a batch older than REDRIVE_WINDOW.
MARKER_TTL = timedelta(days=15)
REDRIVE_WINDOW = MARKER_TTL - timedelta(days=1)

#: DynamoDB TransactWriteItems accepts at most 100 actions.
MAX_TRANSACTION_ITEMS = 100


def plan_chunks(records: Sequence[UsageRecord], max_items: int = MAX_TRANSACTION_ITEMS) -> list[list[UsageRecord]]:
    """Split records, in order, into chunks that each fit one transaction.

    A chunk costs one marker per record plus one update per distinct rollup row it touches.
    """
    chunks: list[list[UsageRecord]] = []
    current: list[UsageRecord] = []
    keys: set[RollupKey] = set()
    for record in records:
        new_keys = set(rollup_keys(record)) - keys
        if current and len(current) + 1 + len(keys) + len(new_keys) > max_items:
            chunks.append(current)
            current, keys = [], set()
            new_keys = set(rollup_keys(record))
        current.append(record)
        keys |= new_keys
    if current:
        chunks.append(current)
    return chunks


def totals_by(records: Iterable[UsageRecord], *, field: str) -> Mapping[str, Totals]:
    """Totals grouped by one record attribute (tenant_id, profile, model_id)."""
    grouped: dict[str, Totals] = {}
    for record in records:
        key = str(getattr(record, field))
        grouped[key] = grouped.get(key, Totals()) + Totals.of(record)
    return grouped
