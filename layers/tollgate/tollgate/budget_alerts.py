"""Budget alerts: which budgets are watched, which alerts are due, and the mails. Pure code.

Every run of the budget watcher (tollgate.services.budget_watcher) looks at each budget of
config.json for the current tenant-local month and day: the tenants' own, and the profiles'
own. An alert threshold (50 / 80 / 100 % or the configured list) is due once the period's
spend reaches it, and is sent once per period: the budget item's ``alerted`` set says which
were sent (the watcher claims them with a conditional write before it sends).

The forecast: the spend of a trailing window, as a rate, projected to the end of the period.

* month budgets look at the last 24 hours: a whole day smooths the daily cycle (busy business
  hours, quiet nights), which a shorter window would extrapolate over the whole month;
* day budgets look at the last 3 hours: a 24-hour window would be mostly yesterday. Within a
  day the cycle makes a morning peak project high: the warning then comes early, never late.

Both windows end now and begin on a UTC hour (they are read from the trend table's HOUR
rollups), so they are N hours plus the minutes of the current hour long. The forecast alert is
due when the projection reaches the limit before the period ends, the limit is not reached yet,
and the window's spend is at least 1 % of the limit: less is too little to extrapolate from
(one stray request must not announce a month's overrun).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction
from typing import Final, Literal

from tollgate.budget_items import LedgerEntry, WatchedBudget
from tollgate.config import ResolvedTenant
from tollgate.money import usd
from tollgate.notifications import SUBJECT_LIMIT, Deployment, Notification, Unavailable, dollars
from tollgate.periods import FORECAST_ALERT, Period, PeriodKind, zone
from tollgate.rollup import Granularity, RollupKey, Totals, period_of

#: Trailing window whose spend makes the forecast's rate, by period kind (see the module docstring).
FORECAST_WINDOWS: Final[dict[PeriodKind, timedelta]] = {"month": timedelta(hours=24), "day": timedelta(hours=3)}
#: The window's spend must be at least this share of the limit for a forecast alert.
MIN_FORECAST_SHARE: Final = Fraction(1, 100)
#: How many profiles an alert lists under "Top profiles".
TOP_PROFILES: Final = 5

Audience = Literal["admin", "tenant"]


# --------------------------------------------------------------------------- what is watched


# --------------------------------------------------------------------------- thresholds and forecast


def reached(spent_pusd: int, limit_pusd: int, percent: int) -> bool:
    """Whether ``spent`` is at least ``percent`` % of ``limit`` (exact, integers)."""
    return spent_pusd * 100 >= percent * limit_pusd


def crossed(budget: WatchedBudget, spent_pusd: int) -> tuple[int, ...]:
    return tuple(t for t in budget.alerts if reached(spent_pusd, budget.limit_pusd, t))


def forecast_window(kind: PeriodKind, now: datetime) -> tuple[datetime, datetime]:
    """The trailing window of a forecast: from N whole UTC hours before the current hour, to now."""
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return hour - FORECAST_WINDOWS[kind], now.astimezone(UTC)


@dataclass(frozen=True)
class Forecast:
    """Where the period's spend is heading at the pace of a trailing window."""

    window_start: datetime
    window_end: datetime
    window_pusd: int
    #: The period's spend at its end, at that pace (rounded down to the pico-dollar).
    projected_pusd: int
    #: When the limit is reached at that pace (None: not before the period ends, or no spend).
    limit_reached_at: datetime | None

    @property
    def window_hours(self) -> Fraction:
        return Fraction(int((self.window_end - self.window_start).total_seconds() * 1_000_000), 3_600_000_000)

    @property
    def hourly_pusd(self) -> Fraction:
        return Fraction(self.window_pusd) / self.window_hours if self.window_hours else Fraction(0)


