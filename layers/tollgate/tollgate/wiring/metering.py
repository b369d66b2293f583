"""The metering recovery function's service."""

from __future__ import annotations

from tollgate.adapters import aws_client
from tollgate.adapters.dynamodb import DynamoUsageStore
from tollgate.services.metering import MeteringRecoveryService
from tollgate.settings import MeteringRecoverySettings


def metering_recovery_service() -> MeteringRecoveryService:
    settings = MeteringRecoverySettings.from_env()
    return MeteringRecoveryService(
        usage=DynamoUsageStore(aws_client("dynamodb", settings.region), settings.usage_table)
    )
