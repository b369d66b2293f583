"""The admin's mail in words: what crossed, whose it is, the money, where to look. Pure code, no AWS."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from tollgate.config import ConfigBundle
from tollgate.notifications import (
    Deployment,
    Spend,
    Unavailable,
    describe,
    metric_usd,
    owner_of,
    parse_alarm,
    spend_window,
    undescribed,
)

DASHBOARD = (
    "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards:name=tollgate-tollgate"
)
DEPLOYED = Deployment(stack="tollgate", region="us-east-1", dashboard_url=DASHBOARD)
LOCAL = Deployment(
    stack="tollgate-local", region="us-east-1", dashboard_url="http://127.0.0.1:3000/_local/dashboard", local=True
)


def cloudwatch_message(name: str, metric: str, dims: dict[str, str], **overrides: Any) -> str:
    """The JSON CloudWatch publishes to SNS on a state change (fields in CloudWatch's order)."""
    message: dict[str, Any] = {
        "AlarmName": name,
        "AlarmDescription": f"Tollgate: {metric} alarm. Thresholds live in config.json.",
        "AWSAccountId": "123456789012",
        "AlarmConfigurationUpdatedTimestamp": "2026-11-27T01:00:00.000+0000",
        "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed: 1 out of the last 1 datapoints [37.0 (27/11/26 03:33:00)] was greater "
        "than the threshold (20.0) (minimum 1 datapoint for OK -> ALARM transition).",
        "StateChangeTime": "2026-11-27T03:33:44.120+0000",
        "Region": "US East (N. Virginia)",
        "AlarmArn": f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}",
        "OldStateValue": "OK",
        "OKActions": ["arn:aws:sns:us-east-1:123456789012:tollgate-AlertTopic"],
        "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:tollgate-AlertTopic"],
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": metric,
            "Namespace": "Tollgate",
            "StatisticType": "Statistic",
            "Statistic": "SUM",
            "Unit": None,
            "Dimensions": [{"value": v, "name": k} for k, v in dims.items()],
            "Period": 60,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 20.0,
            "TreatMissingData": "notBreaching",
            "EvaluateLowSampleCountPercentile": "",
        },
    }
    trigger = overrides.pop("Trigger", {})
    message.update(overrides)
    message["Trigger"].update(trigger)
    return json.dumps(message)


INITECH = {"TenantId": "initech", "Profile": "initech-coder"}
REQUESTS = cloudwatch_message("BedrockRequestsPerMinuteAlarm-initech-coder", "Requests", INITECH)
SUBJECT = 'ALARM: "BedrockRequestsPerMinuteAlarm-initech-coder" in US East (N. Virginia)'


def spend(**amounts: Decimal | Unavailable) -> Spend:
    alarm = parse_alarm(REQUESTS)
    assert alarm is not None
    start, end, day = spend_window(alarm)
    figures = {
        "profile_window": Decimal("0.036884840"),
        "profile_day": Decimal("0.03688484"),
        "tenant_day": Decimal("0.044761640"),
    }
    return Spend(start, end, day, **{**figures, **amounts})


def mail_for(message: str, bundle: ConfigBundle, *, deployment: Deployment = DEPLOYED, **amounts: Any) -> str:
    alarm = parse_alarm(message)
    assert alarm is not None
    owner = owner_of(alarm, bundle)
    notification = describe(
        alarm, deployment=deployment, owner=owner, spend=spend(**amounts) if owner else None, subject=SUBJECT
    )
    assert notification.subject == SUBJECT  # CloudWatch's own subject: mail filters keep working
    return notification.message


def test_a_profile_alarm_says_whose_what_crossed_the_money_and_where_to_look(bundle: ConfigBundle) -> None:
    text = mail_for(REQUESTS, bundle)

    headline = text.splitlines()[0]
    assert headline == (
        "Profile initech-coder of tenant Initech (initech) made 37 requests in the minute from 03:33 UTC, "
        "over its limit of 20 requests per minute."
    )
    # the money, exact where the rollups are, and where each figure comes from
    assert "  initech-coder, 03:29-03:34 UTC:            $0.03688484   (CloudWatch CostUSD metric)\n" in text
    assert "  initech-coder, 2026-11-27 so far (UTC):    $0.03688484   (exact, trend table)\n" in text
    assert "  Initech (all profiles), 2026-11-27 so far: $0.04476164   (exact, trend table)\n" in text
    # where to look, and the command that shows the detail of that very day on that very stack
    assert f"  Dashboard: {DASHBOARD}\n" in text
    assert "  Detail:    tollgate report --period 2026-11-27 --by profile --stack tollgate --region us-east-1\n" in text
    assert (
        "  Alarm:     https://us-east-1.console.aws.amazon.com/cloudwatch/deeplink.js?region=us-east-1"
        "#alarmsV2:alarm/BedrockRequestsPerMinuteAlarm-initech-coder\n"
    ) in text
    # and what CloudWatch said, for the record
    assert "Alarm BedrockRequestsPerMinuteAlarm-initech-coder went OK -> ALARM at 2026-11-27 03:33:44 UTC.\n" in text
    assert "CloudWatch's reason: Threshold Crossed: 1 out of the last 1 datapoints [37.0 (27/11/26 03:33:00)]" in text


