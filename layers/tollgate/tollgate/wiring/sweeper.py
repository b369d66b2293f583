"""The sweeper function's service."""

from __future__ import annotations

from tollgate.adapters import aws_client
from tollgate.adapters.ledger import DynamoLedger
from tollgate.services.sweeper import SweeperService
from tollgate.settings import SweeperSettings


def sweeper_service() -> SweeperService:
    settings = SweeperSettings.from_env()
    dynamodb = aws_client("dynamodb", settings.region)
    return SweeperService(ledger=DynamoLedger(dynamodb, settings.control_table, settings.usage_table))
