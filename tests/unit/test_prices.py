"""`tollgate prices`: the book where the stack runs (as the gateway charges it) and the what-if re-pricing,
exact to the pico-dollar, with totals that are the sums of their lines.

The book is tests/fixtures/price_book/models.json, a TEST BOOK (not a price source).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tollgate.config import ConfigBundle, ModelCatalog
from tollgate.pricing import PriceBook, Served, TokenCounts
from tollgate.usage import UsageRecord
from tollgate_cli import prices

BOOK_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "price_book"
RAW: dict[str, Any] = json.loads((BOOK_DIR / "models.json").read_text())
CATALOG = ConfigBundle.load_dir(BOOK_DIR).catalog
REGION = "us-east-1"

LITE = "amazon.nova-lite-v1:0"
PRO = "amazon.nova-pro-v1:0"
HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
LLAMA = "meta.llama3-3-70b-instruct-v1:0"
OLD_HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


def catalog_of(raw: dict[str, Any]) -> ModelCatalog:
    return ModelCatalog.model_validate(raw)


# --------------------------------------------------------------------------- the book


def line_of(listing: prices.Listing, model: str, scope: str, way: str = "default/standard/standard") -> prices.BookLine:
    (found,) = [
        line
        for line in listing.lines
        if line.model_id == model and line.way[0] == scope and prices.way_text(line.way) == way
    ]
    return found


def test_the_book_shows_each_way_of_serving_with_the_row_in_force_its_source_and_the_discount() -> None:
    listing = prices.book(CATALOG, REGION, date(2026, 12, 3))
    lite = line_of(listing, LITE, "in-region")
    assert (lite.figure("input"), lite.figure("output"), lite.figure("cache_read")) == (
        Decimal("0.06"), Decimal("0.24"), Decimal("0.015"),
    )  # fmt: skip
    assert lite.figure("cache_write_1h") is None
    assert lite.row.source == "test row A"
    assert lite.row.checked == date(2026, 11, 30)
    assert lite.discount is None
    sonnet_long = line_of(listing, SONNET, "global", "default/long/standard")
    assert sonnet_long.figure("cache_write_1h") == Decimal("12.00")
    assert sonnet_long.discount is not None
    assert sonnet_long.discount.percent == Decimal(5)
    # the same Price the gateway charges at (same version string)
    charged = PriceBook(CATALOG, REGION).price(SONNET, "global", date(2026, 12, 3), context="long")
    assert sonnet_long.price == charged


def test_a_dated_change_is_shown_as_upcoming_and_applies_from_its_date() -> None:
    before = line_of(prices.book(CATALOG, REGION, date(2026, 12, 31)), PRO, "in-region")
    assert before.figure("input") == Decimal("0.80")
    assert [r.effective_from for r in before.upcoming] == [date(2027, 1, 1)]
    after = line_of(prices.book(CATALOG, REGION, date(2027, 1, 1)), PRO, "in-region")
    assert after.figure("input") == Decimal("0.70")
    assert after.upcoming == ()


def test_a_region_with_rows_of_its_own_sees_only_those() -> None:
    # eu-west-3 has its own Nova Pro row: the every-region rows (and their dated change) do not apply there
    paris = prices.book(CATALOG, "eu-west-3", date(2027, 6, 1))
    pro = line_of(paris, PRO, "in-region")
    assert pro.figure("input") == Decimal("0.92")
    assert pro.row.source == "test row B (a region of its own)"
    assert pro.upcoming == ()
    assert OLD_HAIKU in {line.model_id for line in paris.lines}
    assert OLD_HAIKU in prices.book(CATALOG, REGION, date(2026, 12, 3)).not_here


def test_the_discount_in_force_depends_on_the_date() -> None:
    assert line_of(prices.book(CATALOG, REGION, date(2025, 12, 31)), HAIKU, "global").discount is None
    assert line_of(prices.book(CATALOG, REGION, date(2026, 1, 1)), HAIKU, "global").discount is not None


def test_ways_not_yet_priced_and_models_past_end_of_life_are_said() -> None:
    early = prices.book(CATALOG, REGION, date(2025, 1, 1))
    assert (SONNET, ("global", "default", "standard", "standard"), date(2025, 9, 29)) in early.not_yet
    assert SONNET not in {line.model_id for line in early.lines}
    assert prices.book(CATALOG, "eu-west-3", date(2026, 12, 3)).retired == ((OLD_HAIKU, date(2026, 9, 10)),)
    assert prices.book(CATALOG, "eu-west-3", date(2026, 9, 9)).retired == ()


def test_one_model_only() -> None:
    listing = prices.book(CATALOG, REGION, date(2026, 12, 3), LLAMA)
    assert [(line.model_id, line.way[0]) for line in listing.lines] == [(LLAMA, "cross-region")]


# --------------------------------------------------------------------------- what-if

#: (tenant, profile, model, scope) a record may come from; every one priced in us-east-1 by the test book.
PROFILES = [
    ("acme", "acme-search", LITE, "in-region"),
    ("acme", "acme-chat", HAIKU, "global"),
    ("globex", "globex-pro", PRO, "in-region"),
    ("globex", "globex-sonnet", SONNET, "global"),
    ("initech", "initech-llama", LLAMA, "cross-region"),
]


def charge(index: int, profile: tuple[str, str, str, str], at: datetime, tokens: TokenCounts) -> UsageRecord:
    """A record as the gateway writes it: priced by the test book's PriceBook."""
    tenant, name, model, scope = profile
    price = PriceBook(CATALOG, REGION).charge(model, scope, at, tokens, Served())
    return UsageRecord.charge(
        request_id=f"req-{index:05d}", tenant_id=tenant, profile=name, route="converse", key_id="k1", requested_at=at,
        tokens=tokens, price=price, latency_ms=5, stop_reason="end_turn", retention_days=90,
    )  # fmt: skip


