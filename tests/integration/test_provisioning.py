"""The per-profile lifecycle: config.json in, inference profiles, alarms and dashboard out.

"Adding a profile to config.json and redeploying creates its inference profile, alarms and
dashboard widgets; removing it removes them." Each test changes config.json the way a user
would, runs the provisioner (the code the custom resource runs on every deploy) and looks at
what exists afterwards in moto and in the Bedrock stand-in.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from tollgate.adapters import aws_client
from tollgate.adapters.bedrock import BedrockProfiles
from tollgate.adapters.dynamodb import DynamoProfileRegistry
from tollgate.config import ConfigBundle
from tollgate.money import usd
from tollgate.provisioning import Provisioner, ProvisioningError, config_digest
from tollgate.settings import ProvisionerSettings
from tollgate.wiring.provisioner import provisioner
from tollgate_local.apigw import authorized_event

from tests.cfn import deployed_template
from tests.iam import allowed, role_statements, tag_context
from tests.integration.conftest import ACCOUNT, REGION, STACK, Stack

REPO_ROOT = Path(__file__).resolve().parents[2]
ALARM_PREFIXES = ("BedrockTokenCostAlarm-", "BedrockTokensPerMinuteAlarm-", "BedrockRequestsPerMinuteAlarm-")
#: What DescribeAlarms returns that reflects the alarm's configuration (not its state or timestamps).
ALARM_CONFIG = (
    "AlarmDescription",
    "ActionsEnabled",
    "AlarmActions",
    "OKActions",
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "Period",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
)
NEW_PROFILE = {
    "tenant": "acme",
    "model": "amazon.nova-micro-v1:0",
    "description": "Acme support bots",
    "tags": {"Application": "Bots", "Environment": "staging"},
    "thresholds": {"cost_threshold": "7.25", "tokens_per_min_threshold": 1234, "requests_per_min_threshold": 12},
}


# --------------------------------------------------------------------------- helpers


def edited(edit: Callable[[dict[str, Any]], None]) -> ConfigBundle:
    """The repository's config.json with ``edit`` applied, validated as a deploy would."""
    config = json.loads((REPO_ROOT / "config.json").read_text())
    edit(config)
    return ConfigBundle.from_texts(json.dumps(config), (REPO_ROOT / "models.json").read_text())