def test_locally_the_mail_links_the_local_dashboard_and_says_report_local(bundle: ConfigBundle) -> None:
    text = mail_for(REQUESTS, bundle, deployment=LOCAL)

    assert "  Dashboard: http://127.0.0.1:3000/_local/dashboard\n" in text
    assert "  Detail:    tollgate report --period 2026-11-27 --by profile --local\n" in text
    assert "console.aws.amazon.com" not in text  # moto has no console to link to


def test_the_cost_and_token_alarms_say_it_in_dollars_and_tokens(bundle: ConfigBundle) -> None:
    acme = {"TenantId": "acme", "Profile": "acme-chat"}
    cost = cloudwatch_message(
        "BedrockTokenCostAlarm-acme-chat",
        "CostUSD",
        acme,
        NewStateReason="Threshold Crossed: 1 out of the last 1 datapoints [5.3125000000000004 (27/11/26 03:29:00)] "
        "was greater than the threshold (5.0) (minimum 1 datapoint for OK -> ALARM transition).",
        Trigger={"Period": 300, "Threshold": 5.0},
    )
    assert mail_for(cost, bundle).splitlines()[0] == (
        "Profile acme-chat of tenant Acme Corp (acme) spent $5.3125 on tokens in the 5 minutes from 03:29 UTC, "
        "over its limit of $5.00 per 5 minutes."
    )
    tokens = cloudwatch_message(
        "BedrockTokensPerMinuteAlarm-acme-chat",
        "TotalTokens",
        acme,
        NewStateReason="Threshold Crossed: 1 out of the last 1 datapoints [123456.0 (27/11/26 03:33:00)] was greater "
        "than the threshold (100000.0) (minimum 1 datapoint for OK -> ALARM transition).",
        Trigger={"Threshold": 100000.0},
    )
    assert mail_for(tokens, bundle).splitlines()[0] == (
        "Profile acme-chat of tenant Acme Corp (acme) used 123,456 tokens in the minute from 03:33 UTC, "
        "over its limit of 100,000 tokens per minute."
    )


def test_an_ok_message_says_it_is_back_within_its_limit(bundle: ConfigBundle) -> None:
    ok = cloudwatch_message(
        "BedrockRequestsPerMinuteAlarm-initech-coder",
        "Requests",
        INITECH,
        NewStateValue="OK",
        OldStateValue="ALARM",
        NewStateReason="Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was "
        "treated as [NonBreaching].",
    )
    text = mail_for(ok, bundle)

    assert text.splitlines()[0] == (
        "Profile initech-coder of tenant Initech (initech) is back within its limit of 20 requests per minute: "
        "no requests in the latest minute."
    )
    assert "went ALARM -> OK at 2026-11-27 03:33:44 UTC." in text
    assert "$0.04476164   (exact, trend table)" in text  # what it cost so far, on the way out too


def test_an_ok_with_a_datapoint_names_it(bundle: ConfigBundle) -> None:
    ok = cloudwatch_message(
        "BedrockRequestsPerMinuteAlarm-initech-coder",
        "Requests",
        INITECH,
        NewStateValue="OK",
        OldStateValue="ALARM",
        NewStateReason="Threshold Crossed: 1 out of the last 1 datapoints [3.0 (27/11/26 03:34:00)] was not greater "
        "than the threshold (20.0) (minimum 1 datapoint for ALARM -> OK transition).",
    )
    assert (
        mail_for(ok, bundle)
        .splitlines()[0]
        .endswith("is back within its limit of 20 requests per minute: 3 requests in the minute from 03:34 UTC.")
    )


