"""Where a command acts: the local stack (``.tollgate/local.json``) or a deployed stack (its Outputs).

A deployed stack is found where ``sam deploy`` put it. Its name: ``--stack``, else the
``stack_name`` of samconfig.toml, else ``tollgate``. Its region, first found of:

1. ``--region``;
2. the ``region`` of samconfig.toml (what ``sam deploy --guided`` wrote; ``sam deploy`` itself
   prefers it to the environment, so this finds the stack it deployed);
3. ``AWS_REGION`` (the SDKs' and AWS CLI's variable; botocore alone does not read it);
4. boto3's own resolution: ``AWS_DEFAULT_REGION``, then the ``region`` of the AWS profile
   (``AWS_PROFILE`` or ``default``, in ``AWS_CONFIG_FILE`` or ~/.aws/config).

In samconfig.toml, as for ``sam deploy``, ``[default.deploy.parameters]`` wins over
``[default.global.parameters]``.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ProfileNotFound
from tollgate.adapters import aws_client
from tollgate.telemetry import DEFAULT_NAMESPACE

LOCAL_STATE = Path(".tollgate/local.json")
SAMCONFIG_FILE = "samconfig.toml"
DEFAULT_STACK = "tollgate"

#: Stack Outputs that name the resources the commands use, by the template's logical names.
_OUTPUTS = {
    "UsageTableName": "UsageTable",
    "TrendTableName": "TrendTable",
    "TenantTableName": "TenantTable",
    "ControlTableName": "ControlTable",
    "TenantNoticeTopicArn": "TenantNoticeTopic",
    "AlertTopicArn": "AlertTopic",
    "ArtifactsBucketName": "ArtifactsBucket",
    "AggregationFailureQueueUrl": "AggregationFailureQueue",
}


class TargetError(RuntimeError):
    """The stack to act on cannot be found; the message says how to point at it."""


@dataclass(frozen=True)
class Target:
    """A running Tollgate: its region, AWS endpoint (local only), API URL and resources."""

    name: str
    region: str
    api_url: str
    resources: dict[str, str]
    endpoint_url: str | None = None
    #: Local only: tenant -> {"api_key", "profiles"} as written by `make local`.
    tenants: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    #: The stack's parameter values (deployed: from CloudFormation; local: the template's defaults).
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        """The CloudWatch namespace of the stack's metrics (its MetricNamespace parameter)."""
        return self.parameters.get("MetricNamespace") or DEFAULT_NAMESPACE

    def resource(self, logical_name: str) -> str:
        try:
            return self.resources[logical_name]
        except KeyError:
            raise TargetError(f"{self.name} has no resource {logical_name}; is it a Tollgate stack?") from None

    def client(self, service: str) -> Any:
        if self.endpoint_url is not None:
            # The local stack's moto server answers every service on one endpoint (any credentials).
            return aws_client(service, self.region, endpoint_url=self.endpoint_url, credentials=("local", "local"))
        return aws_client(service, self.region)


def local_target(state_file: Path = LOCAL_STATE) -> Target:
    if not state_file.exists():
        raise TargetError(
            f"{state_file} not found: start the local stack first with `make local` (in another terminal)"
        )
    state = json.loads(state_file.read_text())
    return Target(
        name=f"the local stack ({state_file})",
        region=state["region"],
        api_url=state["api_url"],
        resources=dict(state["resources"]),
        endpoint_url=state["aws_endpoint_url"],
        tenants=dict(state["tenants"]),
        extras={k: v for k, v in state.items() if k not in {"region", "api_url", "resources", "tenants"}},
        parameters=dict(state.get("parameters", {})),
    )


