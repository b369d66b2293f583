"""Pricing as pure code: effective-dated price rows, exact integer cost.

A price row in models.json is USD per 1M tokens with at most six decimals, which is exactly
the number of pico-dollars per token (see tollgate.money). The cost of a call is therefore a
sum of integer products, with no rounding anywhere: cost is additive in tokens and monotone.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from tollgate.config import ModelCatalog, PriceRow, Scope


@dataclass(frozen=True)
class TokenCounts:
    """Tokens of one call (or a sum of calls), by the kinds Bedrock bills separately."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def __post_init__(self) -> None:
        for name in ("input", "output", "cache_read", "cache_write"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} tokens must be a non-negative integer, got {value!r}")

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write

    def __add__(self, other: TokenCounts) -> TokenCounts:
        return TokenCounts(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_write + other.cache_write,
        )


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
    #: Identifies the row a record was charged at, so a later price change never rewrites history.
    version: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", f"{self.model_id}@{self.scope}@{self.effective_from.isoformat()}")

    @classmethod
    def from_row(cls, model_id: str, row: PriceRow) -> Price:
        input_price = _per_token_pico(row.input)
        return cls(
            model_id=model_id,
            scope=row.scope,
            effective_from=row.effective_from,
            input=input_price,
            output=_per_token_pico(row.output),
            # A model without a cache price that still reports cache tokens is billed at the
            # input rate: never silently free.
            cache_read=_per_token_pico(row.cache_read) if row.cache_read is not None else input_price,
            cache_write=_per_token_pico(row.cache_write) if row.cache_write is not None else input_price,
        )

    def cost(self, tokens: TokenCounts) -> int:
        """Cost in pico-dollars, exact."""
        return (
            tokens.input * self.input
            + tokens.output * self.output
            + tokens.cache_read * self.cache_read
            + tokens.cache_write * self.cache_write
        )


class PriceNotFoundError(LookupError):
    pass


class PriceBook:
    """All price rows, indexed by (model, scope) and ordered by effective date."""

    def __init__(self, catalog: ModelCatalog):
        self._rows: dict[tuple[str, str], list[Price]] = {}
        for model_id, entry in catalog.models.items():
            for row in entry.prices:
                self._rows.setdefault((model_id, row.scope), []).append(Price.from_row(model_id, row))
        self._dates: dict[tuple[str, str], list[date]] = {}
        for key, prices in self._rows.items():
            prices.sort(key=lambda p: p.effective_from)
            self._dates[key] = [p.effective_from for p in prices]

    def price(self, model_id: str, scope: str, at: datetime | date) -> Price:
        """The row in force on the UTC date of ``at``: the latest one effective on or before it."""
        day = at.date() if isinstance(at, datetime) else at
        key = (model_id, scope)
        dates = self._dates.get(key)
        if not dates:
            raise PriceNotFoundError(f"models.json has no {scope!r} price for {model_id}")
        index = bisect.bisect_right(dates, day) - 1
        if index < 0:
            raise PriceNotFoundError(
                f"models.json has no {scope!r} price for {model_id} effective on {day.isoformat()} "
                f"(first row is effective {dates[0].isoformat()})"
            )
        return self._rows[key][index]
