"""CloudWatch alarm evaluation for local mode: the part of CloudWatch that moto leaves out.

moto stores metric alarms but never evaluates them (they sit in ``OK`` for ever) and its
``SetAlarmState`` runs no actions. :class:`AlarmEvaluator` does what CloudWatch does every
minute: for each metric alarm it reads the alarm's metric with GetMetricStatistics, decides
the state from Period, EvaluationPeriods, DatapointsToAlarm ("M out of N"),
ComparisonOperator, Threshold and TreatMissingData, and on a change of state writes it to
moto with ``SetAlarmState`` (so DescribeAlarms and dashboards show it) and, if
ActionsEnabled, publishes to every SNS topic among the new state's actions the JSON message
CloudWatch publishes, under CloudWatch's subject (``ALARM: "name" in US East (N. Virginia)``).
Any transition runs the new state's actions, so an alarm's first evaluation
(INSUFFICIENT_DATA -> OK) notifies its OKActions, as in AWS.

Where this differs from CloudWatch, by choice or because AWS does not document the detail:

* **Window.** The newest period is the one that holds ``now - late_data_seconds`` (15 s
  by default), even while it is still running: a burst alarms on the next evaluation, not
  a minute or two later. CloudWatch evaluates complete periods only (the newest ends at
  the start of the evaluation minute) and waits for late data. The lag is what stands in
  for that wait: a metric stamped 12:00:55 that reaches CloudWatch at 12:01:05 (the
  stream's batching window, then the aggregator) is still judged with its own minute,
  which stays the newest period until 12:01:15. The other side of it: a running minute is
  judged only from 15 s into it, so a burst in its first seconds alarms at about :15 plus
  the next evaluation, later ones a batching window and an evaluation after they cross
  (`make bench` measures the range). As in CloudWatch, periods of 60 s and
  more slide by whole minutes (a 300 s period evaluated at 12:15:30 covers 12:11-12:16);
  shorter, high-resolution periods are aligned to themselves. A partial period can only
  under-report Sum and SampleCount, so "greater than" alarms on them never fire early,
  but a "less than" alarm may see a low partial period.
* **Evaluation range.** The window is exactly EvaluationPeriods periods. CloudWatch also
  looks a few periods further back when some are missing, so it keeps using the last
  datapoints for a while after a metric stops; here the missing periods count at once.
* **Missing data** follows "Configuring how CloudWatch alarms treat missing data":
  ``breaching`` and ``notBreaching`` fill every missing period; ``missing`` and ``ignore``
  judge the real datapoints. ``missing`` is INSUFFICIENT_DATA only when every period is
  missing, and goes to ALARM when the oldest breaching datapoint is at least
  DatapointsToAlarm periods old and nothing newer is below the threshold ("avoiding
  premature transitions to alarm state"); ``ignore`` keeps the state when every period is
  missing. When the missing periods could still tip the result either way, both keep the
  current state (undocumented in AWS). The AWS/DynamoDB "always ignore" rule is not copied.
* **State.** It starts at INSUFFICIENT_DATA, as in AWS (moto says OK), and the evaluator's
  own state is authoritative: a state set by hand with SetAlarmState is overwritten,
  without actions, at the next evaluation (AWS runs actions both ways).
* **Scope.** Only alarms on one plain metric with a standard statistic (Sum, SampleCount,
  Average, Maximum, Minimum) and a static threshold are evaluated; metric math,
  percentiles and anomaly bands (which moto cannot compute) are left as moto has them,
  with a warning. Only SNS actions run; other actions are logged.
* **Wording.** Reasons use CloudWatch's phrases. AWS writes the long form ("1 out of the
  last 1 datapoints [...] was greater than the threshold (5.0) (minimum 1 datapoint for
  OK -> ALARM transition).") for alarms that set DatapointsToAlarm and the short form
  ("1 datapoint [...] was greater than the threshold (5.0).") for alarms that do not; that
  rule is inferred from published messages, not documented. Trigger carries
  DatapointsToAlarm only when the alarm sets it. A subject over SNS's 100 characters has
  the alarm name cut short with "...".

The metric is read with one GetMetricStatistics call per period: moto buckets a
multi-period query from the first datapoint's timestamp, not from StartTime, so one query
would mix neighbouring periods.
"""

