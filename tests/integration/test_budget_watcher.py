"""The budget watcher's handler in-process against moto: budget items seeded as the ledger writes them
(ISSUE10 "Ledger"), trend rows written by the trend store, mails read from SQS queues subscribed to
the admin's topic and to the tenants' notice topic (the latter with a filter policy on tenant_id)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from tollgate.periods import ALERTED_ATTR, SPENT_ATTR, ledger_key, period_of
from tollgate.usage import UsageRecord

from tests.integration.conftest import REGION, TABLES, Stack

USD = 10**12
DASHBOARD = "https://example.invalid/dashboard"


def inbox(topic_arn: str, name: str, filter_policy: dict[str, Any] | None = None) -> str:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
    boto3.client("sns", region_name=REGION).subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes
    )
    return url


def drain(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    found: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        found += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )
    return found


@pytest.fixture
def watcher(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    notices = boto3.client("sns", region_name=REGION).create_topic(Name="tollgate-test-notices")["TopicArn"]
    monkeypatch.setenv("ADMIN_TOPIC_ARN", stack.targets.admin_topic_arn)
    monkeypatch.setenv("TENANT_NOTICE_TOPIC_ARN", notices)
    monkeypatch.setenv("DASHBOARD_URL", DASHBOARD)
    return {
        "admin": inbox(stack.targets.admin_topic_arn, "admin-inbox"),
        "acme": inbox(notices, "acme-contact", {"tenant_id": ["acme"]}),
        "globex": inbox(notices, "globex-contact", {"tenant_id": ["globex"]}),
    }


def spend(stack: Stack, tenant: str, pusd: int) -> None:
    """The ledger's ADD of spent_pusd on the tenant's month item (the shape ISSUE10's Ledger gives)."""
    zone = stack.bundle.tenant(tenant).time_zone  # type: ignore[union-attr]
    key = ledger_key(tenant, None, period_of("month", datetime.now(UTC), zone))
    stack.dynamodb.update_item(
        TableName=TABLES["ControlTable"],
        Key={"pk": {"S": key.pk}, "sk": {"S": key.sk}},
        UpdateExpression="ADD #spent :amount, committed_pusd :amount SET tenant_id = :t, #period = :p, time_zone = :z",
        ExpressionAttributeNames={"#spent": SPENT_ATTR, "#period": "period"},
        ExpressionAttributeValues={
            ":amount": {"N": str(pusd)},
            ":t": {"S": tenant},
            ":p": {"S": key.sk},
            ":z": {"S": zone},
        },
    )


def trend(stack: Stack, tenant: str, profile: str, pusd: int, index: int) -> None:
    at = datetime.now(UTC) - timedelta(minutes=1)
    record = UsageRecord(
        request_id=f"r-{tenant}-{index}",
        tenant_id=tenant,
        profile=profile,
        model_id="amazon.nova-micro-v1:0",
        scope="in-region",
        route="converse",
        key_id="k",
        requested_at=at,
        input_tokens=10,
        output_tokens=10,
        cache_read_tokens=0,
        cache_write_tokens=0,
        cost_pusd=pusd,
        price_version="v",
        latency_ms=1,
        expires_at=0,
    )
    stack.trends.apply([record])


def test_each_threshold_is_sent_once_to_the_admin_and_only_the_tenants_contact(
    stack: Stack, watcher: dict[str, str]
) -> None:
    run = stack.handler("budget_watcher")
    # acme is on the team tier: $500 a month, alerts 50/80/100 %
    spend(stack, "acme", 260 * USD)
    trend(stack, "acme", "acme-chat", 200 * USD, 1)
    trend(stack, "acme", "acme-search", 60 * USD, 2)
    first = run({"source": "aws.events", "detail-type": "Scheduled Event"})
    # one alert (acme's month): 50 %, and the forecast too unless the month ends within a day
    (tokens,) = first["alerts"].values()
    assert tokens[0] == "50"
    again = run({"source": "aws.events", "detail-type": "Scheduled Event"})
    assert again == {"alerts": {}}  # the same spend: nothing more

    admin = drain(watcher["admin"])
    assert len(admin) == 1
    assert admin[0]["Subject"].startswith("Budget 50% reached")
    assert "acme-chat" in admin[0]["Message"]
    assert "$260.00" in admin[0]["Message"]
    contact = drain(watcher["acme"])
    assert len(contact) == 1
    assert contact[0]["MessageAttributes"]["tenant_id"]["Value"] == "acme"
    assert "You get this mail as the contact of tenant acme" in contact[0]["Message"]
    assert drain(watcher["globex"]) == []

    # past 80 % and 100 % at once: one mail announcing both, then nothing on later runs
    spend(stack, "acme", 250 * USD)
    third = run({})
    assert [t for t in next(iter(third["alerts"].values())) if t != "forecast"] == ["80", "100"]
    assert run({}) == {"alerts": {}}
    assert len(drain(watcher["admin"])) == 1
    assert len(drain(watcher["acme"])) == 1
    month = period_of("month", datetime.now(UTC), "America/New_York")
    item = stack.dynamodb.get_item(
        TableName=TABLES["ControlTable"], Key={"pk": {"S": "BUDGET#acme"}, "sk": {"S": month.sort_key}}
    )["Item"]
    assert {"50", "80", "100"} <= set(item[ALERTED_ATTR]["SS"])
