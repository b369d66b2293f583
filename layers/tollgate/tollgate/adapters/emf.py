"""Metrics out through CloudWatch Embedded Metric Format, written by Powertools.

One EMF document per (minute, tenant, profile) bucket, stamped with the minute the requests
were made in (not the processing time), under both dimension sets of tollgate.telemetry.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_lambda_powertools.metrics import EphemeralMetrics
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from tollgate.rollup import MetricKey, Totals
from tollgate.telemetry import (
    TIER_METRICS,
    UNITS,
    metric_values,
    profile_dimensions,
    tenant_dimensions,
    tier_dimensions,
)


class MetricsDisabledError(RuntimeError):
    pass


class EmfMetricsSink:
    def __init__(self, namespace: str):
        # Alarms depend on these metrics, so a switch meant for local debugging
        # (POWERTOOLS_DEV / POWERTOOLS_METRICS_DISABLED) must not silently drop them.
        if is_metrics_disabled():
            raise MetricsDisabledError(
                "Powertools metrics are disabled (POWERTOOLS_DEV or POWERTOOLS_METRICS_DISABLED); "
                "the aggregator would emit nothing and alarms would never fire"
            )
        self._namespace = namespace

    def emit(self, buckets: Mapping[MetricKey, Totals]) -> None:
        for key, totals in sorted(buckets.items()):
            # service="" keeps Powertools from adding a 'service' dimension, which would make
            # these metrics differ from the ones the alarms and the dashboard name.
            metrics = EphemeralMetrics(namespace=self._namespace, service="")
            for name, value in profile_dimensions(key.tenant_id, key.profile).items():
                metrics.add_dimension(name=name, value=value)
            metrics.add_dimensions(**tenant_dimensions(key.tenant_id))
            for metric, amount in metric_values(totals).items():
                metrics.add_metric(name=str(metric), unit=UNITS[metric], value=amount)
            metrics.set_timestamp(key.minute)
            metrics.flush_metrics()
            by_tier = EphemeralMetrics(namespace=self._namespace, service="")
            for name, value in tier_dimensions(key.tenant_id, key.tier).items():
                by_tier.add_dimension(name=name, value=value)
            values = metric_values(totals)
            for metric in TIER_METRICS:
                by_tier.add_metric(name=str(metric), unit=UNITS[metric], value=values[metric])
            by_tier.set_timestamp(key.minute)
            by_tier.flush_metrics()
