"""Customer tiers, budgets, rate limits and actions in config.json: defaults < customer tier < tenant <
profile, every mistake reported at once with its place and how to fix it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from tollgate.config import ConfigBundle, ConfigError

from tests.conftest import REPO_ROOT

MODELS = (REPO_ROOT / "models.json").read_text()
BASE: dict[str, Any] = json.loads((REPO_ROOT / "config.json").read_text())
USD = 10**12


def bundle(config: dict[str, Any]) -> ConfigBundle:
    return ConfigBundle.from_texts(json.dumps(config), MODELS)


def problems(config: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as failed:
        bundle(config)
    return [str(p) for p in failed.value.problems]


def test_a_tenant_gets_its_customer_tiers_settings_and_overrides_them() -> None:
    config = copy.deepcopy(BASE)
    config["tenants"]["acme"]["budget"] = {"daily_usd": "25.00"}
    config["tenants"]["acme"]["rate_limits"] = {"tokens_per_min": 50}
    acme = bundle(config).tenant("acme")
    assert acme is not None
    assert acme.customer_tier == "team"
    # the tier's monthly budget and mode, the tenant's own daily limit
    assert (acme.budget.monthly_pusd, acme.budget.daily_pusd, acme.budget.mode) == (500 * USD, 25 * USD, "alert")
    assert (acme.rate_limits.requests_per_min, acme.rate_limits.tokens_per_min) == (600, 50)
    assert acme.on_cost_alarm == "throttle"
    assert acme.time_zone == "America/New_York"


def test_a_profile_overrides_thresholds_and_action_and_may_have_a_budget_of_its_own() -> None:
    config = copy.deepcopy(BASE)
    config["profiles"]["initech-analytics"]["budget"] = {"monthly_usd": "3.00"}
    config["profiles"]["initech-analytics"]["on_cost_alarm"] = "throttle"
    loaded = bundle(config)
    analytics, coder = loaded.profile("initech-analytics"), loaded.profile("initech-coder")
    assert analytics is not None
    assert coder is not None
    # the profile's own limit, with its tenant's mode (the free tier enforces) and alerts
    assert (analytics.budget.monthly_pusd, analytics.budget.daily_pusd) == (3 * USD, None)
    assert analytics.budget.enforced
    assert analytics.budget.alerts == (50, 80, 100)
    assert analytics.on_cost_alarm == "throttle"
    assert not coder.budget.active  # no budget of its own: only the tenant's applies
    assert coder.on_cost_alarm == "suspend"  # the free tier's


def test_the_enterprise_tier_changes_its_tenants_default_thresholds_but_not_a_profiles_override() -> None:
    loaded = bundle(BASE)
    summarizer, assistant = loaded.profile("globex-summarizer"), loaded.profile("globex-assistant")
    assert summarizer is not None
    assert assistant is not None
    assert str(summarizer.cost_threshold) == "20.00"  # enterprise tier
    assert (
        assistant.tokens_per_min_threshold
        == BASE["profiles"]["globex-assistant"]["thresholds"]["tokens_per_min_threshold"]
    )


def test_a_tenant_without_a_tier_or_budget_has_no_limits() -> None:
    config = copy.deepcopy(BASE)
    del config["tenants"]["globex"]["customer_tier"]
    globex = bundle(config).tenant("globex")
    assert globex is not None
    assert not globex.budget.active
    assert (globex.rate_limits.requests_per_min, globex.rate_limits.tokens_per_min) == (None, None)
    assert globex.on_cost_alarm == "notify"


def test_every_control_mistake_is_reported_at_once_with_its_place_and_fix() -> None:
    config = copy.deepcopy(BASE)
    config["tenants"]["acme"]["customer_tier"] = "gold"
    config["tenants"]["globex"]["time_zone"] = "Mars/Olympus"
    config["tenants"]["initech"]["budget"] = {"monthly_usd": 20, "alerts": [100, 50]}
    config["customer_tiers"]["team"]["rate_limits"] = {"requests_per_min": 0}
    config["profiles"]["acme-chat"]["on_cost_alarm"] = "explode"
    found = "\n".join(problems(config))
    assert "tenants.acme.customer_tier: customer tier 'gold' is not defined under 'customer_tiers'" in found
    assert "(defined: enterprise, free, team)" in found
    assert "tenants.globex.time_zone: 'Mars/Olympus' is not a time zone name" in found
    assert 'tenants.initech.budget.monthly_usd: 20: write an amount of USD as a string, e.g. "100.00"' in found
    assert "tenants.initech.budget.alerts: [100, 50]: list each percentage once, in ascending order" in found
    assert "customer_tiers.team.rate_limits.requests_per_min" in found
    assert "profiles.acme-chat.on_cost_alarm" in found
