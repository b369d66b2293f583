"""The CloudWatch dashboard, as pure data built from config.json and tollgate.telemetry.

Only plain metrics are named (no SEARCH or metric math), so every line on the dashboard is a
metric the aggregator emits, which a test checks, and the local dashboard can draw it too.
"""

from __future__ import annotations

from typing import Any

from tollgate.alarms import alarm_arn, alarm_specs
from tollgate.config import ConfigBundle
from tollgate.telemetry import DIM_PROFILE, DIM_TENANT, MetricName

WIDTH = 24


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
    y: int,
    x: int = 0,
    width: int = 12,
    height: int = 6,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": width,
        "height": height,
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


def dashboard_body(bundle: ConfigBundle, *, namespace: str, region: str, account_id: str, stack: str) -> dict[str, Any]:
    tenants = sorted(bundle.config.tenants)
    profiles = bundle.profiles()
    header = (
        f"# Tollgate: Bedrock cost per tenant ({stack})\n"
        "Costs are on-demand list prices from models.json, charged per request by the gateway. "
        "Metrics are stamped with the time of the request. Exact totals for chargeback: "
        "`tollgate report` (reads the trend tables)."
    )
    widgets: list[dict[str, Any]] = [
        {"type": "text", "x": 0, "y": 0, "width": WIDTH, "height": 2, "properties": {"markdown": header}},
        _metric_widget(
            "Cost per tenant (USD per 5 minutes)",
            [_tenant_metric(namespace, MetricName.COST_USD, t, t) for t in tenants],
            period=300,
            region=region,
            y=2,
        ),
        _metric_widget(
            "Top spenders (USD over the selected time range)",
            [_tenant_metric(namespace, MetricName.COST_USD, t, t) for t in tenants],
            period=300,
            region=region,
            view="bar",
            y=2,
            x=12,
            setPeriodToTimeRange=True,
        ),
        _metric_widget(
            "Cost per profile (USD per 5 minutes)",
            [_profile_metric(namespace, MetricName.COST_USD, p.tenant_id, p.name) for p in profiles],
            period=300,
            region=region,
            y=8,
            annotations={
                "horizontal": [{"label": f"{p.name} alarm", "value": float(p.cost_threshold)} for p in profiles]
            },
        ),
        _metric_widget(
            "Tokens per minute by profile",
            [_profile_metric(namespace, MetricName.TOTAL_TOKENS, p.tenant_id, p.name) for p in profiles],
            period=60,
            region=region,
            y=8,
            x=12,
            annotations={
                "horizontal": [{"label": f"{p.name} alarm", "value": p.tokens_per_min_threshold} for p in profiles]
            },
        ),
        _metric_widget(
            "Requests per minute by profile",
            [_profile_metric(namespace, MetricName.REQUESTS, p.tenant_id, p.name) for p in profiles],
            period=60,
            region=region,
            y=14,
            annotations={
                "horizontal": [{"label": f"{p.name} alarm", "value": p.requests_per_min_threshold} for p in profiles]
            },
        ),
        _metric_widget(
            "Tokens by kind per tenant (per 5 minutes)",
            [
                _tenant_metric(namespace, metric, t, f"{t} {label}")
                for t in tenants
                for metric, label in (
                    (MetricName.INPUT_TOKENS, "input"),
                    (MetricName.OUTPUT_TOKENS, "output"),
                    (MetricName.CACHE_READ_TOKENS, "cache read"),
                    (MetricName.CACHE_WRITE_TOKENS, "cache write"),
                )
            ],
            period=300,
            region=region,
            y=14,
            x=12,
            stacked=True,
        ),
        {
            "type": "alarm",
            "x": 0,
            "y": 20,
            "width": WIDTH,
            "height": 2 + (len(profiles) + 2) // 3,
            "properties": {
                "title": "Alarms (thresholds from config.json)",
                "alarms": [alarm_arn(region, account_id, spec.name) for spec in alarm_specs(bundle, namespace)],
                "sortBy": "stateUpdatedTimestamp",
            },
        },
    ]
    return {"start": "-PT3H", "periodOverride": "inherit", "widgets": widgets}
