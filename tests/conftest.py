"""Shared test setup: dummy AWS credentials, local endpoints only, nothing reaches real AWS."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
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


@pytest.fixture(scope="session")
def bundle() -> ConfigBundle:
    """The repository's own config.json and models.json."""
    return ConfigBundle.load_dir(REPO_ROOT)