from __future__ import annotations

import json
import logging
import operator
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.literals import ComparisonOperatorType, StandardUnitType, StatisticType
    from mypy_boto3_cloudwatch.type_defs import GetMetricStatisticsInputTypeDef, MetricAlarmTypeDef
    from mypy_boto3_sns import SNSClient

logger = logging.getLogger(__name__)

State = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
OK: Final = "OK"
ALARM: Final = "ALARM"
INSUFFICIENT_DATA: Final = "INSUFFICIENT_DATA"

INITIAL_REASON: Final = "Unchecked: Initial alarm creation"  # AWS's (and moto's) reason for a new alarm
SUBJECT_LIMIT: Final = 100  # SNS refuses longer subjects
#: How long a period stays the newest after it ends, so that metrics arriving late still count in it.
DEFAULT_LATE_DATA_SECONDS: Final = 15.0

#: Region names as CloudWatch writes them in alarm subjects and messages.
REGION_NAMES: Final[Mapping[str, str]] = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "ca-central-1": "Canada (Central)",
    "sa-east-1": "South America (Sao Paulo)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-west-3": "EU (Paris)",
    "eu-central-1": "EU (Frankfurt)",
    "eu-central-2": "EU (Zurich)",
    "eu-north-1": "EU (Stockholm)",
    "eu-south-1": "EU (Milan)",
    "eu-south-2": "EU (Spain)",
    "ap-south-1": "Asia Pacific (Mumbai)",
    "ap-south-2": "Asia Pacific (Hyderabad)",
    "ap-east-1": "Asia Pacific (Hong Kong)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ap-northeast-2": "Asia Pacific (Seoul)",
    "ap-northeast-3": "Asia Pacific (Osaka)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "ap-southeast-3": "Asia Pacific (Jakarta)",
    "ap-southeast-4": "Asia Pacific (Melbourne)",
    "af-south-1": "Africa (Cape Town)",
    "me-south-1": "Middle East (Bahrain)",
    "me-central-1": "Middle East (UAE)",
    "il-central-1": "Israel (Tel Aviv)",
}

#: ComparisonOperator -> (does a value breach the threshold, CloudWatch's words for it).
COMPARISONS: Final[Mapping[str, tuple[Callable[[float, float], bool], str]]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}

#: Statistic -> how the alarm message's Trigger spells it.
_MESSAGE_STATISTICS: Final[Mapping[str, str]] = {
    "Sum": "SUM",
    "SampleCount": "SAMPLE_COUNT",
    "Average": "AVERAGE",
    "Maximum": "MAXIMUM",
    "Minimum": "MINIMUM",
}

#: TreatMissingData values that fill missing periods -> the label in the state reason.
_FILLED_AS: Final[Mapping[str, str]] = {"breaching": "Breaching", "notBreaching": "NonBreaching"}


def region_long_name(region: str) -> str:
    """The region as CloudWatch names it in alarm messages, or the code for one not listed."""
    return REGION_NAMES.get(region, region)


def format_double(value: float) -> str:
    """``value`` as Java's ``Double.toString`` writes it, as CloudWatch does: 6.0, 0.059, 2.147483648E10."""
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(float(value))
    number = Decimal(repr(float(value))).normalize()
    sign, digits, _ = number.as_tuple()
    mantissa = "".join(map(str, digits))
    return f"{'-' if sign else ''}{mantissa[0]}.{mantissa[1:] or '0'}E{number.adjusted()}"


