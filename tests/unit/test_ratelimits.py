"""Usage plans from config.json's rate limits: what each tier's token bucket allows."""

from __future__ import annotations

from pathlib import Path

from tollgate.config import ConfigBundle
from tollgate.ratelimits import Throttle, rate_plans

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_plan_refills_rpm_over_a_minute_and_holds_a_minute_at_once() -> None:
    free = Throttle.per_minute(60)
    assert (free.rate, free.burst) == (1.0, 60)
    # a full bucket, then a minute of refill: twice the limit in the worst 60 s, the limit sustained
    assert free.most_in_one_minute == 120


def test_each_tenant_is_on_its_tiers_plan_and_each_plan_has_a_throttled_twin() -> None:
    plans = rate_plans(ConfigBundle.load_dir(REPO_ROOT))
    assert plans.tenant_plan == {"acme": "tier:team", "globex": "tier:enterprise", "initech": "tier:free"}
    assert plans.plan_of("initech", throttled=False).throttle == Throttle(1.0, 60)
    assert plans.plan_of("initech", throttled=True).throttle == Throttle(0.1, 6)
    assert plans.plan_of("acme", throttled=True).throttle == Throttle(1.0, 60)
    assert plans.plans["default"].throttle is None  # no default rate limit: the stage's limits
