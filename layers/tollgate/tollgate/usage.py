"""The usage record: one per billed Bedrock call, never any prompt or answer text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer, field_validator

from tollgate.config import Context, Latency, Scope, Tier
from tollgate.money import format_usd
from tollgate.pricing import Price, TokenCounts

#: 2: the served tier, latency and context, 1-hour cache writes, the list cost (before a contract
#: discount). Records of version 1 read as default tier, standard latency and context, no 1-hour
#: writes, list cost = cost.
SCHEMA_VERSION = 2
Route = Literal["converse", "invoke"]


class UsageRecord(BaseModel):
    """What the gateway writes and the aggregator reads (through the usage table's stream).

    Validation here is also the aggregator's poison check: an image that does not parse as a
    UsageRecord is reported as a failed stream record and ends up in the on-failure queue.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    request_id: str = Field(min_length=1, max_length=128)
    tenant_id: str = Field(min_length=1)
    profile: str = Field(min_length=1)
    model_id: str = Field(min_length=1)
    scope: Scope
    route: Route
    key_id: str = Field(min_length=1)
    requested_at: AwareDatetime
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cache_read_tokens: int = Field(ge=0)
    cache_write_tokens: int = Field(ge=0)
    cache_write_1h_tokens: int = Field(default=0, ge=0)
    #: What Bedrock served the call with (the price dimensions besides model and scope).
    tier: Tier = "default"
    latency: Latency = "standard"
    context: Context = "standard"
    cost_pusd: int = Field(ge=0)
    #: The cost at list prices; cost_pusd is what is charged (after a contract discount).
    list_cost_pusd: int | None = Field(default=None, ge=0)
    price_version: str = Field(min_length=1)
    latency_ms: int = Field(ge=0)
    status: Literal["succeeded"] = "succeeded"
    stop_reason: str = ""
    expires_at: int = Field(ge=0)
    schema_version: int = SCHEMA_VERSION

    @field_validator("requested_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @field_serializer("requested_at")
    def _iso(self, value: datetime) -> str:
        return iso_utc(value)

    @classmethod
    def charge(
        cls,
        *,
        request_id: str,
        tenant_id: str,
        profile: str,
        route: Route,
        key_id: str,
        requested_at: datetime,
        tokens: TokenCounts,
        price: Price,
        latency_ms: int,
        stop_reason: str,
        retention_days: int,
    ) -> UsageRecord:
        return cls(
            request_id=request_id,
            tenant_id=tenant_id,
            profile=profile,
            model_id=price.model_id,
            scope=price.scope,
            route=route,
            key_id=key_id,
            requested_at=requested_at,
            input_tokens=tokens.input,
            output_tokens=tokens.output,
            cache_read_tokens=tokens.cache_read,
            cache_write_tokens=tokens.cache_write,
            cache_write_1h_tokens=tokens.cache_write_1h,
            tier=price.tier,
            latency=price.latency,
            context=price.context,
            cost_pusd=price.cost(tokens),
            list_cost_pusd=price.list_cost(tokens),
            price_version=price.version,
            latency_ms=latency_ms,
            stop_reason=stop_reason,
            expires_at=int((requested_at + timedelta(days=retention_days)).timestamp()),
        )

    @property
    def tokens(self) -> TokenCounts:
        return TokenCounts(
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.cache_write_1h_tokens,
        )

    @property
    def cost_usd(self) -> str:
        return format_usd(self.cost_pusd)

    def to_item(self) -> dict[str, Any]:
        """Plain attribute values for the usage table (ints, strs); the cost also as readable USD."""
        item = self.model_dump(mode="json")
        item["cost_usd"] = self.cost_usd
        item["total_tokens"] = self.tokens.total
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> UsageRecord:
        """Parse an item read back from DynamoDB (numbers arrive as Decimal)."""
        return cls.model_validate(item)


def iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, sortable as text."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
