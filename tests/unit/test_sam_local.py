"""`sam local invoke --env-vars` against make local: what reaches the function's container."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from tollgate_local.sam_local import DOCKER_DESKTOP_FILE, ENDPOINT_VARIABLES, HOST_NETWORK_FILE, write_env_files
from tollgate_local.template import load_template

#: What tests/conftest.py's fixture of that name is.
SamLocalEnvironment = Callable[..., dict[str, str]]
FUNCTIONS = ("AuthorizerFunction", "GatewayFunction", "AggregatorFunction", "ProvisionerFunction")


def test_the_template_declares_the_endpoints_and_never_sets_them_in_aws() -> None:
    globals_ = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert [globals_.get(name) for name in ENDPOINT_VARIABLES] == [{"Ref": "AWS::NoValue"}] * 3


@pytest.mark.parametrize("function", FUNCTIONS)
def test_sam_local_passes_the_env_files_endpoints_and_variables(
    function: str, sam_local_environment: SamLocalEnvironment
) -> None:
    file = {
        function: {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
            "AWS_ENDPOINT_URL_BEDROCK": "http://127.0.0.1:5001",
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "http://127.0.0.1:5001",
            "TOLLGATE_STACK": "tollgate-local",
        }
    }
    environment = sam_local_environment(function, file, region="us-east-1")
    assert {name: environment.get(name) for name in file[function]} == file[function]
    assert environment["AWS_REGION"] == "us-east-1"


def test_without_an_env_file_the_endpoints_are_empty_and_boto3_uses_aws(
    monkeypatch: pytest.MonkeyPatch, sam_local_environment: SamLocalEnvironment
) -> None:
    environment = sam_local_environment("GatewayFunction", {}, region="eu-west-1")
    assert [environment[name] for name in ENDPOINT_VARIABLES] == ["", "", ""]
    for name in ENDPOINT_VARIABLES:
        monkeypatch.setenv(name, environment[name])
    client = boto3.client("bedrock-runtime", region_name="eu-west-1")
    assert client.meta.endpoint_url == "https://bedrock-runtime.eu-west-1.amazonaws.com"


def test_the_docker_desktop_file_names_the_host_by_host_docker_internal(tmp_path: Path) -> None:
    functions = {"GatewayFunction": {"USAGE_TABLE": "usage-1"}, "AuthorizerFunction": {"TENANT_TABLE": "tenants-1"}}
    write_env_files(tmp_path, functions, aws_url="http://127.0.0.1:5000", bedrock_url="http://127.0.0.1:5001")
    host = json.loads((tmp_path / HOST_NETWORK_FILE).read_text())
    desktop = json.loads((tmp_path / DOCKER_DESKTOP_FILE).read_text())
    assert host["GatewayFunction"] == {
        "USAGE_TABLE": "usage-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "AWS_ENDPOINT_URL_BEDROCK": "http://127.0.0.1:5001",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "http://127.0.0.1:5001",
    }
    assert desktop["AuthorizerFunction"] == {
        "TENANT_TABLE": "tenants-1",
        "AWS_ENDPOINT_URL": "http://host.docker.internal:5000",
        "AWS_ENDPOINT_URL_BEDROCK": "http://host.docker.internal:5001",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "http://host.docker.internal:5001",
    }
