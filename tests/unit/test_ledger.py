"""The ledger's pure parts: worst cases, refusals, the transactions it builds, the template's index."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from tollgate.config import ConfigBundle
from tollgate.errors import BadRequest, BudgetExceeded, TokenRateExceeded
from tollgate.ledger import (
    RELEASE_AT_ATTR,
    RELEASE_INDEX,
    RES_SHARD_ATTR,
    WorstCase,
    plan_of,
    prompt_bound,
    refusal,
    release_items,
    reservation_for,
    reserve_items,
    worst_case,
)
from tollgate.pricing import PriceBook, TokenCounts
from tollgate_local.template import load_template

AT = datetime(2026, 12, 3, 15, 58, 30, tzinfo=UTC)
TEXT = {"messages": [{"role": "user", "content": [{"text": "héllo"}]}], "inferenceConfig": {"maxTokens": 100}}


@pytest.fixture
def east(bundle: ConfigBundle) -> ConfigBundle:
    return bundle.in_region("us-east-1")


def test_the_worst_case_is_the_byte_bound_at_the_highest_input_rate_plus_max_tokens_at_the_output_rate(
    east: ConfigBundle,
) -> None:
    profile = east.profile("initech-coder")
    assert profile is not None
    model = east.catalog.models[profile.model_id]
    prices = PriceBook(east.catalog, "us-east-1")
    worst = worst_case(TEXT, profile, model, prices, AT)
    price = prices.price(profile.model_id, profile.scope, AT)
    assert worst.output_tokens == 100
    # every prompt token at the dearest input-side rate (1-hour cache write), every output token at output
    assert worst.amount_pusd == worst.prompt_tokens * price.cache_write_1h + 100 * price.output
    # an actual call within the bounds never costs more
    actual = TokenCounts(input=worst.prompt_tokens, output=100)
    assert price.cost(actual) <= worst.amount_pusd


def test_the_prompt_bound_counts_utf8_bytes_and_stops_at_the_context_window(east: ConfigBundle) -> None:
    model = east.catalog.models["anthropic.claude-sonnet-4-6"]
    small = prompt_bound(TEXT, model, "m")
    assert small > len("héllo".encode())  # 6 bytes, plus the JSON and the template overhead
    huge = {"messages": [{"role": "user", "content": [{"text": "x" * 2_000_000}]}]}
    assert prompt_bound(huge, model, "m") == model.limits.context_window
    image = {"messages": [{"role": "user", "content": [{"image": {"format": "png", "source": {"bytes": b"x"}}}]}]}
    assert prompt_bound(image, model, "m") == model.limits.context_window


def test_without_max_tokens_the_models_maximum_output_is_reserved(east: ConfigBundle) -> None:
    profile = east.profile("initech-coder")
    assert profile is not None
    model = east.catalog.models[profile.model_id]
    worst = worst_case({"messages": TEXT["messages"]}, profile, model, PriceBook(east.catalog, "us-east-1"), AT)
    assert worst.output_tokens == model.limits.max_output_tokens


def test_an_unbounded_output_is_refused_before_anything_is_written(east: ConfigBundle) -> None:
    profile = east.profile("initech-coder")
    assert profile is not None
    model = east.catalog.models[profile.model_id].model_copy(
        update={"limits": east.catalog.models[profile.model_id].limits.model_copy(update={"max_output_tokens": None})}
    )
    with pytest.raises(BadRequest, match=r"inferenceConfig\.maxTokens"):
        worst_case({"messages": TEXT["messages"]}, profile, model, PriceBook(east.catalog, "us-east-1"), AT)


def _initech(east: ConfigBundle) -> tuple[Any, Any]:
    tenant, profile = east.tenant("initech"), east.profile("initech-coder")
    assert tenant is not None
    assert profile is not None
    return tenant, profile


def test_the_reserve_conditions_each_enforced_item_on_limit_minus_w_and_puts_the_res_item(
    east: ConfigBundle,
) -> None:
    tenant, profile = _initech(east)
    plan = plan_of(tenant, profile, AT)
    worst = worst_case(TEXT, profile, east.catalog.models[profile.model_id], PriceBook(east.catalog, "us-east-1"), AT)
    reservation = reservation_for(plan, "r1", "initech", worst, AT, 29)
    items = reserve_items(plan, reservation, AT)
    budgets = [i["Update"] for i in items if i.get("Update", {}).get("Key", {}).get("pk") == "BUDGET#initech"]
    assert sorted(b["Key"]["sk"] for b in budgets) == ["D#2026-12-03", "M#2026-12"]
    caps = {b["Key"]["sk"]: b["ExpressionAttributeValues"][":cap"] for b in budgets}
    assert caps == {
        "D#2026-12-03": tenant.budget.daily_pusd - worst.amount_pusd,
        "M#2026-12": tenant.budget.monthly_pusd - worst.amount_pusd,
    }
    (tpm,) = [i["Update"] for i in items if i.get("Update", {}).get("Key", {}).get("pk") == "TPM#initech"]
    assert tpm["Key"]["sk"] == "2026-12-03T15:58"
    assert tpm["ExpressionAttributeValues"][":cap"] == tenant.rate_limits.tokens_per_min - worst.tokens
    put = items[-1]["Put"]["Item"]
    assert put["pk"] == "RES#r1"
    assert put[RELEASE_AT_ATTR] == int(AT.timestamp()) + 29 + 60  # the deadline + the grace
    assert put[RES_SHARD_ATTR] in {str(n) for n in range(8)}
    # the release gives back exactly what was held
    released = {(i["Update"]["Key"]["pk"], i["Update"]["Key"]["sk"]): i for i in release_items(reservation, AT)[1:]}
    assert all(i["Update"]["ExpressionAttributeValues"][":d"] < 0 for i in released.values())
    assert len(released) == len(reservation.holds) == 3


def test_refusals_name_the_budget_spent_and_reset_or_say_when_to_retry(east: ConfigBundle) -> None:
    tenant, profile = _initech(east)
    plan = plan_of(tenant, profile, AT)
    worst = worst_case(TEXT, profile, east.catalog.models[profile.model_id], PriceBook(east.catalog, "us-east-1"), AT)
    reservation = reservation_for(plan, "r1", "initech", worst, AT, 29)
    daily = next(i for i, h in enumerate(reservation.holds) if h.sk.startswith("D#"))
    error = refusal(plan, reservation, daily, {"spent_pusd": 1_990_000_000_000, "committed_pusd": 2 * 10**12}, AT)
    assert isinstance(error, BudgetExceeded)
    assert error.status == 400
    assert error.error_type == "ServiceQuotaExceededException"
    assert "tenant initech's daily budget" in error.message
    assert "1.99" in error.message
    assert "2026-12-04 00:00 UTC" in error.message  # initech is in UTC: local and UTC agree
    tokens = next(i for i, h in enumerate(reservation.holds) if h.pk.startswith("TPM#"))
    throttled = refusal(plan, reservation, tokens, {"used_tokens": 199_000}, AT)
    assert isinstance(throttled, TokenRateExceeded)
    assert throttled.status == 429
    assert throttled.retry_after == 30


def test_a_request_whose_worst_case_exceeds_the_whole_budget_is_refused_without_a_call(east: ConfigBundle) -> None:
    tenant, profile = _initech(east)
    plan = plan_of(tenant, profile, AT)
    too_dear = WorstCase(prompt_tokens=100, output_tokens=64_000, amount_pusd=tenant.budget.daily_pusd + 1)
    with pytest.raises(BudgetExceeded, match="more than the whole"):
        reservation_for(plan, "r1", "initech", too_dear, AT, 29)
    too_long = WorstCase(prompt_tokens=100, output_tokens=tenant.rate_limits.tokens_per_min, amount_pusd=1)
    with pytest.raises(BadRequest, match="tokens per minute"):
        reservation_for(plan, "r1", "initech", too_long, AT, 29)


def test_the_templates_sparse_index_is_the_one_the_sweeper_queries() -> None:
    table = load_template()["Resources"]["ControlTable"]["Properties"]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == RELEASE_INDEX
    assert [k["AttributeName"] for k in index["KeySchema"]] == [RES_SHARD_ATTR, RELEASE_AT_ATTR]


def test_the_local_stack_runs_the_sweeper_on_its_schedule() -> None:
    from tollgate_local.schedules import scheduled_functions

    assert "SweeperFunction" in scheduled_functions(load_template())
