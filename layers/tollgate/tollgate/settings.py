"""Environment variables, parsed once into typed settings. Nothing else reads os.environ.

Each function builds its settings on first use (not at import), so tests can set the
environment per test and import a handler fresh.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tollgate.budget import GATEWAY_BUDGET, BudgetError, TimeoutBudget
from tollgate.telemetry import DEFAULT_NAMESPACE


class SettingsError(RuntimeError):
    pass


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    region: str = Field(alias="AWS_REGION", min_length=1)
    stack_name: str = Field(alias="TOLLGATE_STACK", min_length=1)
    config_dir: Path = Field(alias="TOLLGATE_CONFIG_DIR", default=Path("/opt/tollgate-config"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = dict(os.environ if environ is None else environ)
        env.setdefault("AWS_REGION", env.get("AWS_DEFAULT_REGION", ""))
        try:
            return cls.model_validate(env)
        except ValidationError as exc:
            missing = ", ".join(
                (str(err["loc"][0]) + (" is not set" if err["type"] == "missing" else f": {err['msg']}"))
                if err["loc"]
                else str(err["msg"]).removeprefix("Value error, ")  # a check across several variables
                for err in exc.errors()
            )
            raise SettingsError(
                f"{cls.__name__}: {missing} (set by template.yaml; locally by tollgate_local)"
            ) from None


class AuthorizerSettings(_Settings):
    tenant_table: str = Field(alias="TENANT_TABLE", min_length=1)


class GatewaySettings(_Settings):
    usage_table: str = Field(alias="USAGE_TABLE", min_length=1)
    tenant_table: str = Field(alias="TENANT_TABLE", min_length=1)
    retention_days: int = Field(alias="RECORD_RETENTION_DAYS", default=90, ge=1)
    #: How long a container trusts its copy of the profile directory before re-reading it.
    directory_ttl_seconds: int = Field(alias="DIRECTORY_TTL_SECONDS", default=300, ge=0)
    #: Where the gateway sends a usage record the usage table did not take (template: MeteringFallbackQueue).
    metering_fallback_queue_url: str = Field(alias="METERING_FALLBACK_QUEUE_URL", min_length=1)
    #: How long a container refuses calls (before Bedrock) after a call it could not meter at all.
    metering_breaker_seconds: float = Field(alias="METERING_BREAKER_SECONDS", default=30, ge=0)
    #: Budgets, reservations, token windows (template: ControlTable). Unset: no budget may be configured.
    control_table: str | None = Field(alias="CONTROL_TABLE", default=None, min_length=1)
    #: Only ever shortened (tests do): the default is the budget's, which fits API Gateway's timeout.
    bedrock_read_timeout: float = Field(
        alias="BEDROCK_READ_TIMEOUT_SECONDS", default=GATEWAY_BUDGET.bedrock.read_seconds, gt=0
    )

    @property
    def budget(self) -> TimeoutBudget:
        return GATEWAY_BUDGET.with_bedrock_read(self.bedrock_read_timeout)

    @model_validator(mode="after")
    def _fits_the_budget(self) -> Self:
        try:
            self.budget  # noqa: B018 - building it checks it
        except BudgetError as exc:
            raise ValueError(f"BEDROCK_READ_TIMEOUT_SECONDS={self.bedrock_read_timeout:g}: {exc}") from None
        return self


class MeteringRecoverySettings(_Settings):
    usage_table: str = Field(alias="USAGE_TABLE", min_length=1)
    control_table: str | None = Field(alias="CONTROL_TABLE", default=None, min_length=1)


class SweeperSettings(_Settings):
    control_table: str = Field(alias="CONTROL_TABLE", min_length=1)
    usage_table: str = Field(alias="USAGE_TABLE", min_length=1)


class AggregatorSettings(_Settings):
    trend_table: str = Field(alias="TREND_TABLE", min_length=1)
    namespace: str = Field(alias="METRICS_NAMESPACE", default=DEFAULT_NAMESPACE, min_length=1)


class ProvisionerSettings(_Settings):
    tenant_table: str = Field(alias="TENANT_TABLE", min_length=1)
    namespace: str = Field(alias="METRICS_NAMESPACE", default=DEFAULT_NAMESPACE, min_length=1)


class NotifierSettings(_Settings):
    #: The topic the admin's e-mail is subscribed to (the alarms' own topic is AlertTopic).
    admin_topic_arn: str = Field(alias="ADMIN_TOPIC_ARN", min_length=1)
    trend_table: str = Field(alias="TREND_TABLE", min_length=1)
    namespace: str = Field(alias="METRICS_NAMESPACE", default=DEFAULT_NAMESPACE, min_length=1)
    dashboard_url: str = Field(alias="DASHBOARD_URL", min_length=1)
    #: Set by `tollgate local`: commands in the mail then say --local instead of --stack/--region.
    local: bool = Field(alias="TOLLGATE_LOCAL", default=False)


class BudgetWatcherSettings(_Settings):
    control_table: str = Field(alias="CONTROL_TABLE", min_length=1)
    trend_table: str = Field(alias="TREND_TABLE", min_length=1)
    admin_topic_arn: str = Field(alias="ADMIN_TOPIC_ARN", min_length=1)
    #: The tenants' notice topic (contact addresses subscribed with a filter policy on tenant_id).
    tenant_notice_topic_arn: str = Field(alias="TENANT_NOTICE_TOPIC_ARN", min_length=1)
    dashboard_url: str = Field(alias="DASHBOARD_URL", min_length=1)
    local: bool = Field(alias="TOLLGATE_LOCAL", default=False)


class SelfServiceSettings(_Settings):
    """The gateway's GET /usage and GET /budget (read when a container first serves one of them)."""

    trend_table: str = Field(alias="TREND_TABLE", min_length=1)
    control_table: str = Field(alias="CONTROL_TABLE", min_length=1)


class ActionsSettings(_Settings):
    control_table: str = Field(alias="CONTROL_TABLE", min_length=1)
    tenant_notice_topic_arn: str = Field(alias="TENANT_NOTICE_TOPIC_ARN", min_length=1)
