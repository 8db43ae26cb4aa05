"""How the CLI prints tables so that nothing is hidden: no cell is cut to an ellipsis.

On a terminal a table takes the terminal's width and a cell too long for its column folds onto more lines;
in a pipe or a file there is no width to fit, so the table is as wide as its longest cells.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

PIPE_WIDTH = 100_000  # columns: "as wide as it needs" (a table never grows beyond its content)


def table_console(**options: Any) -> Console:
    """A console for tables: the terminal's width on a terminal; unbounded in a pipe or a file."""
    console = Console(**options)
    return console if console.is_terminal else Console(width=PIPE_WIDTH, **options)


def folding(table: Table) -> Table:
    """`table` with every column folding its long cells onto more lines instead of cutting them."""
    for column in table.columns:
        column.overflow = "fold"
        column.no_wrap = False
    return table