@dataclass(frozen=True)
class SamConfig:
    """The stack name and region ``sam deploy --guided`` wrote to samconfig.toml (None: not there)."""

    stack_name: str | None = None
    region: str | None = None

    @classmethod
    def read(cls, path: Path) -> SamConfig:
        if not path.exists():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise TargetError(f"{path}: {error}; fix it, or let `sam deploy --guided` write it again") from None

        def table(*names: str) -> Mapping[str, Any]:
            node: Any = data
            for name in names:
                node = node.get(name) if isinstance(node, Mapping) else None
            return node if isinstance(node, Mapping) else {}

        tables = (table("default", "deploy", "parameters"), table("default", "global", "parameters"))

        def setting(name: str) -> str | None:
            for parameters in tables:
                value = parameters.get(name)
                if isinstance(value, str) and value:
                    return value
            return None

        return cls(stack_name=setting("stack_name"), region=setting("region"))


@dataclass(frozen=True)
class Chosen:
    """A setting and where it came from (said in messages, so a wrong stack is easy to trace)."""

    value: str
    source: str


def choose_stack(flag: str | None, samconfig: SamConfig) -> Chosen:
    if flag:
        return Chosen(flag, "--stack")
    if samconfig.stack_name:
        return Chosen(samconfig.stack_name, SAMCONFIG_FILE)
    return Chosen(DEFAULT_STACK, "the default")


def choose_region(flag: str | None, samconfig: SamConfig, environ: Mapping[str, str] = os.environ) -> Chosen:
    """The region, in the order of this module's docstring."""
    if flag:
        return Chosen(flag, "--region")
    if samconfig.region:
        return Chosen(samconfig.region, SAMCONFIG_FILE)
    if environ.get("AWS_REGION"):
        return Chosen(environ["AWS_REGION"], "AWS_REGION")
    try:
        session = boto3.session.Session()
    except ProfileNotFound as error:
        raise TargetError(f"{error}: set AWS_PROFILE to a profile of your AWS config, or unset it") from None
    if session.region_name:
        if environ.get("AWS_DEFAULT_REGION"):
            return Chosen(session.region_name, "AWS_DEFAULT_REGION")
        config_file = environ.get("AWS_CONFIG_FILE", "~/.aws/config")
        return Chosen(session.region_name, f"the region of AWS profile {session.profile_name!r} in {config_file}")
    raise TargetError(
        "no AWS region: pass --region, or set region in samconfig.toml (`sam deploy --guided` does), "
        "AWS_REGION, or the region of your AWS profile (`aws configure`)"
    )


def stack_target(stack: Chosen, region: Chosen) -> Target:
    cloudformation = aws_client("cloudformation", region.value)
    try:
        (found,) = cloudformation.describe_stacks(StackName=stack.value)["Stacks"]
    except cloudformation.exceptions.ClientError as error:
        raise TargetError(
            f"stack {stack.value} (name from {stack.source}) in {region.value} (region from {region.source}): "
            f"{error.response['Error']['Message']}; deploy with `make deploy`, or pass --stack NAME --region REGION"
        ) from None
    except BotoCoreError as error:  # no credentials, no network: say which stack it was looking for
        raise TargetError(
            f"stack {stack.value} in {region.value} (region from {region.source}): {error}; "
            "check the AWS credentials (AWS_PROFILE, `aws configure`)"
        ) from None
    stack_name, region_name = stack.value, region.value
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    resources = {logical: outputs[key] for key, logical in _OUTPUTS.items() if key in outputs}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in found.get("Parameters", [])}
    return Target(
        name=f"stack {stack_name} ({region_name})",
        region=region_name,
        api_url=outputs.get("ApiUrl", ""),
        resources=resources,
        parameters=parameters,
    )


def resolve(*, local: bool, stack: str | None, region: str | None, root: Path = Path(".")) -> Target:
    """--local for the local stack; otherwise the deployed stack, found as this module's docstring says."""
    if local:
        return local_target()
    samconfig = SamConfig.read(root / SAMCONFIG_FILE)
    return stack_target(choose_stack(stack, samconfig), choose_region(region, samconfig))
