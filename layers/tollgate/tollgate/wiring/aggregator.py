"""The aggregator function's service."""

from __future__ import annotations

from tollgate.adapters import aws_client
from tollgate.adapters.dynamodb import DynamoTrendStore
from tollgate.adapters.emf import EmfMetricsSink
from tollgate.services.aggregator import AggregatorService
from tollgate.settings import AggregatorSettings


def aggregator_service() -> AggregatorService:
    settings = AggregatorSettings.from_env()
    return AggregatorService(
        trends=DynamoTrendStore(aws_client("dynamodb", settings.region), settings.trend_table),
        metrics=EmfMetricsSink(settings.namespace),
    )
