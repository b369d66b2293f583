"""Pricing as pure code: effective-dated price rows by region, scope and what Bedrock served.

A price row in models.json is USD per 1M tokens with at most six decimals, which is exactly the
number of pico-dollars per token (see tollgate.money). The list cost of a call is therefore a sum
of integer products, with no rounding anywhere: additive in tokens and monotone.

A call is priced by what Bedrock served it with, as the response says:
* the service tier (``serviceTier.type``: default / priority / flex / reserved),
* the latency mode (``performanceConfig.latency``: standard / optimized),
* the context: "long" when the prompt (input + cache read + cache write tokens, of the whole
  request) is above the model's ``long_context_above``; then every token of the request is billed
  at the long-context rates,
* cache writes split by TTL (``usage.cacheDetails``): 5-minute and 1-hour writes have their own rates,
in the region the stack runs in (the source region of every call), at the row in force on the
UTC date of the request.

A contract discount (models.json ``contract.discounts``) applies to the list cost of each request,
which is then rounded once to the pico-dollar, half to even: at most half a pico-dollar per request,
and every record holds both the list cost and the charged cost.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from tollgate.config import Context, Discount, Latency, ModelCatalog, PriceRow, Scope, Tier, priced_here


@dataclass(frozen=True)
class TokenCounts:
    """Tokens of one call (or a sum of calls), by the kinds Bedrock bills separately."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    #: Cache writes with the 5-minute TTL.
    cache_write: int = 0
    cache_write_1h: int = 0

    def __post_init__(self) -> None:
        for name in ("input", "output", "cache_read", "cache_write", "cache_write_1h"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} tokens must be a non-negative integer, got {value!r}")

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write + self.cache_write_1h

    @property
    def prompt(self) -> int:
        """The tokens that count toward a long-context threshold: everything but the output."""
        return self.input + self.cache_read + self.cache_write + self.cache_write_1h

    def __add__(self, other: TokenCounts) -> TokenCounts:
        return TokenCounts(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_write + other.cache_write,
            self.cache_write_1h + other.cache_write_1h,
        )


@dataclass(frozen=True)
class Served:
    """How Bedrock served a call, as its response says (the defaults when it says nothing)."""

    tier: Tier = "default"
    latency: Latency = "standard"


def _per_token_pico(usd_per_million: Decimal) -> int:
    scaled = usd_per_million.scaleb(6)
    if scaled != scaled.to_integral_value():  # guarded by config validation; kept as a hard stop
        raise ValueError(f"price {usd_per_million} has more than 6 decimals")
    return int(scaled)


@dataclass(frozen=True)
class Price:
    """One price row resolved for one model: integer pico-dollars per token of each kind."""

    model_id: str
    scope: Scope
    effective_from: date
    input: int
    output: int
    cache_read: int
    cache_write: int
    cache_write_1h: int
    tier: Tier = "default"
    context: Context = "standard"
    latency: Latency = "standard"
    #: The region set the row is for ("*" for every region), as written in models.json.
    regions: str = "*"
    discount: Discount | None = None
    #: Identifies the row (and discount) a record was charged at, so a later change never rewrites history.
    version: str = field(init=False)

    def __post_init__(self) -> None:
        # model@scope@date for the default way of serving in every region (as before tiers were
        # priced, so older records keep their meaning); what differs is inserted before the date.
        parts = [self.model_id, self.scope]
        if (self.tier, self.context, self.latency) != ("default", "standard", "standard"):
            parts.append("/".join((self.tier, self.context, self.latency)))
        if self.regions != "*":
            parts.append(self.regions)
        version = "@".join([*parts, self.effective_from.isoformat()])
        if self.discount is not None:
            version += f"-{self.discount.label}"
        object.__setattr__(self, "version", version)

    @classmethod
    def from_row(cls, model_id: str, row: PriceRow, discount: Discount | None = None) -> Price:
        input_price = _per_token_pico(row.input)
        cache_write = _per_token_pico(row.cache_write) if row.cache_write is not None else input_price
        return cls(
            model_id=model_id,
            scope=row.scope,
            effective_from=row.effective_from,
            input=input_price,
            output=_per_token_pico(row.output),
            # A model without a cache price that still reports cache tokens is billed at the
            # input rate (Bedrock: tokens not read from or written to a cache are input): never free.
            cache_read=_per_token_pico(row.cache_read) if row.cache_read is not None else input_price,
            cache_write=cache_write,
            # 1-hour writes without a 1-hour price (validation refuses it for models that have the
            # TTL) cost at least a 5-minute write.
            cache_write_1h=_per_token_pico(row.cache_write_1h) if row.cache_write_1h is not None else cache_write,
            tier=row.tier,
            context=row.context,
            latency=row.latency,
            regions="*" if row.regions == "*" else ",".join(row.regions),
            discount=discount,
        )

    def list_cost(self, tokens: TokenCounts) -> int:
        """Cost at list prices in pico-dollars, exact."""
        return (
            tokens.input * self.input
            + tokens.output * self.output
            + tokens.cache_read * self.cache_read
            + tokens.cache_write * self.cache_write
            + tokens.cache_write_1h * self.cache_write_1h
        )

    def cost(self, tokens: TokenCounts) -> int:
        """What the call costs in pico-dollars: the list cost, less the contract discount (rounded once)."""
        listed = self.list_cost(tokens)
        if self.discount is None:
            return listed
        kept = (Decimal(100) - self.discount.percent) / Decimal(100)
        return int((Decimal(listed) * kept).to_integral_value(rounding=ROUND_HALF_EVEN))


