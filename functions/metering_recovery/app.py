"""Metering recovery function: usage records from the metering fallback queue into the usage table."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.typing import LambdaContext
from tollgate.services.metering import MeteringRecoveryService
from tollgate.wiring.metering import metering_recovery_service

logger = Logger(service="tollgate")
tracer = Tracer(service="tollgate-metering-recovery")
processor = BatchProcessor(event_type=EventType.SQS)


@cache
def service() -> MeteringRecoveryService:
    return metering_recovery_service()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return service().process(event, processor, context)
