"""The provisioner with a large config.json: 200 profiles over 60 tenants, so 600 alarms.

Against moto and the Bedrock stand-in, as the other provisioning tests. Every AWS call of a run
is counted by operation, so a change that multiplies calls (each against a rate quota in AWS)
fails here. CloudWatch's own quotas are emulated in front of a moto server (tests/quota.py).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from tollgate.adapters import aws_client
from tollgate.adapters.bedrock import BedrockProfiles
from tollgate.adapters.dynamodb import DynamoProfileRegistry
from tollgate.config import ConfigBundle
from tollgate.dashboard import DashboardLimitError
from tollgate.provisioning import Provisioner, Targets
from tollgate.settings import ProvisionerSettings
from tollgate.wiring.provisioner import control_plane_client, provisioner
from tollgate_local.bedrock import BedrockStandIn
from tollgate_local.template import create_tables

from tests.integration.conftest import ACCOUNT, REGION, STACK, TABLES, Stack
from tests.quota import QuotaEmulator
from tests.scale import large_bundle

WRITES = ("Put", "Create", "Delete", "Tag", "Untag", "Subscribe", "Unsubscribe", "Update")


class CountedProvisioner:
    """The provisioner as the custom resource wires it, with every AWS call counted."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.alarm_names_per_call: list[int] = []
        settings = ProvisionerSettings.from_env()
        clients = {s: aws_client(s, REGION) for s in ("bedrock", "cloudwatch", "sns", "dynamodb", "s3")}
        for client in clients.values():
            client.meta.events.register("provide-client-params", self._count)
        self.provisioner = Provisioner(
            profiles=BedrockProfiles(clients["bedrock"]),
            cloudwatch=clients["cloudwatch"],
            sns=clients["sns"],
            registry=DynamoProfileRegistry(clients["dynamodb"], settings.tenant_table),
            s3=clients["s3"],
        )

    def _count(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_name}:{model.name}"] += 1
        if "AlarmNames" in params:
            self.alarm_names_per_call.append(len(params["AlarmNames"]))

    def run(self, bundle: Any, targets: Targets) -> tuple[Any, Counter[str], float]:
        self.calls.clear()
        started = time.perf_counter()
        report = self.provisioner.reconcile(bundle, targets)
        return report, Counter(self.calls), time.perf_counter() - started


def writes(calls: Counter[str]) -> Counter[str]:
    return Counter({op: n for op, n in calls.items() if op.split(":")[1].startswith(WRITES)})


def all_alarms(cw: Any) -> set[str]:
    pages = cw.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
    return {a["AlarmName"] for page in pages for a in page["MetricAlarms"]}


def test_200_profiles_are_created_then_left_alone_then_150_of_them_removed(stack: Stack) -> None:
    counted = CountedProvisioner()
    cw = boto3.client("cloudwatch", region_name=REGION)
    big = large_bundle(profiles=200, tenants=60)
    names = [p.name for p in big.profiles()]
    config = json.loads(json.dumps(big.config.model_dump(mode="json")))
    config["profiles"] = {n: config["profiles"][n] for n in names[:50]}
    small = ConfigBundle.from_texts(json.dumps(config), json.dumps(big.catalog.model_dump(mode="json")))
    # the repository's profiles go away with the first run
    before = {p["arn"] for p in stack.standin.profiles()}

    # When 200 profiles are deployed
    report, calls, first = counted.run(big, stack.targets)

    ours = {p["tags"]["tollgate:profile"] for p in stack.standin.profiles() if p["tags"].get("tollgate:stack") == STACK}
    assert ours == set(names)
    assert {f"{kind}-{n}" for n in names for kind in ("BedrockTokenCostAlarm", "BedrockTokensPerMinuteAlarm",
            "BedrockRequestsPerMinuteAlarm")} == all_alarms(cw)  # fmt: skip
    assert len(report.created) == 200 + 600
    assert calls["bedrock:CreateInferenceProfile"] == 200
    assert calls["cloudwatch:PutMetricAlarm"] == 600
    # only the repository's profiles' alarms (3 each), before deleting them
    assert calls["cloudwatch:ListTagsForResource"] == 3 * len(before)
    assert max(counted.alarm_names_per_call) <= 100  # DescribeAlarms and DeleteAlarms take 100 names a call
    body = json.loads(cw.get_dashboard(DashboardName=stack.targets.dashboard_name)["DashboardBody"])
    assert [len(w["properties"]["alarms"]) for w in body["widgets"] if w["type"] == "alarm"] == [100] * 6
    assert not before & {p["arn"] for p in stack.standin.profiles()}

    # When the same config is deployed again, nothing in Bedrock or CloudWatch is written
    stack.standin.reset()
    report, calls, again = counted.run(big, stack.targets)

    assert (report.created, report.updated, report.deleted) == ([], [], [])
    assert len(report.unchanged) == 200 + 600 + 1
    assert writes(calls) == Counter(
        {
            "cloudwatch:PutDashboard": 1,  # always put: restores a dashboard deleted by hand
            "dynamodb:PutItem": 3,  # the provisioner's state: applied, dashboard, admin email
            "s3:PutObject": 2,  # the config snapshot (history and current)
        }
    )
    assert calls["cloudwatch:ListTagsForResource"] == 0  # alarms that are already right are not re-checked
    assert set(stack.standin.stats()["operations"]) <= {"ListInferenceProfiles", "ListTagsForResource"}

    # When 150 profiles are removed
    report, calls, removal = counted.run(small, stack.targets)

    assert len([d for d in report.deleted if d.startswith("inference profile")]) == 150
    assert len([d for d in report.deleted if d.startswith("alarm")]) == 450
    ours = {p["tags"]["tollgate:profile"] for p in stack.standin.profiles() if p["tags"].get("tollgate:stack") == STACK}
    assert ours == set(names[:50])
    assert len(all_alarms(cw)) == 150
    assert calls["bedrock:DeleteInferenceProfile"] == 150
    assert calls["cloudwatch:DeleteAlarms"] == 5  # 450 names, 100 a call
    assert max(counted.alarm_names_per_call) <= 100
    assert set(DynamoProfileRegistry(stack.dynamodb, TABLES["TenantTable"]).entries()) == set(names[:50])
    # (wall times on moto: see the report of the change; they say little about AWS, where quotas rule)
    assert first > 0
    assert again > 0
    assert removal > 0


