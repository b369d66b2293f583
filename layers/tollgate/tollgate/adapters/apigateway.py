"""API Gateway usage plans and API keys: the stack's own, found by their tags.

Every key and plan the provisioner makes carries ``tollgate:stack`` (and a key
``tollgate:tenant``, a plan ``tollgate:plan``); nothing without this stack's tag is ever changed.
GetApiKeys and GetUsagePlans return the tags with each item, so no GetTags call is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tollgate.ratelimits import PLAN_TAG, STACK_TAG, TENANT_TAG, PlanSpec, RatePlans, Throttle, api_key_name


@dataclass(frozen=True)
class UsagePlan:
    id: str
    name: str
    key: str  # the plan's key within the stack (PlanSpec.key), from its tag
    throttle: Throttle | None
    stages: tuple[tuple[str, str], ...]  # (api id, stage)


@dataclass(frozen=True)
class TenantApiKey:
    id: str
    tenant: str
    value: str  # the usageIdentifierKey: never logged, never printed
    enabled: bool


def _throttle(raw: dict[str, Any] | None) -> Throttle | None:
    if not raw or "rateLimit" not in raw:
        return None
    return Throttle(rate=float(raw["rateLimit"]), burst=int(raw.get("burstLimit", 0)))


def _number(value: float) -> str:
    """A rate as a patch value: "10" for whole numbers (moto parses whole numbers only), else the float."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class ApiGatewayPlans:
    def __init__(self, client: Any, stack: str):
        self._client = client
        self._stack = stack

    # -- reading ---------------------------------------------------------------------------

    def _pages(self, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for page in self._client.get_paginator(operation).paginate(**kwargs):
            yield from page.get("items", [])

    def plans(self) -> dict[str, UsagePlan]:
        """This stack's usage plans, by their key (PlanSpec.key)."""
        found = {}
        for item in self._pages("get_usage_plans"):
            tags = item.get("tags") or {}
            if tags.get(STACK_TAG) != self._stack or PLAN_TAG not in tags:
                continue
            stages = tuple(sorted((s["apiId"], s["stage"]) for s in item.get("apiStages", [])))
            plan = UsagePlan(item["id"], item.get("name", ""), tags[PLAN_TAG], _throttle(item.get("throttle")), stages)
            found[plan.key] = plan
        return found

    def keys(self) -> dict[str, TenantApiKey]:
        """This stack's API keys, by tenant (values included: the caller stores them, never shows them)."""
        found = {}
        for item in self._pages("get_api_keys", includeValues=True):
            key = self._key(item)
            if key is not None:
                found[key.tenant] = key
        return found

    def key_of(self, tenant: str) -> TenantApiKey | None:
        for item in self._pages("get_api_keys", nameQuery=api_key_name(self._stack, tenant), includeValues=False):
            key = self._key(item)
            if key is not None and key.tenant == tenant:
                return key
        return None

    def _key(self, item: dict[str, Any]) -> TenantApiKey | None:
        tags = item.get("tags") or {}
        if tags.get(STACK_TAG) != self._stack or TENANT_TAG not in tags:
            return None
        return TenantApiKey(item["id"], tags[TENANT_TAG], str(item.get("value", "")), bool(item.get("enabled")))

    def members(self, plan_id: str) -> set[str]:
        """The ids of the API keys on a plan."""
        return {item["id"] for item in self._pages("get_usage_plan_keys", usagePlanId=plan_id)}

    # -- plans -----------------------------------------------------------------------------

    def create_plan(self, spec: PlanSpec, stage: tuple[str, str]) -> UsagePlan:
        args: dict[str, Any] = {
            "name": spec.name(self._stack),
            "description": spec.description,
            "apiStages": [{"apiId": stage[0], "stage": stage[1]}],
            "tags": {STACK_TAG: self._stack, PLAN_TAG: spec.key},
        }
        if spec.throttle is not None:
            args["throttle"] = {"rateLimit": spec.throttle.rate, "burstLimit": spec.throttle.burst}
        created = self._client.create_usage_plan(**args)
        return UsagePlan(created["id"], args["name"], spec.key, spec.throttle, (stage,))

    def update_plan(self, plan: UsagePlan, spec: PlanSpec, stage: tuple[str, str]) -> bool:
        """Make the plan's throttle, stage and description the spec's; whether anything changed."""
        operations: list[dict[str, str]] = []
        if plan.throttle != spec.throttle:
            if spec.throttle is None:
                operations.append({"op": "remove", "path": "/throttle"})
            else:
                operations += [
                    {"op": "replace", "path": "/throttle/rateLimit", "value": _number(spec.throttle.rate)},
                    {"op": "replace", "path": "/throttle/burstLimit", "value": str(spec.throttle.burst)},
                ]
        for old in plan.stages:
            if old != stage:
                operations.append({"op": "remove", "path": "/apiStages", "value": f"{old[0]}:{old[1]}"})
        if stage not in plan.stages:
            operations.append({"op": "add", "path": "/apiStages", "value": f"{stage[0]}:{stage[1]}"})
        if operations:
            self._client.update_usage_plan(usagePlanId=plan.id, patchOperations=operations)
        return bool(operations)

    def delete_plan(self, plan: UsagePlan) -> None:
        """Delete a plan: its stages first (API Gateway refuses to delete a plan still on a stage)."""
        if plan.stages:
            self._client.update_usage_plan(
                usagePlanId=plan.id,
                patchOperations=[{"op": "remove", "path": "/apiStages", "value": f"{a}:{s}"} for a, s in plan.stages],
            )
        self._client.delete_usage_plan(usagePlanId=plan.id)

    # -- keys ------------------------------------------------------------------------------

    def create_key(self, tenant: str) -> TenantApiKey:
        created = self._client.create_api_key(
            name=api_key_name(self._stack, tenant),
            description=f"Tollgate: usage-plan key of tenant {tenant} (the authorizer names it; tenants never see it)",
            enabled=True,
            tags={STACK_TAG: self._stack, TENANT_TAG: tenant},
        )
        return TenantApiKey(created["id"], tenant, str(created["value"]), True)

    def delete_key(self, key: TenantApiKey) -> None:
        self._client.delete_api_key(apiKey=key.id)

    def set_enabled(self, key: TenantApiKey, enabled: bool) -> None:
        self._client.update_api_key(
            apiKey=key.id, patchOperations=[{"op": "replace", "path": "/enabled", "value": str(enabled).lower()}]
        )

    def move_key(self, key: TenantApiKey, to: UsagePlan, plans: dict[str, UsagePlan]) -> bool:
        """Put the key on ``to`` and on no other plan of the stack; whether it moved.

        API Gateway lets a key be on one plan per API stage, so it leaves the old plan first: in
        between, for the few milliseconds of two calls, its requests are refused (403).
        """
        moved = False
        on_target = False
        for plan in plans.values():
            if key.id not in self.members(plan.id):
                continue
            if plan.id == to.id:
                on_target = True
                continue
            self._client.delete_usage_plan_key(usagePlanId=plan.id, keyId=key.id)
            moved = True
        if not on_target:
            self._client.create_usage_plan_key(usagePlanId=to.id, keyId=key.id, keyType="API_KEY")
            moved = True
        return moved


class ApiGatewayTenantKeys:
    """What the actions function changes: a tenant's key on the throttled plan or its own; enabled or not."""

    def __init__(self, plans: ApiGatewayPlans, rate_plans: RatePlans, stack: str):
        self._plans = plans
        self._rate_plans = rate_plans
        self._stack = stack

    def enforce(self, tenant: str, *, throttled: bool, suspended: bool) -> list[str]:
        """Make the tenant's key what the actions in force say; the changes made, in words."""
        key = self._plans.key_of(tenant)
        if key is None:
            raise LookupError(
                f"tenant {tenant} has no API Gateway key of stack {self._stack}: the deploy makes it "
                "(RateLimitProvisioning); redeploy, then the action is applied at the next alarm change"
            )
        plans = self._plans.plans()
        spec = self._rate_plans.plan_of(tenant, throttled=throttled)
        target = plans.get(spec.key)
        if target is None:
            raise LookupError(f"usage plan {spec.name(self._stack)} does not exist: redeploy the stack")
        changes = []
        if self._plans.move_key(key, target, plans):
            changes.append(f"key moved to usage plan {target.name}")
        if key.enabled == suspended:
            self._plans.set_enabled(key, not suspended)
            changes.append("key disabled" if suspended else "key enabled")
        return changes
