"""Actions function: a profile's cost alarm throttles, suspends or notifies its tenant; OK lifts it.

Subscribed to AlertTopic, as the notifier is (SNS invokes it asynchronously: Lambda retries a
failed event, then puts it in the on-failure queue). Each message is handled once
(tollgate.services.actions).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from tollgate.services.actions import ActionsService
from tollgate.wiring.actions import actions_service

logger = Logger(service="tollgate")
tracer = Tracer(service="tollgate-actions")


@cache
def service() -> ActionsService:
    return actions_service()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@event_source(data_class=SNSEvent)
def lambda_handler(event: SNSEvent, context: LambdaContext) -> dict[str, Any]:
    done = [service().handle(record.sns.message, record.sns.message_id) for record in event.records]
    return {"actions": [o.decision.verb if o.decision else None for o in done]}
