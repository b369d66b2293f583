"""config.json and models.json: typed models, loading and validation.

Both files are parsed once into frozen pydantic models. Every mistake is reported with the
file it is in, the place in that file (a dotted path such as ``profiles.acme-chat.scope``)
and what is wrong, and all mistakes are reported at once, so a deploy or a local start never
goes ahead with a half-valid configuration.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from tollgate.money import PRICE_DECIMALS, pico_from_usd

CONFIG_FILE = "config.json"
MODELS_FILE = "models.json"
#: Folder of the ConfigLayer that holds both files (mounted at /opt/tollgate-config in Lambda).
LAYER_CONFIG_DIR = "tollgate-config"

Scope = Literal["in-region", "cross-region", "global"]
SCOPES: tuple[Scope, ...] = ("in-region", "cross-region", "global")
PRICE_UNIT = "USD per 1M tokens"
#: A price row's source whose grade (the leading "[...]") contains this word holds figures computed
#: from a rule (such as "geo = global x 1.10"), not read from a page: `tollgate config check` lists them.
DERIVED_MARK = "derived"

#: What Bedrock can serve a call with, each priced on its own (the served values are read from
#: the Converse response: ``serviceTier.type``, ``performanceConfig.latency``; the cache-write TTL
#: from ``usage.cacheDetails``; the context from the prompt's size, see ModelEntry.long_context_above).
Tier = Literal["default", "priority", "flex", "reserved"]
TIERS: tuple[Tier, ...] = ("default", "priority", "flex", "reserved")
CacheTtl = Literal["5m", "1h"]
Latency = Literal["standard", "optimized"]
Context = Literal["standard", "long"]

#: An AWS region code (us-east-1, eu-central-2, us-gov-west-1, ap-southeast-7 ...).
REGION_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$"
RegionCode = Annotated[str, StringConstraints(pattern=REGION_PATTERN)]

#: Tag keys Tollgate puts on the resources it manages; config.json may not set them.
RESERVED_TAG_PREFIXES = ("tollgate:", "aws:")
#: AWS allows 50 tags per resource; Tollgate adds three of its own.
MAX_USER_TAGS = 47

ProfileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]
TenantId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\w\s.:/=+\-@]+$")]
TagValue = Annotated[str, StringConstraints(max_length=256, pattern=r"^[\w\s.:/=+\-@]*$")]
ModelId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+\.[A-Za-z0-9.:_-]+$")]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- config.json

#: A count in config.json is a JSON whole number: strict, so that ``true`` is not taken for 1
#: (nor "60" or 1.5 for a count).
Count = Annotated[int, Field(strict=True, gt=0)]


class ThresholdOverrides(_Strict):
    """Per-profile (or per customer tier) overrides; anything left out falls back to ``defaults``."""

    cost_threshold: Decimal | None = Field(default=None, gt=0)
    tokens_per_min_threshold: Count | None = None
    requests_per_min_threshold: Count | None = None

    def over(self, base: ThresholdOverrides) -> ThresholdOverrides:
        return ThresholdOverrides.model_validate(
            {**base.model_dump(exclude_none=True), **self.model_dump(exclude_none=True)}
        )


#: What the actions function does when a profile's BedrockTokenCostAlarm fires (lifted on OK).
OnCostAlarm = Literal["notify", "throttle", "suspend"]
BudgetMode = Literal["alert", "enforce"]
#: Percent of a budget at which an alert fires (once per period each).
AlertPercent = Annotated[int, Field(strict=True, ge=1, le=100)]


class BudgetSpec(_Strict):
    """A budget, or the part of one a layer sets (customer tier, tenant, profile): unset fields inherit."""

    monthly_usd: Decimal | None = Field(default=None, gt=0)
    daily_usd: Decimal | None = Field(default=None, gt=0)
    #: Percentages of the budget at which the admin and the tenant are told, once per period each.
    alerts: tuple[AlertPercent, ...] | None = None
    #: Also tell when the recent rate of spending projects past 100 % before the period ends.
    forecast: bool | None = None
    #: "alert": tell only; "enforce": refuse, before Bedrock is called, a request the budget cannot cover.
    mode: BudgetMode | None = None

    @field_validator("monthly_usd", "daily_usd", mode="before")
    @classmethod
    def _amount_string(cls, value: Any) -> Any:
        if isinstance(value, float | bool | int) and not isinstance(value, Decimal):
            raise ValueError(f'{_json(value)}: write an amount of USD as a string, e.g. "100.00"')
        return value

    @field_validator("alerts")
    @classmethod
    def _ascending(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None and list(value) != sorted(set(value)):
            raise ValueError(f"{list(value)}: list each percentage once, in ascending order, e.g. [50, 80, 100]")
        return value

    def over(self, base: BudgetSpec) -> BudgetSpec:
        """This layer's settings over ``base``'s."""
        return BudgetSpec.model_validate({**base.model_dump(exclude_none=True), **self.model_dump(exclude_none=True)})


class RateLimits(_Strict):
    """Per-tenant limits: requests through API Gateway's usage plans, tokens in the gateway."""

    requests_per_min: Count | None = None
    tokens_per_min: Count | None = None

    def over(self, base: RateLimits) -> RateLimits:
        return RateLimits.model_validate({**base.model_dump(exclude_none=True), **self.model_dump(exclude_none=True)})


