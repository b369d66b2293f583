"""Authorizer function (TOKEN type): ``Authorization: Bearer <tenant key>`` to a tenant."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import APIGatewayAuthorizerTokenEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from tollgate.services.authorizer import AuthorizerService
from tollgate.wiring.authorizer import authorizer_service

logger = Logger(service="tollgate")


@cache
def service() -> AuthorizerService:
    return authorizer_service()


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=APIGatewayAuthorizerTokenEvent)
def lambda_handler(event: APIGatewayAuthorizerTokenEvent, context: LambdaContext) -> dict[str, Any]:
    return service().authorize(event.authorization_token, event.method_arn)
