"""The gateway charges what Bedrock served: tiers, latency, 1-hour cache writes, long context;
and refuses, uncharged, what a profile does not allow."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from tollgate.config import ConfigBundle, ConfigError
from tollgate.errors import BadRequest
from tollgate.money import usd
from tollgate.services.gateway import Caller

from tests.unit.test_gateway_service import FakeDirectory, FakeFallback, FakeModel, FakeUsage, provisioned

OSS = "openai.gpt-oss-120b-1:0"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
ACME = Caller("acme", "key1")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

MODELS = {
    "unit": "USD per 1M tokens",
    "models": {
        OSS: {
            "name": "gpt-oss-120b",
            "provider": "OpenAI",
            "tiers": ["default", "priority", "flex"],
            "latency_optimized": True,
            "prices": [
                {"scope": "in-region", "effective_from": "2025-08-05", "input": "0.15", "output": "0.60"},
                {
                    "scope": "in-region",
                    "effective_from": "2025-11-18",
                    "tier": "priority",
                    "input": "0.2625",
                    "output": "1.05",
                },
                {
                    "scope": "in-region",
                    "effective_from": "2025-11-18",
                    "tier": "flex",
                    "input": "0.075",
                    "output": "0.30",
                },
                {
                    "scope": "in-region",
                    "effective_from": "2025-11-18",
                    "latency": "optimized",
                    "input": "0.20",
                    "output": "0.80",
                },
            ],
        },
        SONNET: {
            "name": "Claude Sonnet 4.5",
            "provider": "Anthropic",
            "prompt_caching": True,
            "cache_ttls": ["5m", "1h"],
            "long_context_above": 200000,
            "prices": [
                {
                    "scope": "global",
                    "effective_from": "2025-09-29",
                    "input": "3.00",
                    "output": "15.00",
                    "cache_read": "0.30",
                    "cache_write": "3.75",
                    "cache_write_1h": "6.00",
                },
                {
                    "scope": "global",
                    "effective_from": "2025-09-29",
                    "context": "long",
                    "input": "6.00",
                    "output": "22.50",
                    "cache_read": "0.60",
                    "cache_write": "7.50",
                    "cache_write_1h": "12.00",
                },
            ],
        },
    },
}


def config(**profiles: dict[str, Any]) -> dict[str, Any]:
    return {
        "admin_email": "admin@example.com",
        "defaults": {"cost_threshold": "5", "tokens_per_min_threshold": 1000, "requests_per_min_threshold": 10},
        "tenants": {"acme": {"display_name": "Acme"}},
        "profiles": profiles,
    }


CONFIG = config(
    fast={
        "tenant": "acme",
        "model": OSS,
        "allow": {"tiers": ["default", "priority", "flex"], "latency": ["standard", "optimized"]},
    },
    plain={"tenant": "acme", "model": OSS},
    sonnet={"tenant": "acme", "model": SONNET, "scope": "global", "allow": {"cache_ttls": ["5m", "1h"]}},
    sonnet5m={"tenant": "acme", "model": SONNET, "scope": "global"},
)


@pytest.fixture
def bundle() -> ConfigBundle:
    return ConfigBundle.from_texts(json.dumps(CONFIG), json.dumps(MODELS), region="us-east-1")


def call(
    bundle: ConfigBundle, profile: str, params: dict[str, Any], answer: dict[str, Any]
) -> tuple[Any, FakeModel, FakeUsage]:
    from tollgate.services.gateway import GatewayService

    model, usage = FakeModel(answer), FakeUsage()
    service = GatewayService(
        bundle=bundle,
        directory=FakeDirectory(provisioned(bundle)),
        model=model,
        usage=usage,
        fallback=FakeFallback(),
        retention_days=90,
        clock=lambda: NOW,
    )
    result = service.converse(ACME, service.profile_named(ACME, profile), params, request_id="r1", route="converse")
    return result, model, usage


def answer(usage: dict[str, int], **extra: Any) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
        "stopReason": "end_turn",
        "usage": {"totalTokens": sum(v for v in usage.values() if isinstance(v, int)), **usage},
        "metrics": {"latencyMs": 10},
        **extra,
    }


MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": [{"text": "hi"}]}]
MILLION = {"inputTokens": 1_000_000, "outputTokens": 1_000_000}


@pytest.mark.parametrize(
    ("asked", "served", "cost"),
    [
        (None, None, "0.75"),
        ("priority", "priority", "1.3125"),
        ("flex", "flex", "0.375"),
        ("priority", "default", "0.75"),  # Bedrock served the default tier: charged the default rates
        ("priority", None, "1.3125"),  # the answer does not say: charged what was asked for
    ],
)
def test_each_tier_is_charged_at_the_rates_of_the_tier_that_served_it(
    bundle: ConfigBundle, asked: str | None, served: str | None, cost: str
) -> None:
    params: dict[str, Any] = {"messages": MESSAGES, **({"serviceTier": {"type": asked}} if asked else {})}
    extra = {"serviceTier": {"type": served}} if served else {}
    _, _, usage = call(bundle, "fast", params, answer(MILLION, **extra))
    (record,) = usage.records
    assert usd(record.cost_pusd) == Decimal(cost)
    assert record.tier == (served or asked or "default")


def test_latency_optimized_is_charged_its_own_rates_and_standard_when_bedrock_fell_back(bundle: ConfigBundle) -> None:
    params = {"messages": MESSAGES, "performanceConfig": {"latency": "optimized"}}
    _, _, usage = call(bundle, "fast", params, answer(MILLION, performanceConfig={"latency": "optimized"}))
    assert usd(usage.records[0].cost_pusd) == Decimal("1.00")
    _, _, usage = call(bundle, "fast", params, answer(MILLION, performanceConfig={"latency": "standard"}))
    assert usd(usage.records[0].cost_pusd) == Decimal("0.75")


@pytest.mark.parametrize(
    ("profile", "params", "setting"),
    [
        ("plain", {"serviceTier": {"type": "priority"}}, "serviceTier 'priority'"),
        ("plain", {"serviceTier": {"type": "flex"}}, "serviceTier 'flex'"),
        ("fast", {"serviceTier": {"type": "reserved"}}, "serviceTier 'reserved'"),
        ("plain", {"performanceConfig": {"latency": "optimized"}}, "latency 'optimized'"),
        ("sonnet5m", {"system": [{"text": "x"}, {"cachePoint": {"type": "default", "ttl": "1h"}}]}, "ttl '1h'"),
    ],
)
def test_what_a_profile_does_not_allow_is_refused_before_bedrock_and_not_charged(
    bundle: ConfigBundle, profile: str, params: dict[str, Any], setting: str
) -> None:
    with pytest.raises(BadRequest, match=f"profile {profile} does not allow .*{setting}") as refused:
        call(bundle, profile, {"messages": MESSAGES, **params}, answer(MILLION))
    assert f"profiles.{profile}.allow" in refused.value.message
    assert "nothing was charged" in refused.value.message


def test_two_allowed_options_that_are_not_priced_together_are_refused_uncharged(bundle: ConfigBundle) -> None:
    params = {"messages": MESSAGES, "serviceTier": {"type": "priority"}, "performanceConfig": {"latency": "optimized"}}
    with pytest.raises(BadRequest, match="not both in one request"):
        call(bundle, "fast", params, answer(MILLION))


def test_one_hour_cache_writes_are_charged_at_the_one_hour_rate(bundle: ConfigBundle) -> None:
    # Given a call that wrote 13,223 tokens to the 1-hour cache and 1,000 to the 5-minute one
    params = {"messages": MESSAGES, "system": [{"text": "x"}, {"cachePoint": {"type": "default", "ttl": "1h"}}]}
    usage_figures = {"inputTokens": 0, "outputTokens": 0, "cacheWriteInputTokens": 14_223}
    details = [{"ttl": "1h", "inputTokens": 13_223}, {"ttl": "5m", "inputTokens": 1_000}]
    _, _, usage = call(bundle, "sonnet", params, answer(usage_figures | {"cacheDetails": details}))  # type: ignore[operator]
    (record,) = usage.records
    # Then 13,223 x $6.00 + 1,000 x $3.75 per 1M
    assert (record.cache_write_1h_tokens, record.cache_write_tokens) == (13_223, 1_000)
    assert usd(record.cost_pusd) == Decimal("0.079338") + Decimal("0.00375")


def test_a_prompt_over_the_long_context_threshold_is_charged_long_context_rates(bundle: ConfigBundle) -> None:
    figures = {"inputTokens": 150_000, "cacheReadInputTokens": 60_000, "outputTokens": 1_000}
    _, _, usage = call(bundle, "sonnet5m", {"messages": MESSAGES}, answer(figures))
    (record,) = usage.records
    assert record.context == "long"
    assert usd(record.cost_pusd) == Decimal("0.9") + Decimal("0.036") + Decimal("0.0225")


def test_a_profile_may_not_allow_what_has_no_price_where_the_stack_runs() -> None:
    unpriced = config(
        p={"tenant": "acme", "model": SONNET, "scope": "global", "allow": {"tiers": ["default", "priority"]}}
    )
    with pytest.raises(ConfigError, match=r"profiles\.p\.allow\.tiers: Bedrock offers .* not 'priority'"):
        ConfigBundle.from_texts(json.dumps(unpriced), json.dumps(MODELS), region="us-east-1")
    regional = {
        **MODELS,
        "models": {
            SONNET: {
                **MODELS["models"][SONNET],  # type: ignore[index]
                "prices": [{**row, "regions": ["us-east-1"]} for row in MODELS["models"][SONNET]["prices"]],  # type: ignore[index]
            }
        },
    }
    only_sonnet = json.dumps(config(p={"tenant": "acme", "model": SONNET, "scope": "global"}))
    regional = {
        **MODELS,
        "models": {
            SONNET: {
                **MODELS["models"][SONNET],  # type: ignore[index]
                "prices": [{**row, "regions": ["us-east-1"]} for row in MODELS["models"][SONNET]["prices"]],  # type: ignore[index]
            }
        },
    }
    only_sonnet = json.dumps(config(p={"tenant": "acme", "model": SONNET, "scope": "global"}))
    with pytest.raises(ConfigError, match=r"no global price for .* in eu-west-3 .*whose regions include eu-west-3"):
        ConfigBundle.from_texts(only_sonnet, json.dumps(regional), region="eu-west-3")
