"""Local alarm evaluation and the admin's mailbox, over real HTTP.

moto runs as a server (ThreadedMotoServer); the admin's address is an HTTP subscription to
the Mailbox, so every alarm notification goes evaluator -> SNS publish -> moto -> HTTP POST
-> .eml file, the way local mode runs it for an alarm that publishes to the admin topic
directly (NotificationFailureAlarm: CloudWatch's own mail). The other alarms go through the
notifier first: tests/integration/test_local_notifications.py and the e2e tests.
"""

from __future__ import annotations

import email.policy
import json
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from tollgate.alarms import alarms_for
from tollgate.config import ConfigBundle
from tollgate_local.alarms import (
    ALARM,
    INITIAL_REASON,
    INSUFFICIENT_DATA,
    OK,
    AlarmEvaluator,
    AlarmRule,
    Assessment,
    Datapoint,
    Transition,
    assess,
    aws_time,
    format_double,
)
from tollgate_local.mailbox import Mailbox

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import DimensionTypeDef
    from mypy_boto3_sns import SNSClient

REGION = "us-east-1"
ACCOUNT = "123456789012"
ADMIN = "admin+alarms@example.com"
NAMESPACE = "Tollgate/Test"
DIMENSIONS: list[DimensionTypeDef] = [{"Name": "TenantId", "Value": "t1"}]
SENDER = "AWS Notifications <no-reply@sns.amazonaws.com>"
NO_DATA_OK = (
    "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as [NonBreaching]."
)
#: Half past a minute, so that a few seconds later is still the same minute.
T0 = datetime.now(UTC).replace(second=30, microsecond=0)
MINUTE = T0.replace(second=0)


def stamp(moment: datetime) -> str:
    """A period start as CloudWatch writes it in a state reason."""
    return f"{moment:%d/%m/%y %H:%M:%S}"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class Local:
    cloudwatch: CloudWatchClient
    sns: SNSClient
    topic: str
    mailbox: Mailbox
    evaluator: AlarmEvaluator

    def put_alarm(self, name: str, **overrides: Any) -> None:
        """Sum over 60 s > 5, missing data not breaching, actions to the admin's topic."""
        args: dict[str, Any] = {
            "AlarmName": name,
            "AlarmDescription": f"{name}: tokens per minute",
            "Namespace": NAMESPACE,
            "MetricName": "TotalTokens",
            "Dimensions": DIMENSIONS,
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 5.0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [self.topic],
            "OKActions": [self.topic],
        }
        args.update(overrides)
        self.cloudwatch.put_metric_alarm(**{k: v for k, v in args.items() if v is not None})

    def put_value(self, value: float, at: datetime, name: str = "TotalTokens") -> None:
        self.cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[{"MetricName": name, "Dimensions": DIMENSIONS, "Value": value, "Timestamp": at}],
        )

    def described(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]  # type: ignore[assignment]
        return found

    def mails(self) -> list[EmailMessage]:
        parser = BytesParser(policy=email.policy.default)
        return [parser.parsebytes(path.read_bytes()) for path in self.mailbox.messages()]


@pytest.fixture
def local(moto_url: str, tmp_path: Path) -> Iterator[Local]:
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).close()
    cloudwatch = boto3.client("cloudwatch", endpoint_url=moto_url, region_name=REGION)
    sns = boto3.client("sns", endpoint_url=moto_url, region_name=REGION)
    topic = sns.create_topic(Name="tollgate-alarms")["TopicArn"]
    with Mailbox(tmp_path / "outbox") as mailbox:
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=mailbox.url_for(ADMIN))
        evaluator = AlarmEvaluator(cloudwatch, sns, region=REGION, account_id=ACCOUNT)
        yield Local(cloudwatch, sns, topic, mailbox, evaluator)