def with_profile(name: str, profile: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        config["profiles"][name] = copy.deepcopy(profile)

    return edit


@pytest.fixture
def prov(stack: Stack) -> Provisioner:
    """The provisioner exactly as the custom resource's function wires it."""
    return provisioner(ProvisionerSettings.from_env())


@pytest.fixture
def cw(stack: Stack) -> Any:
    return boto3.client("cloudwatch", region_name=REGION)


def profiles(stack: Stack) -> dict[str, dict[str, Any]]:
    """This stack's application inference profiles in the stand-in, by config.json profile name."""
    return {
        p["tags"]["tollgate:profile"]: p for p in stack.standin.profiles() if p["tags"].get("tollgate:stack") == STACK
    }


def arns(stack: Stack) -> dict[str, str]:
    return {name: p["arn"] for name, p in profiles(stack).items()}


def alarms(cw: Any) -> dict[str, dict[str, Any]]:
    """Every alarm with one of Tollgate's names, by name, as its configuration."""
    found = {}
    for page in cw.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
        for alarm in page["MetricAlarms"]:
            if alarm["AlarmName"].startswith(ALARM_PREFIXES):
                found[alarm["AlarmName"]] = {k: alarm.get(k) for k in ALARM_CONFIG}
    return found


def alarm_names(profile: str) -> set[str]:
    return {prefix + profile for prefix in ALARM_PREFIXES}


def dashboard(stack: Stack, cw: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(cw.get_dashboard(DashboardName=stack.targets.dashboard_name)["DashboardBody"])
    return body


def profiles_on_dashboard(body: dict[str, Any]) -> dict[str, set[str]]:
    """Metric name -> the profiles that have a line for it on the dashboard."""
    lines: dict[str, set[str]] = {}
    for widget in body["widgets"]:
        for line in widget["properties"].get("metrics", []):
            dims = dict(zip(line[2:-1:2], line[3:-1:2], strict=True))
            if "Profile" in dims:
                lines.setdefault(line[1], set()).add(dims["Profile"])
    return lines


def alarms_on_dashboard(body: dict[str, Any]) -> set[str]:
    widgets = [w for w in body["widgets"] if w["type"] == "alarm"]  # 100 alarms at most each
    return {arn.rsplit(":", 1)[1] for widget in widgets for arn in widget["properties"]["alarms"]}


def snapshot(stack: Stack, key: str = "config/current.json") -> dict[str, Any]:
    s3 = boto3.client("s3", region_name=REGION)
    loaded: dict[str, Any] = json.loads(s3.get_object(Bucket=stack.targets.artifacts_bucket, Key=key)["Body"].read())
    return loaded


def converse(profile: str, tenant: str, request_id: str) -> dict[str, Any]:
    body = {"messages": [{"role": "user", "content": [{"text": "Ping the search index."}]}]}
    return authorized_event(profile, tenant, body, request_id=request_id)


# --------------------------------------------------------------------------- tests


def test_reconciling_the_same_config_again_changes_nothing(stack: Stack, prov: Provisioner, cw: Any) -> None:
    before = (arns(stack), alarms(cw), dashboard(stack, cw))
    stack.standin.reset()

    report = prov.reconcile(stack.bundle, stack.targets)

    assert (report.created, report.updated, report.deleted) == ([], [], [])
    count = len(stack.bundle.profiles())
    assert report.summary() == f"{count + 3 * count + 1} unchanged"  # profiles, alarms, the dashboard
    assert (arns(stack), alarms(cw), dashboard(stack, cw)) == before
    # Bedrock's control plane was only read
    operations = stack.standin.stats()["operations"]
    assert set(operations) <= {"ListInferenceProfiles", "ListTagsForResource"}, operations


def test_adding_a_profile_creates_its_inference_profile_alarms_and_widgets_and_removing_it_removes_them(
    stack: Stack, prov: Provisioner, cw: Any
) -> None:
    before_arns, before_alarms, before_dashboard = arns(stack), alarms(cw), dashboard(stack, cw)

    # When acme-bots is added to config.json and deployed
    report = prov.reconcile(edited(with_profile("acme-bots", NEW_PROFILE)), stack.targets)

    # Then exactly its inference profile is created, with the config's tags and Tollgate's own
    assert report.deleted == []
    assert sorted(report.created) == sorted(
        ["inference profile tollgate-test-acme-bots", *(f"alarm {n}" for n in alarm_names("acme-bots"))]
    )
    now = profiles(stack)
    assert set(now) == set(before_arns) | {"acme-bots"}
    assert {name: p["arn"] for name, p in now.items() if name != "acme-bots"} == before_arns
    bots = now["acme-bots"]
    assert bots["name"] == "tollgate-test-acme-bots"
    assert bots["model_id"] == "amazon.nova-micro-v1:0"
    assert bots["tags"] == {
        "TenantID": "acme",  # from the tenant
        "CostCenter": "CC-1001",
        "Application": "Bots",  # from the profile
        "Environment": "staging",
        "tollgate:stack": STACK,
        "tollgate:tenant": "acme",
        "tollgate:profile": "acme-bots",
        "tollgate:source": f"arn:aws:bedrock:{REGION}::foundation-model/amazon.nova-micro-v1:0",
    }
    # its three alarms, with its own thresholds, on its own metrics, notifying the topic
    after = alarms(cw)
    assert set(after) == set(before_alarms) | alarm_names("acme-bots")
    assert {n: a for n, a in after.items() if n not in alarm_names("acme-bots")} == before_alarms
    thresholds = {
        "BedrockTokenCostAlarm-acme-bots": 7.25,
        "BedrockTokensPerMinuteAlarm-acme-bots": 1234.0,
        "BedrockRequestsPerMinuteAlarm-acme-bots": 12.0,
    }
    for name, threshold in thresholds.items():
        alarm = after[name]
        assert alarm["Threshold"] == threshold, name
        assert alarm["Namespace"] == "Tollgate"
        assert sorted((d["Name"], d["Value"]) for d in alarm["Dimensions"]) == [
            ("Profile", "acme-bots"),
            ("TenantId", "acme"),
        ]
        assert alarm["AlarmActions"] == alarm["OKActions"] == [stack.targets.topic_arn]
    # and its lines on the dashboard: cost, tokens and requests per profile, and its alarms
    lines = profiles_on_dashboard(dashboard(stack, cw))
    for metric in ("CostUSD", "TotalTokens", "Requests"):
        assert "acme-bots" in lines[metric], metric
    assert alarm_names("acme-bots") <= alarms_on_dashboard(dashboard(stack, cw))

    # When it is removed again
    report = prov.reconcile(stack.bundle, stack.targets)

    # Then its profile, alarms and widgets are gone, and everything else is as it was
    assert sorted(report.deleted) == sorted(
        ["inference profile tollgate-test-acme-bots", *(f"alarm {n}" for n in alarm_names("acme-bots"))]
    )
    assert report.created == []
    assert arns(stack) == before_arns
    assert alarms(cw) == before_alarms
    assert dashboard(stack, cw) == before_dashboard
    assert all("acme-bots" not in profiles for profiles in profiles_on_dashboard(dashboard(stack, cw)).values())


def test_changing_a_profiles_model_replaces_its_inference_profile_and_the_gateway_calls_the_new_one(
    stack: Stack, prov: Provisioner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a warm gateway container that has served acme-search (nova lite) already
    warm = stack.handler("gateway")
    assert warm(converse("acme-search", "acme", "before"))["statusCode"] == 200
    old = arns(stack)

    # When acme-search moves to Nova Pro and the change is deployed
    def to_nova_pro(config: dict[str, Any]) -> None:
        config["profiles"]["acme-search"]["model"] = "amazon.nova-pro-v1:0"

    bundle = edited(to_nova_pro)
    (tmp_path / "config.json").write_text(json.dumps(bundle.config.model_dump(mode="json")))
    shutil.copy(REPO_ROOT / "models.json", tmp_path / "models.json")
    monkeypatch.setenv("TOLLGATE_CONFIG_DIR", str(tmp_path))

    # (a container of the new deployment that starts before the provisioner has replaced the
    # profile would call Nova Lite and charge Nova Pro: it refuses with a retryable 503 instead)
    early = stack.handler("gateway")(converse("acme-search", "acme", "early"))
    assert early["statusCode"] == 503, early["body"]
    assert "being re-provisioned" in json.loads(early["body"])["message"]
    assert stack.usage.get("early") is None
    calls_before = len(stack.standin.calls)

    report = prov.reconcile(bundle, stack.targets)

    # Then its inference profile is replaced: new ARN, new model, the old one gone; others untouched
    new = arns(stack)
    assert new["acme-search"] != old["acme-search"]
    assert old["acme-search"] not in {p["arn"] for p in stack.standin.profiles()}
    assert profiles(stack)["acme-search"]["model_id"] == "amazon.nova-pro-v1:0"
    assert {k: v for k, v in new.items() if k != "acme-search"} == {k: v for k, v in old.items() if k != "acme-search"}
    assert "inference profile tollgate-test-acme-search" in report.created

    # And gateway containers of the new deployment (new config layer) call the new profile,
    # charging Nova Pro's price
    assert len(stack.standin.calls) == calls_before  # the early refusal never reached Bedrock
    stack.standin.reset()
    response = stack.handler("gateway")(converse("acme-search", "acme", "after"))
    assert response["statusCode"] == 200, response["body"]
    (call,) = stack.standin.calls
    assert call["model_id"] == new["acme-search"]
    record = stack.usage.get("after")
    assert record is not None
    assert record.model_id == "amazon.nova-pro-v1:0"
    # Nova Pro in-region: $0.80 / $3.20 per 1M input / output tokens
    assert (
        usd(record.cost_pusd)
        == (Decimal(record.input_tokens) * Decimal("0.80") + Decimal(record.output_tokens) * Decimal("3.20")) / 10**6
    )

    # And a container still running the old deployment never charges the old model's price for
    # a call through the replaced profile: it is refused and nothing is recorded
    stale = warm(converse("acme-search", "acme", "stale"))
    assert stale["statusCode"] == 503, stale["body"]  # retryable: the next read of the registry is fresh
    assert stack.usage.get("stale") is None
    assert [c["model_id"] for c in stack.standin.calls] == [new["acme-search"]]


def test_changing_a_threshold_updates_that_alarm_and_its_dashboard_line_and_the_config_snapshot(
    stack: Stack, prov: Provisioner, cw: Any
) -> None:
    before_arns, before_alarms = arns(stack), alarms(cw)
    # The configuration the stack was deployed with is kept in the artifacts bucket
    first = snapshot(stack)
    assert first["config"] == stack.bundle.config.model_dump(mode="json")
    assert first["models"] == stack.bundle.catalog.model_dump(mode="json")
    assert first["config_digest"] == config_digest(stack.bundle)

    def lower(config: dict[str, Any]) -> None:
        config["profiles"]["globex-summarizer"]["thresholds"] = {"requests_per_min_threshold": 33}

    bundle = edited(lower)
    report = prov.reconcile(bundle, stack.targets)

    assert report.created == report.deleted == []
    assert sorted(report.updated) == [
        "alarm BedrockRequestsPerMinuteAlarm-globex-summarizer",
        f"dashboard {stack.targets.dashboard_name}",
    ]
    after = alarms(cw)
    assert after["BedrockRequestsPerMinuteAlarm-globex-summarizer"]["Threshold"] == 33.0
    assert before_alarms["BedrockRequestsPerMinuteAlarm-globex-summarizer"]["Threshold"] == 60.0
    assert {n: a for n, a in after.items() if n != "BedrockRequestsPerMinuteAlarm-globex-summarizer"} == {
        n: a for n, a in before_alarms.items() if n != "BedrockRequestsPerMinuteAlarm-globex-summarizer"
    }
    assert arns(stack) == before_arns
    (requests_widget,) = [
        w for w in dashboard(stack, cw)["widgets"] if w["properties"].get("title", "").startswith("Requests")
    ]
    annotations = {a["label"]: a["value"] for a in requests_widget["properties"]["annotations"]["horizontal"]}
    assert annotations["globex-summarizer alarm"] == 33

    # config/current.json is now what was applied, and the previous configuration is kept
    current = snapshot(stack)
    assert current["config"] == bundle.config.model_dump(mode="json")
    assert current["config"]["profiles"]["globex-summarizer"]["thresholds"]["requests_per_min_threshold"] == 33
    assert current["config_digest"] == config_digest(bundle)
    assert current["changes"]["updated"] == report.updated
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=stack.targets.artifacts_bucket, Prefix="config/applied/"
    )
    history = {snapshot(stack, o["Key"])["config_digest"]: o["Key"] for o in listed["Contents"]}
    assert set(history) == {config_digest(stack.bundle), config_digest(bundle)}
    assert snapshot(stack, history[config_digest(stack.bundle)])["config"] == first["config"]


def test_an_alarm_with_one_of_our_names_that_this_stack_did_not_create_is_never_taken_over(
    stack: Stack, prov: Provisioner, cw: Any
) -> None:
    # Given someone else's alarm that happens to carry the name a new profile's alarm would get
    foreign = {
        "AlarmName": "BedrockRequestsPerMinuteAlarm-acme-bots",
        "Namespace": "SomeoneElse",
        "MetricName": "Calls",
        "Statistic": "Average",
        "Period": 300,
        "EvaluationPeriods": 3,
        "Threshold": 99.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    cw.put_metric_alarm(**foreign)
    before_arns, before_alarms = arns(stack), alarms(cw)
    bundle = edited(with_profile("acme-bots", NEW_PROFILE))

    # When the profile is added, the deploy fails with an error naming the alarm and its owner
    with pytest.raises(ProvisioningError, match=r"alarm BedrockRequestsPerMinuteAlarm-acme-bots already exists") as err:
        prov.reconcile(bundle, stack.targets)
    assert "belongs to no Tollgate stack" in str(err.value)
    # and nothing was changed: no profile created, the foreign alarm as it was
    assert arns(stack) == before_arns
    assert alarms(cw) == before_alarms

    # The same when the alarm belongs to another Tollgate stack
    alarm_arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:BedrockRequestsPerMinuteAlarm-acme-bots"
    cw.tag_resource(ResourceARN=alarm_arn, Tags=[{"Key": "tollgate:stack", "Value": "tollgate-prod"}])
    with pytest.raises(ProvisioningError, match=r"belongs to stack tollgate-prod"):
        prov.reconcile(bundle, stack.targets)
    assert alarms(cw)["BedrockRequestsPerMinuteAlarm-acme-bots"]["Namespace"] == "SomeoneElse"
    assert arns(stack) == before_arns


def test_teardown_deletes_everything_this_stack_owns_and_can_be_repeated(
    stack: Stack, prov: Provisioner, cw: Any
) -> None:
    # Given a neighbour's alarm and inference profile in the same account and region
    cw.put_metric_alarm(
        AlarmName="BedrockTokenCostAlarm-neighbour",
        Namespace="Tollgate",
        MetricName="CostUSD",
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": "tollgate:stack", "Value": "tollgate-prod"}],
    )
    bedrock = boto3.client("bedrock", region_name=REGION)
    neighbour = bedrock.create_inference_profile(
        inferenceProfileName="tollgate-prod-acme-chat",
        modelSource={"copyFrom": f"arn:aws:bedrock:{REGION}::foundation-model/amazon.nova-micro-v1:0"},
        tags=[{"key": "tollgate:stack", "value": "tollgate-prod"}, {"key": "tollgate:profile", "value": "acme-chat"}],
    )["inferenceProfileArn"]
    ours = alarms(cw).keys() - {"BedrockTokenCostAlarm-neighbour"}
    assert len(ours) == 3 * len(stack.bundle.profiles())

    report = prov.teardown(stack.targets)

    assert profiles(stack) == {}
    assert set(alarms(cw)) == {"BedrockTokenCostAlarm-neighbour"}
    with pytest.raises(cw.exceptions.ResourceNotFound):
        dashboard(stack, cw)
    assert sorted(report.deleted) == sorted(
        [f"inference profile tollgate-test-{p.name}" for p in stack.bundle.profiles()]
        + [f"alarm {n}" for n in ours]
        + [f"dashboard {stack.targets.dashboard_name}"]
    )
    assert neighbour in {p["arn"] for p in stack.standin.profiles()}
    # CloudFormation may repeat a Delete: the second one succeeds and finds nothing left
    again = prov.teardown(stack.targets)
    assert again.deleted == []
    assert set(alarms(cw)) == {"BedrockTokenCostAlarm-neighbour"}


def test_every_bedrock_call_the_provisioner_makes_is_one_its_role_allows(stack: Stack) -> None:
    """The provisioner's code and its IAM policy (template.yaml) agree, call by call.

    Every control-plane request is recorded as sent, with the profile's tags at that moment
    (its aws:ResourceTag), and evaluated against the provisioner role of the transformed
    template (tests/iam.py). Tags given to CreateInferenceProfile count as TagResource too,
    with the new profile's tags as its resource tags.
    """
    calls: list[tuple[str, dict[str, Any], dict[str, str]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        current = {p["arn"]: dict(p["tags"]) for p in stack.standin.profiles()}
        arn = params.get("resourceARN") or params.get("inferenceProfileIdentifier") or ""
        calls.append((model.name, dict(params), current.get(arn, {})))

    bedrock = aws_client("bedrock", REGION)
    bedrock.meta.events.register("provide-client-params.bedrock", record)
    settings = ProvisionerSettings.from_env()
    recorded = Provisioner(
        profiles=BedrockProfiles(bedrock),
        cloudwatch=aws_client("cloudwatch", REGION),
        sns=aws_client("sns", REGION),
        registry=DynamoProfileRegistry(aws_client("dynamodb", REGION), settings.tenant_table),
        s3=aws_client("s3", REGION),
    )

    def change_everything(config: dict[str, Any]) -> None:
        config["profiles"]["acme-bots"] = copy.deepcopy(NEW_PROFILE)  # created
        config["profiles"]["acme-chat"]["tags"] = {"Application": "Chat"}  # Environment untagged
        config["profiles"]["initech-coder"]["tags"]["Environment"] = "prod"  # retagged
        config["profiles"]["acme-search"]["model"] = "amazon.nova-pro-v1:0"  # replaced
        del config["profiles"]["globex-summarizer"]  # deleted

    report = recorded.reconcile(edited(change_everything), stack.targets)
    recorded.teardown(stack.targets)

    assert report.created
    assert report.updated
    assert report.deleted
    policy = role_statements(deployed_template(), "ProvisionerFunction")
    new_profile = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:application-inference-profile/new"
    checked = set()
    for operation, params, resource_tags in calls:
        if operation == "CreateInferenceProfile":
            tags = {t["key"]: t["value"] for t in params["tags"]}
            context = tag_context(tags, tags)
            requests = [
                ("CreateInferenceProfile", new_profile, context),
                ("CreateInferenceProfile", params["modelSource"]["copyFrom"], context),
                ("TagResource", new_profile, context),
            ]
        elif operation == "TagResource":
            tags = {t["key"]: t["value"] for t in params["tags"]}
            requests = [(operation, params["resourceARN"], tag_context(tags, resource_tags))]
        elif operation == "UntagResource":
            context = {**tag_context({}, resource_tags), "aws:TagKeys": params["tagKeys"]}
            requests = [(operation, params["resourceARN"], context)]
        elif operation == "DeleteInferenceProfile":
            requests = [(operation, params["inferenceProfileIdentifier"], tag_context({}, resource_tags))]
        elif operation == "ListTagsForResource":
            requests = [(operation, params["resourceARN"], {})]
        else:
            requests = [(operation, "*", {})]
        for action, resource, context in requests:
            assert allowed(policy, f"bedrock:{action}", resource, context), (action, resource, context)
        checked.add(operation)
    assert {"CreateInferenceProfile", "TagResource", "UntagResource", "DeleteInferenceProfile"} <= checked
