"""The gateway's time budget agrees with template.yaml and with botocore, and refuses what does not fit."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.retries.standard import ExponentialBackoff
from tollgate.budget import (
    GATEWAY_BUDGET,
    BudgetError,
    ClientLimits,
    TimeoutBudget,
    standard_retry_backoff_worst,
)
from tollgate.settings import GatewaySettings, SettingsError
from tollgate_local.front import ApiSettings
from tollgate_local.template import load_template

PARAMETERS = {"Stage": "prod", "AuthorizerCacheSeconds": "60"}


def gateway_function(sam: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The function behind the API (the one with Api events)."""
    (found,) = [
        (name, r["Properties"])
        for name, r in sam["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function"
        and any(e["Type"] == "Api" for e in r["Properties"].get("Events", {}).values())
    ]
    return found


def test_the_budget_is_what_template_yaml_deploys() -> None:
    sam = load_template()
    name, function = gateway_function(sam)
    assert name == "GatewayFunction"
    timeout = function.get("Timeout", sam["Globals"]["Function"].get("Timeout"))
    assert timeout == GATEWAY_BUDGET.lambda_timeout_seconds
    # Every route's integration timeout (TimeoutInMillis, else API Gateway's default), as the local front reads it
    routes = ApiSettings.from_template(sam, PARAMETERS).routes
    assert {r.resource for r in routes} == {e["Properties"]["Path"] for e in function["Events"].values()}
    assert {r.timeout_ms for r in routes} == {int(GATEWAY_BUDGET.integration_seconds * 1000)}


def test_everything_after_a_bedrock_attempt_starts_ends_before_api_gateway_gives_up() -> None:
    budget = GATEWAY_BUDGET
    after_start = budget.bedrock.connect_seconds + budget.bedrock.read_seconds + budget.after_model_seconds
    assert after_start == budget.model_attempt_seconds
    assert budget.margin_seconds + budget.before_model_seconds + after_start <= budget.integration_seconds
    # The handler always answers before Lambda would stop it
    assert budget.handler_seconds <= budget.lambda_timeout_seconds
    # and Bedrock is asked once per attempt: botocore must never retry a call that may have been billed
    assert budget.bedrock.attempts == 1
    print(
        f"\nbudget: {budget.total_seconds:g} s of {budget.integration_seconds:g} s",
        f"(read {budget.bedrock.read_seconds:g} s)",
    )


def test_the_back_off_figure_is_at_least_what_botocore_sleeps() -> None:
    """botocore's standard mode sleeps random() * 2**(n-1) s (capped) before retry n: at random() == 1, the most."""
    backoff = ExponentialBackoff(random=lambda: 1.0)
    for attempts in range(1, 6):
        slept = sum(
            backoff.delay_amount(SimpleNamespace(attempt_number=n, http_response=None)) for n in range(1, attempts)
        )
        assert slept <= standard_retry_backoff_worst(attempts), attempts
    assert standard_retry_backoff_worst(2) == 1.0
    assert ClientLimits(0.5, 1.0, attempts=2).worst_seconds == 2 * 1.5 + 1.0


def test_a_budget_that_does_not_fit_is_refused_with_its_sum() -> None:
    with pytest.raises(BudgetError, match=r"= 30 s, more than API Gateway's integration timeout of 29 s"):
        GATEWAY_BUDGET.with_bedrock_read(GATEWAY_BUDGET.bedrock.read_seconds + 1)
    with pytest.raises(BudgetError, match="exactly 1 attempt"):
        replace(GATEWAY_BUDGET, bedrock=ClientLimits(1.0, 5.0, attempts=2))
    with pytest.raises(BudgetError, match=r"Timeout \(20 s\) must be at least"):
        TimeoutBudget(lambda_timeout_seconds=20)


def test_settings_may_shorten_the_bedrock_read_timeout_but_not_break_the_budget() -> None:
    env = {
        "AWS_REGION": "us-east-1",
        "TOLLGATE_STACK": "s",
        "USAGE_TABLE": "u",
        "TENANT_TABLE": "t",
        "METERING_FALLBACK_QUEUE_URL": "q",
    }
    assert GatewaySettings.from_env(env).budget == GATEWAY_BUDGET
    assert GatewaySettings.from_env({**env, "BEDROCK_READ_TIMEOUT_SECONDS": "0.5"}).budget.bedrock.read_seconds == 0.5
    with pytest.raises(SettingsError, match=r"BEDROCK_READ_TIMEOUT_SECONDS=25: .* shorten the Bedrock read timeout"):
        GatewaySettings.from_env({**env, "BEDROCK_READ_TIMEOUT_SECONDS": "25"})
