"""Aggregator function: the usage table's stream into trend rows and metrics, exactly once."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from tollgate.services.aggregator import AggregatorService, stream_processor
from tollgate.wiring.aggregator import aggregator_service

logger = Logger(service="tollgate")
tracer = Tracer(service="tollgate-aggregator")
processor = stream_processor()


@cache
def service() -> AggregatorService:
    return aggregator_service()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return service().process(event, processor, context)
