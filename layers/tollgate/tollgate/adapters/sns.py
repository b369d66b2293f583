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
    """Notices to one tenant on the shared TenantNoticeTopic: the tenant_id message attribute is what
    each contact's subscription filter policy matches (one topic, not one per tenant)."""

    def __init__(self, client: Any, topic_arn: str):
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, tenant: str, subject: str, message: str) -> str:
        return str(
            self._client.publish(
                TopicArn=self._topic_arn,
                Subject=subject,
                Message=message,
                MessageAttributes={"tenant_id": {"DataType": "String", "StringValue": tenant}},
            )["MessageId"]
        )