def caching(model: str) -> bool:
    return CATALOG.models[model].prompt_caching


@st.composite
def records(draw: st.DrawFn) -> list[UsageRecord]:
    made = []
    for index in range(draw(st.integers(0, 25))):
        profile = draw(st.sampled_from(PROFILES))
        model = profile[2]
        cached = caching(model)
        tokens = TokenCounts(
            draw(st.integers(0, 300_000)),
            draw(st.integers(0, 9_000)),
            draw(st.integers(0, 50_000)) if cached else 0,
            draw(st.integers(0, 50_000)) if cached else 0,
            draw(st.integers(0, 50_000)) if "1h" in CATALOG.models[model].cache_ttls else 0,
        )
        day = draw(st.dates(date(2025, 10, 15), date(2027, 6, 30)))
        at = datetime(day.year, day.month, day.day, draw(st.integers(0, 23)), tzinfo=UTC)
        made.append(charge(index, profile, at, tokens))
    return made


def sums_are_the_lines(result: prices.WhatIf) -> None:
    assert result.charged_pusd == sum(line.charged_pusd for line in result.lines)
    assert result.new_pusd == sum(line.new_pusd for line in result.lines)
    assert result.difference_pusd == sum(line.difference_pusd for line in result.lines)
    assert result.requests == sum(line.requests for line in result.lines)


@settings(max_examples=60, deadline=None)
@given(records())
def test_re_pricing_with_the_same_book_changes_nothing(found: list[UsageRecord]) -> None:
    result = prices.what_if(found, PriceBook(CATALOG, REGION))
    assert all(line.difference_pusd == 0 for line in result.lines)
    assert result.charged_pusd == result.new_pusd == sum(r.cost_pusd for r in found)
    assert result.requests == len(found)
    assert result.unpriced == ()
    assert result.context_changed == 0
    sums_are_the_lines(result)


def scaled(raw: dict[str, Any], factor: int, *, discounts: bool) -> dict[str, Any]:
    """The book with every figure of every row multiplied by ``factor`` (and the discounts kept or not)."""
    changed = copy.deepcopy(raw)
    for entry in changed["models"].values():
        for row in entry["prices"]:
            for kind in prices.PRICE_KINDS:
                if kind in row:
                    row[kind] = str(Decimal(row[kind]) * factor)
    if not discounts:
        changed["contract"] = {"discounts": []}
    return changed


@settings(max_examples=60, deadline=None)
@given(records(), st.integers(0, 7))
def test_scaling_every_price_scales_every_list_cost_and_the_totals_are_the_lines(
    found: list[UsageRecord], factor: int
) -> None:
    # Given a book with every rate k times the old one and no contract discount
    result = prices.what_if(found, PriceBook(catalog_of(scaled(RAW, factor, discounts=False)), REGION))
    # Then each profile's new cost is k times its records' list cost, exactly, and charged is what they were charged
    expected: dict[tuple[str, str], tuple[int, int]] = {}
    for r in found:
        charged, listed = expected.get((r.tenant_id, r.profile), (0, 0))
        expected[(r.tenant_id, r.profile)] = (charged + r.cost_pusd, listed + (r.list_cost_pusd or 0))
    assert {(line.tenant, line.profile): (line.charged_pusd, line.new_pusd) for line in result.lines} == {
        key: (charged, factor * listed) for key, (charged, listed) in expected.items()
    }
    sums_are_the_lines(result)


