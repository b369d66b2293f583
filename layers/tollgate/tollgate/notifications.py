"""Alarm notifications in words: what crossed, the money at stake, where to look. Pure code.

CloudWatch publishes a JSON message to the alert topic on every alarm state change, and its
e-mail says which metric crossed which threshold. The notifier turns that message into the
mail the admin reads instead: the tenant (id and display name from config.json) and the
profile, what crossed in words, the profile's cost over the last 5 minutes and the profile's
and tenant's cost so far today, the dashboard link and the ``tollgate report`` command that
shows the detail. Alarms that belong to no profile (AggregationFailureAlarm and the like) get
the same headline and links, with their description as the runbook pointer, and no money.

Nothing here can lose a notification: a figure that could not be looked up is shown as
"cost unavailable (why)", and a message that is not a CloudWatch alarm passes as it came.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final
from urllib.parse import quote

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from tollgate.alarms import ALARM_NAME_FORMATS
from tollgate.config import ConfigBundle
from tollgate.rollup import Granularity, minute_of, period_of
from tollgate.telemetry import DIM_TENANT, MetricName

#: SNS refuses longer subjects.
SUBJECT_LIMIT: Final = 100
#: How far back "the last 5 minutes" of a profile's cost reach (the cost alarm's own period).
SPEND_WINDOW: Final = timedelta(minutes=5)

_COMPARISONS: Final = {
    "GreaterThanThreshold": "greater than",
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}
#: The Trigger's Statistic ("SUM") as CloudWatch's API spells it elsewhere.
_STATISTICS: Final = {"SUM": "Sum", "SAMPLE_COUNT": "SampleCount", "AVERAGE": "Average", "MAXIMUM": "Maximum",
                      "MINIMUM": "Minimum"}  # fmt: skip
#: The newest datapoint CloudWatch names in a state reason: "[37.0 (27/11/26 03:33:00)".
_DATAPOINT: Final = re.compile(r"\[([-+0-9.Ee]+) \((\d\d/\d\d/\d\d \d\d:\d\d:\d\d)\)")


# --------------------------------------------------------------------------- the alarm message


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class AlarmDimension(_Message):
    name: str
    value: str


class AlarmTrigger(_Message):
    """The metric and rule of a metric alarm, as CloudWatch's message states them."""

    namespace: str = Field(alias="Namespace", default="")
    metric_name: str = Field(alias="MetricName", default="")
    dimensions: tuple[AlarmDimension, ...] = Field(alias="Dimensions", default=())
    statistic: str = Field(alias="Statistic", default="")
    period: int = Field(alias="Period", default=0)
    comparison: str = Field(alias="ComparisonOperator", default="")
    threshold: float | None = Field(alias="Threshold", default=None)

    @property
    def statistic_name(self) -> str:
        return _STATISTICS.get(self.statistic, self.statistic)


class AlarmMessage(_Message):
    """The JSON CloudWatch publishes to SNS when an alarm changes state (the fields used here)."""

    name: str = Field(alias="AlarmName", min_length=1)
    description: str | None = Field(alias="AlarmDescription", default=None)
    new_state: str = Field(alias="NewStateValue", min_length=1)
    old_state: str = Field(alias="OldStateValue", default="")
    reason: str = Field(alias="NewStateReason", default="")
    changed_at: AwareDatetime = Field(alias="StateChangeTime")
    arn: str = Field(alias="AlarmArn", default="")
    trigger: AlarmTrigger | None = Field(alias="Trigger", default=None)  # None for composite alarms

    def dimension(self, name: str) -> str | None:
        dims = self.trigger.dimensions if self.trigger else ()
        return next((d.value for d in dims if d.name == name), None)

    @property
    def region(self) -> str:
        """The region code, from the alarm's ARN ("" when the ARN does not say)."""
        parts = self.arn.split(":")
        return parts[3] if len(parts) > 5 else ""


