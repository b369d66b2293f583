"""API Gateway's usage-plan throttling, locally: the plans and keys TenantProvisioning put in moto.

moto stores usage plans and API keys but its data plane routes nothing, so the local front asks
here, for each request the authorizer allowed, what API Gateway would: the key the authorizer named
(usageIdentifierKey) must exist, be enabled and be on a plan of this API stage (else 403
Forbidden), and that plan's token bucket (rateLimit per second into a bucket of burstLimit, one
token a request) must hold a token (else 429, before the gateway function runs: nothing charged).
Plans and keys are read from moto at most once a second, so an action (a key moved to the
throttled plan, or disabled) applies within a second, as API Gateway applies it within seconds.
Written by hand: no library emulates API Gateway's throttling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

#: How long what moto said about plans and keys is used before it is read again.
REFRESH_SECONDS = 1.0


class Verdict(Enum):
    ALLOW = "allow"
    FORBIDDEN = "forbidden"  # no such key, disabled, or on no plan of this stage: 403
    THROTTLED = "throttled"  # the plan's bucket is empty: 429


@dataclass
class _Bucket:
    rate: float
    burst: int
    tokens: float
    at: float


class UsagePlanThrottle:
    def __init__(self, client: Any, api_id: str, stage: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._stage = (api_id, stage)
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        #: key value -> (enabled, (plan id, rate, burst) or None)
        self._keys: dict[str, tuple[bool, tuple[str, float, int] | None]] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def _refresh(self) -> None:
        plans = [
            p
            for page in self._client.get_paginator("get_usage_plans").paginate()
            for p in page.get("items", [])
            if any((s["apiId"], s["stage"]) == self._stage for s in p.get("apiStages", []))
        ]
        on_plan: dict[str, tuple[str, float, int]] = {}
        for plan in plans:
            throttle = plan.get("throttle") or {}
            # a plan without a throttle: only the stage's limits (modelled as no limit here)
            limit = (plan["id"], float(throttle.get("rateLimit", 0)), int(throttle.get("burstLimit", 0)))
            for page in self._client.get_paginator("get_usage_plan_keys").paginate(usagePlanId=plan["id"]):
                for member in page.get("items", []):
                    on_plan[member["value"]] = limit
        keys: dict[str, tuple[bool, tuple[str, float, int] | None]] = {}
        for page in self._client.get_paginator("get_api_keys").paginate(includeValues=True):
            for key in page.get("items", []):
                keys[key["value"]] = (bool(key.get("enabled")), on_plan.get(key["value"]))
        self._keys = keys

    def admit(self, usage_key: str | None) -> Verdict:
        with self._lock:
            now = self._clock()
            if now - self._read_at >= REFRESH_SECONDS:
                self._refresh()
                self._read_at = now
            enabled, plan = self._keys.get(usage_key or "", (False, None))
            if not usage_key or not enabled or plan is None:
                return Verdict.FORBIDDEN
            plan_id, rate, burst = plan
            if rate <= 0 and burst <= 0:
                return Verdict.ALLOW
            bucket = self._buckets.get((plan_id, usage_key))
            if bucket is None or (bucket.rate, bucket.burst) != (rate, burst):
                # a new plan (or a key moved to one) starts with a full bucket, as API Gateway's does
                bucket = self._buckets[(plan_id, usage_key)] = _Bucket(rate, burst, float(burst), now)
            bucket.tokens = min(float(bucket.burst), bucket.tokens + (now - bucket.at) * bucket.rate)
            bucket.at = now
            if bucket.tokens < 1:
                return Verdict.THROTTLED
            bucket.tokens -= 1
            return Verdict.ALLOW
