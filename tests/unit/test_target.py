"""Which deployed stack `tollgate` acts on: flags, samconfig.toml, AWS_REGION, then boto3's own resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
from tollgate_cli.target import Chosen, SamConfig, TargetError, choose_region, choose_stack

GUIDED = """version = 0.1
[default.global.parameters]
stack_name = "tollgate-prod"
region = "eu-central-1"

[default.deploy.parameters]
capabilities = "CAPABILITY_IAM"
region = "eu-west-3"
"""


@pytest.fixture
def aws_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An AWS config file with a region for the default profile and for 'prod'; no region in the environment."""
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = ap-southeast-2\n\n[profile prod]\nregion = sa-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return config


def samconfig(tmp_path: Path, text: str) -> SamConfig:
    path = tmp_path / "samconfig.toml"
    path.write_text(text)
    return SamConfig.read(path)


def test_samconfig_deploy_table_wins_over_global_as_for_sam_deploy(tmp_path: Path) -> None:
    assert samconfig(tmp_path, GUIDED) == SamConfig(stack_name="tollgate-prod", region="eu-west-3")


def test_no_samconfig_is_no_setting(tmp_path: Path) -> None:
    assert SamConfig.read(tmp_path / "samconfig.toml") == SamConfig()


def test_a_broken_samconfig_is_named(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=r"samconfig\.toml: .*line 2.*sam deploy --guided"):
        samconfig(tmp_path, 'version = 0.1\n[default.deploy.parameters\nregion = "x"\n')


def test_the_stack_name_comes_from_the_flag_then_samconfig_then_the_default(tmp_path: Path) -> None:
    guided = samconfig(tmp_path, GUIDED)
    assert choose_stack("other", guided) == Chosen("other", "--stack")
    assert choose_stack(None, guided) == Chosen("tollgate-prod", "samconfig.toml")
    assert choose_stack(None, SamConfig()) == Chosen("tollgate", "the default")


def test_the_region_flag_wins_over_everything(
    tmp_path: Path, aws_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    assert choose_region("ca-central-1", samconfig(tmp_path, GUIDED)) == Chosen("ca-central-1", "--region")


def test_samconfig_wins_over_the_environment_as_for_sam_deploy(
    tmp_path: Path, aws_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")
    assert choose_region(None, samconfig(tmp_path, GUIDED)) == Chosen("eu-west-3", "samconfig.toml")


def test_without_samconfig_aws_region_then_aws_default_region(
    aws_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")
    assert choose_region(None, SamConfig()) == Chosen("us-east-2", "AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    assert choose_region(None, SamConfig()) == Chosen("us-west-2", "AWS_REGION")


def test_then_the_region_of_the_aws_profile(aws_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_region(None, SamConfig()) == Chosen(
        "ap-southeast-2", f"the region of AWS profile 'default' in {aws_config}"
    )
    monkeypatch.setenv("AWS_PROFILE", "prod")
    assert choose_region(None, SamConfig()) == Chosen("sa-east-1", f"the region of AWS profile 'prod' in {aws_config}")


def test_an_unknown_profile_is_named(aws_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nope")
    with pytest.raises(TargetError, match=r"nope.*set AWS_PROFILE to a profile of your AWS config"):
        choose_region(None, SamConfig())


def test_no_region_anywhere_says_every_place_to_set_one(tmp_path: Path, aws_config: Path) -> None:
    aws_config.write_text("[default]\noutput = json\n")
    with pytest.raises(TargetError, match=r"no AWS region: pass --region, or set region in samconfig\.toml"):
        choose_region(None, SamConfig())