def aws_time(moment: datetime) -> str:
    """A timestamp as alarm messages write it: ``2026-11-27T00:05:00.123+0000``."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}+0000"


@dataclass(frozen=True)
class AlarmRule:
    """What evaluating one metric alarm takes, read from its DescribeAlarms entry."""

    name: str
    arn: str
    description: str | None
    configuration_updated: datetime | None
    actions_enabled: bool
    ok_actions: tuple[str, ...]
    alarm_actions: tuple[str, ...]
    insufficient_data_actions: tuple[str, ...]
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: StatisticType
    unit: StandardUnitType | None
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int | None  # as configured; None means all EvaluationPeriods
    comparison: ComparisonOperatorType
    threshold: float
    treat_missing_data: str  # "missing" when the alarm does not say

    @classmethod
    def from_description(cls, alarm: MetricAlarmTypeDef) -> AlarmRule | None:
        """The rule of a plain-metric, static-threshold alarm; None for any other kind."""
        comparison = alarm.get("ComparisonOperator")
        statistic = alarm.get("Statistic")
        if alarm.get("Metrics") or comparison is None or statistic is None:  # metric math, percentiles
            return None
        if comparison not in COMPARISONS or statistic not in _MESSAGE_STATISTICS:  # anomaly-band operators
            return None
        return cls(
            name=alarm["AlarmName"],
            arn=alarm["AlarmArn"],
            description=alarm.get("AlarmDescription"),
            configuration_updated=alarm.get("AlarmConfigurationUpdatedTimestamp"),
            actions_enabled=alarm.get("ActionsEnabled", True),
            ok_actions=tuple(alarm.get("OKActions", ())),
            alarm_actions=tuple(alarm.get("AlarmActions", ())),
            insufficient_data_actions=tuple(alarm.get("InsufficientDataActions", ())),
            namespace=alarm["Namespace"],
            metric_name=alarm["MetricName"],
            dimensions=tuple((d["Name"], d["Value"]) for d in alarm.get("Dimensions", ())),
            statistic=statistic,
            unit=alarm.get("Unit"),
            period=alarm["Period"],
            evaluation_periods=alarm["EvaluationPeriods"],
            datapoints_to_alarm=alarm.get("DatapointsToAlarm"),
            comparison=comparison,
            threshold=alarm["Threshold"],
            treat_missing_data=alarm.get("TreatMissingData", "missing"),
        )

    @property
    def required(self) -> int:
        """M of "M out of N": breaching datapoints that put the alarm in ALARM."""
        return self.datapoints_to_alarm or self.evaluation_periods

    def actions_for(self, state: State) -> tuple[str, ...]:
        """The actions a transition into ``state`` runs."""
        if state == ALARM:
            return self.alarm_actions
        return self.ok_actions if state == OK else self.insufficient_data_actions

    def breaches(self, value: float) -> bool:
        return COMPARISONS[self.comparison][0](value, self.threshold)


@dataclass(frozen=True)
class Datapoint:
    """One period of an alarm's window: its start, the statistic (None when missing), the sample count."""

    start: datetime
    value: float | None
    sample_count: float = 0.0


@dataclass(frozen=True)
class Assessment:
    """The state a window calls for, with CloudWatch's reason for it."""

    state: State
    reason: str


@dataclass(frozen=True)
class Transition:
    """One change of an alarm's state, as the evaluator made it."""

    alarm_name: str
    old_state: State
    new_state: State
    reason: str
    time: datetime


