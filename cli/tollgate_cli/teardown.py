"""``make delete``: ``sam delete`` the stack, then say what AWS kept and how to remove it.

Some resources outlive the stack on purpose (``DeletionPolicy: Retain`` in template.yaml): the
usage and trend tables and the artifacts bucket (the history behind chargeback), the config
layer's versions (a rollback needs them), and, when the stack made it, the API Gateway logging
role that the account setting keeps pointing at. Which ones they are is read from the deployed
stack itself (its processed template and its resources) before it is deleted, so this list
cannot drift from the template.

Usage: ``python -m tollgate_cli.teardown --stack NAME [--region REGION] [--no-prompts]``
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from rich.console import Console
from tollgate.adapters import aws_client

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

#: How each kept resource type is shown and removed. The bucket is versioned: ``aws s3 rb
#: --force`` leaves old versions (and fails), so it is emptied with boto3, which the venv has.
_KINDS = {
    "AWS::DynamoDB::Table": "DynamoDB table",
    "AWS::S3::Bucket": "S3 bucket (versioned)",
    "AWS::S3::BucketPolicy": "S3 bucket policy",
    "AWS::Lambda::LayerVersion": "Lambda layer",
    "AWS::IAM::Role": "IAM role",
}
API_GATEWAY_LOGS_POLICY = "iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"


class TeardownError(RuntimeError):
    """The stack cannot be deleted as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Kept:
    """A resource of the stack that CloudFormation keeps when the stack is deleted."""

    logical_id: str
    resource_type: str
    physical_id: str

    @property
    def kind(self) -> str:
        return _KINDS.get(self.resource_type, self.resource_type)


