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
