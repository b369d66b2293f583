"""Gateway function: Bedrock Converse for tenants, metered per request.

Routes:
  POST /model/{profile}/converse   Bedrock's Converse wire format (unmodified boto3 clients work)
  POST /invoke                     the reference sample's contract: profile chosen by header
  GET  /usage                      the caller's own trend rows (tollgate.services.selfservice)
  GET  /budget                     the caller's own budgets, headroom, resets and action in force
"""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from tollgate.adapters.bedrock import request_from_wire, response_to_wire, validate_request
from tollgate.budget import Deadline
from tollgate.errors import AccessDenied, BadRequest, InternalError, TollgateError, UnknownOperation
from tollgate.services.gateway import Answer, Caller, GatewayService
from tollgate.services.selfservice import SelfService
from tollgate.wiring.gateway import gateway_service
from tollgate.wiring.selfservice import selfservice

logger = Logger(service="tollgate")
tracer = Tracer(service="tollgate-gateway")
app = APIGatewayRestResolver()


@cache
def service() -> GatewayService:
    return gateway_service()


def caller() -> Caller:
    """The tenant as the authorizer established it; headers can never choose it."""
    context = app.current_event.request_context.authorizer.get_context()
    if not context.get("tenant_id") or not context.get("key_id"):
        raise AccessDenied("no tenant in the authorizer context: is the API's authorizer configured?")
    logger.append_keys(tenant_id=context["tenant_id"], key_id=context["key_id"])
    return Caller(tenant_id=str(context["tenant_id"]), key_id=str(context["key_id"]))


def deadline() -> Deadline:
    """When this request must be answered: before API Gateway's integration timeout, and Lambda's."""
    remaining = app.lambda_context.get_remaining_time_in_millis() / 1000
    return service().deadline(app.context["started"], remaining)


def body() -> Any:
    try:
        return app.current_event.json_body
    except (ValueError, TypeError):
        raise BadRequest("the request body is not valid JSON") from None


def converse_params(raw: Any) -> dict[str, Any]:
    params = request_from_wire(raw)
    validate_request(params)
    return params


def answered(payload: dict[str, Any], answer: Answer) -> Response[str]:
    return Response(
        status_code=200,
        content_type="application/json",
        body=json.dumps(payload),
        headers={"x-tollgate-request-id": answer.record.request_id, "x-tollgate-cost-usd": answer.record.cost_usd},
    )


@app.post("/model/<profile>/converse")
@tracer.capture_method(capture_response=False)
def converse(profile: str) -> Response[str]:
    who, params = caller(), converse_params(body())
    answer = service().converse(
        who,
        service().profile_named(who, profile),
        params,
        request_id=app.current_event.request_context.request_id,
        route="converse",
        deadline=deadline(),
    )
    return answered(response_to_wire(answer.response), answer)


@app.post("/invoke")
@tracer.capture_method(capture_response=False)
def invoke() -> Response[str]:
    who, raw = caller(), body()
    params = converse_params({"messages": raw} if isinstance(raw, list) else raw)
    profile = service().profile_from_headers(who, app.current_event.headers)
    answer = service().converse(
        who,
        profile,
        params,
        request_id=app.current_event.request_context.request_id,
        route="invoke",
        deadline=deadline(),
    )
    wire = response_to_wire(answer.response)
    record = answer.record
    return answered(
        {
            "request_id": record.request_id,
            "profile": record.profile,
            "model_id": record.model_id,
            "output": wire.get("output"),
            "stop_reason": wire.get("stopReason"),
            "usage": wire.get("usage"),
            "cost_usd": record.cost_usd,
            "price_version": record.price_version,
        },
        answer,
    )


@cache
def own_data() -> SelfService:
    return selfservice()


def json_response(payload: dict[str, Any]) -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=json.dumps(payload))


@app.get("/usage")
def usage() -> Response[str]:
    return json_response(own_data().usage(caller().tenant_id, app.current_event.query_string_parameters))


@app.get("/budget")
def budget() -> Response[str]:
    if app.current_event.query_string_parameters:
        raise BadRequest("GET /budget takes no parameters: the tenant is the one of your key")
    return json_response(own_data().budget(caller().tenant_id))


def error_response(error: TollgateError) -> Response[str]:
    return Response(
        status_code=error.status,
        content_type="application/json",
        body=json.dumps({"message": error.message}),
        headers={"x-amzn-ErrorType": error.error_type, **retry_after_header(error)},
    )


def retry_after_header(error: TollgateError) -> dict[str, str]:
    """``Retry-After`` (seconds) for a refusal that says when trying again can succeed."""
    retry_after = getattr(error, "retry_after", None)
    return {} if retry_after is None else {"Retry-After": str(retry_after)}


@app.exception_handler(TollgateError)
def tollgate_error(error: TollgateError) -> Response[str]:
    logger.info("refused", extra={"status": error.status, "error_type": error.error_type, "reason": error.message})
    return error_response(error)


@app.not_found
def not_found(_: Exception) -> Response[str]:
    return error_response(
        UnknownOperation(f"{app.current_event.http_method} {app.current_event.path} is not an operation of this API")
    )


@app.exception_handler(Exception)
def unexpected(error: Exception) -> Response[str]:
    logger.exception("unexpected error")
    return error_response(
        InternalError(f"internal error; quote request id {app.current_event.request_context.request_id}")
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app.append_context(started=time.monotonic())  # the request's time budget starts here
    return app.resolve(event, context)
