"""GET /usage and GET /budget through the gateway handler against moto: the caller's own data only,
whatever the query or headers say; bad parameters are 400s that say what to send."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tollgate.periods import ledger_key, period_of
from tollgate.rollup import Granularity
from tollgate.rollup import period_of as utc_period
from tollgate.usage import UsageRecord
from tollgate_local.apigw import proxy_event

from tests.integration.conftest import TABLES, Stack

USD = 10**12
NOW = datetime.now(UTC)


def get(
    stack: Stack, path: str, tenant: str, query: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    event = proxy_event(
        method="GET", path=path, resource=path, path_parameters=None, headers=headers or {}, body=None,
        authorizer={"principalId": tenant, "tenant_id": tenant, "key_id": f"{tenant}key01"}, query=query,
    )  # fmt: skip
    response = stack.handler("gateway")(event)
    return response["statusCode"], json.loads(response["body"])


def record(tenant: str, profile: str, pusd: int, index: int) -> UsageRecord:
    return UsageRecord(
        request_id=f"r-{tenant}-{index}", tenant_id=tenant, profile=profile, model_id="amazon.nova-micro-v1:0",
        scope="in-region", route="converse", key_id="k", requested_at=NOW - timedelta(seconds=5),
        input_tokens=100, output_tokens=20, cache_read_tokens=0, cache_write_tokens=0, cost_pusd=pusd,
        price_version="v", latency_ms=1, expires_at=0,
    )  # fmt: skip


@pytest.fixture
def seeded(stack: Stack) -> Stack:
    stack.trends.apply([record("acme", "acme-chat", 3 * USD, 1), record("globex", "globex-assistant", 7 * USD, 2)])
    key = ledger_key("acme", None, period_of("month", NOW, "America/New_York"))
    stack.dynamodb.put_item(
        TableName=TABLES["ControlTable"],
        Item={
            "pk": {"S": key.pk}, "sk": {"S": key.sk}, "spent_pusd": {"N": str(120 * USD)},
            "committed_pusd": {"N": str(125 * USD)}, "alerted": {"SS": ["forecast"]}, "tenant_id": {"S": "acme"},
        },
    )  # fmt: skip
    return stack


def test_usage_returns_the_callers_own_rows(seeded: Stack) -> None:
    today = utc_period(Granularity.DAY, NOW)
    status, body = get(seeded, "/usage", "acme", {"from": today, "to": today, "granularity": "day"})
    assert status == 200
    assert body["tenant_id"] == "acme"
    assert {row["profile"] for row in body["rows"]} == {"acme-chat"}
    assert body["total"] == {"requests": 1, "input_tokens": 100, "output_tokens": 20, "cost_usd": "3"}


@pytest.mark.parametrize("name", ["tenant", "tenant_id", "profile", "TENANT"])
def test_no_parameter_reaches_another_tenant(seeded: Stack, name: str) -> None:
    status, body = get(seeded, "/usage", "acme", {name: "globex"})
    assert status == 400
    assert f"unknown parameter '{name}'" in body["message"]
    assert "globex" not in json.dumps(body).replace(f"'{name}'", "")


def test_headers_cannot_choose_the_tenant(seeded: Stack) -> None:
    for headers in ({"x-tenant-id": "globex"}, {"X-Tollgate-Tenant": "globex"}, {"x-tollgate-profile": "globex-x"}):
        status, body = get(seeded, "/usage", "acme", None, headers)
        assert status == 200
        assert body["tenant_id"] == "acme"
        assert all(row["profile"].startswith("acme") for row in body["rows"])
        status, budget = get(seeded, "/budget", "acme", None, headers)
        assert (status, budget["tenant_id"]) == (200, "acme")


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"granularity": "week"}, "granularity='week': give hour, day or month"),
        ({"from": "yesterday"}, "from='yesterday': give a UTC day like 2026-12-03"),
        ({"from": "2026-12-05", "to": "2026-12-01"}, "is after to=2026-12-01"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "spans more than 366 days"),
        ({"granularity": "hour", "from": "2026-12-03"}, "give a UTC hour like 2026-12-03T14"),
    ],
)
def test_bad_usage_parameters_are_400s_that_say_what_to_send(seeded: Stack, query: dict[str, str], says: str) -> None:
    status, body = get(seeded, "/usage", "acme", query)
    assert status == 400
    assert says in body["message"]


def test_budget_shows_limits_spent_headroom_resets_and_status(seeded: Stack) -> None:
    status, body = get(seeded, "/budget", "acme")
    assert status == 200
    (month,) = [b for b in body["budgets"] if b["period"] == "month" and b["profile"] is None]
    assert month["limit_usd"] == "500"
    assert month["spent_usd"] == "120"
    assert month["headroom_usd"] == "375"  # limit - committed (settled + open reservations)
    assert month["alerted"] == ["forecast"]
    assert month["resets_at"].endswith(("-05:00", "-04:00"))  # New York's midnight
    assert month["resets_at_utc"].endswith("Z")
    assert body["status"] == {"action": "none"}
    seeded.dynamodb.put_item(
        TableName=TABLES["ControlTable"],
        Item={"pk": {"S": "STATUS#acme"}, "sk": {"S": "STATUS"}, "action": {"S": "throttled"}},
    )
    assert get(seeded, "/budget", "acme")[1]["status"] == {"action": "throttled"}
    # globex sees its own, never acme's
    assert get(seeded, "/budget", "globex")[1]["tenant_id"] == "globex"
    assert get(seeded, "/budget", "acme", {"tenant": "globex"})[0] == 400
