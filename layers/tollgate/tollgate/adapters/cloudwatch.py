"""CloudWatch metrics: reads (the notifier), and writes for what runs outside Lambda (``tollgate redrive``).

The aggregator emits through EMF (tollgate.adapters.emf); CloudWatchMetricsSink writes the very
same datapoints (names, dimension sets, units, values from tollgate.telemetry, stamped with the
request minute) with direct calls, which is what CloudWatch Logs makes of the EMF documents.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tollgate.rollup import MetricKey, Totals
from tollgate.telemetry import (
    TIER_METRICS,
    UNITS,
    MetricName,
    MetricRef,
    metric_values,
    profile_dimensions,
    tenant_dimensions,
    tier_dimensions,
)

#: PutMetricData accepts at most 1,000 datums per call.
MAX_DATUMS = 1000


def metric_datums(buckets: Mapping[MetricKey, Totals]) -> list[dict[str, Any]]:
    datums = []
    for key, totals in sorted(buckets.items()):
        values = metric_values(totals)
        sets: list[tuple[dict[str, str], tuple[MetricName, ...]]] = [
            (profile_dimensions(key.tenant_id, key.profile), tuple(values)),
            (tenant_dimensions(key.tenant_id), tuple(values)),
            (tier_dimensions(key.tenant_id, key.tier), TIER_METRICS),
        ]
        for dimensions, metrics in sets:
            for metric in metrics:
                value = values[metric]
                datums.append(
                    {
                        "MetricName": str(metric),
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                        "Timestamp": key.minute,
                        "Value": value,
                        "Unit": UNITS[metric],
                    }
                )
    return datums


class CloudWatchMetricsSink:
    def __init__(self, client: Any, namespace: str):
        self._client = client
        self._namespace = namespace

    def emit(self, buckets: Mapping[MetricKey, Totals]) -> None:
        datums = metric_datums(buckets)
        for start in range(0, len(datums), MAX_DATUMS):
            self._client.put_metric_data(Namespace=self._namespace, MetricData=datums[start : start + MAX_DATUMS])


#: The metrics' resolution: the aggregator stamps each datapoint with its request's minute.
_PERIOD = 60


class CloudWatchMetricReader:
    def __init__(self, client: Any):
        self._client = client

    def sum(self, metric: MetricRef, start: datetime, end: datetime) -> float:
        answer = self._client.get_metric_statistics(
            Namespace=metric.namespace,
            MetricName=metric.name,
            Dimensions=[{"Name": name, "Value": value} for name, value in metric.dimensions],
            StartTime=start,
            EndTime=end,
            Period=_PERIOD,
            Statistics=["Sum"],
        )
        return math.fsum(float(point["Sum"]) for point in answer.get("Datapoints", []))
