"""Tenant self-service: GET /usage and GET /budget, always of the caller's own tenant.

The tenant is the authorizer's (``tenant_id`` of the caller), never a parameter: /usage takes
exactly ``from``, ``to`` and ``granularity`` and refuses any other parameter (``tenant``,
``profile``...) with 400, so no query can name another tenant; the trend store's query is by the
caller's tenant prefix only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from tollgate.budget_items import LedgerEntry, watched_budgets
from tollgate.config import ConfigBundle
from tollgate.errors import BadRequest, NotFound
from tollgate.money import format_usd
from tollgate.periods import LedgerKey
from tollgate.ports import TenantRollups
from tollgate.rollup import Granularity, period_of

USAGE_PARAMETERS: Final = ("from", "to", "granularity")
#: Most periods one /usage call returns (a query each): 31 days of hours, 366 days, 36 months.
MAX_PERIODS: Final = {Granularity.HOUR: 744, Granularity.DAY: 366, Granularity.MONTH: 36}
_FORMATS: Final = {Granularity.HOUR: "%Y-%m-%dT%H", Granularity.DAY: "%Y-%m-%d", Granularity.MONTH: "%Y-%m"}
_EXAMPLES: Final = {Granularity.HOUR: "2026-12-03T14", Granularity.DAY: "2026-12-03", Granularity.MONTH: "2026-12"}


class BudgetReader(Protocol):
    def entry(self, key: LedgerKey) -> LedgerEntry: ...

    def status(self, tenant_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class UsageQuery:
    granularity: Granularity
    periods: tuple[str, ...]


def _step(granularity: Granularity, at: datetime) -> datetime:
    if granularity == Granularity.HOUR:
        return at + timedelta(hours=1)
    if granularity == Granularity.DAY:
        return at + timedelta(days=1)
    return datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)


def parse_usage_query(params: Mapping[str, str] | None, now: datetime) -> UsageQuery:
    """The periods asked for; every mistake in one 400 that says what to send instead."""
    given = dict(params or {})
    problems = [
        f"unknown parameter {name!r} (GET /usage takes from, to and granularity; "
        "the tenant is the one of your key and cannot be chosen)"
        for name in sorted(given)
        if name not in USAGE_PARAMETERS
    ]
    raw = given.get("granularity", "day").upper()
    if raw not in {g.value for g in MAX_PERIODS}:
        problems.append(f"granularity={given.get('granularity')!r}: give hour, day or month")
        raise BadRequest("; ".join(problems))
    granularity = Granularity(raw)
    fmt = _FORMATS[granularity]
    bounds: dict[str, datetime] = {}
    for name, default in (("from", now), ("to", now)):
        value = given.get(name)
        if value is None:
            bounds[name] = datetime.strptime(period_of(granularity, default), fmt).replace(tzinfo=UTC)
            continue
        try:
            bounds[name] = datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            problems.append(f"{name}={value!r}: give a UTC {granularity.value.lower()} like {_EXAMPLES[granularity]}")
    if problems:
        raise BadRequest("; ".join(problems))
    if bounds["from"] > bounds["to"]:
        raise BadRequest(f"from={given.get('from')} is after to={given.get('to')}: give from <= to")
    periods = []
    at = bounds["from"]
    while at <= bounds["to"]:
        periods.append(period_of(granularity, at))
        if len(periods) > MAX_PERIODS[granularity]:
            raise BadRequest(
                f"from..to spans more than {MAX_PERIODS[granularity]} {granularity.value.lower()}s: "
                "ask for a shorter range or a coarser granularity"
            )
        at = _step(granularity, at)
    return UsageQuery(granularity, tuple(periods))


@dataclass
class SelfService:
    config: Callable[[], ConfigBundle]
    rollups: TenantRollups
    budgets: BudgetReader
    clock: Callable[[], datetime]

    def usage(self, tenant_id: str, params: Mapping[str, str] | None) -> dict[str, Any]:
        query = parse_usage_query(params, self.clock())
        rows = []
        total_cost = total_requests = total_input = total_output = 0
        for period in query.periods:
            found = self.rollups.tenant_totals(query.granularity, period, tenant_id)
            for key, totals in sorted(found.items(), key=lambda item: (item[0].profile, item[0].model_id)):
                if key.tenant_id != tenant_id:  # the store's prefix query already ensures it; never leak
                    continue
                tokens = totals.tokens
                rows.append(
                    {
                        "period": period,
                        "profile": key.profile,
                        "model_id": key.model_id,
                        "tier": key.tier,
                        "requests": totals.requests,
                        "input_tokens": tokens.input,
                        "output_tokens": tokens.output,
                        "cache_read_tokens": tokens.cache_read,
                        "cache_write_tokens": tokens.cache_write,
                        "cost_usd": format_usd(totals.cost_pusd),
                    }
                )
                total_cost += totals.cost_pusd
                total_requests += totals.requests
                total_input += tokens.input
                total_output += tokens.output
        return {
            "tenant_id": tenant_id,
            "granularity": query.granularity.value.lower(),
            "from": query.periods[0],
            "to": query.periods[-1],
            "periods_utc": True,
            "rows": rows,
            "total": {
                "requests": total_requests,
                "input_tokens": total_input,
                "output_tokens": total_output,
                "cost_usd": format_usd(total_cost),
            },
        }

    def budget(self, tenant_id: str) -> dict[str, Any]:
        bundle = self.config()
        tenant = bundle.tenant(tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} is not in config.json")
        now = self.clock()
        budgets = []
        for watched in watched_budgets(bundle, now):
            if watched.tenant_id != tenant_id:
                continue
            entry = self.budgets.entry(watched.key)
            period = watched.period
            budgets.append(
                {
                    "profile": watched.profile,
                    "period": period.kind,
                    "period_key": period.key,
                    "mode": watched.mode,
                    "limit_usd": format_usd(watched.limit_pusd),
                    "spent_usd": format_usd(entry.spent_pusd),
                    "committed_usd": format_usd(entry.committed_pusd),
                    "headroom_usd": format_usd(watched.limit_pusd - entry.committed_pusd),
                    "resets_at": period.local_end.isoformat(),
                    "resets_at_utc": period.end.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                    "alerts": list(watched.alerts),
                    "alerted": sorted(entry.alerted),
                }
            )
        return {
            "tenant_id": tenant_id,
            "customer_tier": tenant.customer_tier,
            "time_zone": tenant.time_zone,
            "budgets": budgets,
            "rate_limits": {
                "requests_per_min": tenant.rate_limits.requests_per_min,
                "tokens_per_min": tenant.rate_limits.tokens_per_min,
            },
            "status": self.budgets.status(tenant_id) or {"action": "none"},
        }
