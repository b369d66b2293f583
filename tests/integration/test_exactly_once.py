"""Exactly once: replays, splits and redeliveries never change a total; records = rollups = metrics."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from tollgate.money import usd
from tollgate.rollup import Granularity, Totals, total
from tollgate.telemetry import MetricName
from tollgate_local.apigw import authorized_event

from tests.integration.conftest import Stack, emf_datapoints, sum_of, sums_by_dimension_set

PROMPTS = [
    "Summarise this contract clause about liability caps.",
    "Write a haiku about invoices.",
    "Translate 'good morning' into French, German and Japanese, with a note on formality for each.",
    "List five risks of launching on a Friday." * 3,
]


def converse_event(
    profile: str, tenant: str, rng: random.Random, index: int, *, caching: bool = False
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": [{"text": rng.choice(PROMPTS) + f" #{index}"}]}],
        "inferenceConfig": {"maxTokens": rng.choice([32, 128, 512])},
    }
    if rng.random() < 0.3 and caching:  # some requests to models that cache use prompt caching
        body["system"] = [
            # ~4,600 tokens: over every model's minimum before a cache checkpoint (Claude Haiku 4.5: 4,096)
            {"text": f"You are a careful assistant for {tenant}. " + "Check every figure twice. " * 700},
            {"cachePoint": {"type": "default"}},
        ]
    return authorized_event(profile, tenant, body, request_id=f"req-{index:05d}")


def caches(stack: Stack, model_id: str) -> bool:
    """Whether models.json prices prompt caching for the model (Bedrock refuses cache points otherwise)."""
    return stack.bundle.catalog.models[model_id].prompt_caching


def send_requests(stack: Stack, count: int, seed: int) -> None:
    rng = random.Random(seed)
    gateway = stack.handler("gateway")
    profiles = stack.bundle.profiles()
    for index in range(count):
        profile = rng.choice(profiles)
        response = gateway(
            converse_event(profile.name, profile.tenant_id, rng, index, caching=caches(stack, profile.model_id))
        )
        assert response["statusCode"] == 200, response["body"]


def ledger(stack: Stack) -> Totals:
    return total(Totals.of(r) for r in stack.usage.scan())


def rollups(stack: Stack, granularity: Granularity) -> Totals:
    return total(row.totals for row in stack.trends.all_rows(granularity))


def deliver(stack: Stack, aggregator: Any, records: list[dict[str, Any]], batch: int) -> None:
    for start in range(0, len(records), batch):
        result = aggregator({"Records": records[start : start + batch]})
        assert result == {"batchItemFailures": []}


def test_replayed_and_split_batches_leave_every_total_unchanged(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 120 metered requests and their stream records
    send_requests(stack, 120, seed=7)
    records = stack.stream().poll()
    assert len(records) == 120
    aggregator = stack.handler("aggregator")
    ids = [f"req-{index:05d}" for index in range(120)]
    assert stack.trends.aggregated(ids) == set()
    # When every batch is delivered, then delivered again, then again split in halves and shuffled
    deliver(stack, aggregator, records[:30], batch=25)
    assert stack.trends.aggregated([*ids, "req-never"]) == set(ids[:30])  # what `tollgate load` waits on
    deliver(stack, aggregator, records, batch=25)
    assert stack.trends.aggregated(ids) == set(ids)
    first = {g: rollups(stack, g) for g in Granularity}
    deliver(stack, aggregator, records, batch=25)
    halves = [records[i : i + 12] for i in range(0, len(records), 12)]
    random.Random(3).shuffle(halves)
    for half in halves:
        deliver(stack, aggregator, half, batch=len(half))
    # Then nothing was counted twice: rollups and metrics equal the usage records
    expected = ledger(stack)
    assert expected.requests == 120
    for granularity in Granularity:
        assert rollups(stack, granularity) == first[granularity] == expected
    points = emf_datapoints(capsys.readouterr().out)
    # every dimension set (per profile, per tenant, per tenant and tier) counts each request once
    assert set(sums_by_dimension_set(points, "Requests").values()) == {expected.requests}
    assert set(sums_by_dimension_set(points, "CostUSD").values()) == {usd(expected.cost_pusd)}


def test_hundreds_of_random_requests_reconcile_exactly(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    # Given 400 requests from all tenants, delivered in random batch sizes with random redeliveries
    send_requests(stack, 400, seed=11)
    records = stack.stream().poll()
    aggregator = stack.handler("aggregator")
    rng = random.Random(5)
    position = 0
    while position < len(records):
        size = rng.randint(1, 100)
        batch = records[position : position + size]
        deliver(stack, aggregator, batch, batch=len(batch))
        if rng.random() < 0.25:  # Lambda re-delivers a batch (e.g. after a timeout)
            deliver(stack, aggregator, batch, batch=len(batch))
        position += size
    # Then usage records = trend rows (every granularity) = emitted metrics, per tenant, exactly
    usage = list(stack.usage.scan())
    points = emf_datapoints(capsys.readouterr().out)
    assert len(usage) == 400
    for tenant in stack.bundle.config.tenants:
        mine = total(Totals.of(r) for r in usage if r.tenant_id == tenant)
        for granularity in Granularity:
            rows = total(row.totals for row in stack.trends.all_rows(granularity) if row.key.tenant_id == tenant)
            assert rows == mine
        dims = (("TenantId", tenant),)
        assert sum_of(points, MetricName.REQUESTS, dims) == mine.requests
        assert sum_of(points, MetricName.TOTAL_TOKENS, dims) == mine.tokens.total
        assert sum_of(points, MetricName.CACHE_READ_TOKENS, dims) == mine.tokens.cache_read
        assert sum_of(points, MetricName.COST_USD, dims) == usd(mine.cost_pusd)
        for profile in stack.bundle.profiles_of(tenant):
            by_profile = total(Totals.of(r) for r in usage if r.profile == profile.name)
            pdims = (("Profile", profile.name), ("TenantId", tenant))
            assert sum_of(points, MetricName.COST_USD, pdims) == usd(by_profile.cost_pusd)
    assert ledger(stack).cost_pusd > 0
    assert Decimal(0) < usd(ledger(stack).cost_pusd)
    # And the cache paths were exercised (the cached system prompt clears every model's minimum)
    assert ledger(stack).tokens.cache_write > 0
    assert ledger(stack).tokens.cache_read > 0
