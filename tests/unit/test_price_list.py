"""`tollgate prices propose`: AWS Price List answers read exactly, mapped to models.json, new rows proposed.

The responses under tests/fixtures/price_list/ are FIXTURES written for these tests in the shape AWS
documents for pricing:GetProducts. They are NOT AWS data: SKUs, usagetype spellings, model names
and prices are invented. The book is the TEST BOOK tests/fixtures/price_book/models.json.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tollgate.config import ConfigBundle, ModelCatalog
from tollgate.pricing import PriceBook
from tollgate_cli import price_list
from tollgate_cli.price_list import (
    ListedPrice,
    Mapped,
    PriceListShapeError,
    Skipped,
    UnknownUnitError,
    map_price,
    parse_price_list,
    per_million,
    price_list_of,
    price_text,
    propose,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PRICE_LIST = FIXTURES / "price_list"
RAW: dict[str, Any] = json.loads((FIXTURES / "price_book" / "models.json").read_text())
CATALOG = ConfigBundle.load_dir(FIXTURES / "price_book").catalog
REGION = "us-east-1"
ON = date(2026, 12, 3)
LITE = "amazon.nova-lite-v1:0"
HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"


def fixture_entries(*names: str) -> list[Any]:
    entries: list[Any] = []
    for name in names:
        entries.extend(price_list_of(json.loads((PRICE_LIST / name).read_text()), name))
    return entries


BOTH = ("amazon-bedrock-us-east-1.json", "foundation-models-us-east-1.json")


def test_every_fixture_file_says_it_is_a_fixture_and_not_aws_data() -> None:
    files = sorted(PRICE_LIST.glob("*.json"))
    assert files
    for path in files:
        document = json.loads(path.read_text())
        assert "FIXTURE" in document["FIXTURE"], path.name
        assert "NOT AWS data" in document["FIXTURE"], path.name
        for entry in document["PriceList"]:  # the documented shape: each product a JSON string
            assert isinstance(entry, str)
            assert json.loads(entry)["product"]["sku"].startswith("FIXTURESKU")


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("amount", "unit", "per_1m"),
    [
        ("0.0008000000", "1K tokens", Decimal("0.8")),
        ("0.0000087500", "1K tokens", Decimal("0.00875")),
        ("0.0000700000", "1k Tokens", Decimal("0.07")),
        ("3.0000000000", "1M tokens", Decimal(3)),
        ("0.035", "Million tokens", Decimal("0.035")),
        ("0", "1K tokens", Decimal(0)),
    ],
)
def test_prices_are_converted_to_usd_per_million_tokens_exactly(amount: str, unit: str, per_1m: Decimal) -> None:
    assert per_million(amount, unit) == per_1m


@given(st.decimals(min_value=0, max_value=1000, places=10, allow_nan=False, allow_infinity=False))
def test_a_per_1k_price_is_exactly_a_thousand_times_per_1m(value: Decimal) -> None:
    assert per_million(str(value), "1K tokens") == value * 1000
    assert per_million(str(value), "1M tokens") == value


@pytest.mark.parametrize("unit", ["Units", "1K TPM Hour", "Hrs", "characters", ""])
def test_an_unknown_unit_is_refused_never_guessed(unit: str) -> None:
    with pytest.raises(UnknownUnitError, match="is not one Tollgate reads a token price in"):
        per_million("0.001", unit)


@pytest.mark.parametrize("amount", ["abc", "-0.1", "NaN", "Infinity"])
def test_a_price_that_is_not_a_price_is_refused(amount: str) -> None:
    with pytest.raises(ValueError, match="price"):
        per_million(amount, "1K tokens")


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal("0.8"), "0.80"), (Decimal(3), "3.00"), (Decimal("0.00875"), "0.00875"), (Decimal("1.375"), "1.375")],
)
def test_prices_are_written_as_models_json_writes_them(value: Decimal, text: str) -> None:
    assert price_text(value) == text


# --------------------------------------------------------------------------- parsing


def test_the_fixtures_parse_into_one_price_per_on_demand_dimension() -> None:
    listed, skipped = parse_price_list(fixture_entries(*BOTH))
    assert skipped == []
    assert len(listed) == 16
    lite = next(p for p in listed if p.attributes.get("usagetype") == "USE1-NovaLite-input-tokens")
    assert (lite.service_code, lite.amount, lite.unit, lite.effective) == (
        "AmazonBedrock", "0.0000700000", "1K tokens", date(2026, 12, 1),
    )  # fmt: skip
    assert lite.sku == "FIXTURESKU0000003"
    assert lite.publication == "2026-12-01T00:00:00Z"


def product(**overrides: Any) -> dict[str, Any]:
    """One product in GetProducts' documented shape (a FIXTURE, not AWS data)."""
    document: dict[str, Any] = {
        "product": {"sku": "FIXTURESKU9", "attributes": {"servicecode": "AmazonBedrock", "regionCode": REGION,
                    "model": "Nova Lite", "usagetype": "USE1-NovaLite-input-tokens", "inferenceType": "Input tokens",
                    "feature": "On-demand Inference"}},
        "serviceCode": "AmazonBedrock",
        "terms": {"OnDemand": {"FIXTURESKU9.T": {"effectiveDate": "2026-12-01T00:00:00Z", "priceDimensions": {
            "FIXTURESKU9.T.R": {"unit": "1K tokens", "beginRange": "0", "endRange": "Inf",
                                "pricePerUnit": {"USD": "0.0000700000"}}}}}},
        "publicationDate": "2026-12-01T00:00:00Z",
    }  # fmt: skip
    for path, value in overrides.items():
        node = document
        *parents, last = path.split(".")
        for name in parents:
            node = node[name]
        node[last] = value
    return document


