"""Cost per tenant and profile for a period, from the trend tables (exact, reconciled with the records)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from tollgate.adapters.dynamodb import DynamoTrendStore, TrendRow
from tollgate.money import format_usd, usd
from tollgate.rollup import Granularity, Totals


class GroupBy(StrEnum):
    TENANT = "tenant"
    PROFILE = "profile"
    MODEL = "model"
    #: per tenant, profile and the service tier Bedrock served (default, priority, flex, reserved)
    TIER = "tier"


@dataclass(frozen=True)
class Period:
    """A whole number of UTC days [start, end], read from the DAY rollups."""

    start: date
    end: date

    @classmethod
    def parse(cls, text: str, today: date) -> Period:
        """'today', 'yesterday', 'month' (this month so far), 'last-month', 'YYYY-MM', 'YYYY-MM-DD' or 'A..B'."""
        if text == "today":
            return cls(today, today)
        if text == "yesterday":
            return cls(today - timedelta(days=1), today - timedelta(days=1))
        if text == "month":
            return cls(today.replace(day=1), today)
        if text == "last-month":
            end = today.replace(day=1) - timedelta(days=1)
            return cls(end.replace(day=1), end)
        if ".." in text:
            first, _, last = text.partition("..")
            return cls(_day(first), _day(last)).checked()
        if len(text) == 7:
            start = _day(text + "-01")
            following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
            return cls(start, following - timedelta(days=1))
        day = _day(text)
        return cls(day, day)

    def checked(self) -> Period:
        if self.end < self.start:
            raise ValueError(f"the period ends ({self.end}) before it starts ({self.start})")
        return self

    def days(self) -> list[str]:
        count = (self.end - self.start).days + 1
        return [(self.start + timedelta(days=n)).isoformat() for n in range(count)]

    def __str__(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start}..{self.end}"


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a period: use today, yesterday, month, last-month, YYYY-MM, YYYY-MM-DD or A..B"
        ) from None


@dataclass(frozen=True)
class ReportLine:
    tenant: str
    profile: str
    model: str
    totals: Totals
    tier: str = ""


def group(rows: Iterable[TrendRow], by: GroupBy) -> list[ReportLine]:
    """Sum DAY rows per tenant (or tenant+profile, +model, or +tier), highest cost first."""
    sums: dict[tuple[str, str, str, str], Totals] = {}
    for row in rows:
        if row.key.granularity is not Granularity.DAY:
            raise ValueError(f"reports sum DAY rows; got a {row.key.granularity} row")
        key = (
            row.key.tenant_id,
            row.key.profile if by is not GroupBy.TENANT else "",
            row.key.model_id if by is GroupBy.MODEL else "",
            row.key.tier if by is GroupBy.TIER else "",
        )
        sums[key] = sums.get(key, Totals()) + row.totals
    lines = [ReportLine(t, p, m, totals, tier) for (t, p, m, tier), totals in sums.items()]
    return sorted(lines, key=lambda line: (-line.totals.cost_pusd, line.tenant, line.profile, line.model, line.tier))


_COLUMNS = ("tenant", "profile", "model", "tier", "requests", "input_tokens", "output_tokens", "cache_read_tokens",
            "cache_write_tokens", "cache_write_1h_tokens", "total_tokens", "cost_usd")  # fmt: skip


def record(line: ReportLine, by: GroupBy) -> dict[str, str | int]:
    """One line as the report's columns (cost as an exact decimal string)."""
    tokens = line.totals.tokens
    values: dict[str, str | int] = {"tenant": line.tenant}
    if by is not GroupBy.TENANT:
        values["profile"] = line.profile
    if by is GroupBy.MODEL:
        values["model"] = line.model
    if by is GroupBy.TIER:
        values["tier"] = line.tier
    values |= {
        "requests": line.totals.requests,
        "input_tokens": tokens.input,
        "output_tokens": tokens.output,
        "cache_read_tokens": tokens.cache_read,
        "cache_write_tokens": tokens.cache_write,
        "cache_write_1h_tokens": tokens.cache_write_1h,
        "total_tokens": tokens.total,
        "cost_usd": format_usd(line.totals.cost_pusd),
    }
    return values


def columns(by: GroupBy) -> list[str]:
    skip = {
        GroupBy.TENANT: {"profile", "model", "tier"},
        GroupBy.PROFILE: {"model", "tier"},
        GroupBy.MODEL: {"tier"},
        GroupBy.TIER: {"model"},
    }[by]
    return [c for c in _COLUMNS if c not in skip]


def to_json(lines: Sequence[ReportLine], by: GroupBy, period: Period) -> str:
    total_cost = sum(line.totals.cost_pusd for line in lines)
    document = {
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat(), "timezone": "UTC"},
        "group_by": str(by),
        "currency": "USD",
        "lines": [record(line, by) for line in lines],
        "total_cost_usd": format_usd(total_cost),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return json.dumps(document, indent=2)


def to_csv(lines: Sequence[ReportLine], by: GroupBy) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns(by), lineterminator="\n")
    writer.writeheader()
    for line in lines:
        writer.writerow(record(line, by))
    return out.getvalue()


def total_usd(lines: Sequence[ReportLine]) -> Decimal:
    return usd(sum(line.totals.cost_pusd for line in lines))


def rows_for(trends: DynamoTrendStore, period: Period) -> list[TrendRow]:
    """DAY rows of every day in the period (one query per day: the table's key is DAY#<date>)."""
    found: list[TrendRow] = []
    for day in period.days():
        found.extend(trends.rows(Granularity.DAY, day))
    return found


def action_lines(
    statuses: Sequence[Mapping[str, Any]], actions: Mapping[str, Sequence[Mapping[str, Any]]], period: Period
) -> list[str]:
    """The actions on cost alarms, per tenant: the status in force now, then each action of the period."""
    days = set(period.days())
    lines = []
    for status in sorted(statuses, key=lambda s: str(s.get("tenant_id", ""))):
        tenant = str(status.get("tenant_id", ""))
        state = str(status.get("status", "normal"))
        by = list(status.get("by_alarms") or [])
        since = status.get("since") or ""
        lines.append(f"{tenant}: {state}" + (f" since {since} by {', '.join(by)}" if by else ""))
        for item in actions.get(tenant, []):
            sk = str(item.get("sk", ""))
            if sk[:10] not in days:
                continue
            lines.append(
                f"  {sk.split('#')[0]}  {item.get('what', '')} ({item.get('alarm', '')} {item.get('state', '')})"
            )
    return lines