def body_of(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    text: str = part.get_content()
    return text.replace("\r\n", "\n")


def long_time(moment: datetime) -> str:
    return f"{moment:%A %d %B, %Y %H:%M:%S} UTC"


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --------------------------------------------------------------------------- evaluation against moto


def test_alarm_goes_ok_alarm_ok_and_mails_each_transition_once(local: Local) -> None:
    local.put_alarm("tokens")

    first = local.evaluator.evaluate(T0)
    assert first == [Transition("tokens", INSUFFICIENT_DATA, OK, NO_DATA_OK, T0)]
    shown = local.described("tokens")
    assert (shown["StateValue"], shown["StateReason"]) == (OK, NO_DATA_OK)
    assert json.loads(shown["StateReasonData"])["recentDatapoints"] == []
    assert [mail["Subject"] for mail in local.mails()] == ['OK: "tokens" in US East (N. Virginia)']

    local.put_value(6, T0)
    burst = T0 + timedelta(seconds=5)
    reason = f"Threshold Crossed: 1 datapoint [6.0 ({stamp(MINUTE)})] was greater than the threshold (5.0)."
    assert local.evaluator.evaluate(burst) == [Transition("tokens", OK, ALARM, reason, burst)]
    for later in (10, 20, 29):
        assert local.evaluator.evaluate(T0 + timedelta(seconds=later)) == []
    assert local.described("tokens")["StateValue"] == ALARM
    assert local.evaluator.states() == {"tokens": ALARM}
    mails = local.mails()
    assert [mail["Subject"] for mail in mails] == [
        'OK: "tokens" in US East (N. Virginia)',
        'ALARM: "tokens" in US East (N. Virginia)',
    ]

    alarm_mail = mails[1]
    assert (alarm_mail["From"], alarm_mail["To"]) == (SENDER, ADMIN)
    assert alarm_mail["Date"]
    assert alarm_mail["Message-ID"]
    attachment = next(alarm_mail.iter_attachments())
    assert (attachment.get_filename(), attachment.get_content_type()) == ("alarm.json", "application/json")
    message = json.loads(attachment.get_content())
    expected = {
        "AlarmName": "tokens",
        "AlarmDescription": "tokens: tokens per minute",
        "AWSAccountId": ACCOUNT,
        "AlarmConfigurationUpdatedTimestamp": aws_time(shown["AlarmConfigurationUpdatedTimestamp"]),
        "NewStateValue": "ALARM",
        "NewStateReason": reason,
        "StateChangeTime": f"{burst:%Y-%m-%dT%H:%M:%S}.000+0000",
        "Region": "US East (N. Virginia)",
        "AlarmArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:tokens",
        "OldStateValue": "OK",
        "OKActions": [local.topic],
        "AlarmActions": [local.topic],
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": "TotalTokens",
            "Namespace": NAMESPACE,
            "StatisticType": "Statistic",
            "Statistic": "SUM",
            "Unit": None,
            "Dimensions": [{"value": "t1", "name": "TenantId"}],
            "Period": 60,
            "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 5.0,
            "TreatMissingData": "notBreaching",
            "EvaluateLowSampleCountPercentile": "",
        },
    }
    assert message == expected
    assert list(message) == list(expected)  # CloudWatch's field order
    assert list(message["Trigger"]) == list(expected["Trigger"])

    body = body_of(alarm_mail)
    assert body.startswith(
        'You are receiving this email because your Amazon CloudWatch Alarm "tokens" in the US East (N. Virginia) '
        f'region has entered the ALARM state, because "{reason}" at "{long_time(burst)}".\n'
    )
    for line in (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/deeplink.js?region=us-east-1#alarmsV2:alarm/tokens",
        "- Name:                       tokens",
        "- Description:                tokens: tokens per minute",
        "- State Change:               OK -> ALARM",
        f"- Reason for State Change:    {reason}",
        f"- AWS Account:                {ACCOUNT}",
        "- The alarm is in the ALARM state when the metric is GreaterThanThreshold 5.0 "
        "for at least 1 of the last 1 period(s) of 60 seconds.",
        f"- MetricNamespace:                     {NAMESPACE}",
        "- Dimensions:                          [TenantId = t1]",
        "- Statistic:                           Sum",
        "- Unit:                                not specified",
        "- TreatMissingData:                    notBreaching",
        f"- OK: [{local.topic}]",
        f"- ALARM: [{local.topic}]",
        "- INSUFFICIENT_DATA:",
    ):
        assert f"\n{line}\n" in body, line
    assert "\n--\nIf you wish to stop receiving notifications from this topic, please click" in body
    assert "&Endpoint=admin%2Balarms@example.com\n" in body
    assert body.rstrip().endswith("please contact us at https://aws.amazon.com/support")

    quiet = T0 + timedelta(minutes=3)
    assert local.evaluator.evaluate(quiet) == [Transition("tokens", ALARM, OK, NO_DATA_OK, quiet)]
    mails = local.mails()
    assert len(mails) == 3
    assert mails[2]["Subject"] == 'OK: "tokens" in US East (N. Virginia)'
    assert json.loads(next(mails[2].iter_attachments()).get_content())["OldStateValue"] == ALARM
    assert local.described("tokens")["StateValue"] == OK