def _microseconds(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def forecast_of(budget: WatchedBudget, spent_pusd: int, window_pusd: int, now: datetime) -> Forecast:
    """The forecast of ``budget`` from the spend of its trailing window (``forecast_window``)."""
    start, end = forecast_window(budget.period.kind, now)
    window = _microseconds(end - start)
    remaining = max(0, _microseconds(budget.period.end - end))
    projected = spent_pusd + (window_pusd * remaining) // window if window else spent_pusd
    reached_at = None
    if window_pusd > 0 and spent_pusd < budget.limit_pusd:
        to_limit = ((budget.limit_pusd - spent_pusd) * window) // window_pusd  # microseconds at this pace
        if to_limit < remaining:
            reached_at = end + timedelta(microseconds=to_limit)
    return Forecast(start, end, window_pusd, projected, reached_at)


def forecast_due(budget: WatchedBudget, spent_pusd: int, forecast: Forecast) -> bool:
    """A forecast alert: the pace reaches the limit before the period ends, on enough spend to go by."""
    return (
        budget.forecast
        and spent_pusd < budget.limit_pusd
        and forecast.projected_pusd >= budget.limit_pusd
        and forecast.window_pusd >= budget.limit_pusd * MIN_FORECAST_SHARE
    )


def forecast_may_be_due(budget: WatchedBudget, entry: LedgerEntry, spent_pusd: int) -> bool:
    """Whether a forecast alert could be due at all (else the window need not be read)."""
    return budget.forecast and FORECAST_ALERT not in entry.alerted and 0 < spent_pusd < budget.limit_pusd


def due(budget: WatchedBudget, entry: LedgerEntry, spent_pusd: int, forecast: Forecast | None) -> tuple[str, ...]:
    """The alerts to send now (``alerted`` tokens): thresholds reached and not yet sent, then the forecast."""
    tokens = [str(t) for t in crossed(budget, spent_pusd) if str(t) not in entry.alerted]
    if forecast is not None and FORECAST_ALERT not in entry.alerted and forecast_due(budget, spent_pusd, forecast):
        tokens.append(FORECAST_ALERT)
    return tuple(tokens)


# --------------------------------------------------------------------------- trend rollups of a span


@dataclass(frozen=True)
class RollupSpan:
    """Consecutive trend periods of one granularity, ``first`` to ``last`` inclusive (UTC)."""

    granularity: Granularity
    first: str
    last: str


def rollup_spans(start: datetime, end: datetime) -> list[RollupSpan]:
    """The HOUR and DAY rollups that together cover the UTC hours overlapping ``[start, end)``.

    Whole UTC days are read as DAY rows, the hours at either edge as HOUR rows, so a month costs
    three queries rather than 744 hours. A start that is not on a UTC hour (time zones half an
    hour off UTC) is taken from the start of its hour.
    """
    first_hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    end = end.astimezone(UTC)
    if end <= first_hour:
        return []
    last_hour = (end - timedelta(microseconds=1)).replace(minute=0, second=0, microsecond=0)
    spans: list[RollupSpan] = []
    first_full_day = first_hour if first_hour.hour == 0 else (first_hour + timedelta(days=1)).replace(hour=0)
    after_last_full_day = (last_hour + timedelta(hours=1)).replace(hour=0)
    if first_full_day >= after_last_full_day:  # no whole UTC day in the range
        return [RollupSpan(Granularity.HOUR, _hour(first_hour), _hour(last_hour))]
    if first_hour < first_full_day:
        spans.append(RollupSpan(Granularity.HOUR, _hour(first_hour), _hour(first_full_day - timedelta(hours=1))))
    spans.append(
        RollupSpan(
            Granularity.DAY,
            period_of(Granularity.DAY, first_full_day),
            period_of(Granularity.DAY, after_last_full_day - timedelta(days=1)),
        )
    )
    if after_last_full_day <= last_hour:
        spans.append(RollupSpan(Granularity.HOUR, _hour(after_last_full_day), _hour(last_hour)))
    return spans


def _hour(at: datetime) -> str:
    return period_of(Granularity.HOUR, at)


def cost_of(rows: Mapping[RollupKey, Totals], profile: str | None = None) -> int:
    """The cost of the rows (of one profile when given)."""
    return sum(t.cost_pusd for k, t in rows.items() if profile is None or k.profile == profile)


@dataclass(frozen=True)
class ProfileSpend:
    profile: str
    cost_pusd: int


def top_profiles(rows: Mapping[RollupKey, Totals], limit: int = TOP_PROFILES) -> list[ProfileSpend]:
    """The profiles that spent most in the rows, most first (ties by name)."""
    by_profile: dict[str, int] = {}
    for key, totals in rows.items():
        by_profile[key.profile] = by_profile.get(key.profile, 0) + totals.cost_pusd
    ranked = sorted(by_profile.items(), key=lambda item: (-item[1], item[0]))
    return [ProfileSpend(p, c) for p, c in ranked[:limit] if c > 0]


# --------------------------------------------------------------------------- the alert and its mail


@dataclass(frozen=True)
class BudgetAlert:
    """What one alert says: the budget, the spend, which alerts it announces, the forecast."""

    budget: WatchedBudget
    #: When the watcher judged it.
    at: datetime
    spent_pusd: int
    #: The ``alerted`` tokens this alert claimed: thresholds ("50") and/or "forecast".
    announces: tuple[str, ...]
    forecast: Forecast | Unavailable | None
    #: Tokens sent earlier this period.
    sent_before: frozenset[str] = frozenset()
    top: Sequence[ProfileSpend] | Unavailable = field(default_factory=tuple)

    @property
    def thresholds(self) -> tuple[int, ...]:
        return tuple(int(t) for t in self.announces if t != FORECAST_ALERT)

    @property
    def announces_forecast(self) -> bool:
        return FORECAST_ALERT in self.announces


def percent(spent_pusd: int, limit_pusd: int, places: int = 1) -> Decimal:
    """``spent`` as a percentage of ``limit``, rounded down (99.99 % never shows as 100 %)."""
    exact = Decimal(spent_pusd * 100) / Decimal(limit_pusd)
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)


