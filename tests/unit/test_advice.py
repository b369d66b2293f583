"""What `tollgate config check` warns about: models near or past their end of life, and prices
that nobody checked or that were derived from a rule, counted where the stack runs."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from tollgate.advice import advise, rows_in_use
from tollgate.config import ConfigBundle

TODAY = date(2026, 12, 3)
OLD, NEW, OTHER = "anthropic.claude-old-v1:0", "anthropic.claude-new-v1:0", "anthropic.claude-other-v1:0"


def price(scope: str = "in-region", effective: str = "2026-01-01", **extra: Any) -> dict[str, Any]:
    return {
        "scope": scope,
        "effective_from": effective,
        "input": "1.00",
        "output": "2.00",
        "source": "[B] doc",
        **extra,
    }


def bundle(
    lifecycle: dict[str, Any] | None = None,
    prices: list[dict[str, Any]] | None = None,
    allow: dict[str, Any] | None = None,
    **model: Any,
) -> ConfigBundle:
    models: dict[str, Any] = {
        "unit": "USD per 1M tokens",
        "region_groups": {"us": ["us-east-1", "us-east-2"]},
        "models": {
            OLD: {"name": "Old", "provider": "Anthropic", "lifecycle": lifecycle or {}, "prices": prices or [price()],
                  **model},
            NEW: {"name": "New", "provider": "Anthropic", "prices": [price(checked="2026-11-30")]},
            OTHER: {"name": "Other", "provider": "Anthropic", "prices": [price(checked="2026-11-30")]},
        },
    }  # fmt: skip
    config = {
        "admin_email": "a@example.com",
        "defaults": {"cost_threshold": "5", "tokens_per_min_threshold": 1000, "requests_per_min_threshold": 10},
        "tenants": {"t": {"display_name": "T"}},
        "profiles": {"p": {"tenant": "t", "model": OLD, "allow": allow or {}}, "q": {"tenant": "t", "model": NEW}},
    }
    return ConfigBundle.from_texts(json.dumps(config), json.dumps(models))


def kinds(found: list[Any]) -> list[str]:
    return [a.kind for a in found]


def only(found: list[Any], kind: str) -> str:
    (advice,) = [a for a in found if a.kind == kind]
    return str(advice.message)


# --------------------------------------------------------------------------- lifecycle


def test_a_model_past_its_end_of_life_names_the_model_to_move_to() -> None:
    found = advise(bundle({"end_of_life": "2026-10-14", "replacement": NEW}), TODAY)
    message = only(found, "end_of_life")
    assert message.startswith(f"profiles.p uses {OLD} (Old), past its end of life on 2026-10-14: Bedrock refuses")
    assert f"Move the profile to {NEW} (New), its replacement in models.json" in message


def test_without_a_replacement_the_current_models_of_the_same_provider_are_named() -> None:
    message = only(advise(bundle({"end_of_life": "2026-10-14"}), TODAY), "end_of_life")
    assert f"to a current Anthropic model: {NEW} (New), {OTHER} (Other)." in message


def test_a_model_within_90_days_of_its_end_of_life_is_warned_about_with_the_days_left() -> None:
    message = only(
        advise(bundle({"legacy_from": "2026-07-08", "end_of_life": "2027-01-08"}), TODAY), "end_of_life_soon"
    )
    assert "Legacy since 2026-07-08, it reaches its end of life on 2027-01-08, in 36 days" in message


def test_a_legacy_model_further_from_its_end_of_life_is_warned_about_as_legacy() -> None:
    found = advise(bundle({"legacy_from": "2026-11-01", "end_of_life": "2027-06-01", "replacement": NEW}), TODAY)
    assert "Legacy since 2026-11-01 (its end of life is 2027-06-01" in only(found, "legacy")


def test_an_active_model_and_one_91_days_from_its_end_of_life_are_not_warned_about() -> None:
    assert kinds(advise(bundle({"end_of_life": "2027-03-04"}), TODAY)) == ["unchecked"]


# --------------------------------------------------------------------------- unchecked and derived prices


def test_unchecked_rows_are_counted_where_the_stack_runs_with_where_their_figures_come_from() -> None:
    # Given p's model priced for every region and, on its own, for the us group; q's rows are checked
    made = bundle(prices=[price(), price(regions=["us"], source="[B] regional doc, 2026-07-17: us page")])
    # Then in us-east-2 the us row is the one in use (it replaces the every-region row there), in eu-west-1 the other
    assert only(advise(made, TODAY, "us-east-2"), "unchecked").startswith(
        "1 of the 2 price rows the profiles' calls are charged at in us-east-2 have no `checked` date"
    )
    assert "(1 from [B] regional doc, 2026-07-17)" in only(advise(made, TODAY, "us-east-2"), "unchecked")
    assert "(1 from [B] doc)" in only(advise(made, TODAY, "eu-west-1"), "unchecked")
    # and with no region, both are counted
    assert "2 of the 3 price rows" in only(advise(made, TODAY), "unchecked")


def test_a_row_superseded_before_today_is_not_in_use_but_a_future_one_is() -> None:
    made = bundle(prices=[price(effective="2025-01-01"), price(effective="2026-06-01"), price(effective="2027-01-01")])
    assert [r.row.effective_from.isoformat() for r in rows_in_use(made, TODAY, "us-east-1") if r.model_id == OLD] == [
        "2026-06-01",
        "2027-01-01",
    ]


def test_derived_rows_in_use_are_listed_each_with_its_rule_unless_checked() -> None:
    rule = "[derived] doc, 2026-07-17: priority = standard x 1.75"
    prices = [price(), price(tier="priority", source=rule), price(tier="flex", source=rule, checked="2026-12-01")]
    tiers = ["default", "priority", "flex"]
    found = advise(bundle(prices=prices, allow={"tiers": ["default", "priority"]}, tiers=tiers), TODAY, "us-east-1")
    assert only(found, "derived") == (
        "1 of those rows hold figures derived from a rule, not read from a price list (models.json has 1 such rows in "
        f"all); they are the first to check:\n  {OLD} in-region priority (every region, from 2026-01-01) [p]: {rule}"
    )
    # A derived row no profile may be charged at is not listed: by default a profile allows only the default tier
    assert "derived" not in kinds(advise(bundle(prices=prices, tiers=tiers), TODAY, "us-east-1"))


def test_nothing_is_said_of_prices_when_every_row_in_use_was_checked() -> None:
    assert advise(bundle(prices=[price(checked="2026-12-01")]), TODAY, "us-east-1") == []
