"""What `tollgate config check` warns about, beside the errors: pure code over a valid ConfigBundle.

A warning does not stop a deploy, but says what a person should do:

* a profile's model is past its end of life (Bedrock refuses every call to it), within
  ``END_OF_LIFE_WARNING_DAYS`` of it, or Legacy: which model to move the profile to;
* the price rows the profiles' calls are charged at that nobody has checked against the AWS
  pricing page (no ``checked`` date): how many, where their figures come from, what checking means;
* rows among those whose figures were derived from a rule rather than read (``PriceRow.derived``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Literal

from tollgate.config import ConfigBundle, ModelCatalog, ModelEntry, PriceRow, ResolvedProfile, served_ways
from tollgate.pricing import PriceBook

#: A model this close to its end of life (or closer) is warned about: time to move and test.
END_OF_LIFE_WARNING_DAYS = 90
PRICING_PAGE = "https://aws.amazon.com/bedrock/pricing/"

Kind = Literal["end_of_life", "end_of_life_soon", "legacy", "unchecked", "derived"]


@dataclass(frozen=True)
class Advice:
    kind: Kind
    message: str


@dataclass(frozen=True)
class RowInUse:
    """A price row that calls of some profiles are (or will be, from its date) charged at."""

    model_id: str
    row: PriceRow
    profiles: tuple[str, ...]

    def describe(self) -> str:
        regions = "every region" if self.row.regions == "*" else ",".join(self.row.regions)
        return f"{self.model_id} {self.row.describe()} ({regions}, from {self.row.effective_from})"


def advise(bundle: ConfigBundle, today: date, region: str | None = None) -> list[Advice]:
    """Every warning for the bundle on ``today``; prices as charged in ``region`` (None: in any region)."""
    found = [a for p in bundle.profiles() if (a := lifecycle_advice(bundle.catalog, p, today)) is not None]
    in_use = rows_in_use(bundle, today, region)
    found.extend(_unchecked(in_use, region))
    found.extend(_derived(bundle.catalog, in_use, region))
    return found


def lifecycle_advice(catalog: ModelCatalog, profile: ResolvedProfile, today: date) -> Advice | None:
    model = catalog.models[profile.model_id]
    lifecycle = model.lifecycle
    end, legacy = lifecycle.end_of_life, lifecycle.legacy_from
    what = f"profiles.{profile.name} uses {profile.model_id} ({model.name})"
    move = _move_to(catalog, profile.model_id, today)
    if end is not None and end <= today:
        return Advice(
            "end_of_life",
            f"{what}, past its end of life on {end}: Bedrock refuses every call to it, so every call of this "
            f"profile fails. {move}",
        )
    if end is not None and (end - today).days <= END_OF_LIFE_WARNING_DAYS:
        state = f"Legacy since {legacy}, it" if legacy is not None and legacy <= today else "It"
        return Advice(
            "end_of_life_soon",
            f"{what}. {state} reaches its end of life on {end}, in {(end - today).days} days; from then Bedrock "
            f"refuses every call to it. {move}",
        )
    if legacy is not None and legacy <= today:
        ends = f"its end of life is {end}" if end is not None else "its end of life is not announced yet"
        return Advice(
            "legacy",
            f"{what}, Legacy since {legacy} ({ends}; AWS may raise a Legacy model's price during its extended "
            f"access). {move}",
        )
    return None


def _current(entry: ModelEntry, today: date) -> bool:
    lifecycle = entry.lifecycle
    return not (
        (lifecycle.end_of_life is not None and lifecycle.end_of_life <= today)
        or (lifecycle.legacy_from is not None and lifecycle.legacy_from <= today)
    )


def _move_to(catalog: ModelCatalog, model_id: str, today: date) -> str:
    entry = catalog.models[model_id]
    replacement = entry.lifecycle.replacement
    if replacement is not None and _current(catalog.models[replacement], today):
        return (
            f"Move the profile to {replacement} ({catalog.models[replacement].name}), its replacement in "
            "models.json, in config.json."
        )
    others = [
        f"{other} ({e.name})"
        for other, e in sorted(catalog.models.items())
        if other != model_id and e.provider == entry.provider and _current(e, today)
    ]
    if not others:
        return "Move the profile to a current model of models.json, in config.json."
    return f"Move the profile, in config.json, to a current {entry.provider} model: {', '.join(others)}."


def rows_in_use(bundle: ConfigBundle, today: date, region: str | None = None) -> list[RowInUse]:
    """The rows the profiles' allowed ways of being served are charged at, in force ``today`` or later.

    In ``region`` as the gateway charges there (a region's own rows before the every-region ones);
    with no region, the rows of every region set a model has.
    """
    catalog = bundle.catalog
    book = PriceBook(catalog, region) if region is not None else None
    users: dict[tuple[str, int], list[str]] = {}
    for profile in bundle.profiles():
        model = catalog.models[profile.model_id]
        for tier, context, latency in served_ways(profile.allow, model):
            dims = (profile.scope, tier, context, latency)
            if book is not None:
                rows = book.rows_from(
                    profile.model_id, profile.scope, today, tier=tier, context=context, latency=latency
                )
            else:
                rows = _every_region_from([r for r in model.prices if r.dimensions == dims], today)
            for row in rows:
                users.setdefault((profile.model_id, _index(model, row)), []).append(profile.name)
    return [
        RowInUse(model_id, catalog.models[model_id].prices[index], tuple(sorted(set(names))))
        for (model_id, index), names in sorted(users.items())
    ]


def _index(model: ModelEntry, row: PriceRow) -> int:
    return next(i for i, r in enumerate(model.prices) if r is row)


def _every_region_from(rows: list[PriceRow], today: date) -> list[PriceRow]:
    """Per region set, the row in force ``today`` (or the first one, if none is yet) and any later ones."""
    chosen: list[PriceRow] = []
    for regions in {r.regions for r in rows}:
        dated = sorted((r for r in rows if r.regions == regions), key=lambda r: r.effective_from)
        started = [i for i, r in enumerate(dated) if r.effective_from <= today]
        chosen.extend(dated[started[-1] if started else 0 :])
    return chosen


def _where(region: str | None) -> str:
    return f"in {region}" if region is not None else "in any region (no region was checked)"


def _unchecked(in_use: list[RowInUse], region: str | None) -> list[Advice]:
    unchecked = [u for u in in_use if u.row.checked is None]
    if not unchecked:
        return []
    # The source up to its first ": " names the document and its date; what follows is detail.
    sources = Counter(u.row.source.split(": ", 1)[0] or "(no source given)" for u in unchecked)
    listed = "; ".join(f"{count} from {source}" for source, count in sorted(sources.items()))
    return [
        Advice(
            "unchecked",
            f"{len(unchecked)} of the {len(in_use)} price rows the profiles' calls are charged at {_where(region)} "
            f"have no `checked` date: nobody has compared their figures with the Amazon Bedrock pricing page "
            f"({PRICING_PAGE}) or the AWS Price List API (service codes AmazonBedrock, "
            f"AmazonBedrockFoundationModels). Where each row's figures come from is its `source` in models.json "
            f"({listed}). Compare each figure with AWS's own for the row's region, scope and tier; if one differs, "
            f"add a row with the new figures and today's effective_from; then write the day you checked as the "
            f"row's `checked` (YYYY-MM-DD).",
        )
    ]


def _derived(catalog: ModelCatalog, in_use: list[RowInUse], region: str | None) -> list[Advice]:
    derived = [u for u in in_use if u.row.derived and u.row.checked is None]
    if not derived:
        return []
    total = sum(1 for e in catalog.models.values() for r in e.prices if r.derived and r.checked is None)
    lines = "\n".join(f"  {u.describe()} [{', '.join(u.profiles)}]: {u.row.source}" for u in derived)
    return [
        Advice(
            "derived",
            f"{len(derived)} of those rows hold figures derived from a rule, not read from a price list "
            f"(models.json has {total} such rows in all); they are the first to check:\n{lines}",
        )
    ]
