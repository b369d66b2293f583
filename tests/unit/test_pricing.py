"""Pricing: exact integer pico-dollars; additive, monotone; the right row by date, scope, region,
service tier, latency, context; 1-hour cache writes; contract discounts."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tollgate.config import ConfigBundle, ModelCatalog
from tollgate.money import format_usd, usd
from tollgate.pricing import PriceBook, PriceNotFoundError, Served, TokenCounts

MICRO = "amazon.nova-micro-v1:0"
LLAMA = "meta.llama3-1-8b-instruct-v1:0"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
OSS = "openai.gpt-oss-120b-1:0"


def row(scope: str, effective: str, input_: str, output: str, **extra: Any) -> dict[str, Any]:
    return {"scope": scope, "effective_from": effective, "input": Decimal(input_), "output": Decimal(output), **extra}


def cached(scope: str, effective: str, input_: str, output: str, read: str, write: str, **extra: Any) -> dict[str, Any]:
    return row(scope, effective, input_, output, cache_read=Decimal(read), cache_write=Decimal(write), **extra)


RAW: dict[str, Any] = {
    "unit": "USD per 1M tokens",
    "region_groups": {"us": ["us-east-1", "us-east-2", "us-west-2"], "eu": ["eu-central-1", "eu-west-1"]},
    "models": {
        MICRO: {
            "name": "Nova Micro",
            "provider": "Amazon",
            "prompt_caching": True,
            "prices": [
                cached("in-region", "2025-01-01", "0.035", "0.14", "0.00875", "0.035"),
                cached("in-region", "2025-06-01", "0.04", "0.16", "0.01", "0.04"),
                cached("cross-region", "2025-01-01", "0.05", "0.20", "0.0125", "0.05"),
                # a region of its own, dearer than "every region"
                cached("in-region", "2025-01-01", "0.045", "0.18", "0.01125", "0.045", regions=["eu"]),
            ],
        },
        LLAMA: {"name": "Llama", "provider": "Meta", "prices": [row("in-region", "2025-01-01", "0.22", "0.22")]},
        SONNET: {
            "name": "Claude Sonnet 4.5",
            "provider": "Anthropic",
            "prompt_caching": True,
            "cache_ttls": ["5m", "1h"],
            "long_context_above": 200_000,
            "prices": [
                cached("global", "2025-09-29", "3.00", "15.00", "0.30", "3.75", cache_write_1h=Decimal("6.00")),
                cached(
                    "global",
                    "2025-09-29",
                    "6.00",
                    "22.50",
                    "0.60",
                    "7.50",
                    cache_write_1h=Decimal("12.00"),
                    context="long",
                ),
            ],
        },
        OSS: {
            "name": "gpt-oss-120b",
            "provider": "OpenAI",
            "tiers": ["default", "priority", "flex"],
            "latency_optimized": True,
            "prices": [
                row("in-region", "2025-08-05", "0.15", "0.60"),
                row("in-region", "2025-11-18", "0.2625", "1.05", tier="priority"),
                row("in-region", "2025-11-18", "0.075", "0.30", tier="flex"),
                row("in-region", "2025-11-18", "0.20", "0.80", latency="optimized"),
            ],
        },
    },
}
CATALOG = ModelCatalog.model_validate(RAW)
BOOK = PriceBook(CATALOG, "us-east-1")
DAY = date(2025, 12, 1)

tokens = st.builds(
    TokenCounts,
    st.integers(0, 2_000_000),
    st.integers(0, 200_000),
    st.integers(0, 2_000_000),
    st.integers(0, 2_000_000),
    st.integers(0, 2_000_000),
)


def with_discounts(*discounts: dict[str, Any]) -> PriceBook:
    return PriceBook(ModelCatalog.model_validate({**RAW, "contract": {"discounts": list(discounts)}}), "us-east-1")


# ------------------------------------------------------------------------------- exact money


def test_cost_of_a_call_is_exact_to_the_picodollar() -> None:
    # Given Nova Micro at $0.035 / $0.14 / $0.00875 / $0.035 per 1M tokens
    price = BOOK.price(MICRO, "in-region", date(2025, 3, 1))
    # When a call uses 1000 input, 500 output, 100 cache-read and 10 cache-write tokens
    cost = price.cost(TokenCounts(1000, 500, 100, 10))
    # Then it costs 0.000035 + 0.00007 + 0.000000875 + 0.00000035 USD exactly
    assert usd(cost) == Decimal("0.000106225")
    assert format_usd(cost) == "0.000106225"


def test_a_price_per_1m_tokens_is_not_read_as_per_1k() -> None:
    # The reference sample charged 1000x too little; one million tokens must cost the list price.
    price = BOOK.price(LLAMA, "in-region", date(2025, 3, 1))
    assert usd(price.cost(TokenCounts(input=1_000_000))) == Decimal("0.22")


@given(a=tokens, b=tokens)
def test_cost_is_additive_in_tokens(a: TokenCounts, b: TokenCounts) -> None:
    for price in (BOOK.price(MICRO, "in-region", DAY), BOOK.price(SONNET, "global", DAY, context="long")):
        assert price.cost(a + b) == price.cost(a) + price.cost(b)


@given(base=tokens, extra=tokens, percent=st.decimals("0.01", "99.99", places=2))
def test_cost_never_falls_when_tokens_grow_with_or_without_a_discount(
    base: TokenCounts, extra: TokenCounts, percent: Decimal
) -> None:
    discounted = with_discounts({"provider": "Anthropic", "percent": percent, "effective_from": "2025-01-01"})
    for book in (BOOK, discounted):
        price = book.price(SONNET, "global", DAY)
        assert price.cost(base + extra) >= price.cost(base)


# ------------------------------------------------------------------------------- the right row


@given(day=st.dates(min_value=date(2025, 1, 1), max_value=date(2030, 1, 1)))
def test_the_row_in_force_is_the_latest_effective_on_or_before_the_day(day: date) -> None:
    price = BOOK.price(MICRO, "in-region", day)
    expected = date(2025, 6, 1) if day >= date(2025, 6, 1) else date(2025, 1, 1)
    assert price.effective_from == expected
    assert price.version == f"{MICRO}@in-region@{expected.isoformat()}"
    assert (
        BOOK.price(OSS, "in-region", DAY, tier="flex").version == f"{OSS}@in-region@flex/standard/standard@2025-11-18"
    )
    assert PriceBook(CATALOG, "eu-west-1").price(MICRO, "in-region", DAY).version == f"{MICRO}@in-region@eu@2025-01-01"


def test_a_new_row_starts_on_its_effective_day() -> None:
    assert BOOK.price(MICRO, "in-region", date(2025, 5, 31)).input == 35_000
    assert BOOK.price(MICRO, "in-region", date(2025, 6, 1)).input == 40_000


def test_scopes_have_their_own_prices() -> None:
    call = TokenCounts(input=1_000_000)
    in_region = BOOK.price(MICRO, "in-region", date(2025, 3, 1)).cost(call)
    cross = BOOK.price(MICRO, "cross-region", date(2025, 3, 1)).cost(call)
    assert (usd(in_region), usd(cross)) == (Decimal("0.035"), Decimal("0.05"))


@pytest.mark.parametrize(
    ("region", "expected"),
    [("us-east-1", "0.035"), ("eu-west-1", "0.045"), ("eu-central-1", "0.045"), ("ap-south-1", "0.035")],
)
def test_the_stacks_region_has_its_own_price_list_where_models_json_gives_one(region: str, expected: str) -> None:
    book = PriceBook(CATALOG, region)
    assert usd(book.price(MICRO, "in-region", date(2025, 3, 1)).cost(TokenCounts(input=1_000_000))) == Decimal(expected)


def test_a_regions_own_rows_take_over_from_their_date_and_history_keeps_the_every_region_rows() -> None:
    late = {
        **RAW,
        "models": {
            LLAMA: {
                **RAW["models"][LLAMA],
                "prices": [
                    row("in-region", "2025-01-01", "0.22", "0.22"),
                    row("in-region", "2026-01-01", "0.30", "0.30", regions=["eu"]),
                ],
            }
        },
    }
    book = PriceBook(ModelCatalog.model_validate(late), "eu-west-1")
    assert book.price(LLAMA, "in-region", date(2025, 6, 1)).input == 220_000  # before the region's own row
    assert book.price(LLAMA, "in-region", date(2026, 6, 1)).input == 300_000
    assert (
        PriceBook(ModelCatalog.model_validate(late), "us-east-1").price(LLAMA, "in-region", date(2026, 6, 1)).input
        == 220_000
    )


def test_a_region_without_a_row_has_no_price() -> None:
    only_us = {
        **RAW,
        "models": {
            LLAMA: {**RAW["models"][LLAMA], "prices": [row("in-region", "2025-01-01", "0.22", "0.22", regions=["us"])]}
        },
    }
    with pytest.raises(PriceNotFoundError, match="in eu-west-1"):
        PriceBook(ModelCatalog.model_validate(only_us), "eu-west-1").price(LLAMA, "in-region", DAY)


def test_no_price_before_the_first_row_or_for_an_unpriced_scope() -> None:
    with pytest.raises(PriceNotFoundError, match="first row is effective 2025-01-01"):
        BOOK.price(MICRO, "in-region", date(2024, 12, 31))
    with pytest.raises(PriceNotFoundError, match="no 'global' price"):
        BOOK.price(MICRO, "global", date(2025, 3, 1))


# ------------------------------------------------------------------------------- what was served


@pytest.mark.parametrize(
    ("served", "input_usd", "output_usd"),
    [
        (Served(), "0.15", "0.60"),
        (Served(tier="priority"), "0.2625", "1.05"),
        (Served(tier="flex"), "0.075", "0.30"),
        (Served(latency="optimized"), "0.20", "0.80"),
    ],
)
def test_each_tier_and_latency_is_charged_its_own_rates(served: Served, input_usd: str, output_usd: str) -> None:
    price = BOOK.charge(OSS, "in-region", DAY, TokenCounts(input=1_000_000, output=1_000_000), served)
    assert (usd(price.input * 10**6), usd(price.output * 10**6)) == (Decimal(input_usd), Decimal(output_usd))
    assert (price.tier, price.latency) == (served.tier, served.latency)


def test_a_tier_without_rates_has_no_price() -> None:
    with pytest.raises(PriceNotFoundError, match="reserved"):
        BOOK.charge(OSS, "in-region", DAY, TokenCounts(input=1), Served(tier="reserved"))


def test_one_hour_cache_writes_cost_their_own_rate() -> None:
    # 13,223 tokens written to the 1-hour cache: $6.00 per 1M, not the 5-minute $3.75
    price = BOOK.charge(SONNET, "global", DAY, TokenCounts(cache_write_1h=13_223), Served())
    assert usd(price.cost(TokenCounts(cache_write_1h=13_223))) == Decimal("0.079338")
    assert usd(price.cost(TokenCounts(cache_write=13_223))) == Decimal("0.04958625")


@given(prompt=st.integers(0, 400_000), output=st.integers(0, 64_000), split=st.floats(0, 1))
def test_long_context_rates_apply_to_the_whole_call_above_the_threshold(prompt: int, output: int, split: float) -> None:
    # Given a prompt of `prompt` tokens, part read from the cache (all three kinds count toward it)
    read = int(prompt * split)
    call = TokenCounts(input=prompt - read, cache_read=read, output=output)
    price = BOOK.charge(SONNET, "global", DAY, call, Served())
    # Then above 200,000 prompt tokens every token of the call is at the long-context rates
    assert price.context == ("long" if prompt > 200_000 else "standard")
    assert price.output == (22_500_000 if prompt > 200_000 else 15_000_000)


def test_cache_tokens_of_a_model_without_cache_prices_are_billed_at_the_input_rate() -> None:
    price = BOOK.price(LLAMA, "in-region", date(2025, 3, 1))
    assert price.cost(TokenCounts(cache_read=1000, cache_write=1000, cache_write_1h=10)) == price.cost(
        TokenCounts(input=2010)
    )


# ------------------------------------------------------------------------------- contract discounts


def test_a_provider_discount_applies_to_all_its_models_and_rates() -> None:
    book = with_discounts({"provider": "Anthropic", "percent": "10", "effective_from": "2025-01-01"})
    price = book.price(SONNET, "global", DAY)
    call = TokenCounts(input=1_000_000, output=1_000_000, cache_write_1h=1_000_000)
    assert usd(price.list_cost(call)) == Decimal("24.00")
    assert usd(price.cost(call)) == Decimal("21.60")
    assert price.version.endswith("-Anthropic-10%@2025-01-01")
    assert book.price(LLAMA, "in-region", DAY).discount is None  # other providers list price


def test_a_models_own_discount_beats_its_providers_and_dates_bound_both() -> None:
    book = with_discounts(
        {"provider": "Anthropic", "percent": "10", "effective_from": "2025-10-01"},
        {"model": SONNET, "percent": "15", "effective_from": "2025-11-01", "until": "2025-11-30"},
    )
    assert book.price(SONNET, "global", date(2025, 11, 15)).discount.percent == Decimal(15)  # type: ignore[union-attr]
    assert book.price(SONNET, "global", date(2025, 12, 1)).discount.percent == Decimal(10)  # type: ignore[union-attr]
    assert book.price(SONNET, "global", date(2025, 9, 30)).discount is None


@given(call=tokens, percent=st.decimals("0.0001", "99.9999", places=4))
def test_a_discounted_cost_is_rounded_once_per_call_by_at_most_half_a_picodollar(
    call: TokenCounts, percent: Decimal
) -> None:
    book = with_discounts({"model": MICRO, "percent": percent, "effective_from": "2025-01-01"})
    price = book.price(MICRO, "in-region", DAY)
    exact = Decimal(price.list_cost(call)) * (100 - percent) / 100
    assert abs(Decimal(price.cost(call)) - exact) <= Decimal("0.5")
    assert price.cost(call) <= price.list_cost(call)


# ------------------------------------------------------------------------------- token counts


def test_token_counts_reject_negative_or_fractional_values() -> None:
    with pytest.raises(ValueError, match="non-negative integer"):
        TokenCounts(input=-1)
    with pytest.raises(ValueError, match="non-negative integer"):
        TokenCounts(output=1.5)  # type: ignore[arg-type]


def test_every_profile_of_the_shipped_config_is_priced_today(bundle: ConfigBundle) -> None:
    book = PriceBook(bundle.catalog, "us-east-1")
    today = date.today() + timedelta(days=1)
    for profile in bundle.profiles():
        assert book.price(profile.model_id, profile.scope, today).input > 0