def retained_resources(cloudformation: Any, stack: str) -> list[Kept]:
    """The stack's resources whose DeletionPolicy is Retain, with their physical ids."""
    body = cloudformation.get_template(StackName=stack, TemplateStage="Processed")["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else body
    declared = template.get("Resources", {})
    kept = []
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
        for resource in page["StackResourceSummaries"]:
            logical = resource["LogicalResourceId"]
            if declared.get(logical, {}).get("DeletionPolicy") == "Retain" and resource.get("PhysicalResourceId"):
                kept.append(Kept(logical, resource["ResourceType"], resource["PhysicalResourceId"]))
    return sorted(kept, key=lambda k: (k.resource_type, k.logical_id))


def layer_versions(lambda_client: Any, layer_version_arn: str) -> list[str]:
    """Every version of the layer that ``layer_version_arn`` is a version of (older ones are kept too)."""
    layer_name = layer_version_arn.split(":")[6]  # arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION
    arns = []
    for page in lambda_client.get_paginator("list_layer_versions").paginate(LayerName=layer_name):
        arns.extend(v["LayerVersionArn"] for v in page["LayerVersions"])
    return sorted(arns, key=lambda arn: int(arn.rsplit(":", 1)[1]))


def removal_commands(kept: Kept, region: str, partition: str, versions: Sequence[str] = ()) -> list[str]:
    """The shell commands that remove a kept resource for good (AWS CLI, or boto3 where the CLI has none)."""
    r = shlex.quote(region)
    name = shlex.quote(kept.physical_id)
    if kept.resource_type == "AWS::DynamoDB::Table":
        return [f"aws dynamodb delete-table --region {r} --table-name {name}"]
    if kept.resource_type == "AWS::S3::Bucket":
        script = (
            f'import boto3; b = boto3.resource("s3", region_name={json.dumps(region)})'
            f".Bucket({json.dumps(kept.physical_id)}); b.object_versions.delete(); b.delete()"
        )
        return [f".venv/bin/python -c {shlex.quote(script)}"]
    if kept.resource_type == "AWS::Lambda::LayerVersion":
        commands = []
        for arn in versions or [kept.physical_id]:
            layer, version = arn.split(":")[6:8]
            commands.append(
                f"aws lambda delete-layer-version --region {r} --layer-name {shlex.quote(layer)} "
                f"--version-number {version}"
            )
        return commands
    if kept.resource_type == "AWS::IAM::Role":
        policy = shlex.quote(f"arn:{partition}:{API_GATEWAY_LOGS_POLICY}")
        return [
            f"aws iam detach-role-policy --role-name {name} --policy-arn {policy}",
            f"aws iam delete-role --role-name {name}",
        ]
    return []  # a bucket policy goes with its bucket


def report(kept: Sequence[Kept], region: str, partition: str, versions: dict[str, list[str]]) -> list[str]:
    """What was kept and how to remove it, as lines to print."""
    if not kept:
        return ["Nothing of the stack was kept."]
    lines = ["Kept on purpose (DeletionPolicy: Retain in template.yaml):"]
    for item in kept:
        detail = f"  {item.kind:<22} {item.physical_id}"
        if item.resource_type == "AWS::Lambda::LayerVersion":
            count = len(versions[item.logical_id])
            detail = f"  {item.kind:<22} {item.physical_id.split(':')[6]} ({count} versions)"
        lines.append(detail)
    lines += ["", "They cost little or nothing while idle. To remove them for good:"]
    for item in kept:
        commands = removal_commands(item, region, partition, versions.get(item.logical_id, ()))
        if not commands:
            continue
        if item.resource_type == "AWS::IAM::Role":
            lines.append(
                "  # the API Gateway account setting still names this role: remove it only if no API in "
                f"{region} logs through it (aws apigateway get-account --region {region})"
            )
        elif item.resource_type == "AWS::S3::Bucket":
            lines.append("  # config snapshots and chargeback statements: every version of every object goes")
        elif item.resource_type == "AWS::DynamoDB::Table":
            lines.append(f"  # {item.logical_id}: usage records and rollups are gone for good")
        lines.extend(f"  {c}" for c in commands)
    return lines


def delete(stack: str, region: str, *, sam: str = "sam", no_prompts: bool = False) -> int:
    cloudformation = aws_client("cloudformation", region)
    try:
        (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except cloudformation.exceptions.ClientError as error:
        raise TeardownError(
            f"stack {stack} in {region}: {error.response['Error']['Message']}; pass STACK=NAME REGION=REGION"
        ) from None
    partition = described["StackId"].split(":")[1]
    kept = retained_resources(cloudformation, stack)
    lambda_client = aws_client("lambda", region)
    layers = {k.logical_id: k.physical_id for k in kept if k.resource_type == "AWS::Lambda::LayerVersion"}

    command = [sam, "delete", "--stack-name", stack, "--region", region, *(["--no-prompts"] if no_prompts else [])]
    finished = subprocess.run(command, check=False, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})  # noqa: S603
    if finished.returncode != 0:
        err.print(f"sam delete did not finish (exit {finished.returncode}); nothing more was done.")
        return finished.returncode
    try:
        cloudformation.describe_stacks(StackName=stack)
        err.print(f"stack {stack} still exists (the deletion was not confirmed?); nothing more was done.")
        return 1
    except cloudformation.exceptions.ClientError:
        pass  # gone, as asked
    versions = {logical: layer_versions(lambda_client, arn) for logical, arn in layers.items()}
    out.print("")
    for line in report(kept, region, partition, versions):
        out.print(line)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tollgate_cli.teardown", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="tollgate", help="the stack's name (default: tollgate, as samconfig.toml)")
    parser.add_argument("--region", help="its region (default: AWS_REGION, else the AWS CLI profile's)")
    parser.add_argument("--sam", default="sam", help="the sam executable (default: sam on PATH)")
    parser.add_argument("--no-prompts", action="store_true", help="pass --no-prompts to sam delete (no confirmation)")
    args = parser.parse_args(argv)
    region = args.region or os.environ.get("AWS_REGION") or boto3.session.Session().region_name
    if not region:
        err.print("error: no AWS region: `make delete REGION=...` (or --region), or set AWS_REGION")
        return 2
    try:
        return delete(args.stack, region, sam=args.sam, no_prompts=args.no_prompts)
    except TeardownError as error:
        err.print(f"error: {error}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
