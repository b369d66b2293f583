"""The notifier's handler in-process against moto: the alarm in words, with the money from the real tables.

The usage records of events/usage-stream.json go through the aggregator (trend rows, and its
EMF metrics into moto's CloudWatch as CloudWatch Logs would put them); then the alarm of
events/notifier-alarm.json (acme-chat's cost alarm, a minute later) goes through the notifier,
and what reaches the admin's topic is read from an SQS queue subscribed to it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import boto3
import pytest
from tollgate.money import format_usd
from tollgate.rollup import Granularity
from tollgate_local.runtime import emf_metric_data

from tests.integration.conftest import REGION, Stack, load_event

DASHBOARD = (
    "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards:name=tollgate-test-tollgate"
)
SUBJECT = 'ALARM: "BedrockTokenCostAlarm-acme-chat" in US East (N. Virginia)'


@pytest.fixture
def admin_inbox(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> str:
    """The notifier's settings as template.yaml sets them, and an SQS queue subscribed to the admin's topic."""
    monkeypatch.setenv("ADMIN_TOPIC_ARN", stack.targets.admin_topic_arn)
    monkeypatch.setenv("DASHBOARD_URL", DASHBOARD)
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="admin-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns", region_name=REGION).subscribe(
        TopicArn=stack.targets.admin_topic_arn, Protocol="sqs", Endpoint=queue_arn
    )
    return queue_url


def mails(queue_url: str) -> list[dict[str, Any]]:
    found = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in found.get("Messages", [])]


def aggregate_sample_usage(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """The sample stream through the aggregator; its EMF metrics into moto's CloudWatch."""
    capsys.readouterr()
    assert stack.handler("aggregator")(load_event("usage-stream.json")) == {"batchItemFailures": []}
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    for namespace, datums in emf_metric_data(capsys.readouterr().out.splitlines()).items():
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=datums)


def test_the_alarm_mail_carries_the_exact_cost_of_the_day_from_the_trend_table(
    stack: Stack, admin_inbox: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the sample usage of 2026-11-26 16:30, rolled up
    aggregate_sample_usage(stack, capsys)
    rows = stack.trends.rows(Granularity.DAY, "2026-11-26")
    acme_day = sum(row.totals.cost_pusd for row in rows if row.key.tenant_id == "acme")
    chat_day = sum(row.totals.cost_pusd for row in rows if row.key.profile == "acme-chat")
    assert 0 < chat_day < acme_day  # acme has a second profile in the sample: the two figures differ

    # When acme-chat's cost alarm reaches the notifier
    result = stack.handler("notifier")(load_event("notifier-alarm.json"))

    # Then one mail reaches the admin's topic, under CloudWatch's subject, with the money exact
    assert result == {"notified": [SUBJECT]}
    (mail,) = mails(admin_inbox)
    assert mail["Subject"] == SUBJECT
    text = mail["Message"]
    assert text.splitlines()[0] == (
        "Profile acme-chat of tenant Acme Corp (acme) spent $5.8124 on tokens in the 5 minutes from 16:26 UTC, "
        "over its limit of $5.00 per 5 minutes."
    )
    assert f"acme-chat, 2026-11-26 so far (UTC):          ${format_usd(chat_day)}   (exact, trend table)" in text
    assert f"Acme Corp (all profiles), 2026-11-26 so far: ${format_usd(acme_day)}   (exact, trend table)" in text
    # the last 5 minutes, from CloudWatch's CostUSD metric of the profile
    assert f"acme-chat, 16:27-16:32 UTC:                  ${format_usd(chat_day)}   (CloudWatch CostUSD metric)" in (
        text
    )
    assert f"Dashboard: {DASHBOARD}" in text
    assert "Detail:    tollgate report --period 2026-11-26 --by profile --stack tollgate-test --region us-east-1\n" in (
        text
    )
    assert Decimal(format_usd(acme_day)) * 10**12 == acme_day  # shown whole, to the pico-dollar


def test_when_the_lookups_fail_the_mail_still_goes_and_says_why(
    stack: Stack, admin_inbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TREND_TABLE", "tollgate-test-no-such-table")
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", "http://127.0.0.1:9")  # nothing listens: connection refused

    stack.handler("notifier")(load_event("notifier-alarm.json"))

    (mail,) = mails(admin_inbox)
    text = mail["Message"]
    assert text.startswith("Profile acme-chat of tenant Acme Corp (acme) spent $5.8124 on tokens")
    assert "acme-chat, 16:27-16:32 UTC:                  cost unavailable (EndpointConnectionError: " in text
    assert text.count("cost unavailable (ResourceNotFoundException: ") == 2
    assert "Detail:    tollgate report --period 2026-11-26" in text