def test_entries_not_in_the_documented_shape_are_named_and_skipped() -> None:
    ranged = product()
    ranged["terms"]["OnDemand"]["FIXTURESKU9.T"]["priceDimensions"]["FIXTURESKU9.T.R"]["endRange"] = "1000000"
    no_usd = product()
    no_usd["terms"]["OnDemand"]["FIXTURESKU9.T"]["priceDimensions"]["FIXTURESKU9.T.R"]["pricePerUnit"] = {"EUR": "1"}
    listed, skipped = parse_price_list(
        [product(), json.dumps(product())[:-5], {"product": {}}, json.dumps({"terms": {}}), json.dumps(ranged),
         json.dumps(no_usd), json.dumps(product(terms={}))]
    )  # fmt: skip
    assert listed == []  # product() itself is a dict, not a JSON string
    assert [s.reason.split(" (")[0] for s in skipped] == [
        "not a JSON string",
        "not a product in GetProducts' shape",
        "not a JSON string",
        "not a product in GetProducts' shape",
        "priced by volume range; models.json holds flat rates",
        "no USD price",
        "no OnDemand terms",
    ]


def test_a_file_that_is_not_a_get_products_response_is_refused() -> None:
    with pytest.raises(PriceListShapeError, match=r"saved\.json: not a GetProducts response"):
        price_list_of({"Products": []}, "saved.json")
    pages = [{"PriceList": ["a"]}, {"PriceList": ["b"], "NextToken": "x"}]
    assert price_list_of(pages, "pages.json") == ["a", "b"]


# --------------------------------------------------------------------------- mapping


def listed(**overrides: Any) -> ListedPrice:
    (found,), _ = parse_price_list([json.dumps(product(**overrides))])
    return found


def mapped(**attributes: str) -> list[Mapped] | Skipped:
    price = listed()
    return map_price(ListedPrice(**{**price.__dict__, "attributes": {**price.attributes, **attributes}}), REGION)


