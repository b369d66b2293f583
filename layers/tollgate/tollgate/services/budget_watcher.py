"""The budget watcher: each run, the alerts due on every budget of config.json, each sent once per period.

For each watched budget (tollgate.budget_alerts.watched_budgets) the watcher reads the budget item
(the ledger's spend), decides which thresholds and whether the forecast are due, CLAIMS them on
the item (a conditional ADD to its ``alerted`` set: of two overlapping runs only one wins) and
only then publishes the mail: to the admin's topic, and to the tenants' notice topic with the
message attribute ``tenant_id`` (the tenant's contact address is subscribed with a filter policy
on it). A publish that fails gives its claim back, so the next run sends it again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from aws_lambda_powertools import Logger

from tollgate.budget_alerts import (
    BudgetAlert,
    ProfileSpend,
    RollupSpan,
    compose,
    cost_of,
    due,
    forecast_may_be_due,
    forecast_of,
    forecast_window,
    rollup_spans,
    top_profiles,
)
from tollgate.budget_items import LedgerEntry, WatchedBudget, watched_budgets
from tollgate.config import ConfigBundle
from tollgate.notifications import Deployment, Unavailable
from tollgate.periods import LedgerKey
from tollgate.ports import Publisher, TenantRollups
from tollgate.rollup import Granularity, RollupKey, Totals, period_of

logger = Logger(service="tollgate", child=True)


class BudgetLedger(Protocol):
    def entries(self) -> dict[LedgerKey, LedgerEntry]:
        """Every budget item (ControlTable's BUDGET# items)."""
        ...

    def claim(self, key: LedgerKey, token: str) -> bool:
        """Add ``token`` to the item's ``alerted`` set unless it is there: True if this call added it."""
        ...

    def unclaim(self, key: LedgerKey, token: str) -> None: ...


class TenantNotices(Protocol):
    def publish(self, tenant_id: str, subject: str | None, message: str) -> str: ...


def span_periods(span: RollupSpan) -> list[str]:
    """The trend periods of a span, first to last."""
    step = timedelta(hours=1) if span.granularity == Granularity.HOUR else timedelta(days=1)
    fmt = "%Y-%m-%dT%H" if span.granularity == Granularity.HOUR else "%Y-%m-%d"
    at = datetime.strptime(span.first, fmt).replace(tzinfo=UTC)
    periods = []
    while (current := period_of(span.granularity, at)) <= span.last:
        periods.append(current)
        at += step
    return periods


@dataclass
class BudgetWatcherService:
    config: Callable[[], ConfigBundle]
    ledger: BudgetLedger
    rollups: TenantRollups
    admin: Publisher
    tenants: TenantNotices
    deployment: Deployment | None
    clock: Callable[[], datetime]

    def run(self) -> list[BudgetAlert]:
        bundle = self.config()
        now = self.clock()
        entries = self.ledger.entries()
        sent = []
        for budget in watched_budgets(bundle, now):
            alert = self._judge(budget, entries.get(budget.key, LedgerEntry()), now)
            if alert is not None:
                sent.append(alert)
                self._send(bundle, alert)
        return sent

    def _rows(self, tenant_id: str, start: datetime, end: datetime) -> dict[RollupKey, Totals]:
        rows: dict[RollupKey, Totals] = {}
        for span in rollup_spans(start, end):
            for period in span_periods(span):
                rows.update(self.rollups.tenant_totals(span.granularity, period, tenant_id))
        return rows

    def _judge(self, budget: WatchedBudget, entry: LedgerEntry, now: datetime) -> BudgetAlert | None:
        spent = entry.spent_pusd
        forecast = None
        if forecast_may_be_due(budget, entry, spent):
            start, end = forecast_window(budget.period.kind, now)
            window = cost_of(self._rows(budget.tenant_id, max(start, budget.period.start), end), budget.profile)
            forecast = forecast_of(budget, spent, window, now)
        tokens = due(budget, entry, spent, forecast)
        claimed = tuple(t for t in tokens if self.ledger.claim(budget.key, t))
        if not claimed:
            return None
        top: list[ProfileSpend] | Unavailable
        try:
            top = top_profiles(self._rows(budget.tenant_id, budget.period.start, now))
        except Exception as error:  # the mail goes without the list, saying why
            top = Unavailable.of(error)
        return BudgetAlert(budget, now, spent, claimed, forecast, entry.alerted, top)

    def _send(self, bundle: ConfigBundle, alert: BudgetAlert) -> None:
        tenant = bundle.tenant(alert.budget.tenant_id)
        assert tenant is not None  # watched budgets come from the bundle's tenants
        try:
            admin = compose(alert, tenant, audience="admin", deployment=self.deployment)
            self.admin.publish(admin.subject, admin.message)
            notice = compose(alert, tenant, audience="tenant")
            self.tenants.publish(tenant.tenant_id, notice.subject, notice.message)
        except Exception:
            for token in alert.announces:
                self.ledger.unclaim(alert.budget.key, token)
            raise
        logger.info(
            "budget alert sent",
            extra={
                "tenant_id": tenant.tenant_id,
                "budget": alert.budget.key.pk,
                "period": alert.budget.key.sk,
                "alerts": list(alert.announces),
                "spent_pusd": alert.spent_pusd,
            },
        )


def summary(alerts: list[BudgetAlert]) -> Mapping[str, list[str]]:
    return {f"{a.budget.key.pk}/{a.budget.key.sk}": list(a.announces) for a in alerts}
