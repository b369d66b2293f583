"""`make delete`: sam delete succeeds on a stack with data, and says what it kept and how to remove it.

The stack is created from template.yaml on a moto server (as `tollgate local` creates it), with
a versioned object in the artifacts bucket; then the real `sam delete` runs against it through
AWS_ENDPOINT_URL, as `make delete` runs it. (moto gives a layer version no physical id, so the
config layer's versions are checked apart, against moto's Lambda.)
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer
from tollgate_cli import teardown
from tollgate_local.cloudformation import deploy

REGION = "us-east-1"
STACK = "tollgate-gone"
SAM = str(Path(sys.executable).with_name("sam"))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server._server.server_port}")
    monkeypatch.setenv("SAM_CLI_TELEMETRY", "0")
    services = ("s3", "cloudformation", "cloudwatch", "dynamodb", "logs", "lambda", "iam")
    clients = {n: boto3.client(n, region_name=REGION) for n in services}
    yield clients
    server.stop()


def test_delete_keeps_the_data_says_so_and_the_printed_commands_remove_it(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack with access logs and the account role, and config snapshots in its bucket
    deployed = deploy(aws, STACK, {"ApiAccessLogs": "EnabledWithAccountRole"}, region=REGION, account_id="123456789012")
    tables = [deployed.physical["UsageTable"], deployed.physical["TrendTable"]]
    bucket = deployed.physical["ArtifactsBucket"]
    role = deployed.physical["ApiGatewayCloudWatchRole"]
    for body in (b"first", b"second"):  # two versions of one object
        aws["s3"].put_object(Bucket=bucket, Key="config/current.json", Body=body)

    # When it is deleted as `make delete` does it
    code = teardown.main(["--stack", STACK, "--region", REGION, "--sam", SAM, "--no-prompts"])

    # Then the stack is gone and what holds data is still there
    assert code == 0
    assert [s["StackStatus"] for s in aws["cloudformation"].list_stacks()["StackSummaries"]] == ["DELETE_COMPLETE"]
    assert set(tables) <= set(aws["dynamodb"].list_tables()["TableNames"])
    assert bucket in {b["Name"] for b in aws["s3"].list_buckets()["Buckets"]}
    assert aws["iam"].get_role(RoleName=role)["Role"]["RoleName"] == role

    # And the user is told what was kept, with the exact commands to remove each
    printed = capsys.readouterr().out
    for name in (*tables, bucket, role):
        assert name in printed
    for table in tables:
        assert f"aws dynamodb delete-table --region {REGION} --table-name {table}" in printed
    assert f"aws iam delete-role --role-name {role}" in printed
    (bucket_command,) = [line.strip() for line in printed.splitlines() if bucket in line and "python" in line]

    # the bucket's command really empties (every version) and removes the versioned bucket
    argv = shlex.split(bucket_command)
    assert argv[0] == ".venv/bin/python"
    subprocess.run([sys.executable, *argv[1:]], check=True, env=dict(os.environ))
    assert bucket not in {b["Name"] for b in aws["s3"].list_buckets()["Buckets"]}


def test_delete_of_a_stack_that_does_not_exist_says_how_to_name_it(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code = teardown.main(["--stack", "nope", "--region", REGION, "--sam", SAM, "--no-prompts"])

    assert code == 2
    assert "stack nope in us-east-1" in capsys.readouterr().err


def test_every_kept_config_layer_version_is_listed_with_its_removal() -> None:
    with mock_aws():
        lambda_client = boto3.client("lambda", region_name=REGION)
        arns = [
            lambda_client.publish_layer_version(
                LayerName=f"{STACK}-config", Content={"ZipFile": b"PK\x05\x06" + bytes(18)}
            )["LayerVersionArn"]
            for _ in range(3)  # three deploys that changed config.json
        ]
        kept = teardown.Kept("ConfigLayer677ae8dcee", "AWS::Lambda::LayerVersion", arns[-1])

        versions = teardown.layer_versions(lambda_client, kept.physical_id)

    assert versions == arns
    lines = teardown.report([kept], REGION, "aws", {kept.logical_id: versions})
    layer = f"{STACK}-config"
    assert f"  Lambda layer           {layer} (3 versions)" in lines
    for number in (1, 2, 3):
        assert (
            f"  aws lambda delete-layer-version --region {REGION} --layer-name {layer} --version-number {number}"
        ) in lines
