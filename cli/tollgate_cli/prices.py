"""`tollgate prices`: the price book where the stack runs, and what a price change would do.

Pure code (no boto3). Prices come from tollgate.pricing.PriceBook, the same rows the gateway
charges at; nothing here prices a token by itself.

* ``book``: every way of serving each model priced in a region (scope, tier, context, latency),
  the row in force on a date, the contract discount in force, and the changes already dated after it.
* ``what_if``: a period's usage records re-priced with another price book, per tenant and profile,
  in integer pico-dollars: the charged cost is each record's own ``cost_pusd``, the new cost is what
  the other book charges for the same tokens served the same way, on the same date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Protocol

from tollgate.config import Discount, ModelCatalog, PriceRow, priced_here
from tollgate.money import format_usd
from tollgate.pricing import Price, PriceBook, PriceNotFoundError, Served
from tollgate.usage import UsageRecord

#: (scope, tier, context, latency): one way a model is served and priced.
Way = tuple[str, str, str, str]
PRICE_KINDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h")


def way_text(way: Way) -> str:
    """``tier/context/latency`` of a way of serving (the scope is shown on its own)."""
    return "/".join(way[1:])


def usd_per_million(pico_per_token: int) -> Decimal:
    """A per-token rate in pico-dollars as USD per 1M tokens (exact: 1 pUSD/token = 1e-6 USD/1M)."""
    return Decimal(pico_per_token).scaleb(-6).normalize()


# --------------------------------------------------------------------------- the book


@dataclass(frozen=True)
class BookLine:
    """The row in force for one way of serving one model, as the gateway charges it."""

    model_id: str
    way: Way
    price: Price
    #: The row of models.json the price comes from (its figures as written, source and checked).
    row: PriceRow
    #: Rows of the same way of serving that the book will apply after the date, in order.
    upcoming: tuple[PriceRow, ...] = ()

    @property
    def discount(self) -> Discount | None:
        return self.price.discount

    def figure(self, kind: str) -> Decimal | None:
        """The row's figure of one kind as written in models.json (None: the row has none)."""
        value: Decimal | None = getattr(self.row, kind)
        return value


@dataclass(frozen=True)
class Listing:
    region: str
    on: date
    lines: tuple[BookLine, ...]
    #: Ways of serving priced here only from a later date: (model, way, first effective date).
    not_yet: tuple[tuple[str, Way, date], ...] = ()
    #: Models with no row at all for this region.
    not_here: tuple[str, ...] = ()
    #: Models past their end of life on the date: (model, end of life).
    retired: tuple[tuple[str, date], ...] = ()
    #: models.json's own "source" (said for rows that name none).
    catalog_source: str = ""


def row_of(catalog: ModelCatalog, price: Price) -> PriceRow:
    """The models.json row a resolved price comes from (rows are unique by way, regions and date)."""
    for row in catalog.models[price.model_id].prices:
        regions = "*" if row.regions == "*" else ",".join(row.regions)
        if (
            row.dimensions == (price.scope, price.tier, price.context, price.latency)
            and row.effective_from == price.effective_from
            and regions == price.regions
        ):
            return row
    raise LookupError(f"no row of {price.model_id} matches price version {price.version}")


def ways_here(catalog: ModelCatalog, model_id: str, region: str) -> list[Way]:
    """The ways of serving a model that have rows applying in ``region``."""
    entry = catalog.models[model_id]
    return sorted({row.dimensions for row in entry.prices if priced_here(catalog, row, region)})


