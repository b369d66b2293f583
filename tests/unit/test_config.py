"""config.json / models.json validation: every mistake named with file, place and fix."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tollgate.advice import advise
from tollgate.config import ConfigBundle, ConfigError

REPO = Path(__file__).resolve().parents[2]
CONFIG = json.loads((REPO / "config.json").read_text())
MODELS = json.loads((REPO / "models.json").read_text())


def problems(config: Any = None, models: Any = None, *, config_text: str | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        ConfigBundle.from_texts(
            config_text if config_text is not None else json.dumps(config if config is not None else CONFIG),
            json.dumps(models if models is not None else MODELS),
        )
    return [str(p) for p in caught.value.problems]


def edited(source: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(source)
    *parents, last = path.split("/")
    node = data
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


DELETE = object()


def test_the_shipped_files_are_valid(bundle: ConfigBundle) -> None:
    assert len(bundle.config.tenants) >= 3
    assert len(bundle.config.profiles) >= 5
    assert len(bundle.catalog.models) >= 6


def test_a_profile_of_an_unknown_tenant_is_named() -> None:
    found = problems(edited(CONFIG, "profiles/acme-chat/tenant", "umbrella"))
    assert found == [
        "config.json: profiles.acme-chat.tenant: tenant 'umbrella' is not defined under 'tenants' "
        "(defined: acme, globex, initech); add it there, or name one of those"
    ]


def test_a_model_without_prices_is_named_with_the_known_ones() -> None:
    (found,) = problems(edited(CONFIG, "profiles/acme-search/model", "amazon.nova-ultra-v9:0"))
    assert found.startswith("config.json: profiles.acme-search.model: model 'amazon.nova-ultra-v9:0' has no prices in")
    assert "amazon.nova-lite-v1:0" in found


def test_a_scope_the_model_is_not_priced_for() -> None:
    (found,) = problems(edited(CONFIG, "profiles/initech-analytics/scope", "in-region"))
    assert found == (
        "config.json: profiles.initech-analytics.scope: models.json has no 'in-region' price for "
        "meta.llama3-3-70b-instruct-v1:0; priced scopes: cross-region"
    )


def test_misspelt_field_and_bad_name_are_both_reported_at_once() -> None:
    config = edited(CONFIG, "defaults/cost_treshold", "1")
    config["profiles"]["bad name!"] = config["profiles"]["acme-chat"]
    found = problems(config)
    assert (
        "config.json: defaults.cost_treshold: is not a known field (check the spelling; see README 'config.json')"
        in found
    )
    assert any(p.startswith("config.json: profiles.bad name!: 'bad name!' is not valid: profile names") for p in found)


def test_reserved_tag_prefixes_are_refused() -> None:
    (found,) = problems(edited(CONFIG, "profiles/acme-chat/tags", {"tollgate:stack": "x"}))
    assert (
        found == "config.json: profiles.acme-chat.tags.tollgate:stack: "
        "tag keys starting with 'tollgate:' are reserved; rename the tag"
    )


def test_missing_required_field() -> None:
    assert problems(edited(CONFIG, "admin_email", DELETE)) == ["config.json: admin_email: is required"]


def test_json_syntax_errors_give_line_and_column() -> None:
    (found,) = problems(config_text='{\n  "admin_email": "a@b.c",\n  "defaults": {,}\n}')
    assert found.startswith("config.json: line 3 column")


def test_duplicate_keys_are_an_error_not_silently_the_last_one() -> None:
    text = json.dumps(CONFIG)[:-1] + ', "admin_email": "other@example.com"}'
    assert problems(config_text=text) == [
        "config.json: the key 'admin_email' appears twice in one object; keep only one"
    ]


def test_prices_per_1k_tokens_are_refused_with_the_fix() -> None:
    (found,) = problems(models=edited(MODELS, "unit", "USD per 1K tokens"))
    assert "unit must be exactly 'USD per 1M tokens'" in found
    assert "multiplying them by 1000" in found


def test_a_price_with_more_than_six_decimals_is_refused() -> None:
    models = copy.deepcopy(MODELS)
    models["models"]["amazon.nova-micro-v1:0"]["prices"][0]["input"] = "0.0000351"
    (found,) = problems(models=models)
    assert found.startswith(
        "models.json: models.amazon.nova-micro-v1:0.prices[0].input: 0.0000351 has more than 6 decimals"
    )


def test_a_caching_model_needs_cache_prices() -> None:
    models = copy.deepcopy(MODELS)
    del models["models"]["amazon.nova-pro-v1:0"]["prices"][1]["cache_read"]
    (found,) = problems(models=models)
    assert found.startswith("models.json: models.amazon.nova-pro-v1:0.prices[1]: the model supports prompt caching")


def test_negative_thresholds_are_refused() -> None:
    (found,) = problems(edited(CONFIG, "profiles/acme-chat/thresholds", {"requests_per_min_threshold": 0}))
    assert found.startswith("config.json: profiles.acme-chat.thresholds.requests_per_min_threshold:")


def test_overrides_fall_back_to_defaults(bundle: ConfigBundle) -> None:
    coder = bundle.profile("initech-coder")
    assert coder is not None
    assert coder.requests_per_min_threshold == 20
    assert coder.tokens_per_min_threshold == bundle.config.defaults.tokens_per_min_threshold
    assert coder.tags["TenantID"] == "initech"  # tenant tags flow into every profile


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config\.json: file not found"):
        ConfigBundle.load_dir(tmp_path)


# --------------------------------------------------------------------------- what a new user met


def test_true_is_not_a_count() -> None:
    found = problems(edited(CONFIG, "defaults/requests_per_min_threshold", True))
    assert found == [
        "config.json: defaults.requests_per_min_threshold: true is not a whole number; write the requests per "
        "minute above which a profile's BedrockRequestsPerMinuteAlarm fires as a JSON number, e.g. 60"
    ]


@pytest.mark.parametrize(("value", "shown"), [(1.5, "1.5"), ("60", '"60"')])
def test_a_count_must_be_a_json_whole_number(value: Any, shown: str) -> None:
    found = problems(edited(CONFIG, "profiles/acme-chat/thresholds", {"tokens_per_min_threshold": value}))
    assert found == [
        f"config.json: profiles.acme-chat.thresholds.tokens_per_min_threshold: {shown} is not a whole number; "
        "write the tokens per minute above which the profile's BedrockTokensPerMinuteAlarm fires as a JSON number, "
        "e.g. 100000"
    ]


def test_a_usd_amount_that_is_true_is_refused_with_the_fix() -> None:
    found = problems(edited(CONFIG, "defaults/cost_threshold", True))
    assert found == [
        "config.json: defaults.cost_threshold: true is not an amount of USD; write the token cost over 5 minutes "
        'above which a profile\'s BedrockTokenCostAlarm fires as a string, e.g. "5.00"'
    ]


@pytest.mark.parametrize(("number", "text"), [(0.25, "0.25"), (3, "3")])
def test_a_price_written_as_a_json_number_is_refused_with_the_fix(number: Any, text: str) -> None:
    models = copy.deepcopy(MODELS)
    models["models"]["amazon.nova-micro-v1:0"]["prices"][0]["output"] = number
    assert problems(models=models) == [
        f"models.json: models.amazon.nova-micro-v1:0.prices[0].output: {text} is a JSON number; prices are strings "
        f'(USD per 1M tokens, read exactly): write it as a string, e.g. "{text}"'
    ]


def test_every_profile_of_an_unknown_tenant_is_named_at_once() -> None:
    config = edited(CONFIG, "profiles/acme-chat/tenant", "umbrella")
    config = edited(config, "profiles/initech-coder/tenant", "initek")
    assert problems(config) == [
        "config.json: profiles.acme-chat.tenant: tenant 'umbrella' is not defined under 'tenants' "
        "(defined: acme, globex, initech); add it there, or name one of those",
        "config.json: profiles.initech-coder.tenant: tenant 'initek' is not defined under 'tenants' "
        "(defined: acme, globex, initech); add it there, or name one of those",
    ]


def test_an_unknown_tenant_and_another_mistake_are_reported_together() -> None:
    config = edited(CONFIG, "profiles/acme-chat/tenant", "umbrella")
    config = edited(config, "defaults/tokens_per_min_threshold", -5)
    found = problems(config)
    assert len(found) == 2
    assert found[0].startswith("config.json: defaults.tokens_per_min_threshold: -5 is not above 0")
    assert found[1].startswith("config.json: profiles.acme-chat.tenant: tenant 'umbrella' is not defined")


@pytest.mark.parametrize("value", [0, -20])
def test_a_threshold_override_that_is_not_positive_says_what_and_how(value: int) -> None:
    found = problems(edited(CONFIG, "profiles/initech-coder/thresholds", {"requests_per_min_threshold": value}))
    assert found == [
        f"config.json: profiles.initech-coder.thresholds.requests_per_min_threshold: {value} is not above 0; "
        "it is the requests per minute above which the profile's BedrockRequestsPerMinuteAlarm fires: write a "
        "whole number above 0, e.g. 60, or remove it to use defaults.requests_per_min_threshold"
    ]


def test_a_cost_threshold_of_zero_says_what_and_how() -> None:  # written as the string "0"
    found = problems(edited(CONFIG, "defaults/cost_threshold", "0"))
    assert found == [
        'config.json: defaults.cost_threshold: "0" is not above 0; it is the token cost over 5 minutes above which '
        'a profile\'s BedrockTokenCostAlarm fires: write an amount of USD above 0 as a string, e.g. "5.00"'
    ]


# --------------------------------------------------------------------------- allowances, lifecycle, sources


def test_an_allowance_bedrock_does_not_offer_is_refused_even_when_no_region_is_checked() -> None:
    config = edited(CONFIG, "profiles/acme-chat/allow", {"tiers": ["default", "priority"], "latency": ["optimized"]})
    found = problems(config)  # from_texts without a region
    assert found == [
        "config.json: profiles.acme-chat.allow.tiers: Bedrock offers anthropic.claude-haiku-4-5-20251001-v1:0 in "
        "the tiers ['default'] (models.json), not 'priority'",
        "config.json: profiles.acme-chat.allow.latency: anthropic.claude-haiku-4-5-20251001-v1:0 has no "
        "latency-optimized inference (models.json)",
    ]


def test_a_description_bedrock_would_refuse_is_refused_before_the_deploy() -> None:
    (found,) = problems(edited(CONFIG, "profiles/acme-chat/description", "Chat, for Acme"))
    assert found.startswith("config.json: profiles.acme-chat.description: 'Chat, for Acme' is refused by Bedrock:")


def test_a_replacement_that_is_not_in_models_json_is_named() -> None:
    models = edited(
        MODELS, "models/anthropic.claude-3-haiku-20240307-v1:0/lifecycle/replacement", "anthropic.gone-v1:0"
    )
    assert problems(models=models) == [
        "models.json: models.anthropic.claude-3-haiku-20240307-v1:0.lifecycle.replacement: 'anthropic.gone-v1:0' is "
        "not another model of models.json; name one that is listed"
    ]


def test_lifecycle_dates_out_of_order_are_refused() -> None:
    models = edited(MODELS, "models/anthropic.claude-opus-4-1-20250805-v1:0/lifecycle/legacy_from", "2027-02-01")
    (found,) = problems(models=models)
    assert found.endswith("end_of_life 2027-01-08 is before legacy_from 2027-02-01")


def test_a_cache_minimum_on_a_model_that_does_not_cache_is_refused() -> None:
    (found,) = problems(models=edited(MODELS, "models/meta.llama3-3-70b-instruct-v1:0/cache_min_tokens", 1024))
    assert found.startswith("models.json: models.meta.llama3-3-70b-instruct-v1:0.cache_min_tokens: given but")


def test_the_shipped_files_price_every_profile_in_us_east_1_and_say_what_to_add_elsewhere() -> None:
    assert ConfigBundle.load_dir(REPO, region="us-east-1").region == "us-east-1"
    with pytest.raises(ConfigError) as caught:
        ConfigBundle.load_dir(REPO, region="zz-nowhere-1")  # a region no row names
    found = [str(p) for p in caught.value.problems]
    assert {p.split(": ")[1] for p in found} == {f"profiles.{name}" for name in CONFIG["profiles"]}
    assert (
        "config.json: profiles.acme-chat: models.json has no global price for anthropic.claude-haiku-4-5-20251001-v1:0 "
        "in zz-nowhere-1 (priced in: us): add a row to models.anthropic.claude-haiku-4-5-20251001-v1:0.prices whose "
        "regions include zz-nowhere-1, or deploy the stack in a priced region"
    ) in found


def test_every_shipped_price_row_names_its_source_and_grade_and_none_claims_a_check() -> None:
    grades = {"A", "B", "B, cache derived", "derived", "kept"}
    for model_id, entry in ConfigBundle.load_dir(REPO).catalog.models.items():
        for row in entry.prices:
            assert row.grade in grades, (model_id, row.source)
            assert row.checked is None, model_id  # nobody checked the live pricing page here
            if row.grade == "kept":  # unsourced figures only for history: models Bedrock no longer serves
                assert entry.lifecycle.end_of_life is not None, model_id


def _rates(row: Any) -> list[Any]:
    return [row.input, row.output, row.cache_read, row.cache_write, row.cache_write_1h]


def test_derived_rows_are_exactly_what_their_rule_says() -> None:
    # geo = global x 1.10 (Claude), priority = standard x 1.75 and flex x 0.50 (Mistral)
    checked = 0
    for entry in ConfigBundle.load_dir(REPO).catalog.models.values():
        for row in entry.prices:
            if "geo = global x 1.10" in row.source:
                base = next(
                    r for r in entry.prices
                    if r.scope == "global" and (r.effective_from, r.context, r.regions) ==
                    (row.effective_from, row.context, row.regions)
                )  # fmt: skip
                expected = [None if v is None else v * Decimal("1.10") for v in _rates(base)]
                derived = _rates(row) if row.grade == "derived" else _rates(row)[2:]  # "cache derived": cache only
                assert derived == (expected if row.grade == "derived" else expected[2:]), row.source
                checked += 1
            if row.tier in ("priority", "flex"):
                factor = Decimal("1.75") if row.tier == "priority" else Decimal("0.50")
                standard = next(r for r in entry.prices if r.tier == "default" and r.regions == row.regions
                                and r.scope == row.scope)  # fmt: skip
                if row.grade == "derived":
                    assert (row.input, row.output) == (standard.input * factor, standard.output * factor)
                    checked += 1
    assert checked >= 8


def test_no_sample_profile_is_on_a_model_near_or_past_its_end_of_life(bundle: ConfigBundle) -> None:
    found = advise(bundle, date(2026, 12, 3), "us-east-1")
    assert [a.kind for a in found if a.kind not in ("unchecked", "derived")] == []


def test_the_sample_profiles_show_the_new_ways_of_being_served(bundle: ConfigBundle) -> None:
    assistant, reports = bundle.profile("globex-assistant"), bundle.profile("globex-reports")
    assert assistant is not None
    assert reports is not None
    assert (assistant.scope, assistant.allow.cache_ttls) == ("global", ("5m", "1h"))
    assert bundle.catalog.models[assistant.model_id].long_context_above == 200_000
    assert reports.allow.tiers == ("default", "priority", "flex")
