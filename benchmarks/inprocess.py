"""The stack in this process, as the integration tests build it: moto, the real handlers, the Bedrock stand-in.

moto's ``mock_aws`` answers DynamoDB, SNS, S3 and CloudWatch in this process; Bedrock is the
tollgate_local stand-in on a loopback port (in its own process, see benchmarks.standin),
reached through ``AWS_ENDPOINT_URL_BEDROCK*`` as in Lambda. The tables come from template.yaml
and the profiles are provisioned by the production provisioner.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto import mock_aws
from tollgate.adapters.dynamodb import DynamoTrendStore
from tollgate.config import ConfigBundle
from tollgate_local.functions import LocalLambdaContext, load_handler_module
from tollgate_local.moto_stack import metering_queues, provision_in_moto
from tollgate_local.runtime import install_router
from tollgate_local.streams import StreamReader
from tollgate_local.template import REPO_ROOT, load_template

from benchmarks.standin import ACCOUNT, REGION, standin_process

STACK = "tollgate-bench"
NAMESPACE = "Tollgate"
TABLES = {
    "UsageTable": f"{STACK}-usage",
    "TrendTable": f"{STACK}-trends",
    "TenantTable": f"{STACK}-tenants",
    "ControlTable": f"{STACK}-control",
}

#: Offline settings for the in-process stack; ``None`` removes a variable.
SANDBOX: dict[str, str | None] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ENDPOINT_URL": None,
    "AWS_PROFILE": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_BEARER_TOKEN_BEDROCK": None,
    "POWERTOOLS_DEV": None,
    "POWERTOOLS_METRICS_DISABLED": None,
    "POWERTOOLS_SERVICE_NAME": None,
    "TOLLGATE_STACK": STACK,
    "USAGE_TABLE": TABLES["UsageTable"],
    "TREND_TABLE": TABLES["TrendTable"],
    "TENANT_TABLE": TABLES["TenantTable"],
    "CONTROL_TABLE": TABLES["ControlTable"],
    "METRICS_NAMESPACE": NAMESPACE,
}


@contextmanager
def environment(changes: Mapping[str, str | None]) -> Iterator[None]:
    """os.environ with ``changes`` applied (``None`` removes a variable), restored afterwards."""
    saved = {name: os.environ.get(name) for name in changes}
    try:
        _apply(changes)
        yield
    finally:
        _apply(saved)


def _apply(changes: Mapping[str, str | None]) -> None:
    for name, value in changes.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def sandbox() -> dict[str, str | None]:
    """The functions' global environment from template.yaml (its plain values, e.g. the log level),
    SANDBOX, the repository as the config layer, and no AWS_ENDPOINT_URL_<SERVICE> from the caller's shell."""
    stray = {name: None for name in os.environ if name.startswith("AWS_ENDPOINT_URL_")}
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    globals_ = {name: value for name, value in variables.items() if isinstance(value, str)}
    return {**stray, **globals_, **SANDBOX, "TOLLGATE_CONFIG_DIR": str(REPO_ROOT)}


class Function:
    """One warm container of functions/<name>/app.py; what it prints is kept, not shown."""

    def __init__(self, name: str):
        self._router = install_router()  # before the module makes its logger
        self._module = load_handler_module(name)
        self._name = f"{STACK}-{name}"
        self.output = ""  # what the last invocation printed (log lines, EMF documents)

    def __call__(self, event: dict[str, Any]) -> Any:
        with self._router.capture() as printed:
            result = self._module.lambda_handler(event, LocalLambdaContext(function_name=self._name))
        self.output = "".join(printed)
        return result


@dataclass
class InProcessStack:
    bundle: ConfigBundle

    @property
    def dynamodb(self) -> Any:
        return boto3.client("dynamodb", region_name=REGION)

    @property
    def trends(self) -> DynamoTrendStore:
        return DynamoTrendStore(self.dynamodb, TABLES["TrendTable"])

    def stream(self) -> StreamReader:
        arn = self.dynamodb.describe_table(TableName=TABLES["UsageTable"])["Table"]["LatestStreamArn"]
        return StreamReader(boto3.client("dynamodbstreams", region_name=REGION), arn, REGION)


@contextmanager
def in_process_stack() -> Iterator[InProcessStack]:
    """moto + stand-in + tables + provisioned profiles, torn down afterwards."""
    with environment(sandbox()), standin_process() as bedrock_url:
        endpoints = {"AWS_ENDPOINT_URL_BEDROCK": bedrock_url, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": bedrock_url}
        with environment(endpoints), mock_aws():
            bundle = ConfigBundle.load_dir(REPO_ROOT, region=REGION)
            provision_in_moto(bundle, STACK, TABLES, region=REGION, account_id=ACCOUNT, namespace=NAMESPACE)
            fallback = metering_queues(STACK, REGION)["MeteringFallbackQueue"]
            with environment({"METERING_FALLBACK_QUEUE_URL": fallback}):
                yield InProcessStack(bundle=bundle)
