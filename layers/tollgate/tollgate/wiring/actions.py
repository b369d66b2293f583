"""The actions function's service."""

from __future__ import annotations

from tollgate.adapters import aws_client
from tollgate.adapters.apigateway import ApiGatewayPlans, ApiGatewayTenantKeys
from tollgate.adapters.control import DynamoControl
from tollgate.adapters.sns import TenantNoticePublisher
from tollgate.config import ConfigBundle
from tollgate.ratelimits import rate_plans
from tollgate.services.actions import ActionsService
from tollgate.settings import ActionsSettings


def actions_service() -> ActionsService:
    settings = ActionsSettings.from_env()
    plans = ApiGatewayPlans(aws_client("apigateway", settings.region), settings.stack_name)
    return ActionsService(
        config=lambda: ConfigBundle.load_dir(settings.config_dir),
        control=DynamoControl(aws_client("dynamodb", settings.region), settings.control_table),
        keys=lambda bundle: ApiGatewayTenantKeys(plans, rate_plans(bundle), settings.stack_name),
        notices=TenantNoticePublisher(aws_client("sns", settings.region), settings.tenant_notice_topic_arn),
    )
