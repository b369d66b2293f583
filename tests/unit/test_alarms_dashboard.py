"""Alarms and dashboard from config.json: names, thresholds, actions, plain metrics only."""

from __future__ import annotations

import pytest
from tollgate.alarms import alarm_specs
from tollgate.config import ConfigBundle
from tollgate.dashboard import DashboardLimitError, dashboard_body
from tollgate.provisioning import inference_profile_name, model_source_arn

from tests.scale import large_bundle

TOPIC = "arn:aws:sns:us-east-1:123456789012:alerts"


def test_three_alarms_per_profile_named_like_the_reference_sample(bundle: ConfigBundle) -> None:
    specs = alarm_specs(bundle, "Tollgate")
    names = {s.name for s in specs}
    for profile in bundle.profiles():
        assert {
            f"BedrockTokenCostAlarm-{profile.name}",
            f"BedrockTokensPerMinuteAlarm-{profile.name}",
            f"BedrockRequestsPerMinuteAlarm-{profile.name}",
        } <= names
    assert len(specs) == 3 * len(bundle.profiles())


def test_thresholds_are_per_profile_and_actions_fire_both_ways(bundle: ConfigBundle) -> None:
    specs = {s.name: s for s in alarm_specs(bundle, "Tollgate")}
    coder = specs["BedrockRequestsPerMinuteAlarm-initech-coder"].put_metric_alarm_args(TOPIC, "stack")
    assert (coder["Threshold"], coder["Period"], coder["Statistic"]) == (20.0, 60, "Sum")
    assert coder["AlarmActions"] == coder["OKActions"] == [TOPIC]
    assert coder["TreatMissingData"] == "notBreaching"
    assert coder["ComparisonOperator"] == "GreaterThanThreshold"
    cost = specs["BedrockTokenCostAlarm-globex-assistant"].put_metric_alarm_args(TOPIC, "stack")
    assert (cost["MetricName"], cost["Threshold"], cost["Period"]) == ("CostUSD", 20.0, 300)
    assert cost["Dimensions"] == [
        {"Name": "TenantId", "Value": "globex"},
        {"Name": "Profile", "Value": "globex-assistant"},
    ]
    tokens = specs["BedrockTokensPerMinuteAlarm-acme-chat"].put_metric_alarm_args(TOPIC, "stack")
    assert (tokens["MetricName"], tokens["Threshold"]) == ("TotalTokens", 100000.0)


def test_the_dashboard_names_plain_metrics_and_every_alarm(bundle: ConfigBundle) -> None:
    body = dashboard_body(bundle, namespace="Tollgate", region="us-east-1", account_id="123456789012", stack="s")
    metric_widgets = [w for w in body["widgets"] if w["type"] == "metric"]
    for widget in metric_widgets:
        for line in widget["properties"]["metrics"]:
            assert line[0] == "Tollgate"
            assert not any(isinstance(x, dict) and "expression" in x for x in line)
    (alarms,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert len(alarms["properties"]["alarms"]) == 3 * len(bundle.profiles())
    titles = " ".join(w["properties"]["title"] for w in metric_widgets)
    for word in ("tenant", "Top spenders", "profile", "Tokens per minute", "Requests per minute"):
        assert word in titles


def test_model_sources_by_scope_and_region() -> None:
    model = "anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert (
        model_source_arn(model, "in-region", "us-west-2", "1") == f"arn:aws:bedrock:us-west-2::foundation-model/{model}"
    )
    assert (
        model_source_arn(model, "cross-region", "eu-west-1", "1")
        == f"arn:aws:bedrock:eu-west-1:1:inference-profile/eu.{model}"
    )
    assert model_source_arn(model, "cross-region", "ap-northeast-1", "1").endswith(f"/apac.{model}")
    assert model_source_arn(model, "global", "us-east-1", "1").endswith(f"inference-profile/global.{model}")


def test_profile_names_fit_bedrocks_limit() -> None:
    assert inference_profile_name("tollgate", "acme-chat") == "tollgate-acme-chat"
    long = inference_profile_name(
        "a-very-long-stack-name-for-a-production-account", "a-profile-name-of-forty-characters-xxxxx"
    )
    assert len(long) <= 64
    assert long.endswith("-a-profile-name-of-forty-characters-xxxxx")


# CloudWatch's dashboard limits, as AWS documents them (CloudWatch service quotas, "Dashboards";
# "Dashboard Body Structure and Syntax"): widgets per dashboard, metrics per widget and per
# dashboard, alarms per alarm status widget, width of the grid.
WIDGETS, METRICS_PER_WIDGET, METRICS, ALARMS_PER_WIDGET, GRID = 500, 500, 2500, 100, 24


def test_a_dashboard_for_200_profiles_over_60_tenants_is_one_cloudwatch_accepts_and_shows_everything() -> None:
    bundle = large_bundle(profiles=200, tenants=60)
    body = dashboard_body(bundle, namespace="Tollgate", region="us-east-1", account_id="123456789012", stack="s")
    widgets = body["widgets"]
    graphs = [w for w in widgets if w["type"] == "metric"]
    alarm_widgets = [w for w in widgets if w["type"] == "alarm"]

    assert len(widgets) <= WIDGETS
    assert all(len(w["properties"]["metrics"]) <= METRICS_PER_WIDGET for w in graphs)
    assert sum(len(w["properties"]["metrics"]) for w in graphs) <= METRICS
    assert all(1 <= len(w["properties"]["alarms"]) <= ALARMS_PER_WIDGET for w in alarm_widgets)
    # every alarm is shown exactly once
    shown = [arn.rsplit(":", 1)[1] for w in alarm_widgets for arn in w["properties"]["alarms"]]
    assert sorted(shown) == sorted(s.name for s in alarm_specs(bundle, "Tollgate"))
    # every profile has its cost, tokens and requests line once, with its own threshold beside it
    for metric in ("CostUSD", "TotalTokens", "Requests"):
        lines = [line for w in graphs for line in w["properties"]["metrics"] if line[1] == metric and "Profile" in line]
        assert sorted(line[5] for line in lines) == sorted(p.name for p in bundle.profiles()), metric
    for widget in graphs:
        profiles = [line[5] for line in widget["properties"]["metrics"] if "Profile" in line]
        labels = [a["label"] for a in widget["properties"].get("annotations", {}).get("horizontal", [])]
        assert labels == [f"{p} alarm" for p in profiles]
    # and every tenant its cost and four token kinds
    tenant_lines = [line for w in graphs for line in w["properties"]["metrics"] if "Profile" not in line]
    assert {line[3] for line in tenant_lines} == set(bundle.config.tenants)
    # laid out on the grid without overlaps
    cells = set()
    for w in widgets:
        assert w["x"] + w["width"] <= GRID
        area = {(x, y) for x in range(w["x"], w["x"] + w["width"]) for y in range(w["y"], w["y"] + w["height"])}
        assert not cells & area, w["properties"].get("title")
        cells |= area


def test_a_config_too_large_for_one_dashboard_is_refused_with_what_to_change() -> None:
    bundle = large_bundle(profiles=850, tenants=10)  # 3 x 850 + 6 x 10 metrics

    with pytest.raises(
        DashboardLimitError, match=r"850 profiles over 10 tenants .* 2610 metrics .* 2500 per dashboard"
    ):
        dashboard_body(bundle, namespace="Tollgate", region="us-east-1", account_id="123456789012", stack="s")