def test_a_minute_stays_newest_for_the_late_data_lag_so_late_metrics_still_alarm(local: Local) -> None:
    """A burst at 12:00:55 whose metric lands at 12:01:05 (stream batching window + aggregator) alarms."""
    local.put_alarm("late")
    assert [t.new_state for t in local.evaluator.evaluate(MINUTE + timedelta(seconds=50))] == [OK]

    local.put_value(6, MINUTE + timedelta(seconds=55))
    arrived = MINUTE + timedelta(seconds=65)
    assert [(t.old_state, t.new_state) for t in local.evaluator.evaluate(arrived)] == [(OK, ALARM)]
    assert local.evaluator.evaluate(MINUTE + timedelta(seconds=74)) == []  # lag of 15 s: still that minute
    assert [(t.old_state, t.new_state) for t in local.evaluator.evaluate(MINUTE + timedelta(seconds=76))] == [
        (ALARM, OK)
    ]
    assert [mail["Subject"].split(":")[0] for mail in local.mails()] == ["OK", "ALARM", "OK"]


def test_late_data_lag_must_be_under_a_minute(local: Local) -> None:
    with pytest.raises(ValueError, match=r"late_data_seconds must be 0\.\.59"):
        AlarmEvaluator(local.cloudwatch, local.sns, region=REGION, account_id=ACCOUNT, late_data_seconds=60)


def test_m_out_of_n_counts_breaching_datapoints_in_the_window(local: Local) -> None:
    local.put_alarm("requests", EvaluationPeriods=3, DatapointsToAlarm=2)
    two_ago, one_ago = MINUTE - timedelta(minutes=2), MINUTE - timedelta(minutes=1)
    local.put_value(6, two_ago + timedelta(seconds=10))
    local.put_value(1, one_ago + timedelta(seconds=10))

    (first,) = local.evaluator.evaluate(T0)
    assert (first.new_state, first.reason) == (
        OK,
        "Threshold Crossed: 2 datapoints were received for 3 periods and 1 missing datapoint was treated as "
        "[NonBreaching].",
    )

    local.put_value(7, T0)
    (second,) = local.evaluator.evaluate(T0 + timedelta(seconds=1))
    assert (second.old_state, second.new_state) == (OK, ALARM)
    assert second.reason == (
        f"Threshold Crossed: 2 out of the last 3 datapoints [7.0 ({stamp(MINUTE)}), 6.0 ({stamp(two_ago)})] "
        "were greater than the threshold (5.0) (minimum 2 datapoints for OK -> ALARM transition)."
    )
    reason_data = json.loads(local.described("requests")["StateReasonData"])
    assert reason_data["recentDatapoints"] == [6.0, 1.0, 7.0]
    assert [p["value"] for p in reason_data["evaluatedDatapoints"]] == [7.0, 1.0, 6.0]

    (third,) = local.evaluator.evaluate(T0 + timedelta(minutes=1))  # 6.0 has left the window
    assert (third.old_state, third.new_state) == (ALARM, OK)

    alarm_mail = local.mails()[1]
    message = json.loads(next(alarm_mail.iter_attachments()).get_content())
    assert (message["Trigger"]["EvaluationPeriods"], message["Trigger"]["DatapointsToAlarm"]) == (3, 2)
    assert "for at least 2 of the last 3 period(s) of 60 seconds." in body_of(alarm_mail)


