"""`tollgate prices what-if` against a stack in moto: records written by the real gateway, rolled up by the
real aggregator, re-priced with another models.json, exact to the pico-dollar and reconciled.

The stack is found as a deployed one (CloudFormation in moto, its Outputs naming the fixture's tables).
"""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from tollgate.money import format_usd
from tollgate.usage import UsageRecord
from tollgate_cli import prices
from tollgate_cli.main import main
from tollgate_local.template import REPO_ROOT

from tests.integration.conftest import REGION, TABLES, Stack
from tests.integration.test_exactly_once import caches, converse_event, deliver

CFN_STACK = "tollgate-prices-test"


@pytest.fixture
def deployed(stack: Stack) -> Stack:
    """The fixture's stack as CloudFormation knows it: Outputs name its tables, RecordRetentionDays 90."""
    template = {
        "Parameters": {"RecordRetentionDays": {"Type": "Number", "Default": "90"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "UsageTableName": {"Value": TABLES["UsageTable"]},
            "TrendTableName": {"Value": TABLES["TrendTable"]},
        },
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=CFN_STACK,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "RecordRetentionDays", "ParameterValue": "90"}],
    )
    return stack


def metered(stack: Stack, count: int, seed: int, *, first: int = 0, roll_up: bool = True) -> list[UsageRecord]:
    """``count`` requests through the gateway (request ids from ``first`` on), then through the aggregator
    unless not ``roll_up``; every record now in the usage table."""
    rng = random.Random(seed)
    gateway = stack.handler("gateway")
    profiles = stack.bundle.profiles()
    for index in range(first, first + count):
        profile = rng.choice(profiles)
        caching = caches(stack, profile.model_id)
        response = gateway(converse_event(profile.name, profile.tenant_id, rng, index, caching=caching))
        assert response["statusCode"] == 200, response["body"]
    if roll_up:
        deliver(stack, stack.handler("aggregator"), stack.stream().poll(), batch=25)
    return list(stack.usage.scan())


def what_if(
    capsys: pytest.CaptureFixture[str], book: Path | str, *extra: str
) -> tuple[int, dict[str, Any] | None, str]:
    capsys.readouterr()
    code = main(["--dir", str(REPO_ROOT), "prices", "what-if", str(book), "--stack", CFN_STACK, "--region", REGION,
                 "--format", "json", *extra])  # fmt: skip
    captured = capsys.readouterr()
    document = json.loads(captured.out) if captured.out.strip() else None
    return code, document, " ".join(captured.err.split())


def write_book(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "new-models.json"
    path.write_text(json.dumps(raw, indent=2))
    return path


def repo_book() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REPO_ROOT / "models.json").read_text())
    return loaded


def test_the_same_book_changes_nothing_and_the_charged_total_is_the_records(
    deployed: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 40 metered and rolled-up requests of every tenant
    records = metered(deployed, 40, seed=3)
    # When they are re-priced with the book they were charged with
    code, document, said = what_if(capsys, REPO_ROOT / "models.json")
    # Then nothing changes, to the pico-dollar, and the records add up to their rollups
    assert code == 0, said
    assert document is not None
    assert {line["difference_usd"] for line in document["lines"]} == {"0"}
    assert document["total"] == {
        "requests": 40,
        "charged_usd": format_usd(sum(r.cost_pusd for r in records)),
        "new_usd": format_usd(sum(r.cost_pusd for r in records)),
        "difference_usd": "0",
    }
    assert {(line["tenant"], line["profile"]) for line in document["lines"]} == {
        (r.tenant_id, r.profile) for r in records
    }
    assert "the usage table holds" not in said  # records = rollups
    assert "RecordRetentionDays" not in said  # the month is within the TTL


def test_a_price_change_re_prices_every_record_exactly(
    deployed: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    records = metered(deployed, 50, seed=5)
    # Given a book where one model's every rate doubles and the contract discounts are gone
    doubled = Counter(r.model_id for r in records).most_common(1)[0][0]
    raw = copy.deepcopy(repo_book())
    for row in raw["models"][doubled]["prices"]:
        for kind in prices.PRICE_KINDS:
            if kind in row:
                row[kind] = str(Decimal(row[kind]) * 2)
    raw["contract"] = {"discounts": []}
    # When the month is re-priced with it
    code, document, said = what_if(capsys, write_book(tmp_path, raw))
    assert code == 0, said
    assert document is not None
    # Then each profile's new cost is its records' list cost (twice for the doubled model), exactly
    expected: dict[tuple[str, str], tuple[int, int, int]] = {}
    for r in records:
        factor = 2 if r.model_id == doubled else 1
        n, charged, new = expected.get((r.tenant_id, r.profile), (0, 0, 0))
        expected[(r.tenant_id, r.profile)] = (n + 1, charged + r.cost_pusd, new + factor * (r.list_cost_pusd or 0))
    assert {
        (line["tenant"], line["profile"]): (
            line["requests"],
            line["charged_usd"],
            line["new_usd"],
            line["difference_usd"],
        )
        for line in document["lines"]
    } == {
        key: (n, format_usd(charged), format_usd(new), prices.signed_usd(new - charged))
        for key, (n, charged, new) in expected.items()
    }
    charged_total = sum(charged for _, charged, _ in expected.values())
    new_total = sum(new for _, _, new in expected.values())
    assert document["total"]["difference_usd"] == prices.signed_usd(new_total - charged_total)
    assert any(line["difference_usd"].startswith("+") for line in document["lines"])


def test_a_period_reaching_past_the_records_ttl_says_so(deployed: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    metered(deployed, 5, seed=1)
    today = datetime.now(UTC).date()
    start = today - timedelta(days=100)
    code, document, said = what_if(capsys, REPO_ROOT / "models.json", "--period", f"{start}..{today}")
    assert code == 0
    assert document is not None
    assert document["total"]["requests"] == 5
    cutoff = today - timedelta(days=90)
    assert f"the period starts before {cutoff}" in said
    assert f"keeps a record for 90 days (RecordRetentionDays, the stack's parameter, stack {CFN_STACK}" in said


def test_records_not_in_the_rollups_yet_are_re_priced_and_the_gap_is_said(
    deployed: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    metered(deployed, 12, seed=2)
    records = metered(deployed, 6, seed=9, first=12, roll_up=False)  # in the usage table, not yet aggregated
    code, document, said = what_if(capsys, REPO_ROOT / "models.json")
    assert code == 0
    assert document is not None
    assert document["total"]["requests"] == len(records) == 18
    assert "the usage table holds" in said
    assert "may not be rolled up yet" in said


def test_records_the_new_book_has_no_price_for_are_named_and_the_command_fails(
    deployed: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    records = metered(deployed, 20, seed=4)
    # Given a book whose rows for one model only start next year (valid, but no price for these days)
    later = Counter(r.model_id for r in records).most_common(1)[0][0]
    raw = copy.deepcopy(repo_book())
    for row in raw["models"][later]["prices"]:
        row["effective_from"] = f"{datetime.now(UTC).year + 1}-01-01"
    code, document, said = what_if(capsys, write_book(tmp_path, raw))
    assert code == 1
    assert document is not None
    left_out = [r for r in records if r.model_id == later]
    assert {u["request_id"] for u in document["unpriced"]} == {r.request_id for r in left_out}
    assert document["total"]["requests"] == len(records) - len(left_out)
    assert f"{len(left_out)} record(s)" in said
    assert "have no price in" in said
