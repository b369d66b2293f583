"""Budget alerts (pure): which budgets are watched, thresholds due once per period, the forecast,
tenant-local periods across DST, and the mails' wording."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from tollgate.budget_alerts import (
    BudgetAlert,
    ProfileSpend,
    compose,
    due,
    forecast_of,
    forecast_window,
    rollup_spans,
)
from tollgate.budget_items import LedgerEntry, WatchedBudget, watched_budgets
from tollgate.config import Budget, ConfigBundle, Limits, ResolvedTenant
from tollgate.notifications import Deployment
from tollgate.periods import period_of
from tollgate.rollup import Granularity

from tests.conftest import REPO_ROOT

USD = 10**12
MODELS = (REPO_ROOT / "models.json").read_text()
BASE: dict[str, Any] = json.loads((REPO_ROOT / "config.json").read_text())
ACME = ResolvedTenant(
    tenant_id="acme",
    display_name="Acme Corp",
    customer_tier="team",
    time_zone="America/New_York",
    contact_email="ops@acme.example",
    budget=Budget(monthly_pusd=100 * USD),
    rate_limits=Limits(),
    on_cost_alarm="notify",
)
NOW = datetime(2026, 12, 15, 17, 30, tzinfo=UTC)


def monthly(limit_usd: int = 100, *, forecast: bool = True, at: datetime = NOW, mode: str = "alert") -> WatchedBudget:
    period = period_of("month", at, "America/New_York")
    return WatchedBudget("acme", None, period, limit_usd * USD, (50, 80, 100), forecast, mode)  # type: ignore[arg-type]


def test_each_threshold_is_due_once_per_period() -> None:
    budget = monthly()
    assert due(budget, LedgerEntry(), 49 * USD, None) == ()
    assert due(budget, LedgerEntry(), 50 * USD, None) == ("50",)
    # after the watcher recorded "50", the same spend is due nothing more
    assert due(budget, LedgerEntry(alerted=frozenset({"50"})), 60 * USD, None) == ()
    # a jump past two thresholds at once announces both in one alert
    assert due(budget, LedgerEntry(alerted=frozenset({"50"})), 101 * USD, None) == ("80", "100")
    # the next period's item has no "alerted": the thresholds are due again
    following = WatchedBudget("acme", None, budget.period.next(), 100 * USD, (50, 80, 100), True, "alert")
    assert due(following, LedgerEntry(), 50 * USD, None) == ("50",)


def test_watched_budgets_follow_config_and_the_tenants_own_time_zone() -> None:
    config = copy.deepcopy(BASE)
    config["tenants"]["acme"]["budget"] = {"daily_usd": "10.00"}
    bundle = ConfigBundle.from_texts(json.dumps(config), MODELS)
    at = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # still 30 November, 22:00, in New York
    acme = {(w.profile, w.period.sort_key): w.limit_pusd for w in watched_budgets(bundle, at) if w.tenant_id == "acme"}
    assert acme[(None, "M#2026-11")] == 500 * USD  # the team tier's monthly budget
    assert acme[(None, "D#2026-11-30")] == 10 * USD


def test_forecast_projects_the_last_24_hours_pace_to_the_month_end() -> None:
    budget = monthly()
    start, end = forecast_window("month", NOW)
    assert (start, end) == (datetime(2026, 12, 14, 17, tzinfo=UTC), NOW)
    # $6 in the last 24.5 h, $40 spent so far: the month (ends 2027-01-01 05:00 UTC) runs out
    forecast = forecast_of(budget, 40 * USD, 6 * USD, NOW)
    assert forecast.projected_pusd > 100 * USD
    assert forecast.limit_reached_at is not None
    assert forecast.limit_reached_at < budget.period.end
    assert due(budget, LedgerEntry(), 40 * USD, forecast) == ("forecast",)
    # a slow pace is not forecast to run out; nor is a budget without forecast
    slow = forecast_of(budget, 40 * USD, 1 * USD, NOW)
    assert due(budget, LedgerEntry(), 40 * USD, slow) == ()
    assert due(monthly(forecast=False), LedgerEntry(), 40 * USD, forecast) == ()
    # too little spend to extrapolate from (< 1 % of the limit in the window) announces nothing
    early = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    stray = forecast_of(monthly(at=early), USD // 2, USD // 2, early)
    assert due(monthly(at=early), LedgerEntry(), USD // 2, stray) == ()
    # sent once: a recorded forecast is not due again
    assert due(budget, LedgerEntry(alerted=frozenset({"forecast"})), 40 * USD, forecast) == ()


def test_a_dst_day_in_berlin_is_23_hours_and_resets_at_local_midnight() -> None:
    day = period_of("day", datetime(2026, 3, 29, 12, tzinfo=UTC), "Europe/Berlin")
    budget = WatchedBudget("globex", None, day, 10 * USD, (50,), True, "alert")
    at = datetime(2026, 3, 29, 12, tzinfo=UTC)
    # 3 h window from 09:00 UTC: $1.20 in 3 h = $0.40/h; 10 h remain to local midnight (22:00 UTC, CEST)
    forecast = forecast_of(budget, 4 * USD, 12 * USD // 10, at)
    assert budget.period.end == datetime(2026, 3, 29, 22, tzinfo=UTC)
    assert forecast.projected_pusd == 4 * USD + 12 * USD // 10 * 10 // 3


def test_rollup_spans_read_whole_days_as_day_rows_and_edges_as_hours() -> None:
    spans = rollup_spans(datetime(2026, 12, 1, 5, tzinfo=UTC), datetime(2026, 12, 3, 2, 30, tzinfo=UTC))
    assert [(s.granularity, s.first, s.last) for s in spans] == [
        (Granularity.HOUR, spans[0].first, spans[0].last),
        (Granularity.DAY, spans[1].first, spans[1].last),
        (Granularity.HOUR, spans[2].first, spans[2].last),
    ]
    assert spans[1].first == spans[1].last  # only 2 December is whole


def test_the_mail_names_tenant_spent_limit_forecast_top_profiles_and_reset() -> None:
    budget = monthly()
    forecast = forecast_of(budget, 55 * USD, 6 * USD, NOW)
    alert = BudgetAlert(
        budget,
        NOW,
        55 * USD,
        ("50", "forecast"),
        forecast,
        top=(ProfileSpend("acme-chat", 40 * USD), ProfileSpend("acme-search", 15 * USD)),
    )
    deployment = Deployment(stack="tollgate", region="us-east-1", dashboard_url="https://dash.example")
    admin = compose(alert, ACME, audience="admin", deployment=deployment)
    assert admin.subject == "Budget 50% reached, forecast to run out: acme, monthly budget $100.00"
    text = admin.message
    assert "Tenant Acme Corp (acme) has spent $55.00 of its monthly budget of $100.00 for December 2026" in text
    assert "Spent:" in text
    assert "$55.00" in text
    assert "Limit:    $100.00" in text
    assert "Resets:   2027-01-01 00:00 EST (2027-01-01 05:00 UTC)" in text
    assert "reaches the limit at about" in text
    assert "acme-chat" in text
    assert "acme-search" in text
    assert "Alerts:   50 %, forecast now; still to come: 80 %, 100 %" in text
    assert "tollgate report" in text
    tenant = compose(alert, ACME, audience="tenant")
    assert "GET /budget" in tenant.message
    assert "tollgate report" not in tenant.message
    assert "contact of tenant acme" in tenant.message


def test_the_100_percent_mail_says_what_enforcement_does() -> None:
    enforced = monthly(mode="enforce")
    alert = BudgetAlert(enforced, NOW, 100 * USD, ("100",), None)
    assert "calls that would cost more are refused until it resets" in compose(alert, ACME, audience="tenant").message
    alerting = BudgetAlert(monthly(), NOW, 120 * USD, ("100",), None)
    text = compose(alerting, ACME, audience="tenant").message
    assert "alert mode" in text
    assert "none: $20.00 over" in text
