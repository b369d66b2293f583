"""The admin's e-mail is subscribed to the admin topic (the notifier's mails), no longer to the alarm topic.

The provisioner manages that subscription. A stack deployed before the admin topic existed has
the address on the alarm topic: the deploy that adds the admin topic moves it, but removes the
old subscription only once the new one is confirmed, so the admin is never left with nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from tollgate.adapters import aws_client
from tollgate.adapters.bedrock import BedrockProfiles
from tollgate.adapters.dynamodb import DynamoProfileRegistry
from tollgate.provisioning import Provisioner, targets_from

from tests.integration.conftest import REGION, TABLES, Stack

ONCALL = "oncall@example.com"  # subscribed to the alarm topic by hand: raw fan-out, not Tollgate's to touch


class UnconfirmedEmail:
    """SNS as AWS answers until the admin clicks the confirmation link: the new e-mail subscription is pending."""

    def __init__(self, sns: Any, topic_arn: str):
        self._sns = sns
        self._topic_arn = topic_arn
        self.confirmed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sns, name)

    def get_paginator(self, operation: str) -> Any:
        paginator = self._sns.get_paginator(operation)
        outer = self

        class Pending:
            def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
                for page in paginator.paginate(**kwargs):
                    for sub in page.get("Subscriptions", []):
                        if sub["Protocol"] == "email" and sub["TopicArn"] == outer._topic_arn and not outer.confirmed:
                            sub["SubscriptionArn"] = "PendingConfirmation"
                    yield page

        return Pending()


def email_subscriptions(topic_arn: str) -> set[str]:
    sns = boto3.client("sns", region_name=REGION)
    subs = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    return {s["Endpoint"] for s in subs if s["Protocol"] == "email"}


def provisioner_with(sns: Any) -> Provisioner:
    return Provisioner(
        profiles=BedrockProfiles(aws_client("bedrock", REGION)),
        cloudwatch=aws_client("cloudwatch", REGION),
        sns=sns,
        registry=DynamoProfileRegistry(aws_client("dynamodb", REGION), TABLES["TenantTable"]),
        s3=aws_client("s3", REGION),
    )


@pytest.fixture
def deployed_before_the_admin_topic(stack: Stack) -> Stack:
    """The stack as the previous version left it: the admin's address on the alarm topic, and the old state."""
    sns = boto3.client("sns", region_name=REGION)
    for sub in sns.list_subscriptions_by_topic(TopicArn=stack.targets.admin_topic_arn)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
    for address in (stack.bundle.config.admin_email, ONCALL):
        sns.subscribe(TopicArn=stack.targets.topic_arn, Protocol="email", Endpoint=address)
    registry = DynamoProfileRegistry(boto3.client("dynamodb", region_name=REGION), TABLES["TenantTable"])
    registry.put_state("admin_email", {"email": stack.bundle.config.admin_email})
    return stack


def test_a_new_stack_mails_the_admin_from_the_admin_topic_only(stack: Stack) -> None:
    admin = stack.bundle.config.admin_email
    assert email_subscriptions(stack.targets.admin_topic_arn) == {admin}
    assert email_subscriptions(stack.targets.topic_arn) == set()


def test_upgrading_moves_the_admins_address_to_the_admin_topic_and_leaves_other_subscribers(
    deployed_before_the_admin_topic: Stack,
) -> None:
    stack = deployed_before_the_admin_topic
    admin = stack.bundle.config.admin_email

    report = provisioner_with(aws_client("sns", REGION)).reconcile(stack.bundle, stack.targets)

    assert email_subscriptions(stack.targets.admin_topic_arn) == {admin}
    assert email_subscriptions(stack.targets.topic_arn) == {ONCALL}
    assert f"email subscription {admin} (confirm it from the mail AWS sends)" in report.created
    assert f"email subscription {admin} (on the alarm topic, before the admin topic)" in report.deleted


def test_the_old_subscription_stays_until_the_new_one_is_confirmed(deployed_before_the_admin_topic: Stack) -> None:
    stack = deployed_before_the_admin_topic
    admin = stack.bundle.config.admin_email
    sns = UnconfirmedEmail(aws_client("sns", REGION), stack.targets.admin_topic_arn)

    # the deploy that adds the admin topic: the admin has not confirmed yet, so the alarm topic keeps mailing them
    first = provisioner_with(sns).reconcile(stack.bundle, stack.targets)
    assert email_subscriptions(stack.targets.topic_arn) == {admin, ONCALL}
    assert email_subscriptions(stack.targets.admin_topic_arn) == {admin}
    assert f"email subscription {admin} on the old topic, until the new one is confirmed" in first.unchanged
    assert not any(admin in line for line in first.deleted)

    # confirmed; the next deploy retires the old one
    sns.confirmed = True
    second = provisioner_with(sns).reconcile(stack.bundle, stack.targets)
    assert email_subscriptions(stack.targets.topic_arn) == {ONCALL}
    assert f"email subscription {admin} (on the alarm topic, before the admin topic)" in second.deleted
    third = provisioner_with(sns).reconcile(stack.bundle, stack.targets)
    assert not any("email" in line for line in third.created + third.deleted + third.unchanged)


def test_properties_without_an_admin_topic_keep_the_alarm_topic(stack: Stack) -> None:
    """A rollback to a version before the admin topic sends the old properties to the new code."""
    properties = {
        "StackName": "tollgate",
        "Region": REGION,
        "AccountId": "123456789012",
        "Namespace": "Tollgate",
        "TopicArn": stack.targets.topic_arn,
        "DashboardName": "tollgate-tollgate",
    }
    assert targets_from(properties).admin_topic == stack.targets.topic_arn
    assert targets_from(properties | {"AdminTopicArn": "arn:admin"}).admin_topic == "arn:admin"