def about(pusd: int | Fraction) -> str:
    """An estimate in dollars: cents from $1, else 4 significant digits (``$0.008712``)."""
    amount = Decimal(int(pusd)).scaleb(-12)
    if amount >= 1:
        return dollars(amount.quantize(Decimal("0.01")))
    if amount == 0:
        return "$0.00"
    digits = 4 - amount.adjusted() - 1
    return dollars(amount.quantize(Decimal(1).scaleb(-digits)))


def when(instant: datetime, time_zone: str) -> str:
    """``2027-01-01 00:00 EST (2027-01-01 05:00 UTC)``, or just UTC for tenants on UTC."""
    utc = instant.astimezone(UTC)
    if time_zone == "UTC":
        return f"{utc:%Y-%m-%d %H:%M} UTC"
    local = instant.astimezone(zone(time_zone))
    return f"{local:%Y-%m-%d %H:%M} {local:%Z} ({utc:%Y-%m-%d %H:%M} UTC)"


def period_label(period: Period) -> str:
    """``December 2026`` or ``2026-12-03``."""
    if period.kind == "month":
        return f"{period.local_start:%B %Y}"
    return period.key


def _tenant_name(tenant: ResolvedTenant) -> str:
    if tenant.display_name and tenant.display_name != tenant.tenant_id:
        return f"{tenant.display_name} ({tenant.tenant_id})"
    return tenant.tenant_id


def whose(budget: WatchedBudget, tenant: ResolvedTenant) -> str:
    if budget.profile is None:
        return f"tenant {_tenant_name(tenant)}"
    return f"profile {budget.profile} of tenant {_tenant_name(tenant)}"


def _word(kind: PeriodKind) -> str:
    return "monthly" if kind == "month" else "daily"


def _and(items: Iterable[str]) -> str:
    listed = list(items)
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]


