"""Folding usage records into trend rows and metric buckets: totals always reconcile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from tollgate.pricing import TokenCounts
from tollgate.rollup import (
    MAX_TRANSACTION_ITEMS,
    Granularity,
    Totals,
    fold,
    fold_metrics,
    period_of,
    plan_chunks,
    rollup_keys,
    total,
)
from tollgate.usage import UsageRecord

START = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


def record(index: int, tenant: str, profile: str, minutes: int, tokens: TokenCounts, cost: int) -> UsageRecord:
    at = START + timedelta(minutes=minutes)
    return UsageRecord(
        request_id=f"r-{index}",
        tenant_id=tenant,
        profile=profile,
        model_id="amazon.nova-micro-v1:0",
        scope="in-region",
        route="converse",
        key_id="k",
        requested_at=at,
        input_tokens=tokens.input,
        output_tokens=tokens.output,
        cache_read_tokens=tokens.cache_read,
        cache_write_tokens=tokens.cache_write,
        cost_pusd=cost,
        price_version="v",
        latency_ms=1,
        expires_at=0,
    )


records_strategy = st.lists(
    st.tuples(
        st.sampled_from(["acme", "globex", "initech"]),
        st.sampled_from(["p1", "p2", "p3"]),
        st.integers(0, 60 * 30),  # spans an hour, a day and a month boundary
        st.builds(
            TokenCounts, st.integers(0, 10**6), st.integers(0, 10**5), st.integers(0, 10**6), st.integers(0, 10**5)
        ),
        st.integers(0, 10**13),
    ),
    max_size=300,
).map(lambda rows: [record(i, *row) for i, row in enumerate(rows)])


def test_periods_are_utc_and_roll_over_at_month_end() -> None:
    late = datetime(2026, 11, 30, 23, 59, 59, 999000, tzinfo=UTC)
    assert [period_of(g, late) for g in Granularity] == ["2026-11-30T23", "2026-11-30", "2026-11"]
    assert period_of(Granularity.MONTH, late + timedelta(milliseconds=1)) == "2026-12"


@given(records_strategy)
def test_every_granularity_sums_to_the_records(records: list[UsageRecord]) -> None:
    deltas = fold(records)
    expected = total(Totals.of(r) for r in records)
    for granularity in Granularity:
        assert total(t for k, t in deltas.items() if k.granularity is granularity) == expected
    assert total(fold_metrics(records).values()) == expected


@given(records_strategy, st.integers(1, 299))
def test_folding_in_parts_equals_folding_at_once(records: list[UsageRecord], cut: int) -> None:
    whole = fold(records)
    parts = [fold(records[:cut]), fold(records[cut:])]
    merged: dict = {}
    for part in parts:
        for key, value in part.items():
            merged[key] = merged.get(key, Totals()) + value
    assert merged == whole


@settings(max_examples=60)
@given(records_strategy)
def test_chunks_fit_a_transaction_and_keep_order(records: list[UsageRecord]) -> None:
    chunks = plan_chunks(records)
    assert [r for chunk in chunks for r in chunk] == records
    for chunk in chunks:
        rows = {key for r in chunk for key in rollup_keys(r)}
        assert len(chunk) + len(rows) <= MAX_TRANSACTION_ITEMS


def test_metric_buckets_are_the_request_minute() -> None:
    a = record(1, "acme", "p1", 0, TokenCounts(1, 1), 5)
    b = record(2, "acme", "p1", 0, TokenCounts(2, 2), 7)
    c = record(3, "acme", "p1", 1, TokenCounts(3, 3), 11)
    buckets = fold_metrics([a, b, c])
    assert sorted((k.minute.minute, v.requests, v.cost_pusd) for k, v in buckets.items()) == [(0, 2, 12), (1, 1, 11)]
