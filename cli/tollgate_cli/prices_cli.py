"""`tollgate prices` as a user runs it: read through the adapters, compute in tollgate_cli.prices and
tollgate_cli.price_list (pure), show tables for people or JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from tollgate.adapters.dynamodb import DynamoTrendStore, DynamoUsageStore
from tollgate.config import ModelCatalog
from tollgate.money import format_usd, usd
from tollgate.pricing import PriceBook
from tollgate.rollup import Granularity

from tollgate_cli import prices, report, tables
from tollgate_cli.price_list import (
    PriceListShapeError,
    Proposal,
    parse_price_list,
    price_list_of,
    price_text,
    propose,
)
from tollgate_cli.prices import Listing, WhatIf, way_text
from tollgate_cli.target import Target

_KIND_HEADERS = ("input", "output", "cache read", "cache write 5m", "cache write 1h")


# --------------------------------------------------------------------------- the book


def _figure(value: Decimal | None) -> str:
    return "—" if value is None else price_text(value)


def _written(value: Decimal | None) -> str | None:
    return None if value is None else price_text(value)


def book_document(listing: Listing, region_source: str) -> dict[str, Any]:
    def row(line: prices.BookLine) -> dict[str, Any]:
        discount = line.discount
        return {
            "model": line.model_id,
            "scope": line.way[0],
            "tier": line.way[1],
            "context": line.way[2],
            "latency": line.way[3],
            **{kind: _written(line.figure(kind)) for kind in prices.PRICE_KINDS},
            "effective_from": line.row.effective_from.isoformat(),
            "regions": "*" if line.row.regions == "*" else list(line.row.regions),
            "source": line.row.source,
            "checked": line.row.checked.isoformat() if line.row.checked else None,
            "discount": None if discount is None else {"label": discount.label, "percent": str(discount.percent)},
            "price_version": line.price.version,
            "upcoming": [r.effective_from.isoformat() for r in line.upcoming],
        }

    return {
        "region": listing.region,
        "region_from": region_source,
        "on": listing.on.isoformat(),
        "unit": "USD per 1M tokens",
        "prices": [row(line) for line in listing.lines],
        "not_yet_in_force": [
            {"model": m, "way": f"{w[0]} {way_text(w)}", "from": d.isoformat()} for m, w, d in listing.not_yet
        ],
        "not_priced_here": list(listing.not_here),
    }


def print_book(out: Console, err: Console, listing: Listing, region_source: str, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(book_document(listing, region_source), indent=2))
        return
    if not listing.lines:
        out.print(f"models.json prices nothing in force in {listing.region} on {listing.on}", highlight=False)
    else:
        shown = tables.table(
            f"Price book in {listing.region} (region from {region_source}) on {listing.on}, USD per 1M tokens",
            ("model", "scope", "tier/context/latency", *_KIND_HEADERS, "from", "checked", "discount", "source"),
            right=_KIND_HEADERS,
        )
        sources: list[str] = []
        for line in listing.lines:
            text = line.row.source or f"(the row names none; models.json says: {listing.catalog_source or 'nothing'})"
            if text not in sources:
                sources.append(text)
            discount = line.discount
            shown.add_row(
                line.model_id,
                line.way[0],
                way_text(line.way),
                *(_figure(line.figure(kind)) for kind in prices.PRICE_KINDS),
                line.row.effective_from.isoformat(),
                line.row.checked.isoformat() if line.row.checked else "unchecked",
                f"{discount.percent}% ({discount.model or discount.provider}, from {discount.effective_from})"
                if discount
                else "",
                f"[{sources.index(text) + 1}]",
            )
        tables.print_table(out, shown)
        out.print("sources:", highlight=False)
        for number, text in enumerate(sources, start=1):
            out.print(f"  [{number}] {text}", highlight=False, soft_wrap=True)
    for line in listing.lines:
        for later in line.upcoming:
            out.print(
                f"from {later.effective_from}: {line.model_id} {line.way[0]} {way_text(line.way)} changes to "
                f"input {_figure(later.input)}, output {_figure(later.output)}",
                highlight=False,
                soft_wrap=True,
            )
    for model, way, first in listing.not_yet:
        out.print(f"{model} {way[0]} {way_text(way)} is priced only from {first}", highlight=False, soft_wrap=True)
    if listing.not_here:
        out.print(f"not priced in {listing.region}: {', '.join(listing.not_here)}", highlight=False, soft_wrap=True)
    for model, end in listing.retired:
        err.print(f"{model} reached its end of life on {end} (kept for the records charged at it)", highlight=False)


# --------------------------------------------------------------------------- what-if


def what_if(
    target: Target,
    tenants: Sequence[str],
    new_catalog: ModelCatalog,
    period: report.Period,
    today: date,
) -> tuple[WhatIf, prices.PeriodRecords, list[prices.Gap], str | None]:
    """Re-price the period's records on ``target`` with ``new_catalog``; with where the records fall short."""
    usage = DynamoUsageStore(target.client("dynamodb"), target.resource("UsageTable"))
    trends = DynamoTrendStore(target.client("dynamodb"), target.resource("TrendTable"))
    # config.json's tenants, and any with rollups in the period's months (removed from config.json since)
    found_tenants = set(tenants)
    for month in prices.months_between(period.start, period.end):
        found_tenants.update(row.key.tenant_id for row in trends.rows(Granularity.MONTH, month))
    found = prices.read_period(usage, found_tenants, period.start, period.end)
    result = prices.what_if(found.records, PriceBook(new_catalog, target.region))
    rollups: dict[tuple[str, str], tuple[int, int]] = {}
    for row in report.rows_for(trends, period):
        key = (row.key.tenant_id, row.key.profile)
        n, cost = rollups.get(key, (0, 0))
        rollups[key] = (n + row.totals.requests, cost + row.totals.cost_pusd)
    parameter = target.parameters.get("RecordRetentionDays")
    if parameter:
        days, source = int(parameter), f"the stack's parameter, {target.name}"
    else:
        inferred = prices.retention_days_of(found.records)
        days, source = (inferred, "as the records' expiry says") if inferred is not None else (0, "")
    warning = prices.retention_warning(period.start, today, days, source) if days else None
    return result, found, prices.gaps(found.records, rollups), warning