def test_a_config_too_large_for_a_dashboard_fails_the_deploy_before_anything_changes(stack: Stack) -> None:
    cw = boto3.client("cloudwatch", region_name=REGION)
    before = ({p["arn"] for p in stack.standin.profiles()}, all_alarms(cw))

    with pytest.raises(DashboardLimitError, match="split the profiles over more stacks"):
        provisioner(ProvisionerSettings.from_env()).reconcile(large_bundle(850, 10), stack.targets)

    assert ({p["arn"] for p in stack.standin.profiles()}, all_alarms(cw)) == before


# --------------------------------------------------------------------------- CloudWatch's quotas


@pytest.fixture
def quota_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Targets]:
    """Tables, topic and bucket on a moto server, Bedrock on the stand-in, the provisioner's env set."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    standin = BedrockStandIn(region=REGION, account_id=ACCOUNT)
    bedrock = standin.serve()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server._server.server_port}")
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", bedrock.url)
    monkeypatch.setenv("TOLLGATE_STACK", STACK)
    monkeypatch.setenv("TENANT_TABLE", TABLES["TenantTable"])
    create_tables(boto3.client("dynamodb", region_name=REGION), TABLES)
    topic = boto3.client("sns", region_name=REGION).create_topic(Name=f"{STACK}-alerts")["TopicArn"]
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=f"{STACK}-artifacts")
    yield Targets(STACK, REGION, ACCOUNT, "Tollgate", topic, f"{STACK}-tollgate", f"{STACK}-artifacts")
    bedrock.stop()
    server.stop()


def test_a_first_deploy_keeps_to_cloudwatchs_put_metric_alarm_quota(quota_stack: Targets) -> None:
    # Given CloudWatch's documented quota of 3 PutMetricAlarm (and DeleteAlarms) per second
    cloudwatch = control_plane_client("cloudwatch", REGION)  # as the custom resource's function makes it
    quota = QuotaEmulator({"PutMetricAlarm": 3.0, "DeleteAlarms": 3.0})
    quota.install(cloudwatch)
    settings = ProvisionerSettings.from_env()
    prov = Provisioner(
        profiles=BedrockProfiles(control_plane_client("bedrock", REGION)),
        cloudwatch=cloudwatch,
        sns=aws_client("sns", REGION),
        registry=DynamoProfileRegistry(aws_client("dynamodb", REGION), settings.tenant_table),
        s3=aws_client("s3", REGION),
    )

    # When 10 profiles (30 alarms) are deployed at once
    started = time.monotonic()
    report = prov.reconcile(large_bundle(profiles=10, tenants=4), quota_stack)

    # Then the deploy succeeds although CloudWatch throttled it, at about the rate allowed
    assert len([c for c in report.created if c.startswith("alarm")]) == 30
    assert quota.throttled["PutMetricAlarm"] > 0
    assert time.monotonic() - started >= (30 - 3) / 3.0
    assert len(all_alarms(boto3.client("cloudwatch", region_name=REGION))) == 30
