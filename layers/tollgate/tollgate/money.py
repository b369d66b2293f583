"""Money, exactly.

Every amount is an integer number of pico-dollars (1e-12 USD). The unit is chosen so that
pricing needs no rounding at all: a price of P USD per 1M tokens, written with at most six
decimals, is P * 1e6 micro-dollars per 1M tokens, which is exactly P * 1e6 pico-dollars per
token. Sums of integers are exact, so usage records, rollups and reports always reconcile.
"""

from __future__ import annotations

from decimal import Decimal

PICO_PER_USD = 10**12
#: Largest number of decimals a USD price per 1M tokens may have (keeps per-token prices whole pUSD).
PRICE_DECIMALS = 6


def usd(pico: int) -> Decimal:
    """The exact USD amount of ``pico`` pico-dollars."""
    return Decimal(pico).scaleb(-12)


def format_usd(pico: int) -> str:
    """A plain decimal string (no exponent, no trailing zeros), e.g. ``'0.0004125'`` or ``'0'``."""
    text = format(usd(pico).normalize(), "f")
    return text


def pico_from_usd(amount: Decimal) -> int:
    """Convert an exact USD amount with at most 12 decimals to pico-dollars (no rounding)."""
    scaled = amount.scaleb(12)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} USD has more than 12 decimals and cannot be represented exactly")
    return int(scaled)
