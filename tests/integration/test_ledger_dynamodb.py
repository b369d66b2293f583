"""Enforced budgets on DynamoDB (moto): concurrent requests, crashes, the sweeper, late settles.

The gateway service runs in-process with its real wiring (DynamoDB ledger on moto, Bedrock
stand-in over HTTP), against a test config whose tenant initech (free tier, "enforce") has a
daily budget that fits exactly 10 worst cases.
"""

from __future__ import annotations

import json
import shutil
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from tollgate.adapters.dynamodb import from_ddb
from tollgate.adapters.ledger import DynamoLedger
from tollgate.config import ConfigBundle
from tollgate.errors import BudgetExceeded, ServiceUnavailable, TollgateError
from tollgate.ledger import plan_of, reservation_for, worst_case
from tollgate.periods import COMMITTED_ATTR, SPENT_ATTR, ledger_key, periods_of
from tollgate.pricing import PriceBook, TokenCounts
from tollgate.services.gateway import Caller
from tollgate.usage import UsageRecord
from tollgate.wiring.gateway import gateway_service
from tollgate_local.template import REPO_ROOT

from tests.integration.conftest import REGION, TABLES, Stack

PROFILE = "initech-coder"
PARAMS: dict[str, Any] = {
    "messages": [{"role": "user", "content": [{"text": "Write a haiku about budgets"}]}],
    "inferenceConfig": {"maxTokens": 200},
}
FITS = 10


@pytest.fixture(autouse=True)
def serialised_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's DynamoDB backend one call at a time, as the local stack's moto server answers
    (tollgate_local.moto_server: moto's backends are not thread-safe). Each call is atomic, as
    in DynamoDB; the gateway's threads still interleave between their calls."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("transact_write_items", "put_item", "update_item", "get_item", "delete_item", "query", "scan"):
        original = getattr(DynamoDBBackend, name)

        def serialised(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, serialised)


def one_worst_case(bundle: ConfigBundle, at: datetime) -> int:
    profile = bundle.profile(PROFILE)
    assert profile is not None
    model = bundle.catalog.models[profile.model_id]
    return worst_case(PARAMS, profile, model, PriceBook(bundle.catalog, REGION), at).amount_pusd


@pytest.fixture
def budget_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack: Stack) -> ConfigBundle:
    """config.json with initech's daily budget = 10 worst cases of PARAMS; the gateway reads it."""
    worst = one_worst_case(stack.bundle, datetime.now(UTC))
    config = json.loads((REPO_ROOT / "config.json").read_text())
    daily = Decimal(worst * FITS).scaleb(-12)
    config["tenants"]["initech"]["budget"] = {"daily_usd": str(daily), "monthly_usd": "1000.00", "mode": "enforce"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    shutil.copy(REPO_ROOT / "models.json", tmp_path / "models.json")
    monkeypatch.setenv("TOLLGATE_CONFIG_DIR", str(tmp_path))
    return ConfigBundle.load_dir(tmp_path, region=REGION)


def control_item(pk: str, sk: str) -> dict[str, Any]:
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=TABLES["ControlTable"], Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    )
    return from_ddb(item.get("Item", {}))


def open_reservations() -> list[dict[str, Any]]:
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=TABLES["ControlTable"])["Items"]
    return [from_ddb(i) for i in items if i["pk"]["S"].startswith("RES#")]


def usage_costs(stack: Stack, tenant: str) -> list[int]:
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=TABLES["UsageTable"])["Items"]
    return [int(from_ddb(i)["cost_pusd"]) for i in items if i["tenant_id"]["S"] == tenant]


def test_50_concurrent_requests_against_a_budget_that_fits_10_never_overspend(
    stack: Stack, budget_config: ConfigBundle
) -> None:
    service = gateway_service()
    profile = budget_config.profile(PROFILE)
    tenant = budget_config.tenant("initech")
    assert profile is not None
    assert tenant is not None
    at = datetime.now(UTC)
    worst = one_worst_case(budget_config, at)
    limit = tenant.budget.daily_pusd
    assert limit == FITS * worst
    served: list[int] = []
    refused: list[TollgateError] = []
    lock = threading.Lock()
    start = threading.Barrier(50)

    def call(index: int) -> None:
        start.wait()
        try:
            answer = service.converse(
                Caller("initech", "k"), profile, PARAMS, request_id=f"burst-{index}", route="converse"
            )
            with lock:
                served.append(answer.record.cost_pusd)
        except TollgateError as exc:
            with lock:
                refused.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    day = ledger_key("initech", None, periods_of(at, tenant.time_zone)["day"])
    item = control_item(day.pk, day.sk)
    spent = int(item[SPENT_ATTR])
    overspend = max(0, spent - limit)
    print(
        f"\n50 concurrent requests, budget {limit} pusd = {FITS} x worst case {worst} pusd: "
        f"served {len(served)}, refused {len(refused)} ({sorted({type(e).__name__ for e in refused})}), "
        f"spent {spent} pusd, worst overspend {overspend} pusd"
    )
    assert len(served) + len(refused) == 50
    assert len(served) >= FITS  # each fits its worst case: at least 10 are served
    assert refused, "a budget that fits 10 worst cases cannot serve 50 requests"
    # over budget; or, on a loaded machine, out of time before Bedrock (503): neither is charged
    refusals = [e.message for e in refused]
    assert all(isinstance(e, BudgetExceeded | ServiceUnavailable) for e in refused), refusals
    over = [e for e in refused if isinstance(e, BudgetExceeded)]
    assert over
    assert "initech's daily budget" in over[0].message
    assert "resets at" in over[0].message
    assert overspend <= worst
    # spent reconciles exactly with the usage records; nothing is left reserved
    assert sorted(usage_costs(stack, "initech")) == sorted(served)
    assert spent == sum(served)
    assert int(item[COMMITTED_ATTR]) == spent
    assert open_reservations() == []


