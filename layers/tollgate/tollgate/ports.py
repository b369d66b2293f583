"""The small interfaces between the domain and AWS. Adapters implement them; tests fake them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tollgate.keys import TenantKey
from tollgate.ledger import BudgetHold, Plan, Reservation
from tollgate.rollup import Granularity, MetricKey, RollupKey, Totals
from tollgate.telemetry import MetricRef
from tollgate.usage import UsageRecord


class ModelClient(Protocol):
    def converse(self, model_arn: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Call Converse; raise tollgate.errors.TollgateError (mapped from Bedrock's error)."""
        ...


class UsageStore(Protocol):
    def record(self, record: UsageRecord) -> None:
        """Write the record once; a retried write of the same record is a no-op."""
        ...


class MeteringFallback(Protocol):
    def defer(self, record: UsageRecord) -> None:
        """Hand the record over durably, to be written to the usage table later (idempotently)."""
        ...


@dataclass(frozen=True)
class Provisioned:
    """The application inference profile provisioned for a profile, and what it was made for."""

    arn: str
    model_id: str
    scope: str


class ProfileDirectory(Protocol):
    def lookup(self, profile: str, *, refresh: bool = False) -> Provisioned | None:
        """What is provisioned for a profile name; ``refresh`` asks for a fresh read (rate-limited)."""
        ...


class KeyStore(Protocol):
    def find(self, key_hash: str) -> TenantKey | None: ...

    def add(self, key: TenantKey) -> None: ...

    def list(self, tenant_id: str | None = None) -> list[TenantKey]: ...

    def revoke(self, key_id: str) -> TenantKey | None:
        """The key, now revoked; None if there is no such key; KeyAlreadyRevokedError if it was revoked before."""
        ...


@dataclass
class ApplyOutcome:
    """What one exactly-once write of a batch did."""

    applied: list[UsageRecord] = field(default_factory=list)
    #: Records whose marker already existed: aggregated before (a replay); nothing was added.
    duplicates: list[UsageRecord] = field(default_factory=list)
    #: Records that could not be written now (throttled, conflicts); to be retried by the stream.
    failed: list[UsageRecord] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


class TrendStore(Protocol):
    def apply(
        self, records: Sequence[UsageRecord], on_commit: Callable[[list[UsageRecord]], None] | None = None
    ) -> ApplyOutcome:
        """Add the records to the trend rows exactly once each.

        ``on_commit`` is called right after each transaction commits, with exactly the records
        that transaction applied (the aggregator emits their metrics there).
        """
        ...

    def aggregated(self, request_ids: Iterable[str]) -> set[str]:
        """Those of ``request_ids`` that are in the rollups already."""
        ...


class MetricsSink(Protocol):
    def emit(self, buckets: Mapping[MetricKey, Totals]) -> None: ...


class TenantRollups(Protocol):
    def tenant_totals(self, granularity: Granularity, period: str, tenant_id: str) -> dict[RollupKey, Totals]:
        """One tenant's rollup rows of one period (exact), read consistently."""
        ...


class MetricReader(Protocol):
    def sum(self, metric: MetricRef, start: datetime, end: datetime) -> float:
        """The Sum of a metric from ``start`` to ``end`` (0.0 when nothing was emitted)."""
        ...


class Publisher(Protocol):
    def publish(self, subject: str | None, message: str) -> str:
        """Publish to the topic; the message id. Raises when the topic did not take it."""
        ...


class Ledger(Protocol):
    """Budget items, reservations and token windows (tollgate.ledger; ControlTable)."""

    def reserve(self, plan: Plan, reservation: Reservation, now: datetime) -> None:
        """Reserve the worst case, or raise BudgetExceeded / TokenRateExceeded (nothing written)."""
        ...

    def settle(
        self, record: UsageRecord, holds: Sequence[BudgetHold], reservation: Reservation | None, now: datetime
    ) -> str:
        """Write the usage record and its cost on the budget items in one transaction."""
        ...

    def release(self, reservation: Reservation, now: datetime) -> bool: ...

    def open_reservation(self, request_id: str) -> Reservation | None: ...

    def expired(self, now: datetime) -> list[Reservation]: ...