class Defaults(_Strict):
    #: USD of token cost per profile over 5 minutes above which BedrockTokenCostAlarm fires.
    cost_threshold: Decimal = Field(gt=0)
    tokens_per_min_threshold: Count
    requests_per_min_threshold: Count
    scope: Scope = "in-region"
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    on_cost_alarm: OnCostAlarm = "notify"


class CustomerTier(_Strict):
    """A level of service a tenant is sold (free, team, enterprise ...): its defaults."""

    description: str = ""
    thresholds: ThresholdOverrides = Field(default_factory=lambda: ThresholdOverrides())
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    on_cost_alarm: OnCostAlarm | None = None


def _known_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f'{value!r} is not a time zone name: use an IANA name such as "UTC", "Europe/Paris" or '
            '"America/New_York" (budget periods start at local midnight there)'
        ) from None
    return value


def unknown_tenant(tenant: str, defined: Iterable[str]) -> str:
    return (
        f"tenant {tenant!r} is not defined under 'tenants' (defined: {', '.join(sorted(defined))}); "
        "add it there, or name one of those"
    )


class Tenant(_Strict):
    display_name: str = Field(min_length=1, max_length=128)
    #: Tags put on every inference profile of the tenant (cost allocation), under the profile's own.
    tags: dict[TagKey, TagValue] = Field(default_factory=dict)
    #: A key of customer_tiers: the tenant's defaults for thresholds, budget, rate limits, actions.
    customer_tier: str | None = None
    #: Where the tenant's budget days and months begin and end (local midnight).
    time_zone: str = "UTC"
    #: Where the tenant's own notices go (budget alerts, throttling and suspension).
    contact_email: Email | None = None
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    on_cost_alarm: OnCostAlarm | None = None

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _known_time_zone(value)

    @field_validator("customer_tier")
    @classmethod
    def _known_tier(cls, value: str | None, info: ValidationInfo) -> str | None:
        defined = (info.context or {}).get("customer_tiers")
        if value is not None and defined is not None and value not in defined:
            known = ", ".join(sorted(defined)) or "none: add customer_tiers to config.json"
            raise ValueError(f"customer tier {value!r} is not defined under 'customer_tiers' (defined: {known})")
        return value


class Allow(_Strict):
    """What a profile's tenant may ask Bedrock for beyond the defaults (each costs more, or differs).

    A request asking for anything else is refused before Bedrock is called, and not charged.
    """

    tiers: tuple[Tier, ...] = ("default",)
    cache_ttls: tuple[CacheTtl, ...] = ("5m",)
    latency: tuple[Latency, ...] = ("standard",)

    @field_validator("tiers", "cache_ttls", "latency")
    @classmethod
    def _no_repeats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"{list(value)} names an option twice; name each once")
        if not value:
            raise ValueError('name at least one option (the defaults are ["default"], ["5m"], ["standard"])')
        return value


#: Bedrock's rule for an inference profile's description (botocore: InferenceProfileDescription).
PROFILE_DESCRIPTION_PATTERN = re.compile(r"([0-9a-zA-Z:.][ _-]?)+")


class Profile(_Strict):
    tenant: TenantId
    model: ModelId
    scope: Scope | None = None
    #: The description of the profile's application inference profile.
    description: str = Field(default="", max_length=200)
    tags: dict[TagKey, TagValue] = Field(default_factory=dict)
    thresholds: ThresholdOverrides = Field(default_factory=ThresholdOverrides)
    allow: Allow = Field(default_factory=Allow)
    #: A budget of this profile alone (within the tenant's).
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    on_cost_alarm: OnCostAlarm | None = None

    @field_validator("description")
    @classmethod
    def _bedrock_accepts(cls, value: str) -> str:
        # Checked here so that a deploy does not fail halfway at CreateInferenceProfile.
        if value and not PROFILE_DESCRIPTION_PATTERN.fullmatch(value):
            raise ValueError(
                f"{value!r} is refused by Bedrock: a description may use letters, digits, ':' and '.', each followed "
                "by at most one space, '_' or '-' (no commas, no other punctuation)"
            )
        return value

    @field_validator("tenant")
    @classmethod
    def _known_tenant(cls, value: str, info: ValidationInfo) -> str:
        # The tenants of the file being read (ConfigBundle passes them), so that an unknown tenant
        # is reported together with every other mistake, not only once all else is valid.
        defined = (info.context or {}).get("tenants")
        if defined is not None and value not in defined:
            raise ValueError(unknown_tenant(value, defined))
        return value


class TollgateConfig(_Strict):
    admin_email: Email
    defaults: Defaults
    customer_tiers: dict[TenantId, CustomerTier] = Field(default_factory=dict)
    tenants: dict[TenantId, Tenant] = Field(min_length=1)
    profiles: dict[ProfileName, Profile] = Field(min_length=1)

    @model_validator(mode="after")
    def _profiles_name_known_tenants(self) -> TollgateConfig:
        # ConfigBundle reports these per profile (Profile._known_tenant); kept here so that a bare
        # TollgateConfig can never be built with dangling tenants either. All at once, each in its place.
        errors = [
            InitErrorDetails(
                type=PydanticCustomError(
                    "unknown_tenant", "{message}", {"message": unknown_tenant(p.tenant, self.tenants)}
                ),
                loc=("profiles", name, "tenant"),
                input=p.tenant,
            )
            for name, p in self.profiles.items()
            if p.tenant not in self.tenants
        ]
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


