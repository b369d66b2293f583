"""The notifier function's service."""

from __future__ import annotations

from tollgate.adapters import aws_client
from tollgate.adapters.cloudwatch import CloudWatchMetricReader
from tollgate.adapters.dynamodb import DynamoTrendStore
from tollgate.adapters.sns import SnsPublisher
from tollgate.budget import ClientLimits
from tollgate.config import ConfigBundle
from tollgate.notifications import Deployment
from tollgate.services.notifier import NotifierService
from tollgate.settings import NotifierSettings


def notifier_service() -> NotifierService:
    settings = NotifierSettings.from_env()
    # Lookups are extras in a mail that must go out: short timeouts, one retry.
    lookup = ClientLimits(connect_seconds=3, read_seconds=5, attempts=2)
    return NotifierService(
        config=lambda: ConfigBundle.load_dir(settings.config_dir),
        rollups=DynamoTrendStore(aws_client("dynamodb", settings.region, limits=lookup), settings.trend_table),
        metrics=CloudWatchMetricReader(aws_client("cloudwatch", settings.region, limits=lookup)),
        admin=SnsPublisher(aws_client("sns", settings.region), settings.admin_topic_arn),
        deployment=Deployment(settings.stack_name, settings.region, settings.dashboard_url, local=settings.local),
        namespace=settings.namespace,
    )