def test_a_lookup_that_failed_says_cost_unavailable_and_why(bundle: ConfigBundle) -> None:
    text = mail_for(
        REQUESTS,
        bundle,
        profile_window=Unavailable("ThrottlingException: Rate exceeded"),
        tenant_day=Unavailable("ResourceNotFoundException: Requested resource not found"),
    )

    window = "  initech-coder, 03:29-03:34 UTC:            "
    assert f"{window}cost unavailable (ThrottlingException: Rate exceeded)\n" in text
    assert (
        "  Initech (all profiles), 2026-11-27 so far: "
        "cost unavailable (ResourceNotFoundException: Requested resource not found)\n"
    ) in text
    assert "$0.03688484   (exact, trend table)" in text  # what could be looked up is still there


def test_a_non_profile_alarm_gets_its_runbook_pointer_and_no_money(bundle: ConfigBundle) -> None:
    description = (
        "Tollgate: usage records could not be aggregated after all retries. The queue holds where they are in the "
        'usage stream; see README "Failed aggregation".'
    )
    failure = cloudwatch_message(
        "tollgate-AggregationFailureAlarm-1AB2C3",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": "tollgate-AggregationFailureQueue-XYZ"},
        AlarmDescription=description,
        NewStateReason="Threshold Crossed: 1 datapoint [3.0 (27/11/26 03:33:00)] was greater than the threshold (0.0).",
        Trigger={"Namespace": "AWS/SQS", "Statistic": "MAXIMUM", "Threshold": 0.0},
    )
    text = mail_for(failure, bundle)

    assert text.splitlines()[0] == (
        "tollgate-AggregationFailureAlarm-1AB2C3 is in ALARM: AWS/SQS ApproximateNumberOfMessagesVisible "
        "(QueueName=tollgate-AggregationFailureQueue-XYZ) was 3 (Maximum over the minute from 03:33 UTC), "
        "greater than the threshold 0."
    )
    assert f"What to do\n  {description}\n" in text
    assert f"  Dashboard: {DASHBOARD}\n" in text
    assert "Money" not in text
    assert "tollgate report" not in text


def test_a_removed_profile_still_names_its_tenant_from_the_alarm(bundle: ConfigBundle) -> None:
    gone = cloudwatch_message(
        "BedrockRequestsPerMinuteAlarm-initech-legacy", "Requests", {"TenantId": "initech", "Profile": "initech-legacy"}
    )
    assert mail_for(gone, bundle).startswith("Profile initech-legacy of tenant Initech (initech) made 37 requests")


def test_an_unreadable_config_still_names_the_tenant_id(bundle: ConfigBundle) -> None:
    alarm = parse_alarm(REQUESTS)
    assert alarm is not None
    owner = owner_of(alarm, Unavailable("ConfigError: config.json: file not found"))
    assert owner is not None
    text = describe(alarm, deployment=DEPLOYED, owner=owner, spend=spend()).message
    assert text.startswith(
        "Profile initech-coder of tenant initech (display name unavailable: ConfigError: config.json: file not found) "
        "made 37 requests"
    )


def test_without_cloudwatchs_subject_one_like_it_is_made_within_snss_limit(bundle: ConfigBundle) -> None:
    alarm = parse_alarm(REQUESTS)
    assert alarm is not None
    notification = describe(alarm, deployment=DEPLOYED, owner=None, spend=None)
    assert notification.subject == 'ALARM: "BedrockRequestsPerMinuteAlarm-initech-coder"'
    long = alarm.model_copy(update={"name": "x" * 200})
    subject = describe(long, deployment=DEPLOYED, owner=None, spend=None).subject
    assert subject is not None
    assert len(subject) <= 100
    assert subject.startswith('ALARM: "xxx')


@pytest.mark.parametrize(
    "message",
    [
        "Budget review on Monday.",
        "[1, 2, 3]",
        json.dumps({"AlarmName": "x"}),  # no state: not an alarm message
        json.dumps({"AlarmName": "x", "NewStateValue": "ALARM", "StateChangeTime": "yesterday"}),
    ],
)
def test_anything_but_a_cloudwatch_alarm_is_not_parsed_as_one(message: str) -> None:
    assert parse_alarm(message) is None


def test_a_mail_that_cannot_be_put_in_words_carries_the_message_as_it_came() -> None:
    notification = undescribed(REQUESTS, SUBJECT, KeyError("Trigger"))
    assert notification.subject == SUBJECT
    assert notification.message.startswith("Tollgate could not put this notification in words (KeyError: 'Trigger');")
    assert notification.message.endswith(REQUESTS)


def test_cloudwatch_sums_of_dollars_are_shown_to_the_picodollar() -> None:
    assert metric_usd(0.1 + 0.2) == Decimal("0.3")
    assert metric_usd(5.3125000000000004) == Decimal("5.3125")
    assert metric_usd(0.0) == Decimal(0)