def test_breaching_missing_data_alarms_at_once(local: Local) -> None:
    local.put_alarm("heartbeat", TreatMissingData="breaching")
    (transition,) = local.evaluator.evaluate(T0)
    assert (transition.old_state, transition.new_state, transition.reason) == (
        INSUFFICIENT_DATA,
        ALARM,
        "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as "
        "[Breaching].",
    )
    assert [mail["Subject"] for mail in local.mails()] == ['ALARM: "heartbeat" in US East (N. Virginia)']


def test_disabled_actions_change_state_but_send_nothing(local: Local) -> None:
    local.put_alarm("quiet", ActionsEnabled=False)
    assert [t.new_state for t in local.evaluator.evaluate(T0)] == [OK]
    local.put_value(6, T0)
    assert [t.new_state for t in local.evaluator.evaluate(T0)] == [ALARM]
    assert local.described("quiet")["StateValue"] == ALARM
    assert local.mailbox.messages() == []


def test_missing_data_stays_insufficient_and_moto_shows_it(local: Local) -> None:
    local.put_alarm("fresh", TreatMissingData=None, InsufficientDataActions=[local.topic])
    assert local.described("fresh")["StateValue"] == OK  # moto's start
    assert local.evaluator.evaluate(T0) == []
    shown = local.described("fresh")
    assert (shown["StateValue"], shown["StateReason"]) == (INSUFFICIENT_DATA, INITIAL_REASON)
    assert local.mailbox.messages() == []

    local.put_value(9, T0)
    assert [t.new_state for t in local.evaluator.evaluate(T0)] == [ALARM]
    later = T0 + timedelta(minutes=2)
    assert local.evaluator.evaluate(later) == [
        Transition("fresh", ALARM, INSUFFICIENT_DATA, "Insufficient Data: 1 datapoint was unknown.", later)
    ]
    assert [mail["Subject"] for mail in local.mails()] == [
        'ALARM: "fresh" in US East (N. Virginia)',
        'INSUFFICIENT_DATA: "fresh" in US East (N. Virginia)',
    ]


def test_state_set_by_hand_is_corrected_silently(local: Local) -> None:
    local.put_alarm("tokens")
    local.evaluator.evaluate(T0)
    local.cloudwatch.set_alarm_state(AlarmName="tokens", StateValue="ALARM", StateReason="testing")
    assert local.evaluator.evaluate(T0) == []
    assert (local.described("tokens")["StateValue"], local.described("tokens")["StateReason"]) == (OK, NO_DATA_OK)
    assert len(local.mailbox.messages()) == 1


def test_provisioned_cost_alarm_sums_a_sliding_five_minutes(local: Local, bundle: ConfigBundle) -> None:
    """The provisioner's own alarm shape (DatapointsToAlarm set: CloudWatch's long reason)."""
    profile = bundle.profiles()[0]
    cost = alarms_for(profile, NAMESPACE)[0]
    local.cloudwatch.put_metric_alarm(**cost.put_metric_alarm_args(local.topic, "tollgate-test"))
    dimensions: list[DimensionTypeDef] = [{"Name": k, "Value": v} for k, v in cost.metric.dimensions]
    half = cost.threshold / 2 + 0.25
    for at in (MINUTE - timedelta(minutes=4), T0):  # 4 minutes apart: both in one 5-minute window
        local.cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[{"MetricName": cost.metric.name, "Dimensions": dimensions, "Value": half, "Timestamp": at}],
        )
    states = [(t.old_state, t.new_state) for t in local.evaluator.evaluate(T0)]
    assert states == [(INSUFFICIENT_DATA, ALARM)]
    reason = local.described(cost.name)["StateReason"]
    assert reason == (
        f"Threshold Crossed: 1 out of the last 1 datapoints [{format_double(2 * half)} "
        f"({stamp(MINUTE - timedelta(minutes=4))})] was greater than the threshold ({format_double(cost.threshold)}) "
        "(minimum 1 datapoint for OK -> ALARM transition)."
    )
    (mail,) = local.mails()
    assert mail["Subject"] == f'ALARM: "{cost.name}" in US East (N. Virginia)'
    assert "of the last 1 period(s) of 300 seconds." in body_of(mail)
    assert [t.new_state for t in local.evaluator.evaluate(T0 + timedelta(minutes=1))] == [OK]  # the first left


