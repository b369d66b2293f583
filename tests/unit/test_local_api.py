"""The local API front behaves as API Gateway does with template.yaml's settings."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from tollgate_local.front import ApiSettings, LocalApi
from tollgate_local.template import load_template

PARAMETERS = {"Stage": "prod", "AuthorizerCacheSeconds": "60"}


class FakeFunction:
    def __init__(self, answer: Callable[[dict[str, Any]], Any]):
        self.answer = answer
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        return self.answer(event)


def policy(effect: str, context: dict[str, str]) -> dict[str, Any]:
    return {
        "principalId": context.get("tenant_id", "anonymous"),
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": effect,
                    "Resource": ["arn:aws:execute-api:us-east-1:1:x/prod/*/*"],
                }
            ],
        },
        "context": context,
    }


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    token = event["authorizationToken"]
    if token == "Bearer good":
        return policy("Allow", {"tenant_id": "acme", "key_id": "k1"})
    if token == "Bearer revoked":
        return policy("Deny", {"reason": "the API key k2 has been revoked"})
    raise Exception("Unauthorized")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def parts() -> tuple[LocalApi, FakeFunction, FakeFunction, Clock]:
    authorizer = FakeFunction(authorize)
    gateway = FakeFunction(lambda event: {"statusCode": 200, "headers": {"x-tollgate-cost-usd": "0.01"}, "body": "{}"})
    clock = Clock()
    settings = ApiSettings.from_template(load_template(), PARAMETERS)
    api = LocalApi(settings, authorizer, gateway, region="us-east-1", clock=clock)  # type: ignore[arg-type]
    return api, authorizer, gateway, clock


def test_settings_come_from_the_template() -> None:
    settings = ApiSettings.from_template(load_template(), PARAMETERS)
    assert {(r.method, r.resource) for r in settings.routes} == {
        ("POST", "/model/{profile}/converse"),
        ("POST", "/invoke"),
        ("GET", "/usage"),
        ("GET", "/budget"),
    }
    assert settings.identity_header == "Authorization"
    assert settings.cache_seconds == 60
    assert settings.responses["ACCESS_DENIED"].headers == {"x-amzn-ErrorType": "AccessDeniedException"}
    # no TimeoutInMillis in the template: API Gateway's default
    assert {r.timeout_ms for r in settings.routes} == {29_000}


def test_an_allowed_request_reaches_the_gateway_with_the_authorizer_context(parts: Any) -> None:
    api, _, gateway, _ = parts
    status, headers, _ = api.handle("POST", "/model/acme-chat/converse", {"Authorization": "Bearer good"}, b"{}")
    assert status == 200
    assert headers["x-tollgate-cost-usd"] == "0.01"
    (event,) = gateway.events
    assert event["pathParameters"] == {"profile": "acme-chat"}
    assert event["resource"] == "/model/{profile}/converse"
    assert event["requestContext"]["authorizer"]["tenant_id"] == "acme"
    assert event["requestContext"]["stage"] == "prod"


@pytest.mark.parametrize(
    ("headers", "status", "error_type", "message"),
    [
        ({}, 401, "AccessDeniedException", "missing or malformed Authorization header"),
        ({"Authorization": "Basic abc"}, 401, "AccessDeniedException", "missing or malformed Authorization header"),
        ({"Authorization": "Bearer revoked"}, 403, "AccessDeniedException", "the API key k2 has been revoked"),
    ],
)
def test_refusals_use_the_templates_gateway_responses(
    parts: Any, headers: dict[str, str], status: int, error_type: str, message: str
) -> None:
    api, _, gateway, _ = parts
    got_status, got_headers, body = api.handle("POST", "/invoke", headers, b"{}")
    assert (got_status, got_headers["x-amzn-ErrorType"]) == (status, error_type)
    assert message in json.loads(body)["message"]
    assert gateway.events == []


def test_an_unknown_route_is_the_missing_authentication_token_response(parts: Any) -> None:
    api, authorizer, _, _ = parts
    status, headers, body = api.handle("GET", "/model/acme-chat/converse", {"Authorization": "Bearer good"}, b"")
    assert (status, headers["x-amzn-ErrorType"]) == (404, "UnknownOperationException")
    assert json.loads(body) == {"message": "GET /model/acme-chat/converse is not an operation of this API"}
    assert authorizer.events == []


def test_the_authorizer_answer_is_cached_per_token_for_reauthorize_every(parts: Any) -> None:
    api, authorizer, _, clock = parts
    for _ in range(3):
        api.handle("POST", "/invoke", {"Authorization": "Bearer good"}, b"{}")
    assert len(authorizer.events) == 1
    clock.now += 61
    api.handle("POST", "/invoke", {"Authorization": "Bearer good"}, b"{}")
    assert len(authorizer.events) == 2


def test_a_crashing_gateway_is_a_bedrock_shaped_5xx(parts: Any) -> None:
    api, _, gateway, _ = parts

    def crash(event: dict[str, Any]) -> Any:
        raise RuntimeError("boom")

    gateway.answer = crash
    status, headers, body = api.handle("POST", "/invoke", {"Authorization": "Bearer good"}, b"{}")
    assert (status, headers["x-amzn-ErrorType"]) == (502, "InternalServerException")
    assert json.loads(body) == {"message": "Internal server error"}


def no_principal(event: dict[str, Any]) -> Any:
    answer = policy("Allow", {"tenant_id": "acme"})
    del answer["principalId"]
    return answer


def down(event: dict[str, Any]) -> Any:
    raise RuntimeError("the tenant table is unreachable")


@pytest.mark.parametrize(
    "answer",
    [down, no_principal, lambda event: "Allow"],
    ids=["authorizer raises", "policy without principalId", "policy not an object"],
)
def test_a_failing_authorizer_is_a_500_and_the_gateway_is_not_called(
    parts: Any, answer: Callable[[dict[str, Any]], Any], caplog: pytest.LogCaptureFixture
) -> None:
    """As API Gateway does (AuthorizerConfigurationException, message null), through DEFAULT_5XX."""
    api, authorizer, gateway, _ = parts
    authorizer.answer = answer
    status, headers, body = api.handle("POST", "/invoke", {"Authorization": "Bearer good"}, b"{}")
    assert (status, headers["x-amzn-ErrorType"]) == (500, "InternalServerException")
    assert json.loads(body) == {"message": None}
    assert gateway.events == []
    assert any("the authorizer failed" in r.getMessage() and r.exc_info for r in caplog.records)


def test_an_integration_over_the_limit_gets_the_templates_504_while_the_function_runs_on(parts: Any) -> None:
    """As API Gateway: it stops waiting at the integration timeout, the function does not stop."""
    _, authorizer, gateway, clock = parts
    release, finished = threading.Event(), threading.Event()

    def slow(event: dict[str, Any]) -> Any:
        release.wait(10)
        finished.set()
        return {"statusCode": 200, "body": "{}"}

    gateway.answer = slow
    settings = ApiSettings.from_template(load_template(), PARAMETERS)
    api = LocalApi(settings, authorizer, gateway, region="us-east-1", clock=clock, integration_timeout_seconds=0.3)  # type: ignore[arg-type]
    started = time.monotonic()
    status, headers, body = api.handle("POST", "/model/acme-chat/converse", {"Authorization": "Bearer good"}, b"{}")
    waited = time.monotonic() - started

    spec = settings.responses["INTEGRATION_TIMEOUT"]
    assert (status, headers["x-amzn-ErrorType"]) == (spec.status, spec.headers["x-amzn-ErrorType"])
    assert (status, headers["x-amzn-ErrorType"]) == (504, "ModelTimeoutException")
    assert json.loads(body) == {"message": "the model did not answer in time; nothing was charged"}
    assert 0.3 <= waited < 2
    assert not finished.is_set()  # the function is still running
    release.set()
    assert finished.wait(5)


def test_an_integration_within_the_limit_is_answered_as_usual(parts: Any) -> None:
    _, authorizer, gateway, clock = parts
    settings = ApiSettings.from_template(load_template(), PARAMETERS)
    api = LocalApi(settings, authorizer, gateway, region="us-east-1", clock=clock, integration_timeout_seconds=5)  # type: ignore[arg-type]
    status, _, _ = api.handle("POST", "/invoke", {"Authorization": "Bearer good"}, b"{}")
    assert status == 200