@pytest.mark.parametrize(
    ("usagetype", "inference", "kind", "ways"),
    [
        ("USE1-NovaLite-input-tokens", "Input tokens", "input", {("in-region", "default", "standard", "standard"),
                                                                  ("cross-region", "default", "standard", "standard")}),
        ("USE1-NovaLite-output-tokens", "Output tokens", "output", None),
        ("USE1-NovaLite-cache-read-input-tokens", "", "cache_read", None),
        ("USE1-MP:USE1_CacheWriteInputTokenCount-Units", "", "cache_write", None),
        ("USE1-MP:USE1_CacheWrite1hInputTokenCount_Global-Units", "", "cache_write_1h",
         {("global", "default", "standard", "standard")}),
        ("USE1-MP:USE1_InputTokenCount_Global-Units", "", "input", {("global", "default", "standard", "standard")}),
        ("USE1-NovaLite-cross-region-geo-input-tokens", "", "input",
         {("cross-region", "default", "standard", "standard")}),
        ("USE1_InputTokenCount_LCtx", "", "input", {("in-region", "default", "long", "standard"),
                                                    ("cross-region", "default", "long", "standard")}),
        ("USE1-NovaLite-flex-input-tokens", "", "input", {("in-region", "flex", "standard", "standard"),
                                                          ("cross-region", "flex", "standard", "standard")}),
        ("USE1-NovaLite-priority-output-tokens", "", "output", {("in-region", "priority", "standard", "standard"),
                                                                ("cross-region", "priority", "standard", "standard")}),
        ("USE1-NovaLite-latency-optimized-input-tokens", "", "input",
         {("in-region", "default", "standard", "optimized"), ("cross-region", "default", "standard", "optimized")}),
    ],
)  # fmt: skip
def test_usage_types_map_to_a_kind_of_rate_and_a_way_of_serving(
    usagetype: str, inference: str, kind: str, ways: set[tuple[str, ...]] | None
) -> None:
    result = mapped(usagetype=usagetype, inferenceType=inference)
    assert not isinstance(result, Skipped), result
    assert {m.kind for m in result} == {kind}
    assert {m.model_id for m in result} == {LITE}
    if ways is not None:
        assert {m.way for m in result} == ways


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"usagetype": "USE1-NovaLite-ProvisionedThroughput-NoCommit-ModelUnits"}, "not an on-demand token price"),
        ({"usagetype": "USE1-NovaLite-batch-input-tokens"}, "not an on-demand token price"),
        ({"feature": "Provisioned Throughput"}, "not an on-demand token price"),
        ({"model": "Titan Text Express"}, "model name 'Titan Text Express' is not in"),
        ({"regionCode": "eu-west-1"}, "for region eu-west-1, not us-east-1"),
        ({"usagetype": "USE1-NovaLite-tokens", "inferenceType": "Tokens"}, "neither input, output"),
    ],
)
def test_what_cannot_be_mapped_is_said_with_why(attributes: dict[str, str], reason: str) -> None:
    result = mapped(**attributes)
    assert isinstance(result, Skipped)
    assert reason in result.reason


def test_a_marketplace_model_is_named_by_its_servicename_without_the_edition() -> None:
    price = listed(**{"serviceCode": "AmazonBedrockFoundationModels"})
    attributes = {k: v for k, v in price.attributes.items() if k != "model"}
    attributes |= {
        "servicename": "Claude Haiku 4.5 (Amazon Bedrock Edition)",
        "usagetype": "USE1-MP:USE1_InputTokenCount-Units",
    }
    result = map_price(ListedPrice(**{**price.__dict__, "attributes": attributes}), REGION)
    assert not isinstance(result, Skipped)
    assert {m.model_id for m in result} == {HAIKU}


def test_a_unit_it_does_not_know_is_refused_for_that_price() -> None:
    result = map_price(listed(**{"terms": product()["terms"]}), REGION)
    assert not isinstance(result, Skipped)
    units = product()
    units["terms"]["OnDemand"]["FIXTURESKU9.T"]["priceDimensions"]["FIXTURESKU9.T.R"]["unit"] = "Units"
    (price,), _ = parse_price_list([json.dumps(units)])
    refused = map_price(price, REGION)
    assert isinstance(refused, Skipped)
    assert refused.reason.startswith("refused: unit 'Units'")


def test_every_mapped_model_id_is_a_bedrock_model_id() -> None:
    for (service, name), model_id in price_list.MODEL_NAMES.items():
        assert service in price_list.SERVICE_CODES
        assert name == name.casefold()
        assert "." in model_id


# --------------------------------------------------------------------------- proposals


