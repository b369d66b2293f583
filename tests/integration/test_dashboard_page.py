"""The local dashboard page: the deployed dashboard body, drawn from the metrics moto holds."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from tollgate.config import ConfigBundle
from tollgate.dashboard import dashboard_body
from tollgate.telemetry import DIM_PROFILE, DIM_TENANT, MetricName
from tollgate_local.dashboard_page import render_dashboard, widget_metrics

REGION = "us-east-1"
NAME = "tollgate-test-tollgate"
#: A fixed clock, on a period boundary so every datapoint's bucket is known.
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudwatch", region_name=REGION)


def _body(bundle: ConfigBundle) -> dict[str, Any]:
    return dashboard_body(bundle, namespace="Tollgate", region=REGION, account_id="123456789012", stack="tollgate-test")


def _put(cloudwatch: Any, metric: MetricName, dims: dict[str, str], value: float, minutes_ago: int) -> None:
    cloudwatch.put_metric_data(
        Namespace="Tollgate",
        MetricData=[
            {
                "MetricName": str(metric),
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                "Timestamp": NOW - timedelta(minutes=minutes_ago),
                "Value": value,
            }
        ],
    )


def _sections(page: str) -> dict[str, str]:
    """Each titled widget's HTML by its (escaped) title."""
    return dict(re.findall(r"<section[^>]*><h2>(.*?)</h2>(.*?)</section>", page, re.S))


@pytest.fixture
def page(cloudwatch: Any, bundle: ConfigBundle) -> str:
    cloudwatch.put_dashboard(DashboardName=NAME, DashboardBody=json.dumps(_body(bundle)))
    for minutes_ago, cost in ((40, 0.1), (7, 0.023456)):
        _put(cloudwatch, MetricName.COST_USD, {DIM_TENANT: "acme"}, cost, minutes_ago)
        _put(cloudwatch, MetricName.COST_USD, {DIM_TENANT: "acme", DIM_PROFILE: "acme-chat"}, cost, minutes_ago)
        _put(cloudwatch, MetricName.TOTAL_TOKENS, {DIM_TENANT: "acme", DIM_PROFILE: "acme-chat"}, 1500, minutes_ago)
    _put(cloudwatch, MetricName.COST_USD, {DIM_TENANT: "globex"}, 0.5, 3)
    _put(cloudwatch, MetricName.COST_USD, {DIM_TENANT: "globex"}, 9.0, 90)  # outside the last hour
    states = {"BedrockTokenCostAlarm-acme-chat": "ALARM", "BedrockTokensPerMinuteAlarm-acme-chat": "OK"}
    return render_dashboard(cloudwatch, NAME, now=NOW, alarm_states=states)


def test_page_is_self_contained_and_refreshes(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta http-equiv="refresh" content="15">' in page
    assert not re.search(r"<script|<link|\bsrc=|@import|url\(", page)
    assert f"<h1>{NAME}</h1>" in page
    assert "2025-06-02 11:00 to 2025-06-02 12:00 UTC (last 60 minutes)" in page
    assert "generated at 2025-06-02 12:00:00 UTC" in page


def test_every_widget_is_drawn_at_its_grid_place(page: str, bundle: ConfigBundle) -> None:
    widgets = _body(bundle)["widgets"]
    sections = _sections(page)
    assert set(sections) == {w["properties"]["title"] for w in widgets if "title" in w["properties"]}
    for w in widgets:
        place = f"grid-column:{w['x'] + 1} / span {w['width']};grid-row:{w['y'] + 1} / span {w['height']}"
        assert f'style="{place}"' in page
    # the text widget's Markdown
    assert "<h2>Tollgate: Bedrock cost per tenant (tollgate-test)</h2>" in page
    assert "<code>tollgate report</code>" in page


def test_metric_widgets_show_the_last_hour(page: str) -> None:
    sections = _sections(page)
    cost = sections["Cost per tenant (USD per 5 minutes)"]
    assert cost.count("<svg") == 1
    assert 'acme <span class="legend-value">total $0.123456</span>' in cost
    assert 'globex <span class="legend-value">total $0.50</span>' in cost  # not the $9 of 90 minutes ago
    assert 'initech <span class="legend-value">no data</span>' in cost
    assert "$" in re.search(r'<text class="tick"[^>]*>([^<]*)</text>', cost).group(1)  # type: ignore[union-attr]
    for title in ("Cost per profile (USD per 5 minutes)", "Tokens per minute by profile"):
        assert sections[title].count("<svg") == 1
    assert 'acme-chat <span class="legend-value">total 3,000</span>' in sections["Tokens per minute by profile"]
    for title in ("Requests per minute by profile", "Tokens by kind per tenant (per 5 minutes)"):
        assert "<svg" not in sections[title]
        assert "no data in the last 60 minutes" in sections[title]


def test_top_spenders_are_bars_of_the_whole_range_largest_first(page: str) -> None:
    bars = _sections(page)["Top spenders (USD over the selected time range)"]
    assert re.findall(r'<span class="bar-label">([^<]*)</span>', bars) == ["globex", "acme"]
    assert re.findall(r'<span class="bar-value">([^<]*)</span>', bars) == ["$0.50", "$0.123456"]
    assert "width:100.0%" in bars


def test_alarm_states_come_from_the_evaluator(page: str, bundle: ConfigBundle) -> None:
    alarms = _sections(page)["Alarms (thresholds from config.json)"]
    pairs = re.findall(r'<span class="state (\w+)">[^<]*</span><span class="alarm-name">([^<]*)</span>', alarms)
    items = {name: css for css, name in pairs}
    assert len(items) == 3 * len(bundle.profiles())
    assert items["BedrockTokenCostAlarm-acme-chat"] == "alarm"
    assert items["BedrockTokensPerMinuteAlarm-acme-chat"] == "ok"
    assert items["BedrockRequestsPerMinuteAlarm-acme-chat"] == "unknown"
    assert f"1 of {len(items)} in ALARM" in alarms


def test_alarm_states_default_to_describe_alarms(cloudwatch: Any) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName="busy",
        Namespace="Tollgate",
        MetricName="Requests",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="busy", StateValue="ALARM", StateReason="test")
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:"
    body = {"widgets": [{"type": "alarm", "properties": {"title": "A", "alarms": [arn + "busy", arn + "gone"]}}]}
    cloudwatch.put_dashboard(DashboardName="alarms", DashboardBody=json.dumps(body))
    page = render_dashboard(cloudwatch, "alarms", now=NOW)
    assert '<span class="state alarm">ALARM</span><span class="alarm-name">busy</span>' in page
    assert '<span class="state unknown">UNKNOWN</span><span class="alarm-name">gone</span>' in page