# --------------------------------------------------------------------------- models.json


def _exact_price(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    if value < 0:
        raise ValueError("a price cannot be negative")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > PRICE_DECIMALS:
        raise ValueError(
            f"{value} has more than {PRICE_DECIMALS} decimals; prices are USD per 1M tokens "
            f"(a price per 1K tokens must be multiplied by 1000)"
        )
    return value


_PRICE_FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h")

Loc = tuple[int | str, ...]


def _raise_all(title: str, problems: list[tuple[Loc, str]]) -> None:
    """Raise every problem at once, each at its own place (reported by ConfigBundle with the file)."""
    if problems:
        raise ValidationError.from_exception_data(
            title,
            [
                InitErrorDetails(
                    type=PydanticCustomError("tollgate", "{message}", {"message": message}), loc=loc, input=None
                )
                for loc, message in problems
            ],
        )


class PriceRow(_Strict):
    """The rates of one model for one way of being served, in some regions, from a date on."""

    scope: Scope
    effective_from: date
    #: Region codes or names of ``region_groups``; "*" for every region (the default).
    regions: Literal["*"] | tuple[str, ...] = "*"
    tier: Tier = "default"
    context: Context = "standard"
    latency: Latency = "standard"
    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    #: Cache writes with the 5-minute TTL (Bedrock's default TTL).
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None
    #: Where the figures come from (a URL and its date), for whoever checks them. It starts with the
    #: evidence grade in brackets ("[A]" AWS's own page, "[B]" an AWS-authored transcription of it);
    #: a grade that says "derived" marks figures computed from a rule, not read (see ``derived``).
    source: str = ""
    #: When a person last checked the figures against the AWS pricing page (absent: not checked).
    checked: date | None = None

    @field_validator(*_PRICE_FIELDS, mode="before")
    @classmethod
    def _strings_in_the_file(cls, value: Any, info: ValidationInfo) -> Any:
        # models.json writes prices as strings, read exactly. A JSON number there (0.25 or 3) is a
        # mistake a generator script makes; true is no price at all. Code may pass Decimals; never floats.
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ValueError(f'{_json(value)} is not a price; write it as a string, e.g. "0.25"')
        if isinstance(value, float) or (info.context or {}).get("file"):
            raise ValueError(
                f"{value} is a JSON number; prices are strings (USD per 1M tokens, read exactly): "
                f'write it as a string, e.g. "{value}"'
            )
        return value

    @field_validator(*_PRICE_FIELDS)
    @classmethod
    def _exact(cls, value: Decimal | None) -> Decimal | None:
        return _exact_price(value)

    @field_validator("regions", mode="before")
    @classmethod
    def _regions(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and not value:
            raise ValueError('list at least one region or group, or write "*" for every region')
        return value

    @property
    def dimensions(self) -> tuple[Scope, Tier, Context, Latency]:
        return (self.scope, self.tier, self.context, self.latency)

    @property
    def grade(self) -> str:
        """The evidence grade the source starts with ("B", "B, cache derived" ...); "" if none."""
        match = re.match(r"^\[([^\]]*)\]", self.source.strip())
        return match.group(1).strip() if match else ""

    @property
    def derived(self) -> bool:
        """Whether (some of) the figures were computed from a rule (e.g. "global x 1.10") rather than read."""
        return DERIVED_MARK in self.grade.lower()

    def describe(self) -> str:
        extras = [
            v for v, d in ((self.tier, "default"), (self.context, "standard"), (self.latency, "standard")) if v != d
        ]
        return " ".join([self.scope, *extras])


class Lifecycle(_Strict):
    """Bedrock's lifecycle dates of a model (the model lifecycle page and model cards).

    From ``end_of_life`` on, Bedrock refuses calls to the model; a model stays listed after it so
    that the records charged at its prices still name a row.
    """

    launched: date | None = None
    legacy_from: date | None = None
    end_of_life: date | None = None
    #: The model (of models.json) to move a profile to when this one is legacy or past its end of life.
    replacement: ModelId | None = None

    @model_validator(mode="after")
    def _in_order(self) -> Lifecycle:
        dates = [(n, d) for n in ("launched", "legacy_from", "end_of_life") if (d := getattr(self, n)) is not None]
        for (first, earlier), (then, later) in pairwise(dates):
            if later < earlier:
                raise ValueError(f"{then} {later} is before {first} {earlier}")
        return self


class ModelLimits(_Strict):
    """What Bedrock lets one request of a model read and write (its model card): the largest prompt
    and the largest answer. An enforced budget reserves a request's worst case before Bedrock is
    called (tollgate.ledger); these bound it where the request itself does not (no
    ``inferenceConfig.maxTokens``; content whose tokens cannot be counted beforehand). Unknown
    (absent): such a request is refused under an enforced budget, never guessed."""

    #: Most prompt tokens (input + cache read + cache write) one request may carry.
    context_window: int | None = Field(default=None, gt=0, strict=True)
    #: Most output tokens (reasoning included) one answer may have.
    max_output_tokens: int | None = Field(default=None, gt=0, strict=True)
    #: Where the figures come from, with their evidence grade, as for price rows.
    source: str = ""


class ModelEntry(_Strict):
    name: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    prompt_caching: bool = False
    #: The cache TTLs Bedrock accepts for this model (cachePoint.ttl); "5m" is the default TTL.
    cache_ttls: tuple[CacheTtl, ...] = ("5m",)
    #: The service tiers Bedrock offers for this model ("default" is Standard).
    tiers: tuple[Tier, ...] = ("default",)
    #: Fewest prompt tokens a cache checkpoint must close for Bedrock to cache it (a shorter prefix
    #: is not cached: its tokens are billed as input). Informative; absent where no source gives it.
    cache_min_tokens: int | None = Field(default=None, gt=0, strict=True)
    #: Whether latency-optimized inference (performanceConfig.latency = optimized) exists for it.
    latency_optimized: bool = False
    #: Above this many prompt tokens (input + cache read + cache write, the whole request) a call
    #: is billed at the model's long-context rates (rows with "context": "long").
    long_context_above: int | None = Field(default=None, gt=0, strict=True)
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    limits: ModelLimits = Field(default_factory=ModelLimits)
    prices: list[PriceRow] = Field(min_length=1)

    @model_validator(mode="after")
    def _rows_consistent(self) -> ModelEntry:
        problems: list[tuple[Loc, str]] = []
        if "default" not in self.tiers:
            problems.append((("tiers",), 'every model has the "default" tier; add it'))
        if "5m" not in self.cache_ttls:
            problems.append((("cache_ttls",), '"5m" is the default TTL; keep it'))
        if self.cache_min_tokens is not None and not self.prompt_caching:
            problems.append(
                (("cache_min_tokens",), "given but prompt_caching is false; remove it or set prompt_caching")
            )
        if self.long_context_above is not None and not any(r.context == "long" for r in self.prices):
            problems.append((("long_context_above",), 'no row has "context": "long"; add the long-context rates'))
        seen: dict[tuple[object, ...], int] = {}
        for index, row in enumerate(self.prices):
            for name, message in self._row_problems(row):
                problems.append((("prices", index, name) if name else ("prices", index), message))
            key = (*row.dimensions, row.regions, row.effective_from)
            if key in seen:
                problems.append(
                    (
                        ("prices", index),
                        f"the same rates as prices[{seen[key]}] ({row.describe()}, regions {row.regions}, "
                        f"effective {row.effective_from}); keep one",
                    )
                )
            seen.setdefault(key, index)
        _raise_all(type(self).__name__, problems)
        return self

    def _row_problems(self, row: PriceRow) -> list[tuple[str, str]]:
        problems = []
        if row.tier not in self.tiers:
            problems.append(("tier", f"{row.tier!r} is not among the model's tiers {list(self.tiers)}; add it there"))
        if row.context == "long" and self.long_context_above is None:
            problems.append(("context", "a long-context row needs the model's long_context_above (tokens)"))
        if row.latency == "optimized" and not self.latency_optimized:
            problems.append(("latency", "a latency-optimized row needs latency_optimized: true on the model"))
        cache = [f for f in ("cache_read", "cache_write", "cache_write_1h") if getattr(row, f) is not None]
        if not self.prompt_caching and cache:
            problems.append(
                ("", "cache prices given but prompt_caching is false; set prompt_caching to true or remove them")
            )
        if self.prompt_caching and (row.cache_read is None or row.cache_write is None):
            problems.append(
                ("", "the model supports prompt caching, so cache_read and cache_write prices are required")
            )
        if self.prompt_caching and "1h" in self.cache_ttls and row.cache_write_1h is None:
            problems.append(("cache_write_1h", 'required: the model caches for 1 hour ("1h" in cache_ttls)'))
        if "1h" not in self.cache_ttls and row.cache_write_1h is not None:
            problems.append(("cache_write_1h", 'given but "1h" is not in the model\'s cache_ttls'))
        return problems

    def scopes(self) -> set[str]:
        return {row.scope for row in self.prices}


class Discount(_Strict):
    """A contract discount on list prices, for one provider or one model, over a span of dates."""

    provider: str | None = None
    model: ModelId | None = None
    percent: Decimal = Field(gt=0, lt=100)
    effective_from: date
    #: The last day the discount applies (absent: until further notice).
    until: date | None = None
    note: str = ""

    @field_validator("percent", mode="before")
    @classmethod
    def _percent_string(cls, value: Any) -> Any:
        if isinstance(value, float | bool):
            raise ValueError(f'{_json(value)}: write the percentage as a string, e.g. "7.5"')
        return value

    @field_validator("percent")
    @classmethod
    def _percent_decimals(cls, value: Decimal) -> Decimal:
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > 4:
            raise ValueError(f"{value}: at most 4 decimals in a percentage")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> Discount:
        if (self.provider is None) == (self.model is None):
            raise ValueError('name either "provider" (e.g. "Anthropic") or "model" (a model id), not both or neither')
        if self.until is not None and self.until < self.effective_from:
            raise ValueError(f"until {self.until} is before effective_from {self.effective_from}")
        return self

    def applies(self, model_id: str, provider: str, day: date) -> bool:
        target = self.model == model_id if self.model is not None else self.provider == provider
        return target and self.effective_from <= day and (self.until is None or day <= self.until)

    @property
    def label(self) -> str:
        return f"{self.model or self.provider}-{self.percent}%@{self.effective_from.isoformat()}"


class Contract(_Strict):
    """Your organisation's terms with AWS, applied on top of the list prices everywhere."""

    discounts: list[Discount] = Field(default_factory=list)


class ModelCatalog(_Strict):
    unit: str
    #: Where the prices come from and when they were checked (free text, for humans).
    source: str = ""
    #: Names for sets of regions that price rows can use ("us": ["us-east-1", ...]).
    region_groups: dict[str, tuple[RegionCode, ...]] = Field(default_factory=dict)
    contract: Contract = Field(default_factory=Contract)
    models: dict[ModelId, ModelEntry] = Field(min_length=1)

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str) -> str:
        if value != PRICE_UNIT:
            raise ValueError(
                f"unit must be exactly {PRICE_UNIT!r}; got {value!r}. Convert prices per 1K tokens by "
                "multiplying them by 1000."
            )
        return value

    @model_validator(mode="after")
    def _regions_known(self) -> ModelCatalog:
        problems: list[tuple[Loc, str]] = []
        for model_id, entry in self.models.items():
            for index, row in enumerate(entry.prices):
                for name in () if row.regions == "*" else row.regions:
                    if name not in self.region_groups and not re.match(REGION_PATTERN, name):
                        known = ", ".join(sorted(self.region_groups)) or "none defined"
                        problems.append(
                            (
                                ("models", model_id, "prices", index, "regions"),
                                f"{name!r} is neither a region code nor one of region_groups ({known})",
                            )
                        )
        for model_id, entry in self.models.items():
            replacement = entry.lifecycle.replacement
            if replacement is not None and (replacement == model_id or replacement not in self.models):
                problems.append(
                    (
                        ("models", model_id, "lifecycle", "replacement"),
                        f"{replacement!r} is not another model of models.json; name one that is listed",
                    )
                )
        providers = {e.provider for e in self.models.values()}
        for index, discount in enumerate(self.contract.discounts):
            if discount.model is not None and discount.model not in self.models:
                problems.append((("contract", "discounts", index, "model"), f"{discount.model!r} is not in models"))
            if discount.provider is not None and discount.provider not in providers:
                problems.append(
                    (
                        ("contract", "discounts", index, "provider"),
                        f"{discount.provider!r} is no model's provider ({', '.join(sorted(providers))})",
                    )
                )
        _raise_all(type(self).__name__, problems)
        return self

    def regions_of(self, row: PriceRow) -> frozenset[str] | None:
        """The region codes a row applies to; None for every region."""
        if row.regions == "*":
            return None
        codes: set[str] = set()
        for name in row.regions:
            codes.update(self.region_groups.get(name, (name,)))
        return frozenset(codes)


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    place: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.place}: {self.message}" if self.place else f"{self.file}: {self.message}"