@settings(max_examples=40, deadline=None)
@given(records(), st.integers(1, 3))
def test_the_new_books_discount_is_applied_once_per_record(found: list[UsageRecord], factor: int) -> None:
    result = prices.what_if(found, PriceBook(catalog_of(scaled(RAW, factor, discounts=True)), REGION))
    kept = Decimal(95) / Decimal(100)  # the test book's 5 % Anthropic discount, from 2026-01-01
    expected = 0
    for r in found:
        listed = factor * (r.list_cost_pusd or 0)
        discounted = r.model_id.startswith("anthropic.") and r.requested_at.date() >= date(2026, 1, 1)
        expected += int((Decimal(listed) * kept).to_integral_value(ROUND_HALF_EVEN)) if discounted else listed
    assert result.new_pusd == expected
    sums_are_the_lines(result)


def test_a_new_row_changes_only_the_records_from_its_date() -> None:
    # Given Nova Lite records before and after 2026-12-10, and a new row from that day: input 0.06 -> 0.09
    tokens = TokenCounts(1_000_000, 10_000)
    before = charge(1, PROFILES[0], datetime(2026, 12, 9, 23, 59, tzinfo=UTC), tokens)
    after = charge(2, PROFILES[0], datetime(2026, 12, 10, 0, 0, tzinfo=UTC), tokens)
    other = charge(3, PROFILES[4], datetime(2026, 12, 11, tzinfo=UTC), tokens)
    raw = copy.deepcopy(RAW)
    raw["models"][LITE]["prices"].append(
        {"scope": "in-region", "effective_from": "2026-12-10", "input": "0.09", "output": "0.24", "cache_read": "0.015",
         "cache_write": "0.06"}
    )  # fmt: skip
    result = prices.what_if([before, after, other], PriceBook(catalog_of(raw), REGION))
    # Then the difference is 1M input tokens x 0.03 USD per 1M, for the one record on or after the date
    lines = {line.profile: line for line in result.lines}
    assert lines["acme-search"].difference_pusd == 30_000 * 10**6  # 0.03 USD
    assert lines["initech-llama"].difference_pusd == 0
    assert result.difference_pusd == 30_000 * 10**6
    assert result.lines[0].profile == "acme-search"  # largest difference first


def test_records_the_new_book_cannot_price_are_named_and_left_out_of_both_columns() -> None:
    tokens = TokenCounts(100, 10)
    found = [charge(i, PROFILES[i % 2], datetime(2026, 12, 1, tzinfo=UTC), tokens) for i in range(4)]
    raw = copy.deepcopy(RAW)
    del raw["models"][HAIKU]
    result = prices.what_if(found, PriceBook(catalog_of(raw), REGION))
    assert [(u.request_id, u.model_id) for u in result.unpriced] == [("req-00001", HAIKU), ("req-00003", HAIKU)]
    assert [(line.profile, line.requests) for line in result.lines] == [("acme-search", 2)]
    assert result.charged_pusd == sum(r.cost_pusd for r in found if r.model_id == LITE)
    raw = copy.deepcopy(RAW)
    raw["models"][HAIKU]["prices"] = [r for r in raw["models"][HAIKU]["prices"] if r["scope"] != "global"]
    result = prices.what_if(found, PriceBook(catalog_of(raw), REGION))
    assert "no 'global' price for" in result.unpriced[0].reason


def test_a_lower_long_context_threshold_re_prices_at_the_long_rates_and_says_so() -> None:
    tokens = TokenCounts(150_000, 1_000)
    record = charge(1, PROFILES[3], datetime(2026, 12, 1, tzinfo=UTC), tokens)
    assert record.context == "standard"
    raw = copy.deepcopy(RAW)
    raw["models"][SONNET]["long_context_above"] = 100_000
    result = prices.what_if([record], PriceBook(catalog_of(raw), REGION))
    assert result.context_changed == 1
    long_rate = PriceBook(CATALOG, REGION).price(SONNET, "global", record.requested_at, context="long")
    assert result.new_pusd == long_rate.cost(tokens)


def test_signed_amounts() -> None:
    assert prices.signed_usd(0) == "0"
    assert prices.signed_usd(412_500_000) == "+0.0004125"
    assert prices.signed_usd(-1_500_000_000_000) == "-1.5"


