"""Pricing: exact integer pico-dollars, additive, monotone, effective-dated, per scope."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tollgate.config import ConfigBundle, ModelCatalog
from tollgate.money import format_usd, usd
from tollgate.pricing import PriceBook, PriceNotFoundError, TokenCounts

CATALOG = ModelCatalog.model_validate(
    {
        "unit": "USD per 1M tokens",
        "models": {
            "amazon.nova-micro-v1:0": {
                "name": "Nova Micro",
                "provider": "Amazon",
                "prompt_caching": True,
                "prices": [
                    {
                        "scope": "in-region",
                        "effective_from": "2025-01-01",
                        "input": Decimal("0.035"),
                        "output": Decimal("0.14"),
                        "cache_read": Decimal("0.00875"),
                        "cache_write": Decimal("0.035"),
                    },
                    {
                        "scope": "in-region",
                        "effective_from": "2025-06-01",
                        "input": Decimal("0.04"),
                        "output": Decimal("0.16"),
                        "cache_read": Decimal("0.01"),
                        "cache_write": Decimal("0.04"),
                    },
                    {
                        "scope": "cross-region",
                        "effective_from": "2025-01-01",
                        "input": Decimal("0.05"),
                        "output": Decimal("0.20"),
                        "cache_read": Decimal("0.0125"),
                        "cache_write": Decimal("0.05"),
                    },
                ],
            },
            "meta.llama3-1-8b-instruct-v1:0": {
                "name": "Llama",
                "provider": "Meta",
                "prices": [
                    {
                        "scope": "in-region",
                        "effective_from": "2025-01-01",
                        "input": Decimal("0.22"),
                        "output": Decimal("0.22"),
                    }
                ],
            },
        },
    }
)
BOOK = PriceBook(CATALOG)
MICRO = "amazon.nova-micro-v1:0"

tokens = st.builds(
    TokenCounts,
    st.integers(0, 2_000_000),
    st.integers(0, 200_000),
    st.integers(0, 2_000_000),
    st.integers(0, 2_000_000),
)


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
    price = BOOK.price("meta.llama3-1-8b-instruct-v1:0", "in-region", date(2025, 3, 1))
    assert usd(price.cost(TokenCounts(input=1_000_000))) == Decimal("0.22")


@given(a=tokens, b=tokens)
def test_cost_is_additive_in_tokens(a: TokenCounts, b: TokenCounts) -> None:
    price = BOOK.price(MICRO, "in-region", date(2025, 3, 1))
    assert price.cost(a + b) == price.cost(a) + price.cost(b)


@given(base=tokens, extra=tokens)
def test_cost_never_falls_when_tokens_grow(base: TokenCounts, extra: TokenCounts) -> None:
    price = BOOK.price(MICRO, "cross-region", date(2025, 3, 1))
    assert price.cost(base + extra) >= price.cost(base)


@given(day=st.dates(min_value=date(2025, 1, 1), max_value=date(2030, 1, 1)))
def test_the_row_in_force_is_the_latest_effective_on_or_before_the_day(day: date) -> None:
    price = BOOK.price(MICRO, "in-region", day)
    expected = date(2025, 6, 1) if day >= date(2025, 6, 1) else date(2025, 1, 1)
    assert price.effective_from == expected
    assert price.version == f"{MICRO}@in-region@{expected.isoformat()}"


def test_a_new_row_starts_on_its_effective_day() -> None:
    assert BOOK.price(MICRO, "in-region", date(2025, 5, 31)).input == 35_000
    assert BOOK.price(MICRO, "in-region", date(2025, 6, 1)).input == 40_000


def test_scopes_have_their_own_prices() -> None:
    call = TokenCounts(input=1_000_000)
    in_region = BOOK.price(MICRO, "in-region", date(2025, 3, 1)).cost(call)
    cross = BOOK.price(MICRO, "cross-region", date(2025, 3, 1)).cost(call)
    assert (usd(in_region), usd(cross)) == (Decimal("0.035"), Decimal("0.05"))


def test_no_price_before_the_first_row_or_for_an_unpriced_scope() -> None:
    with pytest.raises(PriceNotFoundError, match="first row is effective 2025-01-01"):
        BOOK.price(MICRO, "in-region", date(2024, 12, 31))
    with pytest.raises(PriceNotFoundError, match="no 'global' price"):
        BOOK.price(MICRO, "global", date(2025, 3, 1))


def test_cache_tokens_of_a_model_without_cache_prices_are_billed_at_the_input_rate() -> None:
    price = BOOK.price("meta.llama3-1-8b-instruct-v1:0", "in-region", date(2025, 3, 1))
    assert price.cost(TokenCounts(cache_read=1000, cache_write=1000)) == price.cost(TokenCounts(input=2000))


def test_token_counts_reject_negative_or_fractional_values() -> None:
    with pytest.raises(ValueError, match="non-negative integer"):
        TokenCounts(input=-1)
    with pytest.raises(ValueError, match="non-negative integer"):
        TokenCounts(output=1.5)  # type: ignore[arg-type]


def test_every_profile_of_the_shipped_config_is_priced_today(bundle: ConfigBundle) -> None:
    book = PriceBook(bundle.catalog)
    today = date.today() + timedelta(days=1)
    for profile in bundle.profiles():
        assert book.price(profile.model_id, profile.scope, today).input > 0
