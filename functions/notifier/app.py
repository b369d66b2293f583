"""Notifier function: each message of the alert topic, in words with the money at stake, to the admin's topic.

Subscribed to AlertTopic (SNS invokes it asynchronously: Lambda retries a failed event, then
puts it in the on-failure queue, which NotificationFailureAlarm watches).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from tollgate.services.notifier import NotifierService
from tollgate.wiring.notifier import notifier_service

logger = Logger(service="tollgate")
tracer = Tracer(service="tollgate-notifier")


@cache
def service() -> NotifierService:
    return notifier_service()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@event_source(data_class=SNSEvent)
def lambda_handler(event: SNSEvent, context: LambdaContext) -> dict[str, Any]:
    sent = [service().notify(record.sns.message, record.sns.subject) for record in event.records]
    return {"notified": [n.subject for n in sent]}
