"""Where a command acts: the local stack (``.tollgate/local.json``) or a deployed stack (its Outputs)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tollgate.adapters import aws_client
from tollgate.telemetry import DEFAULT_NAMESPACE

LOCAL_STATE = Path(".tollgate/local.json")

#: Stack Outputs that name the resources the commands use, by the template's logical names.
_OUTPUTS = {
    "UsageTableName": "UsageTable",
    "TrendTableName": "TrendTable",
    "TenantTableName": "TenantTable",
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
            # The local stack's moto server answers every service on one endpoint.
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
            os.environ["AWS_ENDPOINT_URL"] = self.endpoint_url
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


def stack_target(stack_name: str, region: str | None) -> Target:
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise TargetError("no AWS region: pass --region or set AWS_REGION")
    cloudformation = aws_client("cloudformation", region)
    try:
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except cloudformation.exceptions.ClientError as error:
        raise TargetError(
            f"stack {stack_name} in {region}: {error.response['Error']['Message']}; "
            "deploy with `make deploy` or pass --stack NAME"
        ) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    resources = {logical: outputs[key] for key, logical in _OUTPUTS.items() if key in outputs}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    return Target(
        name=f"stack {stack_name} ({region})",
        region=region,
        api_url=outputs.get("ApiUrl", ""),
        resources=resources,
        parameters=parameters,
    )


def resolve(*, local: bool, stack: str | None, region: str | None) -> Target:
    """--local for the local stack; otherwise the deployed stack NAME (default 'tollgate', as in samconfig.toml)."""
    if local:
        return local_target()
    return stack_target(stack or "tollgate", region)
