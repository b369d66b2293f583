"""Builds each function's service from its settings: the one place adapters are chosen.

Handlers call these once per container (cached); the local emulator runs the very same
handlers, so it goes through here too, with only the endpoints differing.
"""

from __future__ import annotations

from typing import Any

from tollgate.adapters import aws_client
from tollgate.adapters.bedrock import BedrockModelClient, BedrockProfiles
from tollgate.adapters.cloudwatch import CloudWatchMetricReader
from tollgate.adapters.dynamodb import (
    CachedProfileDirectory,
    DynamoKeyStore,
    DynamoProfileRegistry,
    DynamoTrendStore,
    DynamoUsageStore,
)
from tollgate.adapters.emf import EmfMetricsSink
from tollgate.adapters.lambda_layer import bundle_from_layer
from tollgate.adapters.sns import SnsPublisher
from tollgate.adapters.sqs import SqsMeteringFallback
from tollgate.budget import ClientLimits
from tollgate.config import ConfigBundle
from tollgate.notifications import Deployment
from tollgate.provisioning import Provisioner
from tollgate.services.aggregator import AggregatorService
from tollgate.services.authorizer import AuthorizerService
from tollgate.services.gateway import GatewayService
from tollgate.services.metering import MeteringRecoveryService
from tollgate.services.notifier import NotifierService
from tollgate.settings import (
    AggregatorSettings,
    AuthorizerSettings,
    GatewaySettings,
    MeteringRecoverySettings,
    NotifierSettings,
    ProvisionerSettings,
)


def authorizer_service() -> AuthorizerService:
    settings = AuthorizerSettings.from_env()
    return AuthorizerService(
        keys=DynamoKeyStore(aws_client("dynamodb", settings.region), settings.tenant_table),
        bundle=ConfigBundle.load_dir(settings.config_dir),
    )


def gateway_service() -> GatewayService:
    settings = GatewaySettings.from_env()
    budget = settings.budget  # every client's timeouts and attempts come from the one budget
    dynamodb = aws_client("dynamodb", settings.region, limits=budget.usage_write)
    bedrock = aws_client("bedrock-runtime", settings.region, limits=budget.bedrock)
    sqs = aws_client("sqs", settings.region, limits=budget.fallback_send)
    return GatewayService(
        # checked for this region: every profile priced where the stack runs, or no start at all
        bundle=ConfigBundle.load_dir(settings.config_dir, region=settings.region),
        directory=CachedProfileDirectory(
            DynamoProfileRegistry(dynamodb, settings.tenant_table), ttl_seconds=settings.directory_ttl_seconds
        ),
        model=BedrockModelClient(bedrock),
        usage=DynamoUsageStore(dynamodb, settings.usage_table),
        fallback=SqsMeteringFallback(sqs, settings.metering_fallback_queue_url),
        retention_days=settings.retention_days,
        breaker_seconds=settings.metering_breaker_seconds,
        budget=budget,
    )


def metering_recovery_service() -> MeteringRecoveryService:
    settings = MeteringRecoverySettings.from_env()
    return MeteringRecoveryService(
        usage=DynamoUsageStore(aws_client("dynamodb", settings.region), settings.usage_table)
    )


def aggregator_service() -> AggregatorService:
    settings = AggregatorSettings.from_env()
    return AggregatorService(
        trends=DynamoTrendStore(aws_client("dynamodb", settings.region), settings.trend_table),
        metrics=EmfMetricsSink(settings.namespace),
    )


#: The provisioner's control-plane calls outrun their quotas on a large config (PutMetricAlarm
#: and DeleteAlarms: 3 per second per region): adaptive retries slow the client down to the rate
#: AWS accepts, instead of failing the deploy after three throttled attempts.
CONTROL_PLANE_ATTEMPTS = 12


def control_plane_client(service: str, region: str) -> Any:
    """A client for the provisioner's CloudWatch and Bedrock control-plane calls."""
    limits = ClientLimits(connect_seconds=3, read_seconds=10, attempts=CONTROL_PLANE_ATTEMPTS)
    return aws_client(service, region, limits=limits, retry_mode="adaptive")


def provisioner(settings: ProvisionerSettings) -> Provisioner:
    return Provisioner(
        profiles=BedrockProfiles(control_plane_client("bedrock", settings.region)),
        cloudwatch=control_plane_client("cloudwatch", settings.region),
        sns=aws_client("sns", settings.region),
        registry=DynamoProfileRegistry(aws_client("dynamodb", settings.region), settings.tenant_table),
        s3=aws_client("s3", settings.region),
    )


def config_from_layer(settings: ProvisionerSettings, layer_version_arn: str) -> ConfigBundle:
    return bundle_from_layer(aws_client("lambda", settings.region), layer_version_arn)


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