def parse_alarm(text: str) -> AlarmMessage | None:
    """The CloudWatch alarm in an SNS message, or None for any other message (which passes unchanged)."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or not {"AlarmName", "NewStateValue"} <= document.keys():
        return None
    try:
        return AlarmMessage.model_validate(document)
    except ValidationError:
        return None


@dataclass(frozen=True)
class Datapoint:
    """The newest datapoint a state reason names: its value and the start of its period."""

    value: float
    start: datetime


def newest_datapoint(reason: str) -> Datapoint | None:
    match = _DATAPOINT.search(reason)
    if match is None:
        return None
    try:
        start = datetime.strptime(match[2], "%d/%m/%y %H:%M:%S").replace(tzinfo=UTC)
        return Datapoint(float(match[1]), start)
    except ValueError:
        return None


# --------------------------------------------------------------------------- what a notification says


@dataclass(frozen=True)
class Unavailable:
    """A figure or fact that could not be looked up, and why."""

    reason: str

    @classmethod
    def of(cls, error: BaseException) -> Unavailable:
        text = " ".join(str(error).split())
        return cls(f"{type(error).__name__}: {text}"[:300] if text else type(error).__name__)


Amount = Decimal | Unavailable


@dataclass(frozen=True)
class ProfileOwner:
    """The profile an alarm belongs to, and its tenant."""

    profile: str
    tenant_id: str
    display_name: str | Unavailable | None  # None: the tenant is not (or no longer) in config.json


@dataclass(frozen=True)
class Spend:
    """The money at stake around a profile alarm, in USD."""

    window_start: datetime
    window_end: datetime
    day: str
    #: CloudWatch's CostUSD metric over the window: a sum of doubles, shown to the pico-dollar.
    profile_window: Amount
    #: Exact: the DAY rollups of the trend table.
    profile_day: Amount
    tenant_day: Amount


@dataclass(frozen=True)
class Deployment:
    """Where the stack runs, for the links and commands of a notification."""

    stack: str
    region: str
    dashboard_url: str
    local: bool = False

    def report_command(self, day: str) -> str:
        where = "--local" if self.local else f"--stack {self.stack} --region {self.region}"
        return f"tollgate report --period {day} --by profile {where}"

    def alarm_url(self, alarm: AlarmMessage) -> str | None:
        """The alarm in the CloudWatch console (none locally: moto has no console)."""
        region = alarm.region or self.region
        if self.local or not region:
            return None
        return (
            f"https://{region}.console.aws.amazon.com/cloudwatch/deeplink.js?region={region}"
            f"#alarmsV2:alarm/{quote(alarm.name, safe='')}"
        )


@dataclass(frozen=True)
class Notification:
    """What goes to the admin's topic: an e-mail subject (SNS's default when None) and its text."""

    subject: str | None
    message: str


def profile_of(alarm_name: str) -> str | None:
    """The profile a per-profile alarm belongs to, from its name (tollgate.alarms), else None."""
    for name_format in ALARM_NAME_FORMATS:
        prefix = name_format.format(profile="")
        if alarm_name.startswith(prefix) and len(alarm_name) > len(prefix):
            return alarm_name[len(prefix) :]
    return None


def owner_of(alarm: AlarmMessage, bundle: ConfigBundle | Unavailable) -> ProfileOwner | None:
    """Whose profile the alarm watches: config.json first, the alarm's TenantId dimension for a removed profile."""
    profile = profile_of(alarm.name)
    if profile is None:
        return None
    resolved = bundle.profile(profile) if isinstance(bundle, ConfigBundle) else None
    tenant_id = resolved.tenant_id if resolved else alarm.dimension(DIM_TENANT)
    if not tenant_id:
        return None
    display: str | Unavailable | None
    if isinstance(bundle, Unavailable):
        display = bundle
    else:
        tenant = bundle.config.tenants.get(tenant_id)
        display = tenant.display_name if tenant else None
    return ProfileOwner(profile, tenant_id, display)


def spend_window(alarm: AlarmMessage) -> tuple[datetime, datetime, str]:
    """The 5 minutes up to and including the minute of the state change, and its UTC day."""
    end = minute_of(alarm.changed_at) + timedelta(minutes=1)
    return end - SPEND_WINDOW, end, period_of(Granularity.DAY, alarm.changed_at)