def subject_of(alert: BudgetAlert) -> str:
    """E.g. ``Budget 80% reached: acme-chat (acme), daily budget $0.05`` (ASCII: ids, not display names)."""
    budget = alert.budget
    parts = []
    if alert.thresholds:
        parts.append(f"{max(alert.thresholds)}% reached")
    if alert.announces_forecast:
        parts.append("forecast to run out")
    owner = budget.tenant_id if budget.profile is None else f"{budget.profile} ({budget.tenant_id})"
    limit = dollars(usd(budget.limit_pusd))
    subject = f"Budget {', '.join(parts)}: {owner}, {_word(budget.period.kind)} budget {limit}"
    return subject if len(subject) <= SUBJECT_LIMIT else subject[: SUBJECT_LIMIT - 3] + "..."


def headline(alert: BudgetAlert, tenant: ResolvedTenant) -> str:
    budget = alert.budget
    who = whose(budget, tenant)
    who = who[0].upper() + who[1:]
    limit = dollars(usd(budget.limit_pusd))
    spent = dollars(usd(alert.spent_pusd))
    used = percent(alert.spent_pusd, budget.limit_pusd)
    its = f"its {_word(budget.period.kind)} budget of {limit} for {period_label(budget.period)}"
    lines = []
    if alert.thresholds:
        names = _and(f"{t} %" for t in alert.thresholds)
        plural = "s" * (len(alert.thresholds) > 1)
        sentence = f"{who} has spent {spent} of {its} ({used} %): past the {names} alert{plural}."
        if reached(alert.spent_pusd, budget.limit_pusd, 100):
            sentence += (
                " The budget is used up: calls that would cost more are refused until it resets."
                if budget.enforced
                else " Calls go on (the budget is in alert mode): everything past the limit is spent anyway."
            )
        lines.append(sentence)
    if alert.announces_forecast and isinstance(alert.forecast, Forecast):
        forecast = alert.forecast
        pace = f"At the pace of the last {_hours(forecast)}"
        if forecast.limit_reached_at is not None:
            reach = f"reaches {its} at about {when(forecast.limit_reached_at, budget.period.time_zone)}"
        else:
            reach = f"reaches {its} before it ends"
        lines.append(
            f"{pace}, {who if not alert.thresholds else 'it'} {reach}, before the period ends "
            f"(spent so far: {spent}, {used} %)."
        )
    return " ".join(lines)