def book(catalog: ModelCatalog, region: str, on: date, model_id: str | None = None) -> Listing:
    """The price book of ``region`` on ``on`` (every model, or one)."""
    prices = PriceBook(catalog, region)
    models = [model_id] if model_id is not None else sorted(catalog.models)
    lines: list[BookLine] = []
    not_yet: list[tuple[str, Way, date]] = []
    not_here: list[str] = []
    retired: list[tuple[str, date]] = []
    for model in models:
        entry = catalog.models[model]
        end = entry.lifecycle.end_of_life
        if end is not None and end <= on:
            retired.append((model, end))
        ways = [w for w in ways_here(catalog, model, region) if _offers(prices, model, w)]
        if not ways:
            not_here.append(model)
        for way in ways:
            dates = sorted({r.effective_from for r in entry.prices if r.dimensions == way})
            try:
                price = _price(prices, model, way, on)
            except PriceNotFoundError:
                first = next(d for d in dates if _in_force(prices, model, way, d))
                not_yet.append((model, way, first))
                continue
            # A later row is a change only where the book itself would switch to it on its date.
            upcoming = []
            for later in (d for d in dates if d > on):
                found = _price(prices, model, way, later)
                if found.effective_from == later:
                    upcoming.append(row_of(catalog, found))
            lines.append(BookLine(model, way, price, row_of(catalog, price), tuple(upcoming)))
    return Listing(region, on, tuple(lines), tuple(not_yet), tuple(not_here), tuple(retired), catalog.source)


def _offers(prices: PriceBook, model: str, way: Way) -> bool:
    scope, tier, context, latency = way
    return prices.offers(model, scope, tier=tier, context=context, latency=latency)


def _price(prices: PriceBook, model: str, way: Way, on: date) -> Price:
    scope, tier, context, latency = way
    return prices.price(model, scope, on, tier=tier, context=context, latency=latency)


def _in_force(prices: PriceBook, model: str, way: Way, on: date) -> bool:
    try:
        _price(prices, model, way, on)
    except PriceNotFoundError:
        return False
    return True


# --------------------------------------------------------------------------- what-if


@dataclass(frozen=True)
class Repriced:
    """One tenant's profile over the period: what it was charged, and what the other book charges."""

    tenant: str
    profile: str
    requests: int
    charged_pusd: int
    new_pusd: int

    @property
    def difference_pusd(self) -> int:
        return self.new_pusd - self.charged_pusd


@dataclass(frozen=True)
class Unpriced:
    """A record the other book has no price for (it is left out of both columns, and named)."""

    request_id: str
    tenant: str
    profile: str
    model_id: str
    cost_pusd: int
    reason: str


@dataclass(frozen=True)
class WhatIf:
    lines: tuple[Repriced, ...]
    unpriced: tuple[Unpriced, ...] = ()
    #: Records whose context (standard/long) differs under the other book's long_context_above.
    context_changed: int = 0

    @property
    def requests(self) -> int:
        return sum(line.requests for line in self.lines)

    @property
    def charged_pusd(self) -> int:
        return sum(line.charged_pusd for line in self.lines)

    @property
    def new_pusd(self) -> int:
        return sum(line.new_pusd for line in self.lines)

    @property
    def difference_pusd(self) -> int:
        return self.new_pusd - self.charged_pusd


def reprice(record: UsageRecord, book: PriceBook) -> Price:
    """The price the other book charges a record at: the same model, scope, date and tokens, served
    the same way (tier, latency); the context by the other book's long_context_above, as the gateway
    would decide it."""
    served = Served(record.tier, record.latency)
    return book.charge(record.model_id, record.scope, record.requested_at, record.tokens, served)


def what_if(records: Iterable[UsageRecord], book: PriceBook) -> WhatIf:
    """Every record re-priced with ``book``, summed per tenant and profile (highest difference first)."""
    sums: dict[tuple[str, str], tuple[int, int, int]] = {}
    unpriced: list[Unpriced] = []
    context_changed = 0
    for record in records:
        try:
            price = reprice(record, book)
        except (PriceNotFoundError, KeyError) as error:
            reason = str(error) if isinstance(error, PriceNotFoundError) else f"{record.model_id} is not in it"
            unpriced.append(
                Unpriced(record.request_id, record.tenant_id, record.profile, record.model_id, record.cost_pusd, reason)
            )
            continue
        context_changed += price.context != record.context
        key = (record.tenant_id, record.profile)
        requests, charged, new = sums.get(key, (0, 0, 0))
        sums[key] = (requests + 1, charged + record.cost_pusd, new + price.cost(record.tokens))
    lines = [Repriced(t, p, n, charged, new) for (t, p), (n, charged, new) in sums.items()]
    lines.sort(key=lambda line: (-abs(line.difference_pusd), line.tenant, line.profile))
    unpriced.sort(key=lambda u: (u.tenant, u.profile, u.request_id))
    return WhatIf(tuple(lines), tuple(unpriced), context_changed)