def what_if_document(result: WhatIf, period: report.Period, target: Target, new_book: str) -> dict[str, Any]:
    return {
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat(), "timezone": "UTC"},
        "stack": target.name,
        "region": target.region,
        "new_book": new_book,
        "currency": "USD",
        "lines": [
            {
                "tenant": line.tenant,
                "profile": line.profile,
                "requests": line.requests,
                "charged_usd": format_usd(line.charged_pusd),
                "new_usd": format_usd(line.new_pusd),
                "difference_usd": prices.signed_usd(line.difference_pusd),
            }
            for line in result.lines
        ],
        "total": {
            "requests": result.requests,
            "charged_usd": format_usd(result.charged_pusd),
            "new_usd": format_usd(result.new_pusd),
            "difference_usd": prices.signed_usd(result.difference_pusd),
        },
        "unpriced": [
            {
                "request_id": u.request_id,
                "tenant": u.tenant,
                "profile": u.profile,
                "model": u.model_id,
                "charged_usd": format_usd(u.cost_pusd),
                "reason": u.reason,
            }
            for u in result.unpriced
        ],
        "context_changed": result.context_changed,
    }


def print_what_if(
    out: Console,
    err: Console,
    result: WhatIf,
    found: prices.PeriodRecords,
    gaps: list[prices.Gap],
    warning: str | None,
    *,
    period: report.Period,
    target: Target,
    new_book: str,
    as_json: bool,
) -> None:
    if as_json:
        print(json.dumps(what_if_document(result, period, target, new_book), indent=2))
    elif not result.lines:
        out.print(f"no usage records of {period} to re-price on {target.name}", highlight=False)
    else:
        shown = tables.table(
            f"{period} (UTC) on {target.name}, re-priced with {new_book}",
            ("tenant", "profile", "requests", "charged (USD)", "new prices (USD)", "difference (USD)"),
            right=("requests", "charged (USD)", "new prices (USD)", "difference (USD)"),
            footers=True,
        )
        charged = tables.usd_cells([usd(line.charged_pusd) for line in result.lines] + [usd(result.charged_pusd)])
        new = tables.usd_cells([usd(line.new_pusd) for line in result.lines] + [usd(result.new_pusd)])
        differences = _signed_cells([line.difference_pusd for line in result.lines] + [result.difference_pusd])
        for line, c, n, d in zip(result.lines, charged, new, differences, strict=False):
            shown.add_row(line.tenant, line.profile, str(line.requests), c, n, d)
        footers = ["total", "", str(result.requests), charged[-1], new[-1], differences[-1]]
        for column, footer in zip(shown.columns, footers, strict=True):
            column.footer = footer
        tables.print_table(out, shown)
        out.print(
            "charged: what each record was charged; new prices: the same tokens, served the same way on the same "
            "day, at the new book's rows and contract discounts.",
            highlight=False,
            soft_wrap=True,
        )
    if result.unpriced:
        cost = format_usd(sum(u.cost_pusd for u in result.unpriced))
        err.print(
            f"{len(result.unpriced)} record(s) (charged ${cost}) have no price in {new_book} and are left out of "
            "both columns:",
            highlight=False,
            soft_wrap=True,
        )
        reasons: dict[str, int] = {}
        for u in result.unpriced:
            reasons[u.reason] = reasons.get(u.reason, 0) + 1
        for reason, count in sorted(reasons.items()):
            err.print(f"  {count} x {reason}", highlight=False, soft_wrap=True)
    if result.context_changed:
        err.print(
            f"{result.context_changed} record(s) change context (standard/long) under the new book's "
            "long_context_above",
            highlight=False,
        )
    for rid, why in found.unreadable:
        err.print(f"record {rid} does not read as a usage record and is left out: {why}", highlight=False)
    if warning:
        err.print(warning, highlight=False, soft_wrap=True)
    for gap in gaps:
        err.print(
            f"{gap.tenant}/{gap.profile}: the usage table holds {gap.record_requests} record(s) "
            f"(${format_usd(gap.record_pusd)}) of the period, its rollups {gap.rollup_requests} "
            f"(${format_usd(gap.rollup_pusd)}): records past their TTL are gone, and recent ones may not be "
            "rolled up yet",
            highlight=False,
            soft_wrap=True,
        )