def proposal_of(
    catalog: ModelCatalog = CATALOG, entries: list[Any] | None = None, on: date = ON
) -> price_list.Proposal:
    found, skipped = parse_price_list(fixture_entries(*BOTH) if entries is None else entries)
    assert skipped == []
    return propose(catalog, REGION, on, found)


def test_prices_that_differ_get_new_dated_rows_and_equal_ones_print_nothing() -> None:
    proposal = proposal_of()
    # Nova Lite input 0.06 -> 0.07 from AWS's effective date, in both scopes the book prices it in;
    # Claude Haiku 4.5 cross-region input 1.10 -> 1.20 (its output price is in a unit Tollgate refuses)
    assert proposal.document() == {
        "models": {
            LITE: {"prices": [
                {"scope": "cross-region", "effective_from": "2026-12-01", "input": "0.07", "output": "0.24",
                 "cache_read": "0.015", "cache_write": "0.06", "source": proposal.rows[LITE][0]["source"]},
                {"scope": "in-region", "effective_from": "2026-12-01", "input": "0.07", "output": "0.24",
                 "cache_read": "0.015", "cache_write": "0.06", "source": proposal.rows[LITE][1]["source"]},
            ]},
            HAIKU: {"prices": [
                {"scope": "cross-region", "effective_from": "2026-11-15", "input": "1.20", "output": "5.50",
                 "cache_read": "0.11", "cache_write": "1.375", "source": proposal.rows[HAIKU][0]["source"]},
            ]},
        }
    }  # fmt: skip
    source = proposal.rows[LITE][1]["source"]
    assert "AWS Price List API GetProducts (AmazonBedrock, regionCode us-east-1" in source
    assert "sku input FIXTURESKU0000003" in source
    assert "checked" not in proposal.rows[LITE][1]  # a person checks, not this command
    assert [(c.model_id, c.way[0], c.kind, c.book, c.aws) for c in proposal.changes] == [
        ("amazon.nova-lite-v1:0", "cross-region", "input", Decimal("0.06"), Decimal("0.07")),
        ("amazon.nova-lite-v1:0", "in-region", "input", Decimal("0.06"), Decimal("0.07")),
        (HAIKU, "cross-region", "input", Decimal("1.10"), Decimal("1.2")),
    ]
    # equal to the book: Nova Pro, Nova Micro cache read, Llama (geographic), Sonnet 4.5 global (standard, long, 1h)
    assert set(proposal.matching) >= {
        ("amazon.nova-pro-v1:0", ("in-region", "default", "standard", "standard")),
        ("meta.llama3-3-70b-instruct-v1:0", ("cross-region", "default", "standard", "standard")),
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", ("global", "default", "long", "standard")),
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", ("global", "default", "standard", "standard")),
    }
    assert "anthropic.claude-sonnet-4-5-20250929-v1:0" not in proposal.rows


def test_what_it_cannot_use_is_listed() -> None:
    proposal = proposal_of()
    reasons = [s.reason for s in proposal.skipped]
    assert any("not an on-demand token price" in r for r in reasons)
    assert any("'Titan Text Express' is not in" in r for r in reasons)
    assert any(r.startswith("refused: unit 'Units'") for r in reasons)
    not_in_book = dict(proposal.not_in_book)
    assert "models.json does not have the model" in not_in_book["anthropic.claude-opus-4-5-20251101-v1:0"]
    assert any(w.startswith("amazon.nova-pro-v1:0 in-region flex/standard/standard") for w in not_in_book)
    # Haiku 4.5 is not priced in-region by the book: the unmarked AWS price implies nothing about that
    assert not any(w.startswith(f"{HAIKU} in-region") for w in not_in_book)