def test_a_crashed_requests_reservation_is_released_by_the_sweeper_and_a_late_settle_still_books(
    stack: Stack, budget_config: ConfigBundle
) -> None:
    profile = budget_config.profile(PROFILE)
    tenant = budget_config.tenant("initech")
    assert profile is not None
    assert tenant is not None
    at = datetime.now(UTC) - timedelta(minutes=5)
    plan = plan_of(tenant, profile, at)
    model = budget_config.catalog.models[profile.model_id]
    worst = worst_case(PARAMS, profile, model, PriceBook(budget_config.catalog, REGION), at)
    ledger = DynamoLedger(boto3.client("dynamodb", region_name=REGION), TABLES["ControlTable"], TABLES["UsageTable"])
    crashed = reservation_for(plan, "crashed-1", "initech", worst, at, 29)
    ledger.reserve(plan, crashed, at)  # ... and the function died before Bedrock answered
    day = ledger_key("initech", None, periods_of(at, tenant.time_zone)["day"])
    assert int(control_item(day.pk, day.sk)[COMMITTED_ATTR]) == worst.amount_pusd

    swept = stack.handler("sweeper")({"source": "aws.events", "detail-type": "Scheduled Event"})

    assert swept == {"released": 1, "settled_meanwhile": 0}
    assert int(control_item(day.pk, day.sk)[COMMITTED_ATTR]) == 0
    assert open_reservations() == []
    # A second sweep finds nothing; the request that lost the race settles late, exactly once.
    assert stack.handler("sweeper")({})["released"] == 0
    prices = PriceBook(budget_config.catalog, REGION)
    record = UsageRecord.charge(
        request_id="crashed-1",
        tenant_id="initech",
        profile=PROFILE,
        route="converse",
        key_id="k",
        requested_at=at,
        tokens=TokenCounts(input=12, output=150),
        price=prices.price(profile.model_id, profile.scope, at),
        latency_ms=5,
        stop_reason="end_turn",
        retention_days=90,
    )
    assert ledger.settle(record, plan.holds, crashed, datetime.now(UTC)) == "late"
    assert ledger.settle(record, plan.holds, crashed, datetime.now(UTC)) == "duplicate"
    item = control_item(day.pk, day.sk)
    assert int(item[SPENT_ATTR]) == int(item[COMMITTED_ATTR]) == record.cost_pusd > 0
    assert stack.usage.get("crashed-1") is not None


def test_a_deferred_record_is_settled_by_the_metering_recovery_function_exactly_once(
    stack: Stack, budget_config: ConfigBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.test_metering import drain, recovery_mapping

    tenant = budget_config.tenant("initech")
    assert tenant is not None
    monkeypatch.setenv("USAGE_TABLE", "tollgate-test-no-such-table")  # the settle transaction fails
    service = gateway_service()
    profile = budget_config.profile(PROFILE)
    assert profile is not None
    answer = service.converse(Caller("initech", "k"), profile, PARAMS, request_id="deferred-b", route="converse")
    day = ledger_key("initech", None, periods_of(answer.record.requested_at, tenant.time_zone)["day"])
    worst = one_worst_case(budget_config, answer.record.requested_at)
    assert int(control_item(day.pk, day.sk)[COMMITTED_ATTR]) == worst  # still reserved: not yet settled
    assert len(open_reservations()) == 1

    monkeypatch.setenv("USAGE_TABLE", TABLES["UsageTable"])
    drain(recovery_mapping(stack))

    item = control_item(day.pk, day.sk)
    assert int(item[SPENT_ATTR]) == int(item[COMMITTED_ATTR]) == answer.record.cost_pusd
    assert open_reservations() == []
    assert stack.usage.get("deferred-b") is not None
