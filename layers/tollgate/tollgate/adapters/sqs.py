"""SQS adapter: the metering fallback queue (usage records the usage table did not take)."""

from __future__ import annotations

import json
from typing import Any

from tollgate.usage import UsageRecord


def fallback_message(record: UsageRecord) -> str:
    """The message body: the record's usage-table item as JSON (what the recovery function writes)."""
    return json.dumps(record.to_item(), sort_keys=True)


class SqsMeteringFallback:
    def __init__(self, client: Any, queue_url: str):
        self._client = client
        self._queue_url = queue_url

    def defer(self, record: UsageRecord) -> None:
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=fallback_message(record))