class ConfigError(Exception):
    """One or more problems in config.json / models.json, each with file, place and fix."""

    def __init__(self, problems: Iterable[ConfigProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field (check the spelling; see README 'config.json')",
}


@dataclass(frozen=True)
class _Threshold:
    meaning: str  # what it is, with {whose} for "a profile's" / "the profile's"
    kind: str  # what it must be
    form: str  # how it is written
    example: str


_THRESHOLDS = {
    "cost_threshold": _Threshold(
        "the token cost over 5 minutes above which {whose} BedrockTokenCostAlarm fires",
        "an amount of USD",
        "as a string",
        '"5.00"',
    ),
    "tokens_per_min_threshold": _Threshold(
        "the tokens per minute above which {whose} BedrockTokensPerMinuteAlarm fires",
        "a whole number",
        "as a JSON number",
        "100000",
    ),
    "requests_per_min_threshold": _Threshold(
        "the requests per minute above which {whose} BedrockRequestsPerMinuteAlarm fires",
        "a whole number",
        "as a JSON number",
        "60",
    ),
}


def _json(value: Any) -> str:
    """A value as it is written in the JSON file."""
    return str(value) if isinstance(value, Decimal) else json.dumps(value)


def _describe_threshold(error: Mapping[str, Any]) -> str | None:
    """What is wrong with a threshold, what it is for and how to write it; None if not about one."""
    loc = error["loc"]
    threshold = _THRESHOLDS.get(str(loc[-1])) if loc else None
    if threshold is None or loc[0] not in ("defaults", "profiles"):
        return None
    override = loc[0] == "profiles"
    meaning = threshold.meaning.format(whose="the profile's" if override else "a profile's")
    shown = _json(error.get("input"))
    if error["type"] == "greater_than":
        form = " as a string" if threshold.form == "as a string" else ""
        fix = f"write {threshold.kind} above 0{form}, e.g. {threshold.example}"
        if override:
            fix += f", or remove it to use defaults.{loc[-1]}"
        return f"{shown} is not above 0; it is {meaning}: {fix}"
    if error["type"] in ("int_type", "int_parsing", "int_from_float", "decimal_type", "decimal_parsing"):
        return f"{shown} is not {threshold.kind}; write {meaning} {threshold.form}, e.g. {threshold.example}"
    return None


def _place(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if item == "[key]":  # pydantic's marker for "the key itself is invalid"
            continue
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _describe(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind in ("missing", "extra_forbidden"):
        return str(_MESSAGES[kind])
    threshold = _describe_threshold(error)
    if threshold is not None:
        return threshold
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        value = error.get("input")
        if "{0,39}" in pattern:
            hint = "profile names are 1-40 letters, digits, '-' or '_', starting with a letter or digit"
        elif "{0,63}" in pattern:
            hint = "tenant ids are 1-64 letters, digits, '.', '-' or '_', starting with a letter or digit"
        elif "@" in pattern and "\\s" in pattern and "\\w" not in pattern:
            hint = "expected an email address such as admin@example.com"
        elif r"\.[A-Za-z0-9" in pattern:
            hint = "expected a Bedrock model id such as anthropic.claude-3-haiku-20240307-v1:0"
        else:
            hint = "tags may use letters, digits, spaces and _ . : / = + - @"
        return f"{value!r} is not valid: {hint}"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _problems_from(exc: ValidationError, file: str, prefix: tuple[int | str, ...] = ()) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors():
        loc = prefix + tuple(error["loc"])
        message = _describe(error)
        # Model validators report their own place inside the message ("profiles.x.tenant: ...").
        match = re.match(r"^([\w.\-\[\]:]+): (.*)$", message, re.S)
        if match and not loc and "." in match.group(1):
            problems.append(ConfigProblem(file, match.group(1), match.group(2)))
            continue
        if match and match.group(1).startswith("prices["):
            problems.append(ConfigProblem(file, _place(loc) + "." + match.group(1), match.group(2)))
            continue
        problems.append(ConfigProblem(file, _place(loc), message))
    return problems


# --------------------------------------------------------------------------- loading


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def parse_json(text: str, file: str) -> Any:
    """Parse JSON exactly: numbers with a fraction become Decimal, duplicate keys are an error."""
    try:
        return json.loads(text, parse_float=Decimal, object_pairs_hook=_reject_duplicates)
    except _DuplicateKey as dup:
        raise ConfigError(
            [ConfigProblem(file, "", f"the key {dup.key!r} appears twice in one object; keep only one")]
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError([ConfigProblem(file, f"line {exc.lineno} column {exc.colno}", exc.msg)]) from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(path.name, "", f"file not found at {path}")]) from None


DEFAULT_ALERTS: tuple[int, ...] = (50, 80, 100)


@dataclass(frozen=True)
class Budget:
    """An effective budget: limits in pico-dollars (None: no limit of that period)."""

    monthly_pusd: int | None = None
    daily_pusd: int | None = None
    alerts: tuple[int, ...] = DEFAULT_ALERTS
    forecast: bool = True
    mode: BudgetMode = "alert"

    @classmethod
    def of(cls, spec: BudgetSpec) -> Budget:
        return cls(
            monthly_pusd=pico_from_usd(spec.monthly_usd) if spec.monthly_usd is not None else None,
            daily_pusd=pico_from_usd(spec.daily_usd) if spec.daily_usd is not None else None,
            alerts=spec.alerts if spec.alerts is not None else DEFAULT_ALERTS,
            forecast=spec.forecast if spec.forecast is not None else True,
            mode=spec.mode or "alert",
        )

    @property
    def active(self) -> bool:
        return self.monthly_pusd is not None or self.daily_pusd is not None

    @property
    def enforced(self) -> bool:
        return self.active and self.mode == "enforce"


@dataclass(frozen=True)
class Limits:
    """A tenant's effective rate limits (None: no limit)."""

    requests_per_min: int | None = None
    tokens_per_min: int | None = None


@dataclass(frozen=True)
class ResolvedTenant:
    """A tenant with its customer tier's and the defaults' settings applied."""

    tenant_id: str
    display_name: str
    customer_tier: str | None
    time_zone: str
    contact_email: str | None
    budget: Budget
    rate_limits: Limits
    on_cost_alarm: OnCostAlarm


@dataclass(frozen=True)
class ResolvedProfile:
    """A profile with defaults applied and tags merged: what the rest of Tollgate works with."""

    name: str
    tenant_id: str
    model_id: str
    scope: Scope
    description: str
    tags: Mapping[str, str]
    cost_threshold: Decimal
    tokens_per_min_threshold: int
    requests_per_min_threshold: int
    allow: Allow = field(default_factory=Allow)
    #: The profile's own budget (inactive unless the profile sets a limit), within its tenant's.
    budget: Budget = field(default_factory=Budget)
    on_cost_alarm: OnCostAlarm = "notify"


@dataclass(frozen=True)
class ConfigBundle:
    """config.json and models.json, validated against each other."""

    config: TollgateConfig
    catalog: ModelCatalog
    #: The region the stack runs in, whose prices apply (None: not checked for a region).
    region: str | None = None

    @classmethod
    def from_texts(
        cls,
        config_text: str,
        models_text: str,
        *,
        config_file: str = CONFIG_FILE,
        models_file: str = MODELS_FILE,
        region: str | None = None,
    ) -> ConfigBundle:
        problems: list[ConfigProblem] = []
        config: TollgateConfig | None = None
        catalog: ModelCatalog | None = None
        for text, file, model in ((config_text, config_file, TollgateConfig), (models_text, models_file, ModelCatalog)):
            try:
                raw = parse_json(text, file)
                tenants = raw.get("tenants") if isinstance(raw, dict) else None
                defined = set(tenants) if isinstance(tenants, dict) else None
                tiers = raw.get("customer_tiers", {}) if isinstance(raw, dict) else None
                known_tiers = set(tiers) if isinstance(tiers, dict) else None
                parsed = model.model_validate(
                    raw, context={"file": file, "tenants": defined, "customer_tiers": known_tiers}
                )
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            except ValidationError as exc:
                problems.extend(_problems_from(exc, file))
                continue
            if isinstance(parsed, TollgateConfig):
                config = parsed
            else:
                catalog = parsed
        if config is not None and catalog is not None:
            problems.extend(_cross_check(config, catalog, config_file, models_file))
            if region is not None:
                problems.extend(_region_check(config, catalog, region, config_file, models_file))
        if problems or config is None or catalog is None:
            raise ConfigError(problems)
        return cls(config=config, catalog=catalog, region=region)

    @classmethod
    def load(cls, config_path: Path, models_path: Path, *, region: str | None = None) -> ConfigBundle:
        return cls.from_texts(
            _read(config_path),
            _read(models_path),
            config_file=config_path.name,
            models_file=models_path.name,
            region=region,
        )

    @classmethod
    def load_dir(cls, directory: Path, *, region: str | None = None) -> ConfigBundle:
        return cls.load(directory / CONFIG_FILE, directory / MODELS_FILE, region=region)

    def in_region(self, region: str) -> ConfigBundle:
        """This configuration checked for a stack in ``region``: every profile priced there."""
        problems = _region_check(self.config, self.catalog, region, CONFIG_FILE, MODELS_FILE)
        if problems:
            raise ConfigError(problems)
        return ConfigBundle(config=self.config, catalog=self.catalog, region=region)

    # -- views ---------------------------------------------------------------------------

    def profile(self, name: str) -> ResolvedProfile | None:
        raw = self.config.profiles.get(name)
        return None if raw is None else self._resolve(name, raw)

    def profiles(self) -> list[ResolvedProfile]:
        return [self._resolve(name, raw) for name, raw in sorted(self.config.profiles.items())]

    def profiles_of(self, tenant_id: str) -> list[ResolvedProfile]:
        return [p for p in self.profiles() if p.tenant_id == tenant_id]

    def tenant(self, tenant_id: str) -> ResolvedTenant | None:
        raw = self.config.tenants.get(tenant_id)
        if raw is None:
            return None
        defaults = self.config.defaults
        tier = self._customer_tier(raw)
        return ResolvedTenant(
            tenant_id=tenant_id,
            display_name=raw.display_name,
            customer_tier=raw.customer_tier,
            time_zone=raw.time_zone,
            contact_email=raw.contact_email,
            budget=Budget.of(raw.budget.over(tier.budget.over(defaults.budget))),
            rate_limits=Limits(**raw.rate_limits.over(tier.rate_limits.over(defaults.rate_limits)).model_dump()),
            on_cost_alarm=raw.on_cost_alarm or tier.on_cost_alarm or defaults.on_cost_alarm,
        )

    def tenants(self) -> list[ResolvedTenant]:
        return [t for t in (self.tenant(tenant_id) for tenant_id in sorted(self.config.tenants)) if t is not None]

    def _customer_tier(self, tenant: Tenant) -> CustomerTier:
        return self.config.customer_tiers.get(tenant.customer_tier or "", CustomerTier())

    def _resolve(self, name: str, raw: Profile) -> ResolvedProfile:
        defaults = self.config.defaults
        tenant = self.config.tenants[raw.tenant]
        tier = self._customer_tier(tenant)
        overrides = raw.thresholds.over(tier.thresholds)
        tenant_budget = tenant.budget.over(tier.budget.over(defaults.budget))
        # A profile budget has only the limits the profile sets; alerts and mode as the tenant's.
        own_limits = BudgetSpec(monthly_usd=raw.budget.monthly_usd, daily_usd=raw.budget.daily_usd)
        profile_budget = raw.budget.over(tenant_budget.model_copy(update={"monthly_usd": None, "daily_usd": None}))
        return ResolvedProfile(
            name=name,
            tenant_id=raw.tenant,
            model_id=raw.model,
            scope=raw.scope or defaults.scope,
            description=raw.description,
            tags={**tenant.tags, **raw.tags},
            cost_threshold=overrides.cost_threshold or defaults.cost_threshold,
            tokens_per_min_threshold=overrides.tokens_per_min_threshold or defaults.tokens_per_min_threshold,
            requests_per_min_threshold=overrides.requests_per_min_threshold or defaults.requests_per_min_threshold,
            allow=raw.allow,
            budget=Budget.of(profile_budget) if own_limits.monthly_usd or own_limits.daily_usd else Budget(),
            on_cost_alarm=raw.on_cost_alarm or tenant.on_cost_alarm or tier.on_cost_alarm or defaults.on_cost_alarm,
        )


def _cross_check(
    config: TollgateConfig, catalog: ModelCatalog, config_file: str, models_file: str
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for tenant_id, tenant in config.tenants.items():
        problems.extend(_check_tags(tenant.tags, f"tenants.{tenant_id}.tags", config_file))
    for name, profile in config.profiles.items():
        place = f"profiles.{name}"
        model = catalog.models.get(profile.model)
        scope = profile.scope or config.defaults.scope
        if model is None:
            problems.append(
                ConfigProblem(
                    config_file,
                    f"{place}.model",
                    f"model {profile.model!r} has no prices in {models_file}; add it there or pick one of: "
                    + ", ".join(sorted(catalog.models)),
                )
            )
        elif scope not in model.scopes():
            problems.append(
                ConfigProblem(
                    config_file,
                    f"{place}.scope",
                    f"{models_file} has no {scope!r} price for {profile.model}; priced scopes: "
                    + ", ".join(sorted(model.scopes())),
                )
            )
        if model is not None:
            problems.extend(_allowance_problems(profile, model, place, config_file, models_file))
        problems.extend(_check_tags(profile.tags, f"{place}.tags", config_file))
        merged = {**config.tenants[profile.tenant].tags, **profile.tags} if profile.tenant in config.tenants else {}
        if len(merged) > MAX_USER_TAGS:
            problems.append(
                ConfigProblem(
                    config_file, f"{place}.tags", f"{len(merged)} tags with the tenant's; at most {MAX_USER_TAGS}"
                )
            )
    return problems


def _allowance_problems(
    profile: Profile, model: ModelEntry, place: str, config_file: str, models_file: str
) -> list[ConfigProblem]:
    """What a profile allows that Bedrock does not offer for its model (in any region)."""
    problems: list[ConfigProblem] = []
    allow = profile.allow
    for tier in allow.tiers:
        if tier not in model.tiers:
            problems.append(
                ConfigProblem(
                    config_file,
                    f"{place}.allow.tiers",
                    f"Bedrock offers {profile.model} in the tiers {list(model.tiers)} ({models_file}), not {tier!r}",
                )
            )
    if "1h" in allow.cache_ttls and ("1h" not in model.cache_ttls or not model.prompt_caching):
        problems.append(
            ConfigProblem(
                config_file, f"{place}.allow.cache_ttls", f"{profile.model} has no 1-hour cache ({models_file})"
            )
        )
    if "optimized" in allow.latency and not model.latency_optimized:
        problems.append(
            ConfigProblem(
                config_file,
                f"{place}.allow.latency",
                f"{profile.model} has no latency-optimized inference ({models_file})",
            )
        )
    return problems


def served_ways(allow: Allow, model: ModelEntry) -> list[tuple[Tier, Context, Latency]]:
    """Every (tier, context, latency) a profile's call may be served and charged with.

    Each allowed tier at standard latency, and each allowed latency at the default tier (a request
    combining two non-defaults is refused at the gateway unless that is priced too); each in the
    standard context and, for a model with long-context rates, the long one.
    """
    contexts: tuple[Context, ...] = ("standard", "long") if model.long_context_above is not None else ("standard",)
    ways: set[tuple[Tier, Latency]] = {(t, "standard") for t in allow.tiers if t in model.tiers} | {
        ("default", x) for x in allow.latency if x == "standard" or model.latency_optimized
    }
    return [(tier, context, latency) for tier, latency in sorted(ways) for context in contexts]


def priced_here(catalog: ModelCatalog, row: PriceRow, region: str) -> bool:
    regions = catalog.regions_of(row)
    return regions is None or region in regions


def _region_check(
    config: TollgateConfig, catalog: ModelCatalog, region: str, config_file: str, models_file: str
) -> list[ConfigProblem]:
    """Every way a profile's tenant may be served has a price where the stack runs."""
    problems: list[ConfigProblem] = []
    for name, profile in config.profiles.items():
        model = catalog.models.get(profile.model)
        if model is None:
            continue  # reported by _cross_check
        scope = profile.scope or config.defaults.scope
        place = f"profiles.{name}"
        here = [r for r in model.prices if r.scope == scope and priced_here(catalog, r, region)]
        for way_tier, context, way_latency in served_ways(profile.allow, model):
            if not any(r.dimensions == (scope, way_tier, context, way_latency) for r in here):
                way = (way_tier, context, way_latency)
                wanted = scope if way == ("default", "standard", "standard") else f"{scope} {'/'.join(way)}"
                elsewhere = sorted(
                    {
                        "every region" if catalog.regions_of(r) is None else ",".join(r.regions)
                        for r in model.prices
                        if r.dimensions == (scope, way_tier, context, way_latency)
                    }
                )
                problems.append(
                    ConfigProblem(
                        config_file,
                        place,
                        f"{models_file} has no {wanted} price for {profile.model} in {region}"
                        + (f" (priced in: {'; '.join(elsewhere)})" if elsewhere else "")
                        + f": add a row to models.{profile.model}.prices whose regions include {region}, "
                        "or deploy the stack in a priced region",
                    )
                )
    return problems


def _check_tags(tags: Mapping[str, str], place: str, file: str) -> list[ConfigProblem]:
    return [
        ConfigProblem(file, f"{place}.{key}", f"tag keys starting with {prefix!r} are reserved; rename the tag")
        for key in tags
        for prefix in RESERVED_TAG_PREFIXES
        if key.lower().startswith(prefix)
    ]