def subject_of(alarm: AlarmMessage, given: str | None) -> str:
    """CloudWatch's own subject when it came with one (mail filters keep working), else one like it."""
    if given:
        return given
    subject = f'{alarm.new_state}: "{alarm.name}"'
    if len(subject) <= SUBJECT_LIMIT:
        return subject
    return f'{alarm.new_state}: "{alarm.name[: SUBJECT_LIMIT - len(alarm.new_state) - 7]}..."'


def metric_usd(value: float) -> Decimal:
    """A CloudWatch sum of USD doubles, to the pico-dollar (far finer than the doubles' error here)."""
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-12)).normalize()


def dollars(amount: Decimal) -> str:
    """``$0.04476164``, ``$5.00``: every digit the amount has, and at least cents."""
    whole, _, cents = format(amount.normalize(), "f").partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


# --------------------------------------------------------------------------- the text


@dataclass(frozen=True)
class _Words:
    measured: str  # "made 37 requests"
    limit: str  # "20 requests per minute"
    nothing: str  # "no requests"


def _count(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else repr(value)


def _words(metric: str, value: float | None, threshold: float) -> _Words | None:
    if metric == MetricName.REQUESTS:
        shown = _count(value) if value is not None else ""
        return _Words(f"made {shown} requests", f"{_count(threshold)} requests per minute", "no requests")
    if metric == MetricName.TOTAL_TOKENS:
        shown = _count(value) if value is not None else ""
        return _Words(f"used {shown} tokens", f"{_count(threshold)} tokens per minute", "no tokens")
    if metric == MetricName.COST_USD:
        shown = dollars(metric_usd(value)) if value is not None else ""
        return _Words(f"spent {shown} on tokens", f"{dollars(metric_usd(threshold))} per 5 minutes", "no token cost")
    return None


def _span(period: int, start: datetime) -> str:
    """'the minute from 03:33 UTC', 'the 5 minutes from 03:29 UTC'."""
    if period == 60:
        return f"the minute from {start:%H:%M} UTC"
    if period and period % 60 == 0:
        return f"the {period // 60} minutes from {start:%H:%M} UTC"
    return f"the {period} s from {start:%H:%M:%S} UTC"


def _latest(period: int) -> str:
    if period == 60:
        return "the latest minute"
    return f"the latest {period // 60} minutes" if period and period % 60 == 0 else f"the latest {period} s"


def _who(owner: ProfileOwner) -> str:
    display = owner.display_name
    if isinstance(display, str) and display != owner.tenant_id:
        tenant = f"tenant {display} ({owner.tenant_id})"
    elif isinstance(display, Unavailable):
        tenant = f"tenant {owner.tenant_id} (display name unavailable: {display.reason})"
    else:
        tenant = f"tenant {owner.tenant_id}"
    return f"Profile {owner.profile} of {tenant}"


def _profile_headline(alarm: AlarmMessage, owner: ProfileOwner) -> str:
    trigger = alarm.trigger
    point = newest_datapoint(alarm.reason)
    words = _words(trigger.metric_name, point.value if point else None, trigger.threshold or 0.0) if trigger else None
    who = _who(owner)
    if words is None or trigger is None:
        return f"{who}: alarm {alarm.name} went {alarm.old_state} -> {alarm.new_state}."
    if alarm.new_state == "ALARM":
        if point is None:
            return f"{who} is over its limit of {words.limit}."
        return f"{who} {words.measured} in {_span(trigger.period, point.start)}, over its limit of {words.limit}."
    if alarm.new_state == "OK":
        if point is None:
            return f"{who} is back within its limit of {words.limit}: {words.nothing} in {_latest(trigger.period)}."
        measured = words.measured.split(" ", 1)[1]  # "37 requests"
        return f"{who} is back within its limit of {words.limit}: {measured} in {_span(trigger.period, point.start)}."
    return f"{who}: its alarm on {words.limit} has too little data to judge ({alarm.new_state})."


def _metric_label(trigger: AlarmTrigger) -> str:
    dims = ", ".join(f"{d.name}={d.value}" for d in trigger.dimensions)
    return f"{trigger.namespace} {trigger.metric_name}" + (f" ({dims})" if dims else "")


def _other_headline(alarm: AlarmMessage) -> str:
    trigger, point = alarm.trigger, newest_datapoint(alarm.reason)
    state = {"ALARM": "is in ALARM", "OK": "is OK again"}.get(alarm.new_state, f"is {alarm.new_state}")
    if trigger is None or point is None or trigger.threshold is None:
        return f"{alarm.name} {state}."
    comparison = _COMPARISONS.get(trigger.comparison, trigger.comparison)
    if alarm.new_state != "ALARM":
        comparison = f"not {comparison}"
    return (
        f"{alarm.name} {state}: {_metric_label(trigger)} was {_count(point.value)} "
        f"({trigger.statistic_name} over {_span(trigger.period, point.start)}), "
        f"{comparison} the threshold {_count(trigger.threshold)}."
    )


def _table(rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(label) for label, _ in rows) + 1
    return [f"  {label + ':':<{width}} {value}" for label, value in rows]


def _amount(amount: Amount, source: str) -> str:
    if isinstance(amount, Unavailable):
        return f"cost unavailable ({amount.reason})"
    return f"{dollars(amount)}   ({source})"


def _money(owner: ProfileOwner, spend: Spend) -> list[str]:
    display = owner.display_name if isinstance(owner.display_name, str) else owner.tenant_id
    span = f"{spend.window_start:%H:%M}-{spend.window_end:%H:%M} UTC"
    return [
        "Money (USD)",
        *_table(
            [
                (f"{owner.profile}, {span}", _amount(spend.profile_window, "CloudWatch CostUSD metric")),
                (f"{owner.profile}, {spend.day} so far (UTC)", _amount(spend.profile_day, "exact, trend table")),
                (f"{display} (all profiles), {spend.day} so far", _amount(spend.tenant_day, "exact, trend table")),
            ]
        ),
    ]


def describe(
    alarm: AlarmMessage,
    *,
    deployment: Deployment,
    owner: ProfileOwner | None,
    spend: Spend | None,
    subject: str | None = None,
) -> Notification:
    """The admin's mail for one alarm state change."""
    _, _, day = spend_window(alarm)
    lines = [_profile_headline(alarm, owner) if owner else _other_headline(alarm), ""]
    if owner is not None and spend is not None:
        lines += [*_money(owner, spend), ""]
    look = [("Dashboard", deployment.dashboard_url)]
    if owner is not None:
        look.append(("Detail", deployment.report_command(day)))
    alarm_url = deployment.alarm_url(alarm)
    if alarm_url:
        look.append(("Alarm", alarm_url))
    lines += ["Look closer", *_table(look), ""]
    if alarm.description:
        lines += ["About this alarm" if owner else "What to do", f"  {alarm.description}", ""]
    lines += [
        f"Alarm {alarm.name} went {alarm.old_state or '?'} -> {alarm.new_state} "
        f"at {alarm.changed_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC.",
        f"CloudWatch's reason: {alarm.reason}" if alarm.reason else "CloudWatch gave no reason.",
    ]
    if alarm.trigger is not None:
        trigger = alarm.trigger
        lines.append(f"Metric: {_metric_label(trigger)}, {trigger.statistic_name} over {trigger.period} s.")
    return Notification(subject_of(alarm, subject), "\n".join(lines) + "\n")


def undescribed(message: str, subject: str | None, error: BaseException) -> Notification:
    """The message as it came, with why it is not in words: a mail that cannot be made pretty still goes."""
    alarm = parse_alarm(message)
    preface = (
        f"Tollgate could not put this notification in words ({Unavailable.of(error).reason}); "
        "the message as CloudWatch published it follows.\n\n"
    )
    return Notification(subject_of(alarm, subject) if alarm else subject, preface + message)


def unchanged(message: str, subject: str | None) -> Notification:
    """A message that is not a CloudWatch alarm: passed on as it was published."""
    return Notification(subject, message)
