"""Shared test setup: dummy AWS credentials, local endpoints only, nothing reaches real AWS."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tollgate.adapters import forget_shared_session
from tollgate.config import ConfigBundle

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def aws_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_BEARER_TOKEN", "AWS_SESSION_TOKEN")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME", raising=False)
    forget_shared_session()  # credentials and profile as this test sets them


@pytest.fixture(scope="session")
def bundle() -> ConfigBundle:
    """The repository's own config.json and models.json."""
    return ConfigBundle.load_dir(REPO_ROOT, region="us-east-1")


SamLocalEnvironment = Callable[..., dict[str, str]]


@pytest.fixture
def sam_local_environment() -> SamLocalEnvironment:
    return _sam_local_environment


def _sam_local_environment(function: str, env_vars: dict[str, Any], *, region: str) -> dict[str, str]:
    """The environment `sam local invoke <function> --env-vars <file> --region <region>` gives the function's
    container: SAM CLI's own code for it (LocalLambdaRunner.get_invoke_config), run without Docker."""
    from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    with warnings.catch_warnings():  # SAM CLI's own use of deprecated jsonschema/samtranslator APIs
        warnings.simplefilter("ignore", DeprecationWarning)
        stacks, _ = SamLocalStackProvider.get_stacks(
            str(REPO_ROOT / "template.yaml"), global_parameter_overrides={"AWS::Region": region}
        )
        provider = SamFunctionProvider(stacks)
        runner = LocalLambdaRunner(
            local_runtime=None,  # not needed to compute the environment
            function_provider=provider,
            cwd=str(REPO_ROOT),
            real_path=str(REPO_ROOT),
            aws_region=region,
            env_vars_values=env_vars,
        )
        found = provider.get(function)
        assert found is not None, f"{function} is not a function of template.yaml"
        resolved: dict[str, str] = runner.get_invoke_config(found).env_vars.resolve()
        return resolved
