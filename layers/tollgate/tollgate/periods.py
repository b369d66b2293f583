"""Budget periods in a tenant's time zone, and the keys of the budget items (pure code).

A budget's month and day begin and end at local midnight in the tenant's ``time_zone`` (an IANA
name; config.json). One module says what a period is and how its ledger item is keyed, so that
whoever writes a budget item (the gateway's ledger) and whoever reads it (the budget watcher,
``GET /budget``) cannot disagree:

* ``period_of(kind, instant, zone)``: the tenant-local month or day an instant belongs to, with
  its start and end in UTC (the end is when the budget resets). Every instant is in exactly one
  period of each kind and periods follow each other without gap, also across daylight-saving
  changes (a local day then lasts 23 or 25 hours) and where local midnight does not exist on the
  day clocks go forward at midnight: the key is chosen by the interval, never the other way round.
* ``ledger_key(tenant, profile, period)``: ControlTable's ``BUDGET#<tenant>`` (the tenant's budget)
  or ``BUDGET#<tenant>#<profile>`` (a profile's own), sort key ``M#<yyyy-mm>`` or ``D#<yyyy-mm-dd>``.
  Tenant ids and profile names cannot contain '#' (tollgate.config), so keys never collide.
* the item's attribute names (``spent_pusd`` ...), one place for writer and readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final, Literal
from zoneinfo import ZoneInfo

PeriodKind = Literal["month", "day"]
PERIOD_KINDS: Final[tuple[PeriodKind, ...]] = ("month", "day")

#: ControlTable partition of a budget's items: BUDGET#<tenant> or BUDGET#<tenant>#<profile>.
BUDGET_PREFIX: Final = "BUDGET#"
#: Sort key prefixes of a budget's month and day items.
SORT_PREFIX: Final[dict[PeriodKind, str]] = {"month": "M#", "day": "D#"}

# Attributes of a budget item (ISSUE10 design). All amounts are integer pico-dollars.
#: The period's limit when the item was first written.
LIMIT_ATTR: Final = "limit_pusd"
#: settled + open reservations (enforced budgets): the reserve's condition is
#: ``committed_pusd <= limit - worst_case``; headroom = limit (from config) - committed_pusd.
COMMITTED_ATTR: Final = "committed_pusd"
#: Settled spend of the period, exact (both modes).
SPENT_ATTR: Final = "spent_pusd"
#: String set of the alerts already sent this period: "50", "80", "100", "forecast".
ALERTED_ATTR: Final = "alerted"
FORECAST_ALERT: Final = "forecast"


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The time zone of an IANA name (validated by tollgate.config)."""
    return ZoneInfo(name)


@dataclass(frozen=True, order=True)
class Period:
    """One tenant-local month or day: ``start`` inclusive, ``end`` exclusive, both UTC."""

    kind: PeriodKind
    key: str  # "2026-12" (month) or "2026-12-03" (day), tenant-local
    time_zone: str
    start: datetime
    end: datetime

    @property
    def sort_key(self) -> str:
        """The budget item's sort key: ``M#2026-12`` or ``D#2026-12-03``."""
        return SORT_PREFIX[self.kind] + self.key

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(zone(self.time_zone))

    @property
    def local_end(self) -> datetime:
        """When the budget resets, in the tenant's time zone."""
        return self.end.astimezone(zone(self.time_zone))

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant.astimezone(UTC) < self.end

    def next(self) -> Period:
        return period_of(self.kind, self.end, self.time_zone)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` begins in ``zone``.

    Where local midnight does not exist (clocks go forward at 00:00), fold 0 reads it with the
    offset before the change, which is the first instant of the day; where it happens twice
    (clocks go back at 00:00), fold 0 is the first of the two.
    """
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _first_day(kind: PeriodKind, day: date) -> date:
    return day.replace(day=1) if kind == "month" else day


def _following(kind: PeriodKind, first: date) -> date:
    if kind == "day":
        return first + timedelta(days=1)
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _preceding(kind: PeriodKind, first: date) -> date:
    if kind == "day":
        return first - timedelta(days=1)
    return (first - timedelta(days=1)).replace(day=1)


def period_of(kind: PeriodKind, instant: datetime, time_zone: str) -> Period:
    """The tenant-local month or day that ``instant`` (timezone-aware) falls in."""
    if instant.tzinfo is None:
        raise ValueError(f"{instant!r} has no time zone: give an aware datetime (UTC)")
    tz = zone(time_zone)
    at = instant.astimezone(UTC)
    first = _first_day(kind, at.astimezone(tz).date())
    # The local date's period, corrected when a repeated or skipped local hour puts the instant
    # outside it: membership is by the UTC interval, so the periods tile time exactly.
    if at < _midnight(first, tz):
        first = _preceding(kind, first)
    elif at >= _midnight(_following(kind, first), tz):
        first = _following(kind, first)
    following = _following(kind, first)
    key = first.strftime("%Y-%m") if kind == "month" else first.isoformat()
    return Period(kind, key, time_zone, _midnight(first, tz), _midnight(following, tz))


def periods_of(instant: datetime, time_zone: str) -> dict[PeriodKind, Period]:
    """The current month and day at ``instant`` in ``time_zone``."""
    return {kind: period_of(kind, instant, time_zone) for kind in PERIOD_KINDS}


def budget_pk(tenant_id: str, profile: str | None = None) -> str:
    """``BUDGET#acme`` (the tenant's budget) or ``BUDGET#acme#acme-chat`` (a profile's own)."""
    return f"{BUDGET_PREFIX}{tenant_id}" if profile is None else f"{BUDGET_PREFIX}{tenant_id}#{profile}"


@dataclass(frozen=True, order=True)
class LedgerKey:
    """The key of one budget item in ControlTable."""

    pk: str
    sk: str


def ledger_key(tenant_id: str, profile: str | None, period: Period) -> LedgerKey:
    return LedgerKey(budget_pk(tenant_id, profile), period.sort_key)
