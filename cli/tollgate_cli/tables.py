"""Tables for people: never cut a value short, line up the money.

rich fits a table to the terminal by cutting cells to "…", and a narrow or piped terminal
(80 columns) would print ``$0.07…`` for a cost. Here every data cell keeps its full text:
when the table needs more room than the terminal has, it is printed at its own width and
the terminal wraps the lines. Money columns show every amount with the same number of
decimals (the most any amount in the column needs), so the digits line up and nothing is
rounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table


def usd_cells(amounts: Sequence[Decimal]) -> list[str]:
    """Exact amounts as ``$x.yyy``, all with as many decimals as the most precise one needs (at least 2)."""
    decimals = max([2, *map(_decimals, amounts)])
    return [f"${a:.{decimals}f}" for a in amounts]


def _decimals(amount: Decimal) -> int:
    exponent = amount.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def table(title: str, headers: Iterable[str], *, right: Iterable[str] = (), footers: bool = False) -> Table:
    """A table whose columns never wrap or cut their cells; ``right`` names the right-aligned headers."""
    aligned = set(right)
    made = Table(title=title, show_footer=footers, box=box.SIMPLE_HEAD)
    for header in headers:
        made.add_column(header, no_wrap=True, justify="right" if header in aligned else "left")
    return made


def print_table(console: Console, shown: Table) -> None:
    """Print at the terminal's width, or at the table's own when it needs more (cells are never cut)."""
    needed = Measurement.get(console, console.options.update(width=100_000), shown).maximum
    if needed <= console.width:
        console.print(shown)
        return
    wide = Console(file=console.file, width=needed, force_terminal=console.is_terminal, no_color=console.no_color)
    wide.print(shown)