def test_strings_from_the_body_are_escaped(cloudwatch: Any) -> None:
    _put(cloudwatch, MetricName.REQUESTS, {DIM_TENANT: "acme"}, 2, 5)
    _put(cloudwatch, MetricName.REQUESTS, {DIM_TENANT: "acme"}, 3, 10)
    evil = "<script>alert(1)</script>"
    metric = ["Tollgate", "Requests", DIM_TENANT, "acme", {"label": f"<b>{evil}"}]
    body = {
        "widgets": [
            {
                "type": "text",
                "x": 0,
                "y": 0,
                "width": 24,
                "height": 2,
                "properties": {"markdown": f"# {evil}\n**b** `{evil}`"},
            },
            {
                "type": "metric",
                "x": 0,
                "y": 2,
                "width": 8,
                "height": 6,
                "properties": {
                    "title": evil,
                    "view": "timeSeries",
                    "stacked": True,
                    "stat": "Sum",
                    "period": 60,
                    "metrics": [metric],
                },
            },
            {"type": "metric", "properties": {"title": "values", "view": "singleValue", "metrics": [metric]}},
            {
                "type": "alarm",
                "properties": {"title": "alarms", "alarms": [f"arn:aws:cloudwatch:us-east-1:1:alarm:{evil}"]},
            },
        ]
    }
    cloudwatch.put_dashboard(DashboardName=evil, DashboardBody=json.dumps(body))
    page = render_dashboard(cloudwatch, evil, now=NOW, alarm_states={evil: "<i>"})
    assert "<script" not in page
    assert "<b>" not in page
    assert "<i>" not in page
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"<h2>{escaped}</h2>" in page  # the markdown heading and the widget title
    assert f"<strong>b</strong> <code>{escaped}</code>" in page
    assert f'&lt;b&gt;{escaped} <span class="legend-value">total 5</span>' in page
    assert page.count('class="area"') == 1  # stacked
    # without setPeriodToTimeRange a single value is the latest period's, as in CloudWatch
    assert '<div class="single-value" style="color:#1f77b4">2</div>' in page
    assert '<span class="state unknown">&lt;i&gt;</span>' in page


def test_widget_metrics_lists_every_line_of_the_real_body(bundle: ConfigBundle) -> None:
    tenants = sorted(bundle.config.tenants)
    profiles = bundle.profiles()
    lines = widget_metrics(_body(bundle))
    tenant_cost = [("Tollgate", "CostUSD", {DIM_TENANT: t}, "Sum", 300) for t in tenants]

    def per_profile(metric: str, period: int) -> list[Any]:
        return [("Tollgate", metric, {DIM_TENANT: p.tenant_id, DIM_PROFILE: p.name}, "Sum", period) for p in profiles]

    kinds = ("InputTokens", "OutputTokens", "CacheReadTokens", "CacheWriteTokens")
    assert lines == [
        *tenant_cost,
        *tenant_cost,
        *per_profile("CostUSD", 300),
        *per_profile("TotalTokens", 60),
        *per_profile("Requests", 60),
        *[("Tollgate", k, {DIM_TENANT: t}, "Sum", 300) for t in tenants for k in kinds],
    ]


def test_shorthand_metric_lines_are_refused() -> None:
    body = {"widgets": [{"type": "metric", "properties": {"metrics": [["Tollgate", "CostUSD"], ["...", "acme"]]}}]}
    with pytest.raises(ValueError, match="unsupported metric line"):
        widget_metrics(body)