def assess(rule: AlarmRule, window: Sequence[Datapoint]) -> Assessment | None:
    """The state ``window`` (EvaluationPeriods periods, oldest first) calls for; None to keep the current one.

    See the module docstring for the missing-data rules.
    """
    periods, required = len(window), rule.required
    real = [(point, point.value) for point in window if point.value is not None]
    breaching = [(point, value) for point, value in real if rule.breaches(value)]
    missing = periods - len(real)
    treatment = rule.treat_missing_data
    if missing and treatment in _FILLED_AS:
        filled = len(breaching) + (missing if treatment == "breaching" else 0)
        received = f"{_count(len(real), 'datapoint')} {_was(len(real))}" if real else "no datapoints were"
        return Assessment(
            ALARM if filled >= required else OK,
            f"Threshold Crossed: {received} received for {_count(periods, 'period')} and "
            f"{_count(missing, 'missing datapoint')} {_was(missing)} treated as [{_FILLED_AS[treatment]}].",
        )
    if not real:
        if treatment == "ignore":
            return None
        unknown = f"{_count(periods, 'datapoint')} {_was(periods)} unknown"
        return Assessment(INSUFFICIENT_DATA, f"Insufficient Data: {unknown}.")
    if len(breaching) >= required or (treatment == "missing" and _oldest_breach_holds(rule, window)):
        return Assessment(ALARM, _threshold_reason(rule, breaching, ALARM))
    if not missing or len(breaching) + missing < required:
        return Assessment(OK, _threshold_reason(rule, [(p, v) for p, v in real if not rule.breaches(v)], OK))
    return None  # the missing periods could still decide it either way


def _oldest_breach_holds(rule: AlarmRule, window: Sequence[Datapoint]) -> bool:
    """CloudWatch's rule against premature ALARM with ``missing``: the oldest breaching datapoint is at
    least DatapointsToAlarm periods old and every newer period is breaching or missing."""
    for index, point in enumerate(window):
        if point.value is not None and rule.breaches(point.value):
            newer = window[index + 1 :]
            return len(window) - index >= rule.required and all(
                p.value is None or rule.breaches(p.value) for p in newer
            )
    return False


def _threshold_reason(rule: AlarmRule, listed: Sequence[tuple[Datapoint, float]], state: State) -> str:
    """``Threshold Crossed: ...`` naming the ``listed`` datapoints (the breaching ones for ALARM)."""
    phrase = COMPARISONS[rule.comparison][1]
    if state == OK:
        phrase = f"not {phrase}"
    periods, configured = rule.evaluation_periods, rule.datapoints_to_alarm is not None
    head = (
        f"{len(listed)} out of the last {periods} datapoints"
        if configured or periods > 1
        else _count(len(listed), "datapoint")
    )
    points = ", ".join(f"{format_double(value)} ({point.start:%d/%m/%y %H:%M:%S})" for point, value in reversed(listed))
    reason = (
        f"Threshold Crossed: {head} [{points}] {_was(len(listed))} {phrase} "
        f"the threshold ({format_double(rule.threshold)})"
    )
    if configured:
        needed, direction = (
            (rule.required, "OK -> ALARM") if state == ALARM else (periods - rule.required + 1, "ALARM -> OK")
        )
        reason += f" (minimum {_count(needed, 'datapoint')} for {direction} transition)"
    return reason + "."


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _was(number: int) -> str:
    return "was" if number == 1 else "were"


def _reason_data(rule: AlarmRule, window: Sequence[Datapoint], now: datetime) -> str:
    """StateReasonData as CloudWatch writes it for a threshold alarm."""
    real = [(point, point.value) for point in window if point.value is not None]
    data: dict[str, Any] = {"version": "1.0", "queryDate": aws_time(now), "startDate": aws_time(window[0].start)}
    if rule.unit:
        data["unit"] = rule.unit
    data |= {
        "statistic": rule.statistic,
        "period": rule.period,
        "recentDatapoints": [value for _, value in real],
        "threshold": rule.threshold,
        "evaluatedDatapoints": [
            {"timestamp": aws_time(point.start), "sampleCount": point.sample_count, "value": value}
            for point, value in reversed(real)
        ],
    }
    return json.dumps(data, separators=(",", ":"))


def _subject(state: State, alarm_name: str, region: str) -> str:
    """CloudWatch's SNS subject, ``ALARM: "name" in US East (N. Virginia)``, cut to SNS's limit."""
    where = region_long_name(region)
    subject = f'{state}: "{alarm_name}" in {where}'
    if len(subject) <= SUBJECT_LIMIT:
        return subject
    room = max(SUBJECT_LIMIT - len(f'{state}: "..." in {where}'), 0)
    return f'{state}: "{alarm_name[:room]}..." in {where}'


