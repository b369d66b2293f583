"""The provisioner function's service (the custom resource)."""

from __future__ import annotations

from typing import Any

from tollgate.adapters import aws_client
from tollgate.adapters.bedrock import BedrockProfiles
from tollgate.adapters.dynamodb import DynamoKeyStore, DynamoProfileRegistry
from tollgate.adapters.lambda_layer import bundle_from_layer
from tollgate.budget import ClientLimits
from tollgate.config import ConfigBundle
from tollgate.provisioning import Provisioner
from tollgate.settings import ProvisionerSettings
from tollgate.tenant_provisioning import TenantProvisioner

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


def tenant_provisioner(settings: ProvisionerSettings) -> TenantProvisioner:
    dynamodb = aws_client("dynamodb", settings.region)
    return TenantProvisioner(
        apigateway=control_plane_client("apigateway", settings.region),
        sns=aws_client("sns", settings.region),
        registry=DynamoProfileRegistry(dynamodb, settings.tenant_table),
        keys=DynamoKeyStore(dynamodb, settings.tenant_table),
    )