def test_unsupported_alarms_are_left_alone(local: Local, caplog: pytest.LogCaptureFixture) -> None:
    local.put_alarm("tokens")
    local.cloudwatch.put_metric_alarm(
        AlarmName="math",
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
        Metrics=[
            {
                "Id": "m1",
                "MetricStat": {
                    "Metric": {"Namespace": NAMESPACE, "MetricName": "TotalTokens"},
                    "Period": 60,
                    "Stat": "Sum",
                },
                "ReturnData": False,
            },
            {"Id": "e1", "Expression": "m1 * 2", "ReturnData": True},
        ],
    )
    with caplog.at_level(logging.WARNING, logger="tollgate_local.alarms"):
        local.evaluator.evaluate(T0)
        local.evaluator.evaluate(T0)
    assert local.evaluator.states() == {"tokens": OK}
    assert caplog.text.count("alarm math is not a plain-metric threshold alarm") == 1


def test_long_alarm_names_are_cut_to_the_sns_subject_limit(local: Local) -> None:
    name = "BedrockTokensPerMinuteAlarm-" + "x" * 80
    local.put_alarm(name)
    local.evaluator.evaluate(T0)
    (mail,) = local.mails()
    assert len(mail["Subject"]) == 100
    assert mail["Subject"].startswith('OK: "BedrockTokensPerMinuteAlarm-xxx')
    assert mail["Subject"].endswith('..." in US East (N. Virginia)')


# --------------------------------------------------------------------------- the rules, without moto


def window(pattern: str) -> list[Datapoint]:
    """``X`` breaching (9), ``0`` not breaching, ``-`` missing; oldest first."""
    values = {"X": 9.0, "0": 0.0, "-": None}
    return [Datapoint(MINUTE + timedelta(minutes=i), values[c], 1.0) for i, c in enumerate(pattern)]


def rule(
    treatment: str, *, periods: int = 3, required: int | None = None, comparison: str = "GreaterThanThreshold"
) -> AlarmRule:
    return AlarmRule.from_description(
        {
            "AlarmName": "a",
            "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a",
            "Namespace": NAMESPACE,
            "MetricName": "M",
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": periods,
            **({"DatapointsToAlarm": required} if required else {}),
            "Threshold": 5.0,
            "ComparisonOperator": comparison,  # type: ignore[typeddict-item]
            "TreatMissingData": treatment,
        }
    ) or pytest.fail("not a plain-metric alarm")


@pytest.mark.parametrize(
    ("treatment", "pattern", "expected"),
    [
        # every period missing
        ("missing", "---", INSUFFICIENT_DATA),
        ("ignore", "---", None),
        ("breaching", "---", ALARM),
        ("notBreaching", "---", OK),
        # the oldest period breaching, the newer ones missing (CloudWatch's "- - X - -" row)
        ("missing", "X--", ALARM),
        ("ignore", "X--", None),
        ("breaching", "X--", ALARM),
        ("notBreaching", "X--", OK),
        # a breaching datapoint too recent to count, missing around it
        ("missing", "-X-", None),
        ("breaching", "-X-", ALARM),
        # a datapoint below the threshold rules ALARM out (3 of 3 needed)
        ("missing", "0--", OK),
        ("ignore", "0--", OK),
        ("breaching", "0--", OK),
        # no missing data: TreatMissingData does not matter
        ("ignore", "XXX", ALARM),
        ("breaching", "X0X", OK),
    ],
)
def test_missing_data_treatments(treatment: str, pattern: str, expected: str | None) -> None:
    assert state_of(assess(rule(treatment), window(pattern))) == expected


