"""CLI tables: money is shown whole and lined up, whatever the terminal's width."""

from __future__ import annotations

import io
from decimal import Decimal

from rich.console import Console
from tollgate_cli.tables import print_table, table, usd_cells


def test_amounts_share_the_decimals_of_the_most_precise_one_and_are_not_rounded() -> None:
    amounts = [Decimal("0.071865255"), Decimal("0.02563044"), Decimal("5"), Decimal("0E-12")]
    assert usd_cells(amounts) == ["$0.071865255", "$0.025630440", "$5.000000000", "$0.000000000"]
    assert usd_cells([Decimal("5"), Decimal("20.5")]) == ["$5.00", "$20.50"]
    assert usd_cells([Decimal("0.000000000001")]) == ["$0.000000000001"]  # one pico-dollar


def test_a_table_wider_than_the_terminal_keeps_every_cell_whole() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=40, no_color=True)
    shown = table("cost", ("tenant", "profile", "cost (USD)"), right=("cost (USD)",))
    shown.add_row("initech", "initech-analytics", "$0.007876800")
    print_table(console, shown)
    text = buffer.getvalue()
    assert "initech-analytics" in text
    assert "$0.007876800" in text
    assert "…" not in text
