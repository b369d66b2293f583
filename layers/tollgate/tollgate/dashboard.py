"""The CloudWatch dashboard, as pure data built from config.json and tollgate.telemetry.

Only plain metrics are named (no SEARCH or metric math), so every line on the dashboard is a
metric the aggregator emits, which a test checks, and the local dashboard can draw it too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tollgate.alarms import alarm_arn, alarm_specs
from tollgate.config import ConfigBundle
from tollgate.telemetry import DIM_PROFILE, DIM_TENANT, MetricName

WIDTH = 24
HALF = WIDTH // 2
GRAPH_HEIGHT = 6

# CloudWatch's limits on a dashboard, none of which can be raised:
#: widgets per dashboard ("Dashboard Body Structure and Syntax", Overall Structure);
MAX_WIDGETS = 500
#: metrics per widget and per dashboard (CloudWatch service quotas, "Dashboards");
MAX_METRICS_PER_WIDGET = 500
MAX_METRICS_PER_DASHBOARD = 2500
#: alarms in one alarm status widget ("Dashboard Body Structure and Syntax": 1-100 ARNs);
MAX_ALARMS_PER_WIDGET = 100
#: a widget's height in grid units (same page: 1-1000).
MAX_WIDGET_HEIGHT = 1000
#: Lines per graph, chosen well under MAX_METRICS_PER_WIDGET so that a graph stays readable:
#: more profiles (or tenants) than this make several graphs of the same metric.
LINES_PER_GRAPH = 100
#: Alarms per row of an alarm status widget at full width (the height grows with the rows).
ALARMS_PER_ROW = 9


class DashboardLimitError(ValueError):
    """config.json asks for a dashboard CloudWatch would refuse; the message says what to change."""


def _tenant_metric(namespace: str, metric: MetricName, tenant: str, label: str) -> list[Any]:
    return [namespace, str(metric), DIM_TENANT, tenant, {"label": label}]


def _profile_metric(namespace: str, metric: MetricName, tenant: str, profile: str) -> list[Any]:
    return [namespace, str(metric), DIM_TENANT, tenant, DIM_PROFILE, profile, {"label": profile}]


def _metric_widget(
    title: str,
    metrics: list[list[Any]],
    *,
    period: int,
    region: str,
    view: str = "timeSeries",
    stacked: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A graph, placed later by ``_layout``."""
    return {
        "type": "metric",
        "width": HALF,
        "height": GRAPH_HEIGHT,
        "properties": {
            "title": title,
            "view": view,
            "stacked": stacked,
            "region": region,
            "stat": "Sum",
            "period": period,
            "metrics": metrics,
            **extra,
        },
    }