@dataclass(frozen=True)
class _Tracked:
    """The evaluator's record of one alarm's state."""

    state: State
    reason: str
    reason_data: str


_INITIAL: Final = _Tracked(INSUFFICIENT_DATA, INITIAL_REASON, "{}")


class AlarmEvaluator:
    """Evaluates moto's metric alarms the way CloudWatch would and runs their SNS actions.

    Call :meth:`evaluate` for one pass (tests pass ``now``); local mode calls it every few
    seconds from its ticker thread. Thread-safe: passes never overlap.
    """

    def __init__(
        self,
        cloudwatch_client: CloudWatchClient,
        sns_client: SNSClient,
        *,
        region: str,
        account_id: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        late_data_seconds: float = DEFAULT_LATE_DATA_SECONDS,
    ) -> None:
        if not 0 <= late_data_seconds < 60:
            raise ValueError(f"late_data_seconds must be 0..59, not {late_data_seconds}")
        self._late_data = timedelta(seconds=late_data_seconds)
        self._cloudwatch = cloudwatch_client
        self._sns = sns_client
        self._region = region
        self._account_id = account_id
        self._clock = clock
        self._tracked: dict[str, _Tracked] = {}
        self._skipped: set[str] = set()
        self._evaluating = threading.Lock()
        self._state_lock = threading.Lock()

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, now: datetime | None = None) -> list[Transition]:
        """Evaluate every metric alarm at ``now`` (default: the clock); the transitions this made.

        An alarm whose metric cannot be read is logged and skipped for this pass.
        """
        moment = self._clock() if now is None else now
        if moment.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        moment = moment.astimezone(UTC)
        with self._evaluating:
            transitions: list[Transition] = []
            present: set[str] = set()
            for described in self._describe_alarms():
                rule = AlarmRule.from_description(described)
                if rule is None:
                    self._skip(described["AlarmName"])
                    continue
                present.add(rule.name)
                try:
                    transition = self._evaluate_alarm(rule, described.get("StateValue"), moment)
                except (BotoCoreError, ClientError):
                    logger.exception("could not evaluate alarm %s", rule.name)
                    continue
                if transition is not None:
                    transitions.append(transition)
            with self._state_lock:
                for deleted in self._tracked.keys() - present:
                    del self._tracked[deleted]
            return transitions

    def states(self) -> dict[str, str]:
        """Each evaluated alarm's current state, by name (INSUFFICIENT_DATA before its first change)."""
        with self._state_lock:
            return {name: tracked.state for name, tracked in self._tracked.items()}

    def _describe_alarms(self) -> Iterator[MetricAlarmTypeDef]:
        for page in self._cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
            yield from page.get("MetricAlarms", [])

    def _skip(self, name: str) -> None:
        if name not in self._skipped:
            self._skipped.add(name)
            logger.warning("alarm %s is not a plain-metric threshold alarm: not evaluated locally", name)

    def _evaluate_alarm(self, rule: AlarmRule, shown: str | None, now: datetime) -> Transition | None:
        window = self._window(rule, now)
        assessment = assess(rule, window)
        with self._state_lock:
            current = self._tracked.setdefault(rule.name, _INITIAL)
        if assessment is None or assessment.state == current.state:
            if shown != current.state:  # moto's initial OK, or a state set by hand: show ours
                self._set_alarm_state(rule.name, current)
            return None
        changed = _Tracked(assessment.state, assessment.reason, _reason_data(rule, window, now))
        self._set_alarm_state(rule.name, changed)
        with self._state_lock:
            self._tracked[rule.name] = changed
        transition = Transition(rule.name, current.state, changed.state, changed.reason, now)
        logger.info("alarm %s: %s -> %s (%s)", rule.name, current.state, changed.state, changed.reason)
        if rule.actions_enabled:
            self._run_actions(rule, transition)
        return transition

    def _set_alarm_state(self, name: str, tracked: _Tracked) -> None:
        self._cloudwatch.set_alarm_state(
            AlarmName=name, StateValue=tracked.state, StateReason=tracked.reason, StateReasonData=tracked.reason_data
        )

    def _window(self, rule: AlarmRule, now: datetime) -> list[Datapoint]:
        """The EvaluationPeriods periods ending with the one that holds ``now`` less the late-data lag, oldest first."""
        step = min(rule.period, 60)
        epoch = int((now - self._late_data).timestamp())
        end = epoch - epoch % step + step
        return [
            self._datapoint(rule, datetime.fromtimestamp(end - back * rule.period, UTC))
            for back in range(rule.evaluation_periods, 0, -1)
        ]

    def _datapoint(self, rule: AlarmRule, start: datetime) -> Datapoint:
        query: GetMetricStatisticsInputTypeDef = {
            "Namespace": rule.namespace,
            "MetricName": rule.metric_name,
            "Dimensions": [{"Name": name, "Value": value} for name, value in rule.dimensions],
            "StartTime": start,
            "EndTime": start + timedelta(seconds=rule.period),
            "Period": rule.period,
            "Statistics": list(dict.fromkeys([rule.statistic, "SampleCount"])),
        }
        if rule.unit:
            query["Unit"] = rule.unit
        found = self._cloudwatch.get_metric_statistics(**query)["Datapoints"]
        if not found:
            return Datapoint(start, None)
        point: Mapping[str, Any] = found[0]
        return Datapoint(start, float(point[rule.statistic]), float(point.get("SampleCount", 0.0)))

    # ------------------------------------------------------------------ actions

    def _run_actions(self, rule: AlarmRule, transition: Transition) -> None:
        subject = _subject(transition.new_state, rule.name, self._region)
        message = json.dumps(self._message(rule, transition), separators=(",", ":"))
        for arn in rule.actions_for(transition.new_state):
            if arn.split(":")[2:3] != ["sns"]:
                logger.info("alarm %s: action %s is not run locally (only SNS actions are)", rule.name, arn)
                continue
            try:
                self._sns.publish(TopicArn=arn, Subject=subject, Message=message)
            except (BotoCoreError, ClientError):
                logger.exception("alarm %s: publishing to %s failed", rule.name, arn)

    def _message(self, rule: AlarmRule, transition: Transition) -> dict[str, Any]:
        """The JSON CloudWatch publishes to SNS for a state change of a metric alarm."""
        trigger: dict[str, Any] = {
            "MetricName": rule.metric_name,
            "Namespace": rule.namespace,
            "StatisticType": "Statistic",
            "Statistic": _MESSAGE_STATISTICS[rule.statistic],
            "Unit": rule.unit,
            "Dimensions": [{"value": value, "name": name} for name, value in rule.dimensions],
            "Period": rule.period,
            "EvaluationPeriods": rule.evaluation_periods,
        }
        if rule.datapoints_to_alarm is not None:
            trigger["DatapointsToAlarm"] = rule.datapoints_to_alarm
        trigger |= {
            "ComparisonOperator": rule.comparison,
            "Threshold": rule.threshold,
            "TreatMissingData": rule.treat_missing_data,
            "EvaluateLowSampleCountPercentile": "",
        }
        updated = rule.configuration_updated
        return {
            "AlarmName": rule.name,
            "AlarmDescription": rule.description,
            "AWSAccountId": self._account_id,
            "AlarmConfigurationUpdatedTimestamp": aws_time(updated) if updated else None,
            "NewStateValue": transition.new_state,
            "NewStateReason": transition.reason,
            "StateChangeTime": aws_time(transition.time),
            "Region": region_long_name(self._region),
            "AlarmArn": rule.arn,
            "OldStateValue": transition.old_state,
            "OKActions": list(rule.ok_actions),
            "AlarmActions": list(rule.alarm_actions),
            "InsufficientDataActions": list(rule.insufficient_data_actions),
            "Trigger": trigger,
        }
