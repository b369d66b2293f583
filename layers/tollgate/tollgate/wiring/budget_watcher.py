"""The budget watcher function's service."""

from __future__ import annotations

from datetime import UTC, datetime

from tollgate.adapters import aws_client
from tollgate.adapters.budget_ledger import DynamoBudgetLedger
from tollgate.adapters.dynamodb import DynamoTrendStore
from tollgate.adapters.sns import SnsPublisher, TenantNoticePublisher
from tollgate.config import ConfigBundle
from tollgate.notifications import Deployment
from tollgate.services.budget_watcher import BudgetWatcherService
from tollgate.settings import BudgetWatcherSettings


def budget_watcher_service() -> BudgetWatcherService:
    settings = BudgetWatcherSettings.from_env()
    dynamodb = aws_client("dynamodb", settings.region)
    sns = aws_client("sns", settings.region)
    return BudgetWatcherService(
        config=lambda: ConfigBundle.load_dir(settings.config_dir),
        ledger=DynamoBudgetLedger(dynamodb, settings.control_table),
        rollups=DynamoTrendStore(dynamodb, settings.trend_table),
        admin=SnsPublisher(sns, settings.admin_topic_arn),
        tenants=TenantNoticePublisher(sns, settings.tenant_notice_topic_arn),
        deployment=Deployment(settings.stack_name, settings.region, settings.dashboard_url, local=settings.local),
        clock=lambda: datetime.now(UTC),
    )
