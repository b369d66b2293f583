"""GET /usage and GET /budget's service (in the gateway function, built on first use of a route)."""

from __future__ import annotations

from datetime import UTC, datetime

from tollgate.adapters import aws_client
from tollgate.adapters.budget_ledger import DynamoBudgetLedger
from tollgate.adapters.dynamodb import DynamoTrendStore
from tollgate.config import ConfigBundle
from tollgate.services.selfservice import SelfService
from tollgate.settings import SelfServiceSettings


def selfservice() -> SelfService:
    settings = SelfServiceSettings.from_env()
    dynamodb = aws_client("dynamodb", settings.region)
    bundle = ConfigBundle.load_dir(settings.config_dir)
    return SelfService(
        config=lambda: bundle,
        rollups=DynamoTrendStore(dynamodb, settings.trend_table),
        budgets=DynamoBudgetLedger(dynamodb, settings.control_table),
        clock=lambda: datetime.now(UTC),
    )
