"""Alarms and dashboard from config.json: names, thresholds, actions, plain metrics only."""

from __future__ import annotations

from tollgate.alarms import alarm_specs
from tollgate.config import ConfigBundle
from tollgate.dashboard import dashboard_body
from tollgate.provisioning import inference_profile_name, model_source_arn

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
