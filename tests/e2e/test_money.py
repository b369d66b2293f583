"""End to end, exact money for what a tenant opts into: the stock boto3 client against `tollgate local`.

Priority, flex and default calls on a model with tiers, a 1-hour cache write, a call above the
long-context threshold, each charged at its own rates (computed here from models.json's rows, not
by Tollgate's pricing code); a tier the profile does not allow is refused and not charged; the
report splits the cost by tier.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from tollgate_cli.load import bearer_token, bedrock_client
from tollgate_cli.main import main
from tollgate_local.launch import local_stack_process

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
MODELS = json.loads((ROOT / "models.json").read_text())["models"]
CONFIG = json.loads((ROOT / "config.json").read_text())
MILLION = Decimal(1_000_000)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with local_stack_process(tmp_path_factory.mktemp("tollgate-money")) as launched:
        yield {**launched.state, "dir": launched.state_dir}


def rates(profile: str, *, tier: str = "default", context: str = "standard") -> dict[str, Decimal]:
    """The models.json row a call of ``profile`` must be charged at in us-east-1 (the local region)."""
    spec = CONFIG["profiles"][profile]
    scope = spec.get("scope", CONFIG["defaults"].get("scope", "in-region"))
    rows = [
        r
        for r in MODELS[spec["model"]]["prices"]
        if r["scope"] == scope
        and r.get("tier", "default") == tier
        and r.get("context", "standard") == context
        and r.get("latency", "standard") == "standard"
        and (r.get("regions", "*") == "*" or "us" in r["regions"] or "us-east-1" in r["regions"])
    ]
    row = max(rows, key=lambda r: r["effective_from"])
    return {k: Decimal(row[k]) for k in ("input", "output", "cache_read", "cache_write", "cache_write_1h") if k in row}


def expected_cost(usage: dict[str, Any], rate: dict[str, Decimal]) -> Decimal:
    one_hour = sum(d["inputTokens"] for d in usage.get("cacheDetails", []) if d["ttl"] == "1h")
    five_minutes = usage.get("cacheWriteInputTokens", 0) - one_hour
    return (
        usage["inputTokens"] * rate["input"]
        + usage["outputTokens"] * rate["output"]
        + usage.get("cacheReadInputTokens", 0) * rate.get("cache_read", rate["input"])
        + five_minutes * rate.get("cache_write", rate["input"])
        + one_hour * rate.get("cache_write_1h", rate.get("cache_write", rate["input"]))
    ) / MILLION


def converse(local: dict[str, Any], tenant: str, profile: str, **params: Any) -> dict[str, Any]:
    key = local["tenants"][tenant]["api_key"]
    client = bedrock_client(local["api_url"], key, local["region"])
    with bearer_token(key):
        answer: dict[str, Any] = client.converse(modelId=profile, **params)
    return answer


def charged(answer: dict[str, Any]) -> Decimal:
    return Decimal(answer["ResponseMetadata"]["HTTPHeaders"]["x-tollgate-cost-usd"])


MESSAGES = [{"role": "user", "content": [{"text": "Draft the quarterly report summary, with figures."}]}]


@pytest.mark.parametrize("tier", ["default", "priority", "flex"])
def test_each_service_tier_is_charged_at_its_own_rates(local: dict[str, Any], tier: str) -> None:
    answer = converse(local, "globex", "globex-reports", messages=MESSAGES, serviceTier={"type": tier})
    assert answer["serviceTier"] == {"type": tier}
    assert charged(answer) == expected_cost(answer["usage"], rates("globex-reports", tier=tier)) > 0


def test_the_tiers_cost_what_their_rows_say_relative_to_each_other(local: dict[str, Any]) -> None:
    # Same prompt, same answer length (the stand-in is deterministic): priority > default > flex
    costs = {
        tier: charged(converse(local, "globex", "globex-reports", messages=MESSAGES, serviceTier={"type": tier}))
        for tier in ("default", "priority", "flex")
    }
    assert costs["priority"] > costs["default"] > costs["flex"]


def test_a_one_hour_cache_write_is_charged_at_the_one_hour_rate(local: dict[str, Any]) -> None:
    system = [
        {"text": "You are Globex's analyst. Cite every figure. " * 400},  # ~4,800 tokens: over the minimum
        {"cachePoint": {"type": "default", "ttl": "1h"}},
    ]
    answer = converse(local, "globex", "globex-assistant", messages=MESSAGES, system=system)
    usage = answer["usage"]
    assert [d["ttl"] for d in usage["cacheDetails"]] == ["1h"]
    one_hour = usage["cacheDetails"][0]["inputTokens"]
    assert one_hour > 4_000
    rate = rates("globex-assistant")
    assert charged(answer) == expected_cost(usage, rate)
    # and not at the 5-minute rate (what the gateway charged before 1-hour writes were priced)
    assert (
        charged(answer) - expected_cost({**usage, "cacheDetails": []}, rate)
        == one_hour * (rate["cache_write_1h"] - rate["cache_write"]) / MILLION
    )


def test_a_prompt_over_the_long_context_threshold_is_charged_long_context_rates(local: dict[str, Any]) -> None:
    threshold = MODELS[CONFIG["profiles"]["globex-assistant"]["model"]]["long_context_above"]
    long_text = "Quarterly ledger line with figures to reconcile. " * (threshold // 10)  # ~1.2 x threshold tokens
    answer = converse(
        local,
        "globex",
        "globex-assistant",
        messages=[{"role": "user", "content": [{"text": long_text}]}],
        additionalModelRequestFields={"anthropic_beta": ["context-1m-2025-08-07"]},
    )
    usage = answer["usage"]
    assert usage["inputTokens"] > threshold
    assert charged(answer) == expected_cost(usage, rates("globex-assistant", context="long"))
    assert charged(answer) > expected_cost(usage, rates("globex-assistant"))


def test_a_tier_the_profile_does_not_allow_is_refused_and_not_charged(local: dict[str, Any]) -> None:
    usage = boto3.client(
        "dynamodb",
        region_name=local["region"],
        endpoint_url=local["aws_endpoint_url"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    table = local["resources"]["UsageTable"]
    before = usage.scan(TableName=table, Select="COUNT")["Count"]
    with pytest.raises(ClientError) as refused:
        converse(local, "acme", "acme-chat", messages=MESSAGES, serviceTier={"type": "priority"})
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "profile acme-chat does not allow serviceTier 'priority'" in error["Message"]
    assert "nothing was charged" in error["Message"]
    assert usage.scan(TableName=table, Select="COUNT")["Count"] == before


def test_the_report_breaks_a_profiles_cost_down_by_tier(
    local: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for tier in ("priority", "flex"):
        converse(local, "globex", "globex-reports", messages=MESSAGES, serviceTier={"type": tier})
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".tollgate").symlink_to(local["dir"])
    assert main(["--dir", str(ROOT), "load", "--local", "--requests", "1", "--profile", "globex-reports"]) == 0
    capsys.readouterr()
    assert main(["--dir", str(ROOT), "report", "--local", "--period", "today", "--by", "tier", "--format", "json"]) == 0
    lines = json.loads(capsys.readouterr().out)["lines"]
    tiers = {line["tier"] for line in lines if line["profile"] == "globex-reports"}
    assert {"default", "priority", "flex"} <= tiers
