"""Requests per minute per tenant, as API Gateway usage plans: which plans, which tenant on which. Pure code.

API Gateway meters a request against a usage plan through the API key the authorizer names
(``usageIdentifierKey``; the API's key source is AUTHORIZER, so tenants never send that key).
One key per tenant; one plan per customer tier with a ``requests_per_min``, one per tenant whose
own ``requests_per_min`` differs from its tier's, a ``default`` plan for tenants with no limit
(no throttle of its own: the stage's rate limits apply, ApiRateLimit/ApiBurstLimit), and the
``throttled`` plan the actions function moves a tenant to when a cost alarm throttles it.

A plan's throttle is a token bucket: ``rate`` tokens a second flow into a bucket of ``burst``
tokens; each request takes one, and a request that finds the bucket empty is refused (429
ThrottlingException, by API Gateway, before the authorizer's tenant reaches the gateway: nothing
is charged). As the design says, rate = rpm / 60 per second and burst = rpm. What that allows:
sustained, ``requests_per_min`` a minute; after a quiet minute, up to ``requests_per_min`` at
once; and in any one 60 s window at most 2 x ``requests_per_min`` (a full bucket, then a
minute of refill). A smaller bucket would hold a minute closer to the limit but refuse parallel
clients sooner: the limit is a steady rate, not a hard count per calendar minute. API Gateway's
own buckets are approximate (AWS calls usage-plan throttling best effort).

Each plan has a throttled twin (``<key>:throttled``, a tenth of the rate, at least one request a
minute): the actions function moves a tenant's key there when a cost alarm throttles it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tollgate.alarms import STACK_TAG as ALARMS_STACK_TAG
from tollgate.config import ConfigBundle

#: A throttled plan allows this fraction (1/n) of its tier's requests per minute.
THROTTLED_DIVISOR = 10
#: The throttled twin of a plan with no rate of its own (the default plan): one request every 10 s.
THROTTLED_REQUESTS_PER_MIN = 6
#: The tag every API key and usage plan of a stack carries: the provisioner's ownership mark, as on profiles.
STACK_TAG = ALARMS_STACK_TAG
TENANT_TAG = "tollgate:tenant"
PLAN_TAG = "tollgate:plan"

DEFAULT_PLAN = "default"
THROTTLED_SUFFIX = ":throttled"


def throttled_rpm(requests_per_min: int | None) -> int:
    """The requests per minute of a plan's throttled twin."""
    if not requests_per_min:
        return THROTTLED_REQUESTS_PER_MIN
    return max(1, requests_per_min // THROTTLED_DIVISOR)


@dataclass(frozen=True)
class Throttle:
    """A usage plan's throttle: ``rate`` requests per second steady, ``burst`` at once."""

    rate: float
    burst: int

    @classmethod
    def per_minute(cls, requests_per_min: int) -> Throttle:
        return cls(rate=requests_per_min / 60, burst=requests_per_min)

    @property
    def requests_per_min(self) -> float:
        return self.rate * 60

    @property
    def most_in_one_minute(self) -> int:
        """A full bucket, then a minute of refill: the most requests any 60 s can see."""
        return self.burst + math.floor(self.rate * 60)


@dataclass(frozen=True)
class PlanSpec:
    """One usage plan the stack needs. ``key`` names it within the stack (tier:free, tenant:acme, default,
    throttled); ``throttle`` None: no throttle of its own (the stage's limits)."""

    key: str
    throttle: Throttle | None
    description: str

    def name(self, stack: str) -> str:
        return plan_name(stack, self.key)


def plan_name(stack: str, key: str) -> str:
    return f"{stack}-{key.replace(':', '-')}"


def api_key_name(stack: str, tenant: str) -> str:
    """The name of a tenant's API Gateway key (the tag says whose; names are only for people)."""
    return f"{stack}-{tenant}"


@dataclass(frozen=True)
class RatePlans:
    """Every plan the config needs, and each tenant's own plan (the one it is on when not throttled)."""

    plans: dict[str, PlanSpec]
    tenant_plan: dict[str, str]

    def plan_of(self, tenant: str, *, throttled: bool) -> PlanSpec:
        key = self.tenant_plan[tenant]
        return self.plans[key + THROTTLED_SUFFIX if throttled else key]


def rate_plans(bundle: ConfigBundle) -> RatePlans:
    config = bundle.config
    default_rpm = config.defaults.rate_limits.requests_per_min
    plans: dict[str, PlanSpec] = {}

    def add(key: str, rpm: int | None, who: str) -> None:
        if key in plans:
            return
        plans[key] = PlanSpec(
            key,
            Throttle.per_minute(rpm) if rpm else None,
            f"Tollgate: {who}" + (f" ({rpm} requests per minute)" if rpm else " (the stage's rate limits)"),
        )
        slow = throttled_rpm(rpm)
        plans[key + THROTTLED_SUFFIX] = PlanSpec(
            key + THROTTLED_SUFFIX,
            Throttle.per_minute(slow),
            f"Tollgate: {who}, throttled by a cost alarm ({slow} requests per minute)",
        )

    add(DEFAULT_PLAN, default_rpm, "tenants without a customer tier limit")
    tenant_plan: dict[str, str] = {}
    for tenant in bundle.tenants():
        rpm = tenant.rate_limits.requests_per_min
        tier = config.customer_tiers.get(tenant.customer_tier or "")
        tier_rpm = tier.rate_limits.over(config.defaults.rate_limits).requests_per_min if tier else None
        if rpm is None or (tier is None and rpm == default_rpm):
            key = DEFAULT_PLAN
        elif tier is not None and rpm == tier_rpm:
            key = f"tier:{tenant.customer_tier}"
            add(key, rpm, f"customer tier {tenant.customer_tier}")
        else:
            key = f"tenant:{tenant.tenant_id}"
            add(key, rpm, f"tenant {tenant.tenant_id}")
        tenant_plan[tenant.tenant_id] = key
    return RatePlans(plans, tenant_plan)