def _signed_cells(amounts: Sequence[int]) -> list[str]:
    """Signed exact amounts with as many decimals each as the most precise one needs."""
    cells = tables.usd_cells([usd(abs(a)) for a in amounts])
    return [("+" if a > 0 else "-" if a < 0 else " ") + cell for a, cell in zip(amounts, cells, strict=True)]


# --------------------------------------------------------------------------- propose


def read_fixtures(paths: Sequence[str]) -> list[Any]:
    """The PriceList entries of saved GetProducts responses (`aws pricing get-products ...` output)."""
    entries: list[Any] = []
    for path in paths:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PriceListShapeError(f"{path}: file not found") from None
        except json.JSONDecodeError as error:
            raise PriceListShapeError(f"{path}: not JSON ({error})") from None
        entries.extend(price_list_of(document, path))
    return entries


def make_proposal(catalog: ModelCatalog, region: str, on: date, entries: Sequence[Any]) -> Proposal:
    listed, skipped = parse_price_list(entries)
    proposal = propose(catalog, region, on, listed)
    proposal.skipped[:0] = skipped
    return proposal


def print_proposal(out: Console, err: Console, proposal: Proposal, *, read_from: str) -> None:
    """The rows to paste on stdout (JSON); on stderr, what changed and what could not be used."""
    if proposal.changes:
        shown = tables.table(
            f"AWS Price List ({read_from}) vs models.json in force on {proposal.on}, {proposal.region}, "
            "USD per 1M tokens",
            ("model", "scope", "tier/context/latency", "price", "models.json", "AWS"),
            right=("models.json", "AWS"),
        )
        for change in proposal.changes:
            shown.add_row(
                change.model_id, change.way[0], way_text(change.way), change.kind,
                _figure(change.book), price_text(change.aws),
            )  # fmt: skip
        tables.print_table(err, shown)
        print(json.dumps(proposal.document(), indent=2))
        err.print(
            "Paste each row at the end of its model's prices in models.json (old rows stay: records keep the "
            "price they were charged), have a person check the figures against aws.amazon.com/bedrock/pricing and "
            'add "checked": "<date>", then see what it changes: `tollgate prices what-if models.json`.',
            highlight=False,
            soft_wrap=True,
        )
    else:
        err.print(
            f"no price differs from models.json in force on {proposal.on} in {proposal.region} "
            f"({len(proposal.matching)} way(s) of serving match)",
            highlight=False,
            soft_wrap=True,
        )
    if proposal.every_region:
        err.print(
            "these rows apply to every region, as the rows they follow do, but were read for "
            f"{proposal.region} only: {'; '.join(proposal.every_region)}",
            highlight=False,
            soft_wrap=True,
        )
    for note in proposal.notes:
        err.print(note, highlight=False, soft_wrap=True)
    for what, why in proposal.not_in_book:
        err.print(f"not in the book: {what} ({why})", highlight=False, soft_wrap=True)
    if proposal.skipped:
        err.print(f"{len(proposal.skipped)} price(s) not mapped to models.json:", highlight=False)
        for skipped in proposal.skipped:
            err.print(f"  {skipped.what}: {skipped.reason}", highlight=False, soft_wrap=True)


def today() -> date:
    return datetime.now(UTC).date()
