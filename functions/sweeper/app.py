"""Sweeper function (every minute): releases expired budget reservations."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from tollgate.services.sweeper import SweeperService
from tollgate.wiring.sweeper import sweeper_service

logger = Logger(service="tollgate")
tracer = Tracer(service="tollgate-sweeper")


@cache
def service() -> SweeperService:
    return sweeper_service()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return service().sweep()
