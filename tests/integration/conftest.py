"""Integration tier: the real handlers in-process, AWS answered by moto, Bedrock by the stand-in.

moto's ``mock_aws`` answers DynamoDB, SNS, SQS, S3 and CloudWatch in this process. Bedrock
(control plane and Converse) is answered by tollgate_local's stand-in on a loopback port,
through the standard ``AWS_ENDPOINT_URL_BEDROCK*`` variables: the same code path as in Lambda.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from tollgate.adapters.dynamodb import DynamoKeyStore, DynamoTrendStore, DynamoUsageStore
from tollgate.config import ConfigBundle
from tollgate.keys import issue_key
from tollgate.provisioning import Targets
from tollgate_local.bedrock import BedrockStandIn
from tollgate_local.functions import LocalLambdaContext, load_handler_module
from tollgate_local.moto_stack import metering_queues, provision_in_moto
from tollgate_local.runtime import emf_metric_data
from tollgate_local.sample_events import sample_key_record
from tollgate_local.streams import StreamReader
from tollgate_local.template import REPO_ROOT

EVENTS = REPO_ROOT / "events"
STACK = "tollgate-test"
REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLES = {
    "UsageTable": "tollgate-test-usage",
    "TrendTable": "tollgate-test-trends",
    "TenantTable": "tollgate-test-tenants",
    "ControlTable": "tollgate-test-control",
}


def load_event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[BedrockStandIn]:
    app = BedrockStandIn(region=REGION, account_id=ACCOUNT)
    server = app.serve()
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", server.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.url)
    yield app
    server.stop()


@dataclass
class Stack:
    """The stack's resources in moto, provisioned from config.json, with a key per tenant."""

    bundle: ConfigBundle
    standin: BedrockStandIn
    targets: Targets
    queue_url: str
    #: The metering queues by logical name (MeteringFallbackQueue, MeteringDeadLetterQueue) -> URL.
    metering: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def dynamodb(self) -> Any:
        return boto3.client("dynamodb", region_name=REGION)

    @property
    def usage(self) -> DynamoUsageStore:
        return DynamoUsageStore(self.dynamodb, TABLES["UsageTable"])

    @property
    def trends(self) -> DynamoTrendStore:
        return DynamoTrendStore(self.dynamodb, TABLES["TrendTable"])

    @property
    def key_store(self) -> DynamoKeyStore:
        return DynamoKeyStore(self.dynamodb, TABLES["TenantTable"])

    def stream(self) -> StreamReader:
        arn = self.dynamodb.describe_table(TableName=TABLES["UsageTable"])["Table"]["LatestStreamArn"]
        return StreamReader(boto3.client("dynamodbstreams", region_name=REGION), arn, REGION)

    def handler(self, name: str) -> Callable[[dict[str, Any]], Any]:
        module = load_handler_module(name)
        self.modules[name] = module
        return lambda event: module.lambda_handler(event, LocalLambdaContext(function_name=f"{STACK}-{name}"))

    modules: dict[str, ModuleType] = field(default_factory=dict)


@pytest.fixture
def stack(standin: BedrockStandIn, bundle: ConfigBundle, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with mock_aws():
        queue_url = boto3.client("sqs", region_name=REGION).create_queue(QueueName=f"{STACK}-failures")["QueueUrl"]
        for name, value in {
            "TOLLGATE_STACK": STACK,
            "TOLLGATE_CONFIG_DIR": str(REPO_ROOT),
            "USAGE_TABLE": TABLES["UsageTable"],
            "TREND_TABLE": TABLES["TrendTable"],
            "TENANT_TABLE": TABLES["TenantTable"],
            "CONTROL_TABLE": TABLES["ControlTable"],
            "METRICS_NAMESPACE": "Tollgate",
        }.items():
            monkeypatch.setenv(name, value)
        targets = provision_in_moto(bundle, STACK, TABLES, region=REGION, account_id=ACCOUNT, namespace="Tollgate")
        metering = metering_queues(STACK, REGION)
        monkeypatch.setenv("METERING_FALLBACK_QUEUE_URL", metering["MeteringFallbackQueue"])
        built = Stack(bundle=bundle, standin=standin, targets=targets, queue_url=queue_url, metering=metering)
        keys = built.key_store
        for tenant in bundle.config.tenants:
            issued = issue_key(tenant, datetime.now(UTC))
            keys.add(issued.record)
            built.keys[tenant] = issued.secret
        keys.add(sample_key_record(datetime.now(UTC)))
        standin.reset()
        yield built


class CfnResponses:
    """A stand-in for CloudFormation's pre-signed response URL: keeps what is PUT to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                outer.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/response"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cfn_responses() -> Iterator[CfnResponses]:
    responses = CfnResponses()
    yield responses
    responses.close()


@dataclass(frozen=True)
class Datapoint:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    timestamp_ms: int
    value: Decimal


def emf_datapoints(stdout: str) -> list[Datapoint]:
    """Every metric value in the EMF documents printed to stdout, as local mode's CloudWatch reads them
    (tollgate_local.runtime), with exact values."""
    points = []
    for namespace, datums in emf_metric_data(stdout.splitlines(), number=Decimal).items():
        for datum in datums:
            dims = tuple(sorted((d["Name"], d["Value"]) for d in datum["Dimensions"]))
            stamp = round(datum["Timestamp"].timestamp() * 1000)
            for value in datum.get("Values", [datum.get("Value")]):
                points.append(Datapoint(namespace, datum["MetricName"], dims, stamp, value))
    return points


def sums_by_dimension_set(points: list[Datapoint], name: str) -> dict[tuple[str, ...], Decimal]:
    """A metric's total under each dimension set it is emitted with (each counts every request once)."""
    sums: dict[tuple[str, ...], Decimal] = {}
    for p in points:
        if p.name == name:
            names = tuple(n for n, _ in p.dimensions)
            sums[names] = sums.get(names, Decimal(0)) + p.value
    return sums


def sum_of(points: list[Datapoint], name: str, dims: tuple[tuple[str, str], ...] | None = None) -> Decimal:
    return sum((p.value for p in points if p.name == name and (dims is None or p.dimensions == dims)), Decimal(0))


def response_header(response: dict[str, Any], name: str) -> str | None:
    """A header of a proxy-integration response, by case-insensitive name; None when absent."""
    headers = response.get("multiValueHeaders") or response.get("headers") or {}
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value[0] if isinstance(value, list) else value)
    return None