# --------------------------------------------------------------------------- reading a period


class FakeUsage:
    """The usage table's by-tenant index and BatchGetItem, in memory."""

    def __init__(self, items: Iterable[dict[str, Any]]):
        self.items_by_id = {str(item["request_id"]): item for item in items}
        self.asked: list[tuple[str, datetime, datetime]] = []

    def request_ids_between(self, tenant_id: str, start: datetime, end: datetime) -> list[str]:
        self.asked.append((tenant_id, start, end))
        stamp = (start.strftime("%Y-%m-%dT%H:%M:%S.000Z"), end.strftime("%Y-%m-%dT%H:%M:%S.999Z"))
        return [
            rid for rid, item in self.items_by_id.items()
            if item["tenant_id"] == tenant_id and stamp[0] <= item["requested_at"] <= stamp[1]
        ]  # fmt: skip

    def items(self, request_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {rid: self.items_by_id[rid] for rid in request_ids if rid in self.items_by_id}


def test_a_period_is_read_whole_days_tenant_by_tenant_and_a_bad_item_is_named() -> None:
    tokens = TokenCounts(10, 1)
    inside = [
        charge(1, PROFILES[0], datetime(2026, 11, 1, 0, 0, tzinfo=UTC), tokens),
        charge(2, PROFILES[4], datetime(2026, 11, 30, 23, 59, 59, 999_000, tzinfo=UTC), tokens),
    ]
    outside = [charge(3, PROFILES[0], datetime(2026, 12, 1, 0, 0, tzinfo=UTC), tokens)]
    broken = {**inside[0].to_item(), "request_id": "req-broken", "input_tokens": -1}
    usage = FakeUsage([r.to_item() for r in inside + outside] + [broken])
    found = prices.read_period(usage, ["initech", "acme", "acme"], date(2026, 11, 1), date(2026, 11, 30))
    assert [r.request_id for r in found.records] == ["req-00001", "req-00002"]
    assert [rid for rid, _ in found.unreadable] == ["req-broken"]
    assert sorted(t for t, _, _ in usage.asked) == ["acme", "initech"]  # each tenant once


def test_months_and_retention() -> None:
    assert prices.months_between(date(2026, 11, 20), date(2027, 1, 3)) == ["2026-11", "2026-12", "2027-01"]
    assert prices.retention_cutoff(date(2026, 12, 3), 90) == date(2026, 9, 4)
    assert prices.retention_warning(date(2026, 9, 4), date(2026, 12, 3), 90, "s") is None
    warning = prices.retention_warning(date(2026, 9, 3), date(2026, 12, 3), 90, "the stack's parameter")
    assert warning is not None
    assert "before 2026-09-04" in warning
    assert "90 days" in warning
    record = charge(1, PROFILES[0], datetime(2026, 11, 1, 12, tzinfo=UTC), TokenCounts(1, 1))
    assert prices.retention_days_of([record]) == 90
    assert prices.retention_days_of([]) is None


def test_gaps_between_the_records_and_the_rollups() -> None:
    tokens = TokenCounts(10, 1)
    found = [charge(i, PROFILES[0], datetime(2026, 11, 2, tzinfo=UTC) + timedelta(minutes=i), tokens) for i in range(3)]
    cost = sum(r.cost_pusd for r in found)
    assert prices.gaps(found, {("acme", "acme-search"): (3, cost)}) == []
    (gap,) = prices.gaps(found, {("acme", "acme-search"): (5, cost + 7), ("globex", "globex-pro"): (0, 0)})
    assert (gap.record_requests, gap.record_pusd, gap.rollup_requests, gap.rollup_pusd) == (3, cost, 5, cost + 7)
    (missing,) = prices.gaps([], {("globex", "globex-pro"): (2, 9)})
    assert (missing.tenant, missing.record_requests, missing.rollup_requests) == ("globex", 0, 2)


def test_a_period_of_whole_days_ends_at_the_last_millisecond() -> None:
    first, last = prices.period_bounds(date(2026, 11, 1), date(2026, 11, 30))
    assert first == datetime(2026, 11, 1, tzinfo=UTC)
    assert last == datetime(2026, 11, 30, 23, 59, 59, 999_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("pico", "usd"), [(1, Decimal("0.000001")), (3_000_000, Decimal(3)), (8_750, Decimal("0.00875"))]
)
def test_per_token_rates_read_as_usd_per_million(pico: int, usd: Decimal) -> None:
    assert prices.usd_per_million(pico) == usd
