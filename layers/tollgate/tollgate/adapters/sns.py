"""Publishing to an SNS topic (the admin's)."""

from __future__ import annotations

from typing import Any


class SnsPublisher:
    def __init__(self, client: Any, topic_arn: str):
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, subject: str | None, message: str) -> str:
        args: dict[str, str] = {"TopicArn": self._topic_arn, "Message": message}
        if subject:
            args["Subject"] = subject
        return str(self._client.publish(**args)["MessageId"])


class TenantNoticePublisher:
    """The tenants' notice topic: each message carries ``tenant_id``, which the contact addresses'
    subscription filter policies match (one topic for all tenants, not one per tenant)."""

    def __init__(self, client: Any, topic_arn: str):
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, tenant_id: str, subject: str | None, message: str) -> str:
        args: dict[str, Any] = {
            "TopicArn": self._topic_arn,
            "Message": message,
            "MessageAttributes": {"tenant_id": {"DataType": "String", "StringValue": tenant_id}},
        }
        if subject:
            args["Subject"] = subject
        return str(self._client.publish(**args)["MessageId"])