class PriceNotFoundError(LookupError):
    pass


_Key = tuple[str, str, str, str, str]  # model, scope, tier, context, latency


class PriceBook:
    """The price rows that apply where the stack runs, by model and way of serving, ordered by date."""

    def __init__(self, catalog: ModelCatalog, region: str):
        self.region = region
        self._catalog = catalog
        # Rows naming the stack's region (or a group holding it) are that region's own price list:
        # from the first of them on, rows for every region ("*") no longer apply there (before it,
        # they still do: history keeps its prices when a region gets rows of its own).
        specific: dict[_Key, list[PriceRow]] = {}
        general: dict[_Key, list[PriceRow]] = {}
        for model_id, entry in catalog.models.items():
            for row in entry.prices:
                if priced_here(catalog, row, region):
                    key: _Key = (model_id, *row.dimensions)
                    (general if row.regions == "*" else specific).setdefault(key, []).append(row)
        self._rows: dict[_Key, list[Price]] = {}
        self._source_rows: dict[_Key, list[PriceRow]] = {}
        for key in specific.keys() | general.keys():
            own = specific.get(key, [])
            start = min((r.effective_from for r in own), default=None)
            rows = own + [r for r in general.get(key, []) if start is None or r.effective_from < start]
            rows.sort(key=lambda r: r.effective_from)
            self._source_rows[key] = rows
            self._rows[key] = [Price.from_row(key[0], r) for r in rows]
        self._dates = {key: [p.effective_from for p in prices] for key, prices in self._rows.items()}

    def offers(self, model_id: str, scope: str, *, tier: str, latency: str, context: str = "standard") -> bool:
        """Whether any row (of any date) prices this way of serving the model here."""
        return (model_id, scope, tier, context, latency) in self._rows

    def rows_from(
        self, model_id: str, scope: str, day: date, *, tier: str, context: str, latency: str
    ) -> list[PriceRow]:
        """The models.json rows a call served this way is charged at here, on ``day`` or later: the
        row in force that day and any that take effect after it (oldest first)."""
        rows = self._source_rows.get((model_id, scope, tier, context, latency), [])
        index = max(bisect.bisect_right([r.effective_from for r in rows], day) - 1, 0)
        return rows[index:]

    def long_context(self, model_id: str, tokens: TokenCounts) -> bool:
        entry = self._catalog.models.get(model_id)
        threshold = entry.long_context_above if entry is not None else None
        return threshold is not None and tokens.prompt > threshold

    def price(
        self,
        model_id: str,
        scope: str,
        at: datetime | date,
        *,
        tier: str = "default",
        context: str = "standard",
        latency: str = "standard",
    ) -> Price:
        """The row in force on the UTC date of ``at`` (the latest one effective on or before it), discounted."""
        day = at.date() if isinstance(at, datetime) else at
        key = (model_id, scope, tier, context, latency)
        dates = self._dates.get(key)
        served = (
            "" if (tier, context, latency) == ("default", "standard", "standard") else f" {tier}/{context}/{latency}"
        )
        if not dates:
            raise PriceNotFoundError(f"models.json has no {scope!r}{served} price for {model_id} in {self.region}")
        index = bisect.bisect_right(dates, day) - 1
        if index < 0:
            raise PriceNotFoundError(
                f"models.json has no {scope!r}{served} price for {model_id} in {self.region} effective on "
                f"{day.isoformat()} (first row is effective {dates[0].isoformat()})"
            )
        price = self._rows[key][index]
        discount = self._discount(model_id, day)
        return price if discount is None else replace(price, discount=discount)

    def _discount(self, model_id: str, day: date) -> Discount | None:
        """The contract discount on the model that day: a model's own beats its provider's."""
        entry = self._catalog.models[model_id]
        found = [d for d in self._catalog.contract.discounts if d.applies(model_id, entry.provider, day)]
        found.sort(key=lambda d: (d.model is None, -d.effective_from.toordinal()))
        return found[0] if found else None

    def charge(self, model_id: str, scope: str, at: datetime | date, tokens: TokenCounts, served: Served) -> Price:
        """The price a call is charged at, from what Bedrock served and how long its prompt was."""
        context = "long" if self.long_context(model_id, tokens) else "standard"
        return self.price(model_id, scope, at, tier=served.tier, context=context, latency=served.latency)