def signed_usd(pico: int) -> str:
    """An exact signed amount: ``+0.0004125``, ``-1.5``, ``0``."""
    text = format_usd(abs(pico))
    return text if pico == 0 else ("+" if pico > 0 else "-") + text


# --------------------------------------------------------------------------- reading a period


class UsageReader(Protocol):
    """The part of the usage store the what-if reads (tollgate.adapters.dynamodb.DynamoUsageStore)."""

    def request_ids_between(self, tenant_id: str, start: datetime, end: datetime) -> list[str]: ...

    def items(self, request_ids: Iterable[str]) -> dict[str, dict[str, object]]: ...


@dataclass(frozen=True)
class PeriodRecords:
    records: tuple[UsageRecord, ...]
    #: Items of the period that do not read as usage records: (request id, why).
    unreadable: tuple[tuple[str, str], ...] = ()


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The first and last instants (UTC, to the millisecond the records are stamped with) of whole days."""
    first = datetime.combine(start, time.min, tzinfo=UTC)
    last = datetime.combine(end, time(23, 59, 59, 999_000), tzinfo=UTC)
    return first, last


def read_period(usage: UsageReader, tenants: Iterable[str], start: date, end: date) -> PeriodRecords:
    """Every usage record requested in the days [start, end], tenant by tenant (the by-tenant index)."""
    first, last = period_bounds(start, end)
    ids = {rid for tenant in sorted(set(tenants)) for rid in usage.request_ids_between(tenant, first, last)}
    records: list[UsageRecord] = []
    unreadable: list[tuple[str, str]] = []
    for rid, item in sorted(usage.items(ids).items()):
        try:
            records.append(UsageRecord.from_item(dict(item)))
        except ValueError as error:  # pydantic's ValidationError is a ValueError
            unreadable.append((rid, str(error).splitlines()[0]))
    return PeriodRecords(tuple(records), tuple(unreadable))


def months_between(start: date, end: date) -> list[str]:
    """The months (YYYY-MM) the days [start, end] fall in."""
    months: list[str] = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def retention_cutoff(today: date, retention_days: int) -> date:
    """The first day whose records the usage table still holds whole: older ones expire (TTL)."""
    return today - timedelta(days=retention_days)


def retention_days_of(records: Iterable[UsageRecord]) -> int | None:
    """RecordRetentionDays as the records say it: each expires that many days after its request."""
    for record in records:
        return round((record.expires_at - record.requested_at.timestamp()) / 86_400)
    return None


@dataclass(frozen=True)
class Gap:
    """A tenant's profile whose records in the usage table do not add up to its rollups for the period."""

    tenant: str
    profile: str
    record_requests: int
    record_pusd: int
    rollup_requests: int
    rollup_pusd: int


def gaps(records: Iterable[UsageRecord], rollups: Mapping[tuple[str, str], tuple[int, int]]) -> list[Gap]:
    """Where the records read (requests, charged pUSD) differ from the trend table's DAY rows of the period."""
    found: dict[tuple[str, str], tuple[int, int]] = {}
    for record in records:
        n, cost = found.get((record.tenant_id, record.profile), (0, 0))
        found[(record.tenant_id, record.profile)] = (n + 1, cost + record.cost_pusd)
    return [
        Gap(tenant, profile, *found.get((tenant, profile), (0, 0)), *rollups.get((tenant, profile), (0, 0)))
        for tenant, profile in sorted(found.keys() | rollups.keys())
        if found.get((tenant, profile), (0, 0)) != rollups.get((tenant, profile), (0, 0))
    ]


def retention_warning(start: date, today: date, retention_days: int, source: str) -> str | None:
    """What to say when a period starts before the oldest day the usage table still holds whole."""
    cutoff = retention_cutoff(today, retention_days)
    if start >= cutoff:
        return None
    return (
        f"the period starts before {cutoff.isoformat()}: the usage table keeps a record for {retention_days} days "
        f"(RecordRetentionDays, {source}), then DynamoDB's TTL deletes it, so records requested before "
        f"{cutoff.isoformat()} are gone or going; the what-if re-prices only the records still there (the trend "
        "table keeps the period's totals: `tollgate report`)"
    )
