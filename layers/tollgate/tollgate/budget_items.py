"""The budgets config.json sets, per tenant-local period, and what their ledger items hold (pure code).

Shared by the budget watcher (tollgate.budget_alerts) and GET /budget (tollgate.services.selfservice),
which must not load the mails' code on the gateway's cold start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tollgate.config import BudgetMode, ConfigBundle
from tollgate.periods import LedgerKey, Period, ledger_key, periods_of


@dataclass(frozen=True)
class WatchedBudget:
    """One budget limit for one period: a tenant's (``profile`` None) or a profile's own."""

    tenant_id: str
    profile: str | None
    period: Period
    limit_pusd: int
    alerts: tuple[int, ...]
    forecast: bool
    mode: BudgetMode

    @property
    def key(self) -> LedgerKey:
        return ledger_key(self.tenant_id, self.profile, self.period)

    @property
    def enforced(self) -> bool:
        return self.mode == "enforce"


def watched_budgets(bundle: ConfigBundle, now: datetime) -> list[WatchedBudget]:
    """Every budget limit of config.json, for the tenant-local month and day that contain ``now``."""
    watched = []
    for tenant in bundle.tenants():
        periods = periods_of(now, tenant.time_zone)
        owners = [(None, tenant.budget)] + [(p.name, p.budget) for p in bundle.profiles_of(tenant.tenant_id)]
        for profile, budget in owners:
            for kind, limit in (("month", budget.monthly_pusd), ("day", budget.daily_pusd)):
                if limit is not None:
                    watched.append(
                        WatchedBudget(
                            tenant.tenant_id,
                            profile,
                            periods[kind],  # type: ignore[index]
                            limit,
                            budget.alerts,
                            budget.forecast,
                            budget.mode,
                        )
                    )
    return watched


@dataclass(frozen=True)
class LedgerEntry:
    """What a budget item holds (an absent item: nothing spent, nothing alerted)."""

    spent_pusd: int = 0
    alerted: frozenset[str] = frozenset()
    #: settled + open reservations (enforced budgets; the ledger's COMMITTED_ATTR).
    committed_pusd: int = 0
    #: The limit at the ledger's last write (informative: config.json's limit is the one in force).
    limit_pusd: int | None = None
