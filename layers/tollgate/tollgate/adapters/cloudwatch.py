"""CloudWatch metric reads (the aggregator writes metrics as EMF; see tollgate.adapters.emf)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from tollgate.telemetry import MetricRef

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