def _graphs(
    title: str,
    groups: Sequence[Sequence[list[Any]]],
    annotations: Sequence[dict[str, Any]] | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """One graph of ``groups`` (the lines of a tenant or profile, kept together), or several.

    Each graph holds at most LINES_PER_GRAPH lines; ``annotations`` (one per group, or none)
    go with their group's graph.
    """
    chunks: list[list[int]] = [[]]
    lines = 0
    for index, group in enumerate(groups):
        if chunks[-1] and lines + len(group) > LINES_PER_GRAPH:
            chunks.append([])
            lines = 0
        chunks[-1].append(index)
        lines += len(group)
    widgets = []
    for number, chunk in enumerate(chunks, 1):
        extra = dict(options)
        if annotations is not None:
            extra["annotations"] = {"horizontal": [annotations[i] for i in chunk]}
        suffix = f" ({number} of {len(chunks)})" if len(chunks) > 1 else ""
        widgets.append(_metric_widget(title + suffix, [line for i in chunk for line in groups[i]], **extra))
    return widgets


def _alarm_widgets(arns: Sequence[str]) -> list[dict[str, Any]]:
    """Alarm status widgets of at most MAX_ALARMS_PER_WIDGET alarms each, full width."""
    count = max(1, math.ceil(len(arns) / MAX_ALARMS_PER_WIDGET))
    widgets = []
    for number in range(count):
        chunk = list(arns[number * MAX_ALARMS_PER_WIDGET : (number + 1) * MAX_ALARMS_PER_WIDGET])
        suffix = f" ({number + 1} of {count})" if count > 1 else ""
        widgets.append(
            {
                "type": "alarm",
                "width": WIDTH,
                "height": 2 + math.ceil(len(chunk) / ALARMS_PER_ROW),
                "properties": {
                    "title": f"Alarms (thresholds from config.json){suffix}",
                    "alarms": chunk,
                    "sortBy": "stateUpdatedTimestamp",
                },
            }
        )
    return widgets


def _layout(widgets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Place widgets left to right, top to bottom: half-width graphs two to a row."""
    x = y = row_height = 0
    for widget in widgets:
        if x + widget["width"] > WIDTH:
            x, y, row_height = 0, y + row_height, 0
        widget["x"], widget["y"] = x, y
        x += widget["width"]
        row_height = max(row_height, widget["height"])
    return widgets


def check_limits(body: dict[str, Any], profiles: int, tenants: int) -> None:
    """Raise DashboardLimitError if CloudWatch would refuse ``body`` (see the limits above)."""
    widgets = body["widgets"]
    metrics = [len(w["properties"].get("metrics", [])) for w in widgets]
    problems = []
    if len(widgets) > MAX_WIDGETS:
        problems.append(f"{len(widgets)} widgets (CloudWatch allows {MAX_WIDGETS})")
    if sum(metrics) > MAX_METRICS_PER_DASHBOARD:
        problems.append(f"{sum(metrics)} metrics (CloudWatch allows {MAX_METRICS_PER_DASHBOARD} per dashboard)")
    if max(metrics, default=0) > MAX_METRICS_PER_WIDGET:
        problems.append(f"a graph of {max(metrics)} metrics (CloudWatch allows {MAX_METRICS_PER_WIDGET})")
    alarms = [len(w["properties"]["alarms"]) for w in widgets if w["type"] == "alarm"]
    if max(alarms, default=0) > MAX_ALARMS_PER_WIDGET:
        problems.append(f"an alarm widget of {max(alarms)} alarms (CloudWatch allows {MAX_ALARMS_PER_WIDGET})")
    if max((w["height"] for w in widgets), default=0) > MAX_WIDGET_HEIGHT:
        problems.append(f"a widget {max(w['height'] for w in widgets)} units high (at most {MAX_WIDGET_HEIGHT})")
    if problems:
        raise DashboardLimitError(
            f"config.json: {profiles} profiles over {tenants} tenants make a dashboard of {', '.join(problems)}; "
            "the dashboard shows 3 metrics per profile and 6 per tenant: split the profiles over more stacks"
        )


def dashboard_body(bundle: ConfigBundle, *, namespace: str, region: str, account_id: str, stack: str) -> dict[str, Any]:
    tenants = sorted(bundle.config.tenants)
    profiles = bundle.profiles()
    header_text = (
        f"# Tollgate: Bedrock cost per tenant ({stack})\n"
        "Costs are on-demand list prices from models.json, charged per request by the gateway. "
        "Metrics are stamped with the time of the request. Exact totals for chargeback: "
        "`tollgate report` (reads the trend tables)."
    )
    header = {"type": "text", "width": WIDTH, "height": 2, "properties": {"markdown": header_text}}
    per_tenant_cost = [[_tenant_metric(namespace, MetricName.COST_USD, t, t)] for t in tenants]

    def per_profile(metric: MetricName) -> list[list[list[Any]]]:
        return [[_profile_metric(namespace, metric, p.tenant_id, p.name)] for p in profiles]

    widgets: list[dict[str, Any]] = [
        header,
        *_graphs("Cost per tenant (USD per 5 minutes)", per_tenant_cost, period=300, region=region),
        *_graphs(
            "Top spenders (USD over the selected time range)",
            per_tenant_cost,
            period=300,
            region=region,
            view="bar",
            setPeriodToTimeRange=True,
        ),
        *_graphs(
            "Cost per profile (USD per 5 minutes)",
            per_profile(MetricName.COST_USD),
            [{"label": f"{p.name} alarm", "value": float(p.cost_threshold)} for p in profiles],
            period=300,
            region=region,
        ),
        *_graphs(
            "Tokens per minute by profile",
            per_profile(MetricName.TOTAL_TOKENS),
            [{"label": f"{p.name} alarm", "value": p.tokens_per_min_threshold} for p in profiles],
            period=60,
            region=region,
        ),
        *_graphs(
            "Requests per minute by profile",
            per_profile(MetricName.REQUESTS),
            [{"label": f"{p.name} alarm", "value": p.requests_per_min_threshold} for p in profiles],
            period=60,
            region=region,
        ),
        *_graphs(
            "Tokens by kind per tenant (per 5 minutes)",
            [
                [
                    _tenant_metric(namespace, metric, t, f"{t} {label}")
                    for metric, label in (
                        (MetricName.INPUT_TOKENS, "input"),
                        (MetricName.OUTPUT_TOKENS, "output"),
                        (MetricName.CACHE_READ_TOKENS, "cache read"),
                        (MetricName.CACHE_WRITE_TOKENS, "cache write"),
                    )
                ]
                for t in tenants
            ],
            period=300,
            region=region,
            stacked=True,
        ),
        *_alarm_widgets([alarm_arn(region, account_id, spec.name) for spec in alarm_specs(bundle, namespace)]),
    ]
    body = {"start": "-PT3H", "periodOverride": "inherit", "widgets": _layout(widgets)}
    check_limits(body, len(profiles), len(tenants))
    return body
