"""Builds each function's service from its settings: the one place adapters are chosen.

Handlers call these once per container (cached); the local emulator runs the very same
handlers, so it goes through here too, with only the endpoints differing.
"""

from __future__ import annotations

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
from tollgate.config import ConfigBundle
from tollgate.notifications import Deployment
from tollgate.provisioning import Provisioner
from tollgate.services.aggregator import AggregatorService
from tollgate.services.authorizer import AuthorizerService
from tollgate.services.gateway import GatewayService
from tollgate.services.notifier import NotifierService
from tollgate.settings import (
    AggregatorSettings,
    AuthorizerSettings,
    GatewaySettings,
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
    dynamodb = aws_client("dynamodb", settings.region)
    # Two attempts at most: the tenant's own client retries too, and retries multiply.
    bedrock = aws_client("bedrock-runtime", settings.region, max_attempts=2, read_timeout=settings.bedrock_read_timeout)
    return GatewayService(
        bundle=ConfigBundle.load_dir(settings.config_dir),
        directory=CachedProfileDirectory(
            DynamoProfileRegistry(dynamodb, settings.tenant_table), ttl_seconds=settings.directory_ttl_seconds
        ),
        model=BedrockModelClient(bedrock),
        usage=DynamoUsageStore(dynamodb, settings.usage_table),
        retention_days=settings.retention_days,
    )


def aggregator_service() -> AggregatorService:
    settings = AggregatorSettings.from_env()
    return AggregatorService(
        trends=DynamoTrendStore(
            aws_client("dynamodb", settings.region), settings.trend_table, marker_ttl_days=settings.marker_ttl_days
        ),
        metrics=EmfMetricsSink(settings.namespace),
    )


def provisioner(settings: ProvisionerSettings) -> Provisioner:
    return Provisioner(
        profiles=BedrockProfiles(aws_client("bedrock", settings.region)),
        cloudwatch=aws_client("cloudwatch", settings.region),
        sns=aws_client("sns", settings.region),
        registry=DynamoProfileRegistry(aws_client("dynamodb", settings.region), settings.tenant_table),
        s3=aws_client("s3", settings.region),
    )


def config_from_layer(settings: ProvisionerSettings, layer_version_arn: str) -> ConfigBundle:
    return bundle_from_layer(aws_client("lambda", settings.region), layer_version_arn)


def notifier_service() -> NotifierService:
    settings = NotifierSettings.from_env()
    # Lookups are extras in a mail that must go out: short timeouts, one retry.
    lookup = {"max_attempts": 2, "read_timeout": 5}
    return NotifierService(
        config=lambda: ConfigBundle.load_dir(settings.config_dir),
        rollups=DynamoTrendStore(aws_client("dynamodb", settings.region, **lookup), settings.trend_table),
        metrics=CloudWatchMetricReader(aws_client("cloudwatch", settings.region, **lookup)),
        admin=SnsPublisher(aws_client("sns", settings.region), settings.admin_topic_arn),
        deployment=Deployment(settings.stack_name, settings.region, settings.dashboard_url, local=settings.local),
        namespace=settings.namespace,
    )
