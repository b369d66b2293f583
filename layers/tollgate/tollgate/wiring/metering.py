"""The metering recovery function's service."""

from __future__ import annotations

from tollgate.adapters import aws_client
from tollgate.adapters.dynamodb import DynamoUsageStore
from tollgate.adapters.ledger import DynamoLedger
from tollgate.config import ConfigBundle
from tollgate.services.metering import MeteringRecoveryService
from tollgate.settings import MeteringRecoverySettings


def metering_recovery_service() -> MeteringRecoveryService:
    settings = MeteringRecoverySettings.from_env()
    dynamodb = aws_client("dynamodb", settings.region)
    return MeteringRecoveryService(
        usage=DynamoUsageStore(dynamodb, settings.usage_table),
        bundle=ConfigBundle.load_dir(settings.config_dir),
        ledger=DynamoLedger(dynamodb, settings.control_table, settings.usage_table) if settings.control_table else None,
    )
