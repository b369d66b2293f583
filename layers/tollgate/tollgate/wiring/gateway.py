"""The gateway function's service."""

from __future__ import annotations

from tollgate.adapters import aws_client
from tollgate.adapters.bedrock import BedrockModelClient
from tollgate.adapters.dynamodb import CachedProfileDirectory, DynamoProfileRegistry, DynamoUsageStore
from tollgate.adapters.ledger import DynamoLedger
from tollgate.adapters.sqs import SqsMeteringFallback
from tollgate.config import ConfigBundle
from tollgate.services.gateway import GatewayService
from tollgate.settings import GatewaySettings, SettingsError


def gateway_service() -> GatewayService:
    settings = GatewaySettings.from_env()
    budget = settings.budget  # every client's timeouts and attempts come from the one budget
    dynamodb = aws_client("dynamodb", settings.region, limits=budget.usage_write)
    bedrock = aws_client("bedrock-runtime", settings.region, limits=budget.bedrock)
    sqs = aws_client("sqs", settings.region, limits=budget.fallback_send)
    # checked for this region: every profile priced where the stack runs, or no start at all
    bundle = ConfigBundle.load_dir(settings.config_dir, region=settings.region)
    if settings.control_table is None and any(
        t.budget.active or t.rate_limits.tokens_per_min is not None for t in bundle.tenants()
    ):
        raise SettingsError("CONTROL_TABLE is not set but config.json has budgets or tokens_per_min limits")
    return GatewayService(
        bundle=bundle,
        directory=CachedProfileDirectory(
            DynamoProfileRegistry(dynamodb, settings.tenant_table), ttl_seconds=settings.directory_ttl_seconds
        ),
        model=BedrockModelClient(bedrock),
        usage=DynamoUsageStore(dynamodb, settings.usage_table),
        fallback=SqsMeteringFallback(sqs, settings.metering_fallback_queue_url),
        retention_days=settings.retention_days,
        ledger=DynamoLedger(dynamodb, settings.control_table, settings.usage_table) if settings.control_table else None,
        breaker_seconds=settings.metering_breaker_seconds,
        budget=budget,
    )