def state_of(assessment: Assessment | None) -> str | None:
    return assessment.state if assessment else None


def test_m_out_of_n_with_missing_treated_as_missing() -> None:
    two_of_three = rule("missing", required=2)
    assert state_of(assess(two_of_three, window("X0X"))) == ALARM
    assert state_of(assess(two_of_three, window("-X-"))) == ALARM  # the oldest breach is 2 periods old
    assert state_of(assess(two_of_three, window("0-X"))) is None  # the missing one decides
    assert state_of(assess(two_of_three, window("00X"))) == OK


@pytest.mark.parametrize(
    ("comparison", "value", "state", "words"),
    [
        ("GreaterThanThreshold", 5.0, OK, "was not greater than"),
        ("GreaterThanOrEqualToThreshold", 5.0, ALARM, "was greater than or equal to"),
        ("LessThanThreshold", 5.0, OK, "was not less than"),
        ("LessThanThreshold", 4.5, ALARM, "was less than"),
        ("LessThanOrEqualToThreshold", 5.0, ALARM, "was less than or equal to"),
    ],
)
def test_comparison_operators(comparison: str, value: float, state: str, words: str) -> None:
    assessment = assess(rule("missing", periods=1, comparison=comparison), [Datapoint(MINUTE, value, 1.0)])
    assert assessment is not None
    assert assessment.state == state
    assert assessment.reason == (
        f"Threshold Crossed: 1 datapoint [{format_double(value)} ({stamp(MINUTE)})] {words} the threshold (5.0)."
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (6, "6.0"),
        (0.0, "0.0"),
        (0.059, "0.059"),
        (25.5, "25.5"),
        (2.147483648e10, "2.147483648E10"),
        (1e7, "1.0E7"),
        (1e-4, "1.0E-4"),
        (-3.5e-5, "-3.5E-5"),
        (3.6266666666666665, "3.6266666666666665"),
    ],
)
def test_numbers_are_written_as_java_doubles(value: float, text: str) -> None:
    assert format_double(value) == text


# --------------------------------------------------------------------------- the mailbox


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain"})
    try:
        with urllib.request.urlopen(request) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


def test_mailbox_files_plain_messages_and_ignores_the_rest(local: Local) -> None:
    url = local.mailbox.url_for(ADMIN)
    assert url == f"http://127.0.0.1:{local.mailbox.port}/mail/admin%2Balarms%40example.com"
    assert post(url, b"not json") == 400
    assert post(url, b"[1, 2]") == 400
    assert post(url, json.dumps({"Type": "SubscriptionConfirmation", "TopicArn": local.topic}).encode()) == 200
    assert post(url.replace("/mail/", "/elsewhere/"), b"{}") == 404
    assert local.mailbox.messages() == []

    local.sns.publish(TopicArn=local.topic, Message="Budget review on Monday.\n")
    (path,) = local.mailbox.messages()
    assert path.name.endswith("-0001-aws-notification-message.eml")
    assert not list(path.parent.glob(".*.tmp"))
    (mail,) = local.mails()
    assert (mail["Subject"], mail["To"], mail["From"]) == ("AWS Notification Message", ADMIN, SENDER)
    assert body_of(mail).startswith("Budget review on Monday.\n\n\n--\nIf you wish to stop receiving")
    assert list(mail.iter_attachments()) == []

    local.sns.publish(TopicArn=local.topic, Message="again", Subject="Quota: 80% used!")
    assert local.mailbox.messages()[1].name.endswith("-0002-quota-80-used.eml")


def test_mailbox_stop_frees_the_port(tmp_path: Path) -> None:
    mailbox = Mailbox(tmp_path)
    mailbox.start()
    port = mailbox.port
    mailbox.stop()
    mailbox.stop()
    with pytest.raises(RuntimeError):
        mailbox.url_for(ADMIN)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
    with Mailbox(tmp_path, port=port) as again:
        assert again.port == port
