"""The AWS Price List API's Bedrock prices, read into models.json rows (`tollgate prices propose`).

Pure code: the GetProducts responses come in as data (the adapter is tollgate_cli.aws_price_list).

What is AWS's documented shape (botocore's ``pricing`` service model and its GetProducts example):
``PriceList`` is a list of JSON *strings*, each ``{"product": {"sku", "attributes": {...}},
"serviceCode", "terms": {"OnDemand": {<term>: {"effectiveDate", "priceDimensions": {<rate>:
{"unit", "pricePerUnit": {"USD": "0.0008000000"}, "beginRange", "endRange", ...}}}}},
"publicationDate", ...}``. That part is parsed strictly.

What is NOT verified (no Bedrock GetProducts response could be read where this was written; the
spellings below come from AWS-authored sample code and third-party reports): the attribute that
names the model (``model`` for AmazonBedrock, ``servicename`` "... (Amazon Bedrock Edition)" for
AmazonBedrockFoundationModels), the model names themselves, and the ``usagetype`` /
``inferenceType`` spellings that say input, output, cache read, cache write (5 minutes or 1 hour),
service tier, long context, latency-optimized, and geographic or global cross-region. They are
in the explicit tables and patterns below, one place to correct; anything they do not match is
listed as unmapped, never guessed at, and every proposed row says where its figures came from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from tollgate.config import ModelCatalog, PriceRow
from tollgate.money import PRICE_DECIMALS
from tollgate.pricing import PriceBook, PriceNotFoundError

from tollgate_cli.prices import PRICE_KINDS, Way, row_of, way_text

Kind = Literal["input", "output", "cache_read", "cache_write", "cache_write_1h"]

#: The service codes whose products are Bedrock's token prices ([B] AWS samples): Amazon's and
#: open-weight models, and the third-party models billed through AWS Marketplace (Claude ...).
SERVICE_CODES = ("AmazonBedrock", "AmazonBedrockFoundationModels")

#: Units, as the price dimension names them, and how many of that unit make 1M tokens. "1K tokens"
#: is the unit AWS's own sample code filters AmazonBedrock token prices on ([B]); the per-1M spellings
#: are ASSUMED (Marketplace descriptions speak of "per 1M" / "Million ... Tokens"). Any other unit is
#: refused: a price is never read in a unit Tollgate does not know.
UNITS: Mapping[str, int] = {
    "1K tokens": 1000,
    "1M tokens": 1,
    "Million tokens": 1,
    "1 Million tokens": 1,
}
_UNITS_FOLDED = {unit.casefold(): factor for unit, factor in UNITS.items()}


class UnknownUnitError(ValueError):
    pass


def per_million(amount: str, unit: str) -> Decimal:
    """USD per 1M tokens, exactly, from a ``pricePerUnit.USD`` string in ``unit``."""
    factor = _UNITS_FOLDED.get(" ".join(unit.split()).casefold())
    if factor is None:
        known = ", ".join(f'"{u}"' for u in UNITS)
        raise UnknownUnitError(f"unit {unit!r} is not one Tollgate reads a token price in (known: {known})")
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise ValueError(f"price {amount!r} is not a decimal number") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"price {amount!r} is not a price")
    return (value * factor).normalize()


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class ListedPrice:
    """One on-demand price dimension of one product, as the Price List says it (amount as written)."""

    service_code: str
    sku: str
    rate_code: str
    attributes: Mapping[str, str]
    amount: str
    unit: str
    description: str
    effective: date | None
    publication: str

    def describe(self) -> str:
        name = self.attributes.get("model") or self.attributes.get("servicename") or "?"
        usage = self.attributes.get("usagetype", "?")
        return f"{self.service_code} {name!r} {usage} ({self.amount} USD per {self.unit})"


@dataclass(frozen=True)
class Skipped:
    """A product or price the proposal does not use, and why."""

    what: str
    reason: str


class PriceListShapeError(ValueError):
    """A file or answer that is not a GetProducts response at all."""


def price_list_of(document: Any, source: str) -> list[Any]:
    """The PriceList entries of a saved GetProducts response (or a JSON list of such pages)."""
    pages = document if isinstance(document, list) else [document]
    entries: list[Any] = []
    for index, page in enumerate(pages):
        where = source if len(pages) == 1 else f"{source}[{index}]"
        if not isinstance(page, dict) or not isinstance(page.get("PriceList"), list):
            raise PriceListShapeError(
                f"{where}: not a GetProducts response (an object with a PriceList list, as "
                "`aws pricing get-products --service-code AmazonBedrock ...` prints)"
            )
        entries.extend(page["PriceList"])
    return entries


def parse_price_list(entries: Iterable[Any]) -> tuple[list[ListedPrice], list[Skipped]]:
    """Every on-demand price dimension of the entries (JSON strings, as GetProducts returns them)."""
    found: list[ListedPrice] = []
    skipped: list[Skipped] = []
    for index, entry in enumerate(entries):
        what = f"PriceList[{index}]"
        if not isinstance(entry, str):
            skipped.append(Skipped(what, "not a JSON string (GetProducts returns each product as a string)"))
            continue
        try:
            document = json.loads(entry)
            product = document["product"]
            sku = str(product["sku"])
            attributes = {str(k): str(v) for k, v in product.get("attributes", {}).items()}
            service_code = str(document.get("serviceCode") or attributes.get("servicecode", ""))
            on_demand = document.get("terms", {}).get("OnDemand", {})
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            skipped.append(Skipped(what, f"not a product in GetProducts' shape ({type(error).__name__}: {error})"))
            continue
        what = f"{service_code} sku {sku}"
        if not on_demand:
            skipped.append(Skipped(what, "no OnDemand terms"))
            continue
        for term in on_demand.values():
            effective = _day(term.get("effectiveDate"))
            for rate_code, dimension in term.get("priceDimensions", {}).items():
                amount = dimension.get("pricePerUnit", {}).get("USD")
                if amount is None:
                    skipped.append(Skipped(f"{what} rate {rate_code}", "no USD price"))
                    continue
                if str(dimension.get("beginRange", "0")) != "0" or str(dimension.get("endRange", "Inf")) != "Inf":
                    skipped.append(
                        Skipped(f"{what} rate {rate_code}", "priced by volume range; models.json holds flat rates")
                    )
                    continue
                found.append(
                    ListedPrice(
                        service_code=service_code,
                        sku=sku,
                        rate_code=str(rate_code),
                        attributes=attributes,
                        amount=str(amount),
                        unit=str(dimension.get("unit", "")),
                        description=str(dimension.get("description", "")),
                        effective=effective,
                        publication=str(document.get("publicationDate", "")),
                    )
                )
    return found, skipped


def _day(value: Any) -> date | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
    except ValueError:
        return None


# --------------------------------------------------------------------------- mapping

#: The model a product is for, by service code and the product's model name (the attribute named
#: in NAME_ATTRIBUTES, " (Amazon Bedrock Edition)" removed, compared without case). ASSUMPTION: the
#: names are the Bedrock console's model names; AWS's sample code shows "Claude 3.5 Sonnet (Amazon
#: Bedrock Edition)" for servicename and "Nova Pro"-style names for model [B]; the rest is unverified.
#: Add a line here when `propose` lists a product of a model in models.json as unmapped.
MODEL_NAMES: Mapping[tuple[str, str], str] = {
    ("AmazonBedrock", "nova micro"): "amazon.nova-micro-v1:0",
    ("AmazonBedrock", "nova lite"): "amazon.nova-lite-v1:0",
    ("AmazonBedrock", "nova pro"): "amazon.nova-pro-v1:0",
    ("AmazonBedrock", "nova premier"): "amazon.nova-premier-v1:0",
    ("AmazonBedrock", "nova 2 lite"): "amazon.nova-2-lite-v1:0",
    ("AmazonBedrock", "llama 3.1 8b instruct"): "meta.llama3-1-8b-instruct-v1:0",
    ("AmazonBedrock", "llama 3.1 70b instruct"): "meta.llama3-1-70b-instruct-v1:0",
    ("AmazonBedrock", "llama 3.3 70b instruct"): "meta.llama3-3-70b-instruct-v1:0",
    ("AmazonBedrock", "llama 4 maverick 17b instruct"): "meta.llama4-maverick-17b-instruct-v1:0",
    ("AmazonBedrock", "llama 4 scout 17b instruct"): "meta.llama4-scout-17b-instruct-v1:0",
    ("AmazonBedrock", "gpt-oss-120b"): "openai.gpt-oss-120b-1:0",
    ("AmazonBedrock", "gpt-oss-20b"): "openai.gpt-oss-20b-1:0",
    ("AmazonBedrockFoundationModels", "claude 3 haiku"): "anthropic.claude-3-haiku-20240307-v1:0",
    ("AmazonBedrockFoundationModels", "claude 3.5 haiku"): "anthropic.claude-3-5-haiku-20241022-v1:0",
    ("AmazonBedrockFoundationModels", "claude haiku 4.5"): "anthropic.claude-haiku-4-5-20251001-v1:0",
    ("AmazonBedrockFoundationModels", "claude sonnet 4"): "anthropic.claude-sonnet-4-20250514-v1:0",
    ("AmazonBedrockFoundationModels", "claude sonnet 4.5"): "anthropic.claude-sonnet-4-5-20250929-v1:0",
    ("AmazonBedrockFoundationModels", "claude sonnet 4.6"): "anthropic.claude-sonnet-4-6",
    ("AmazonBedrockFoundationModels", "claude opus 4.1"): "anthropic.claude-opus-4-1-20250805-v1:0",
    ("AmazonBedrockFoundationModels", "claude opus 4.5"): "anthropic.claude-opus-4-5-20251101-v1:0",
    ("AmazonBedrockFoundationModels", "claude opus 4.6"): "anthropic.claude-opus-4-6-v1",
}

#: The product attribute that names the model, per service code [B AWS samples].
NAME_ATTRIBUTES: Mapping[str, str] = {"AmazonBedrock": "model", "AmazonBedrockFoundationModels": "servicename"}
_EDITION = re.compile(r"\s*\(amazon bedrock edition\)\s*$", re.I)

# Patterns over "<usagetype> <inferenceType>" (lower case). ASSUMED spellings, from AWS sample code
# [B] ("input"/"output"/"cache" in inferenceType, "-input-tokens", "_LCtx" for long context,
# "flex"/"priority" for tiers, "_Geo"/"cross-region-geo" for geographic and "global" for global
# cross-region) and third-party reports of Marketplace usage types ("InputTokenCount",
# "CacheReadInputTokenCount", "CacheWriteInputTokenCount", "_Global"). The 1-hour cache write and
# latency-optimized spellings are guesses: nothing seen names them.
_NOT_ON_DEMAND = re.compile(
    r"provisioned|batch|model[\s_-]*units?|no[\s_-]*commit|commit|reserved|tpm|custom[\s_-]*model|training|storage"
)
_HOUR = r"(?:1[\s_-]?h(?:r|our)?|60[\s_-]?min)"
_KINDS: Sequence[tuple[Kind, re.Pattern[str]]] = (
    ("cache_read", re.compile(r"cache[\s_-]*read")),
    # "write1h..." / "write 1 hour", or a "_1h" / "-1hr" marker later on
    ("cache_write_1h", re.compile(rf"cache[\s_-]*write(?:[\s_-]*{_HOUR}|.*(?:^|[^0-9a-z]){_HOUR}(?:[^a-z]|$))")),
    ("cache_write", re.compile(r"cache[\s_-]*write")),
    ("input", re.compile(r"input")),
    ("output", re.compile(r"output|response")),
)
_GLOBAL = re.compile(r"global")
_GEO = re.compile(r"(?:^|[^a-z])geo(?:[^a-z]|$)|cross[\s_-]*region")
_LONG = re.compile(r"lctx|long[\s_-]*context")
_OPTIMIZED = re.compile(r"latency[\s_-]*optimi[sz]ed|optimi[sz]ed[\s_-]*latency")
_TIERS = (("priority", re.compile(r"priority")), ("flex", re.compile(r"flex")))


@dataclass(frozen=True)
class Mapped:
    """A price read as one kind of rate of one way of serving one model, in USD per 1M tokens."""

    model_id: str
    way: Way
    kind: Kind
    usd_per_million: Decimal
    listed: ListedPrice
    #: The scope was inferred from the absence of a global or geographic marker (see map_price):
    #: where models.json does not price the model in that scope, nothing is said about it.
    implied_scope: bool = False


def model_of(listed: ListedPrice) -> tuple[str, str | None]:
    """(the product's model name, the model id MODEL_NAMES gives it, or None)."""
    attribute = NAME_ATTRIBUTES.get(listed.service_code)
    raw = listed.attributes.get(attribute, "") if attribute else ""
    name = " ".join(_EDITION.sub("", raw).split()).casefold()
    return raw, MODEL_NAMES.get((listed.service_code, name))


def map_price(listed: ListedPrice, region: str) -> list[Mapped] | Skipped:
    """What a price is a rate of, or why it is not used.

    A product with neither a global nor a geographic marker is taken as the price of both in-region
    and geographic cross-region calls: AWS's cross-region inference page says geographic profiles
    are billed at "standard pricing" and global ones at a discount [A]. A product marked geographic
    wins over that for cross-region.
    """
    what = listed.describe()
    if listed.service_code not in NAME_ATTRIBUTES:
        return Skipped(what, f"service code {listed.service_code!r} is not one of {', '.join(SERVICE_CODES)}")
    product_region = listed.attributes.get("regionCode")
    if product_region != region:
        return Skipped(what, f"for region {product_region or '(none given)'}, not {region}")
    signature = " ".join(
        listed.attributes.get(a, "") for a in ("usagetype", "inferenceType", "feature", "operation")
    ).casefold()
    feature = listed.attributes.get("feature", "")
    if _NOT_ON_DEMAND.search(signature) or (feature and not re.search(r"on[\s_-]*demand", feature, re.I)):
        return Skipped(what, "not an on-demand token price (provisioned, batch, reserved or other)")
    raw_name, model_id = model_of(listed)
    if model_id is None:
        return Skipped(what, f"model name {raw_name!r} is not in tollgate_cli.price_list.MODEL_NAMES")
    kind = next((k for k, pattern in _KINDS if pattern.search(signature)), None)
    if kind is None:
        return Skipped(what, "its usagetype/inferenceType says neither input, output, cache read nor cache write")
    try:
        amount = per_million(listed.amount, listed.unit)
    except ValueError as error:
        return Skipped(what, f"refused: {error}")
    tier = next((t for t, pattern in _TIERS if pattern.search(signature)), "default")
    context = "long" if _LONG.search(signature) else "standard"
    latency = "optimized" if _OPTIMIZED.search(signature) else "standard"
    if _GLOBAL.search(signature):
        scopes, implied = ["global"], False
    elif _GEO.search(signature):
        scopes, implied = ["cross-region"], False
    else:
        scopes, implied = ["in-region", "cross-region"], True
    return [Mapped(model_id, (scope, tier, context, latency), kind, amount, listed, implied) for scope in scopes]


# --------------------------------------------------------------------------- proposals


@dataclass(frozen=True)
class Change:
    model_id: str
    way: Way
    kind: str
    book: Decimal | None
    aws: Decimal


@dataclass
class Proposal:
    region: str
    on: date
    #: New rows to add, by model id (JSON-ready: prices as strings).
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    #: Ways of serving whose AWS prices equal the row in force (nothing to do).
    matching: list[tuple[str, Way]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    #: Prices of models or ways of serving models.json does not price here: (what, why).
    not_in_book: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Proposed rows that, like the rows they follow, apply to every region (read for one region only).
    every_region: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """What to paste: each row goes at the end of ``models.<id>.prices`` (old rows stay)."""
        return {"models": {model: {"prices": rows} for model, rows in sorted(self.rows.items())}}


def price_text(value: Decimal) -> str:
    """A price as models.json writes it: plain decimal, at least two decimals ("0.80", "0.035")."""
    value = value.normalize()
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        value = value.quantize(Decimal("0.01"))
    return format(value, "f")


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _row_dict(row: PriceRow) -> dict[str, Any]:
    """A row as models.json writes it (defaults left out, prices as strings)."""
    written: dict[str, Any] = {"scope": row.scope}
    if row.regions != "*":
        written["regions"] = list(row.regions)
    for name, default in (("tier", "default"), ("context", "standard"), ("latency", "standard")):
        if getattr(row, name) != default:
            written[name] = getattr(row, name)
    written["effective_from"] = row.effective_from.isoformat()
    for kind in PRICE_KINDS:
        value = getattr(row, kind)
        if value is not None:
            written[kind] = price_text(value)
    return written


def propose(catalog: ModelCatalog, region: str, on: date, listed: Iterable[ListedPrice]) -> Proposal:
    """New effective-dated rows for the ways of serving whose AWS prices differ from the row in force."""
    proposal = Proposal(region, on)
    by_way: dict[tuple[str, Way], dict[str, list[Mapped]]] = {}
    for price in listed:
        mapped = map_price(price, region)
        if isinstance(mapped, Skipped):
            proposal.skipped.append(mapped)
            continue
        for m in mapped:
            by_way.setdefault((m.model_id, m.way), {}).setdefault(m.kind, []).append(m)
    book = PriceBook(catalog, region)
    missing = sorted({model_id for model_id, _ in by_way if model_id not in catalog.models})
    for model_id in missing:
        proposal.not_in_book.append((model_id, f"AWS prices it in {region}; models.json does not have the model"))
    for (model_id, way), kinds in sorted(by_way.items()):
        if model_id in missing:
            continue
        figures: dict[str, Mapped] = {}
        for kind, candidates in kinds.items():
            explicit = [m for m in candidates if not m.implied_scope] or candidates
            amounts = {m.usd_per_million for m in explicit}
            if len(amounts) > 1:
                shown = ", ".join(f"{m.listed.sku}: {price_text(m.usd_per_million)}" for m in explicit)
                what = f"{model_id} {way[0]} {way_text(way)} {kind}"
                proposal.skipped.append(Skipped(what, f"AWS lists different prices ({shown}); none used"))
                continue
            figures[kind] = explicit[0]
        implied = all(m.implied_scope for m in figures.values())
        if figures and not (implied and not _prices_scope(catalog, book, model_id, way)):
            _propose_way(proposal, catalog, book, model_id, way, figures)
    _check_pastes(proposal, catalog)
    return proposal


def _prices_scope(catalog: ModelCatalog, book: PriceBook, model_id: str, way: Way) -> bool:
    """Whether models.json prices the model in this scope here at all (any tier, context or latency)."""
    entry = catalog.models.get(model_id)
    return entry is not None and any(
        book.offers(model_id, r.scope, tier=r.tier, context=r.context, latency=r.latency)
        for r in entry.prices
        if r.scope == way[0]
    )


def _propose_way(
    proposal: Proposal, catalog: ModelCatalog, book: PriceBook, model_id: str, way: Way, figures: dict[str, Mapped]
) -> None:
    scope, tier, context, latency = way
    what = f"{model_id} {scope} {way_text(way)}"
    aws_text = ", ".join(f"{k} {price_text(m.usd_per_million)}" for k, m in sorted(figures.items()))
    try:
        current = book.price(model_id, scope, proposal.on, tier=tier, context=context, latency=latency)
    except PriceNotFoundError:
        proposal.not_in_book.append(
            (f"{what}: {aws_text}", f"models.json has no row for it in force in {proposal.region} on {proposal.on}")
        )
        return
    entry = catalog.models[model_id]
    row = row_of(catalog, current)
    usable: dict[str, Mapped] = {}
    for kind, m in figures.items():
        if kind.startswith("cache") and not entry.prompt_caching:
            proposal.notes.append(f"{what}: AWS prices {kind} but models.json has prompt_caching false; not used")
        elif kind == "cache_write_1h" and "1h" not in entry.cache_ttls:
            proposal.notes.append(f'{what}: AWS prices 1-hour cache writes; add "1h" to cache_ttls to use them')
        elif _decimals(m.usd_per_million) > PRICE_DECIMALS:
            proposal.skipped.append(
                Skipped(
                    m.listed.describe(),
                    f"{m.usd_per_million} USD per 1M tokens has more than {PRICE_DECIMALS} decimals; "
                    "models.json cannot hold it exactly",
                )
            )
        else:
            usable[kind] = m
    changed = {k: m for k, m in usable.items() if getattr(row, k) != m.usd_per_million}
    if not changed:
        if usable:
            proposal.matching.append((model_id, way))
        return
    # Already dated in the book? A later row of the same way and regions with these figures.
    for later in entry.prices:
        if (
            later.dimensions == row.dimensions
            and later.regions == row.regions
            and later.effective_from > row.effective_from
            and all(getattr(later, k) == m.usd_per_million for k, m in usable.items())
        ):
            proposal.notes.append(f"{what}: the AWS prices are in models.json from {later.effective_from} already")
            return
    for kind, m in sorted(changed.items()):
        proposal.changes.append(Change(model_id, way, kind, getattr(row, kind), m.usd_per_million))
    dated = sorted({m.listed.effective for m in changed.values() if m.listed.effective is not None})
    effective = dated[-1] if dated and dated[-1] > row.effective_from else proposal.on
    if effective < proposal.on:
        proposal.notes.append(
            f"{what}: AWS's price is effective from {effective}, before {proposal.on}: the calls since then were "
            f"charged at the row of {row.effective_from} (`tollgate prices what-if` shows by how much)"
        )
    if effective == proposal.on and (not dated or dated[-1] <= row.effective_from):
        said = dated[-1].isoformat() if dated else "none"
        proposal.notes.append(
            f"{what}: AWS's effective date ({said}) is not after the row in force ({row.effective_from}); "
            f"proposed from {proposal.on} (history is never rewritten: records keep the price they were charged)"
        )
    clash = next(
        (r for r in entry.prices if r.dimensions == row.dimensions and r.regions == row.regions
         and r.effective_from == effective),
        None,
    )  # fmt: skip
    if clash is not None:  # only a row not yet in force can be dated after the row in force
        proposal.notes.append(
            f"{what}: models.json already has a row from {effective} with other figures ({aws_text} by AWS); "
            "it is not in force yet, so correct that row by hand"
        )
        return
    new = _row_dict(row)
    new["effective_from"] = effective.isoformat()
    for kind, m in changed.items():
        new[kind] = price_text(m.usd_per_million)
    skus = "; ".join(f"{k} {m.listed.sku}" for k, m in sorted(changed.items()))
    publication = max((m.listed.publication for m in changed.values()), default="")
    new["source"] = (
        f"AWS Price List API GetProducts ({', '.join(sorted({m.listed.service_code for m in changed.values()}))}, "
        f"regionCode {proposal.region}, publication {publication or 'not given'}; sku {skus}), proposed by "
        f"`tollgate prices propose` on {proposal.on}; other figures kept from the row of {row.effective_from}"
    )
    ordered = {k: new[k] for k in ("scope", "regions", "tier", "context", "latency", "effective_from") if k in new}
    ordered |= {k: new[k] for k in PRICE_KINDS if k in new}
    ordered["source"] = new["source"]
    proposal.rows.setdefault(model_id, []).append(ordered)
    if row.regions == "*":
        proposal.every_region.append(f"{model_id} {scope} {way_text(way)}")


def _check_pastes(proposal: Proposal, catalog: ModelCatalog) -> None:
    """The proposal pasted into the catalog must be a valid models.json (a bug here, never the user's)."""
    if not proposal.rows:
        return
    raw = catalog.model_dump(mode="json", exclude_none=True)
    for model_id, rows in proposal.rows.items():
        raw["models"][model_id]["prices"].extend(rows)
    ModelCatalog.model_validate(raw)