def _hours(forecast: Forecast) -> str:
    whole = int((forecast.window_end - forecast.window_start).total_seconds() // 3600)
    return f"{whole} hours" if whole != 1 else "hour"


def forecast_line(alert: BudgetAlert) -> str:
    forecast, budget = alert.forecast, alert.budget
    if isinstance(forecast, Unavailable):
        return f"unavailable ({forecast.reason})"
    if forecast is None:
        return "not computed"
    window = f"the last {_hours(forecast)}' pace"
    if forecast.window_pusd == 0:
        return f"no spend in the last {_hours(forecast)}: {dollars(usd(alert.spent_pusd))} at the end of the period"
    line = (
        f"about {about(forecast.projected_pusd)} by the end of the period, at {window} "
        f"({about(forecast.hourly_pusd)} an hour)"
    )
    if forecast.limit_reached_at is not None:
        return f"{line}; reaches the limit at about {when(forecast.limit_reached_at, budget.period.time_zone)}"
    if alert.spent_pusd >= budget.limit_pusd:
        return f"{line}; the limit is reached already"
    return f"{line}; within the limit"


def _mode_line(budget: WatchedBudget) -> str:
    if budget.enforced:
        return "enforce: a call that would take the spend past the limit is refused (ServiceQuotaExceededException)"
    return "alert: calls go on past the limit; these mails are the warning"


def _alerts_line(alert: BudgetAlert) -> str:
    def name(token: str) -> str:
        return "forecast" if token == FORECAST_ALERT else f"{token} %"

    order = [str(t) for t in alert.budget.alerts] + ([FORECAST_ALERT] if alert.budget.forecast else [])
    now = [name(t) for t in order if t in alert.announces]
    before = [name(t) for t in order if t in alert.sent_before]
    later = [name(t) for t in order if t not in alert.announces and t not in alert.sent_before]
    parts = [f"{', '.join(now)} now"]
    if before:
        parts.append(f"sent before: {', '.join(before)}")
    if later:
        parts.append(f"still to come: {', '.join(later)}")
    return "; ".join(parts)


def _table(rows: Sequence[tuple[str, str]]) -> list[str]:
    width = max(len(label) for label, _ in rows) + 1
    return [f"  {label + ':':<{width}} {value}" for label, value in rows]


def _top_lines(alert: BudgetAlert) -> list[str]:
    title = f"Top profiles of tenant {alert.budget.tenant_id}, {period_label(alert.budget.period)} so far"
    if isinstance(alert.top, Unavailable):
        return [title, f"  unavailable ({alert.top.reason})"]
    if not alert.top:
        return [title, "  none in the trend table yet (it trails the ledger by a few seconds)"]
    total = sum(p.cost_pusd for p in alert.top)
    width = max(len(p.profile) for p in alert.top) + 2
    lines = [title + " (trend table)"]
    for spend in alert.top:
        mark = "  <- this budget" if spend.profile == alert.budget.profile else ""
        share = percent(spend.cost_pusd, total) if total else Decimal(0)
        lines.append(f"  {spend.profile:<{width}}{dollars(usd(spend.cost_pusd)):>16}  {share:>5} %{mark}")
    return lines


def compose(
    alert: BudgetAlert, tenant: ResolvedTenant, *, audience: Audience, deployment: Deployment | None = None
) -> Notification:
    """The mail for the admin (links to the dashboard and the report) or for the tenant's contact."""
    budget = alert.budget
    period = budget.period
    left = budget.limit_pusd - alert.spent_pusd
    rows = [
        ("Whose", whose(budget, tenant) + (", all its profiles" if budget.profile is None else "")),
        ("Period", f"{period_label(period)} ({period.kind}, {period.time_zone})"),
        ("Spent", f"{dollars(usd(alert.spent_pusd))}   (exact)"),
        ("Limit", dollars(usd(budget.limit_pusd))),
        ("Used", f"{percent(alert.spent_pusd, budget.limit_pusd)} %"),
        ("Left", dollars(usd(left)) if left >= 0 else f"none: {dollars(usd(-left))} over"),
        ("Forecast", forecast_line(alert)),
        ("Resets", when(period.end, period.time_zone)),
        ("Mode", _mode_line(budget)),
        ("Alerts", _alerts_line(alert)),
    ]
    lines = [headline(alert, tenant), "", "Budget", *_table(rows), "", *_top_lines(alert), ""]
    if audience == "admin":
        look = []
        if deployment is not None:
            look.append(("Dashboard", deployment.dashboard_url))
            # the report's periods are UTC days: those the budget period overlaps so far
            first, last = period_of(Granularity.DAY, period.start), period_of(Granularity.DAY, alert.at)
            command = deployment.report_command(first if first == last else f"{first}..{last}")
            look.append(("Detail", f"{command}   (UTC days)"))
        look.append(("Budgets", "config.json: the budget of the tenant, its customer tier, or the profile"))
        lines += ["Look closer", *_table(look), ""]
    else:
        lines += [
            "Look closer",
            *_table(
                [
                    ("Usage", "GET /usage?from=YYYY-MM-DD&to=YYYY-MM-DD on the gateway, with your key"),
                    ("Budgets", "GET /budget on the gateway, with your key"),
                ]
            ),
            "",
            f"You get this mail as the contact of tenant {tenant.tenant_id}.",
        ]
    return Notification(subject_of(alert), "\n".join(lines).rstrip("\n") + "\n")
