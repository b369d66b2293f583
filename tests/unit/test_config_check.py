"""`tollgate config check` as a user runs it: the stack's region, the warnings, the allowances table."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tollgate_cli.main import main

from tests.conftest import REPO_ROOT


def said(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    return " ".join((captured.out + " " + captured.err).split())  # rich wraps at the terminal's width


def project(tmp: Path, *, config: dict[str, Any] | None = None, samconfig_region: str | None = None) -> Path:
    shutil.copy(REPO_ROOT / "models.json", tmp / "models.json")
    if config is None:
        shutil.copy(REPO_ROOT / "config.json", tmp / "config.json")
    else:
        (tmp / "config.json").write_text(json.dumps(config))
    if samconfig_region is not None:
        (tmp / "samconfig.toml").write_text(
            f'version = 0.1\n[default.deploy.parameters]\nregion = "{samconfig_region}"\n'
        )
    return tmp


def one_profile(model: str, scope: str = "in-region", **profile: Any) -> dict[str, Any]:
    return {
        "admin_email": "a@example.com",
        "defaults": {"cost_threshold": "5", "tokens_per_min_threshold": 1000, "requests_per_min_threshold": 10},
        "tenants": {"t": {"display_name": "T"}},
        "profiles": {"p": {"tenant": "t", "model": model, "scope": scope, **profile}},
    }


def test_the_shipped_files_pass_in_us_east_1_with_the_allowances_and_the_unchecked_prices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--dir", str(REPO_ROOT), "config", "check", "--region", "us-east-1"]) == 0
    text = said(capsys)
    assert "7 profiles, 33 models; every profile is priced in us-east-1 (region from --region)" in text
    assert re.search(r"globex-reports globex mistral\.mistral-large-3-675b-instruct in-region default, priority, flex "
                     r"\(no caching\) standard \$20\.00", text)  # fmt: skip
    assert re.search(r"globex-assistant globex anthropic\.claude-sonnet-4-5-20250929-v1:0 global default 5m, 1h", text)
    assert (
        "warning: 10 of the 10 price rows the profiles' calls are charged at in us-east-1 have no `checked` date"
        in text
    )
    assert "https://aws.amazon.com/bedrock/pricing/" in text
    assert "warning: 5 of those rows hold figures derived from a rule" in text
    assert "mistral.mistral-large-3-675b-instruct in-region priority (us, from 2026-07-17) [globex-reports]" in text


def test_a_region_the_files_do_not_price_fails_and_says_what_to_add(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dir", str(REPO_ROOT), "config", "check", "--region", "zz-nowhere-1"]) == 2
    text = said(capsys)
    assert text.startswith(
        "configuration error: models.json does not price every profile in zz-nowhere-1 (region from --region), where "
        "the stack runs; a deploy there would be refused"
    )
    assert (
        "config.json: profiles.globex-reports: models.json has no in-region priority/standard/standard price for "
        "mistral.mistral-large-3-675b-instruct in zz-nowhere-1 (priced in: ap-south-1; us): add a row to "
        "models.mistral.mistral-large-3-675b-instruct.prices whose regions include zz-nowhere-1"
    ) in text


def test_the_region_is_the_one_sam_deploy_uses_samconfig_before_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given samconfig.toml says eu-west-3 (which the shipped prices do not cover) and the shell us-east-1
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    root = project(tmp_path, samconfig_region="eu-west-3")
    assert main(["--dir", str(root), "config", "check"]) == 2
    assert "does not price every profile in eu-west-3 (region from samconfig.toml)" in said(capsys)
    # and without samconfig.toml's region, AWS_REGION is the one
    (root / "samconfig.toml").unlink()
    assert main(["--dir", str(root), "config", "check"]) == 0
    assert "every profile is priced in us-east-1 (region from AWS_REGION)" in said(capsys)


def test_with_no_region_anywhere_it_says_it_checked_none_and_how_to_give_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "aws-config").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    root = project(tmp_path)
    assert main(["--dir", str(root), "config", "check"]) == 0
    text = said(capsys)
    assert "33 models; checked no region" in text
    assert "warning: checked no region, so not whether models.json prices every profile where the stack runs" in text
    assert "`tollgate config check --region REGION` (`make deploy REGION=...`)" in text
    assert "price rows the profiles' calls are charged at in any region (no region was checked)" in text


def test_a_profile_on_a_model_past_its_end_of_life_is_a_warning_naming_its_replacement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, config=one_profile("anthropic.claude-3-5-haiku-20241022-v1:0"))
    assert main(["--dir", str(root), "config", "check", "--region", "us-east-1"]) == 0
    assert (
        "warning: profiles.p uses anthropic.claude-3-5-haiku-20241022-v1:0 (Claude 3.5 Haiku), past its end of life "
        "on 2026-06-19: Bedrock refuses every call to it, so every call of this profile fails. Move the profile to "
        "anthropic.claude-haiku-4-5-20251001-v1:0 (Claude Haiku 4.5), its replacement in models.json, in config.json."
    ) in said(capsys)


def test_a_model_close_to_its_end_of_life_is_a_warning_with_the_days_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Claude Opus 4.1 whose end of life is (in this copy of models.json) 30 days away
    root = project(tmp_path, config=one_profile("anthropic.claude-opus-4-1-20250805-v1:0", "cross-region"))
    models = json.loads((root / "models.json").read_text())
    soon = datetime.now(UTC).date() + timedelta(days=30)
    models["models"]["anthropic.claude-opus-4-1-20250805-v1:0"]["lifecycle"]["end_of_life"] = soon.isoformat()
    (root / "models.json").write_text(json.dumps(models))
    assert main(["--dir", str(root), "config", "check", "--region", "us-east-2"]) == 0
    assert (
        f"reaches its end of life on {soon}, in 30 days; from then Bedrock refuses every call to it. Move the profile "
        "to anthropic.claude-opus-4-8 (Claude Opus 4.8)"
    ) in said(capsys)


def test_make_build_and_deploy_check_the_region_given_before_sam_builds() -> None:
    for target in ("build", "deploy"):
        planned = subprocess.run(
            ["make", "--no-print-directory", "-n", target, "REGION=zz-nowhere-1"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        ).stdout.splitlines()  # fmt: skip
        check = next(i for i, line in enumerate(planned) if "tollgate config check --region zz-nowhere-1" in line)
        assert check < next(i for i, line in enumerate(planned) if "sam build" in line)


def test_config_check_prints_each_tenants_effective_budget_mode_and_rate_limits(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # one table row a line
    assert main(["--dir", str(REPO_ROOT), "config", "check", "--region", "us-east-1"]) == 0
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in capsys.readouterr().out.splitlines()]
    assert any("effective limits" in line for line in lines), lines
    initech = next((line for line in lines if line.split()[:1] == ["initech"]), f"no initech row in {lines}")
    # the free tier's budget (20 a month, 2 a day, enforced), rate limits and action, as resolved
    assert initech.split() == ["initech", "free", "UTC", "20", "2", "enforce", "50,", "80,", "100", "60", "200000",
                               "suspend"]  # fmt: skip