def test_the_proposal_pasted_is_a_valid_book_that_keeps_history() -> None:
    proposal = proposal_of()
    raw = copy.deepcopy(RAW)
    for model, block in proposal.document()["models"].items():
        raw["models"][model]["prices"].extend(block["prices"])
    pasted = ConfigBundle.from_texts((FIXTURES / "price_book" / "config.json").read_text(), json.dumps(raw)).catalog
    old, new = PriceBook(CATALOG, REGION), PriceBook(pasted, REGION)
    assert new.price(LITE, "in-region", date(2026, 11, 30)) == old.price(LITE, "in-region", date(2026, 11, 30))
    assert new.price(LITE, "in-region", date(2026, 12, 1)).input == 70_000  # 0.07 USD per 1M = 70,000 pUSD/token
    assert proposal_of(pasted).rows == {}  # proposing again against the pasted book: nothing left to do


def test_an_aws_date_not_after_the_row_in_force_is_proposed_from_the_day_compared_on() -> None:
    entry = product(**{"terms": product()["terms"]})
    entry["terms"]["OnDemand"]["FIXTURESKU9.T"]["effectiveDate"] = "2024-01-01T00:00:00Z"
    proposal = proposal_of(entries=[json.dumps(entry)])
    assert {row["effective_from"] for row in proposal.rows[LITE]} == {"2026-12-03"}
    assert any("is not after the row in force (2024-12-03)" in note for note in proposal.notes)


def test_a_price_already_dated_in_the_book_is_not_proposed_again() -> None:
    raw = copy.deepcopy(RAW)
    for scope in ("in-region", "cross-region"):
        raw["models"][LITE]["prices"].append(
            {"scope": scope, "effective_from": "2027-01-01", "input": "0.07", "output": "0.24", "cache_read": "0.015",
             "cache_write": "0.06"}
        )  # fmt: skip
    proposal = proposal_of(ModelCatalog.model_validate(raw), [json.dumps(product())])
    assert proposal.rows == {}
    assert any("in models.json from 2027-01-01 already" in note for note in proposal.notes)


def test_a_future_row_of_the_same_date_with_other_figures_is_left_to_a_person() -> None:
    raw = copy.deepcopy(RAW)
    raw["models"][LITE]["prices"].append(
        {"scope": "in-region", "effective_from": "2027-02-01", "input": "0.08", "output": "0.24", "cache_read": "0.015",
         "cache_write": "0.06"}
    )  # fmt: skip
    entry = product()
    entry["terms"]["OnDemand"]["FIXTURESKU9.T"]["effectiveDate"] = "2027-02-01T00:00:00Z"
    proposal = proposal_of(ModelCatalog.model_validate(raw), [json.dumps(entry)])
    assert [r["scope"] for r in proposal.rows[LITE]] == ["cross-region"]
    assert any("already has a row from 2027-02-01 with other figures" in note for note in proposal.notes)


def test_two_different_aws_prices_for_one_rate_propose_nothing_for_it() -> None:
    other = product(**{"product.sku": "FIXTURESKU10"})
    other["terms"]["OnDemand"]["FIXTURESKU9.T"]["priceDimensions"]["FIXTURESKU9.T.R"]["pricePerUnit"] = {
        "USD": "0.00009"
    }
    proposal = proposal_of(entries=[json.dumps(product()), json.dumps(other)])
    assert proposal.rows == {}
    assert any(
        "AWS lists different prices (FIXTURESKU9: 0.07, FIXTURESKU10: 0.09)" in s.reason for s in proposal.skipped
    )


def test_a_price_with_more_decimals_than_models_json_holds_is_not_rounded() -> None:
    entry = product()
    entry["terms"]["OnDemand"]["FIXTURESKU9.T"]["priceDimensions"]["FIXTURESKU9.T.R"]["pricePerUnit"] = {
        "USD": "0.0000700001"
    }
    proposal = proposal_of(entries=[json.dumps(entry)])
    assert proposal.rows == {}
    assert any("0.0700001 USD per 1M tokens has more than 6 decimals" in s.reason for s in proposal.skipped)


def test_cache_rates_for_a_model_without_caching_are_not_used() -> None:
    entry = product(**{"product.attributes.model": "Llama 3.3 70B Instruct"})
    entry["product"]["attributes"]["usagetype"] = "USE1-Llama-cross-region-geo-cache-read-input-tokens"
    proposal = proposal_of(entries=[json.dumps(entry)])
    assert proposal.rows == {}
    assert any("prompt_caching false" in note for note in proposal.notes)
