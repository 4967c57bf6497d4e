"""The jobs table drawn without rich's Table, where it draws the same thing (used by
:mod:`.render`)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..engine import SUMMARY_COLUMNS

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["print_plain_table"]


def print_plain_table(rows: list[dict[str, Any]], cells: list[list[str]], headers: list[str],
                      widths: list[int], *, console: Console | None,
                      styles: Mapping[str, str]) -> None:
    """The jobs table as rich draws it (``Table(box=None)``: one blank either side of every
    cell, ``…`` where a cell is cut, the status coloured and the header bold on a terminal),
    for cells of printable ASCII only (a character is one column) and columns that fit (rich
    would shrink them): rich takes about a millisecond a row, which is minutes for a gangadir
    of 100,000 jobs."""
    from rich.text import Text

    right = [column in ("id", "subjobs") for column in SUMMARY_COLUMNS]
    status_at = SUMMARY_COLUMNS.index("status")

    def styled(style: str) -> tuple[str, str]:
        """The escape sequences around a text in ``style`` on this terminal."""
        if console is None or not style:
            return "", ""
        with console.capture() as captured:
            console.print(Text("\0", style=style), end="")
        before, _, after = captured.get().partition("\0")
        return before, after

    def fit(cell: str, width: int, to_right: bool) -> str:
        if len(cell) > width:
            cell = cell[:width - 1] + "…" if width > 1 else "…"[:width]
        return cell.rjust(width) if to_right else cell.ljust(width)

    def line(values: Sequence[str], around: dict[int, tuple[str, str]], pad: str = " ") -> str:
        parts = []
        for k, (value, width, to_right) in enumerate(zip(values, widths, right, strict=True)):
            before, after = around.get(k, ("", ""))
            parts.append(f"{pad}{before}{fit(value, width, to_right)}{after}{pad}")
        text = "".join(parts)
        return text.rstrip() if console is None else text

    bold = styled("bold")
    out = [line(headers, dict.fromkeys(range(len(headers)), bold), "".join((bold[0], " ", bold[1])))]
    colours: dict[str, dict[int, tuple[str, str]]] = {}
    for row, values in zip(rows, cells, strict=True):
        status = row["status"]
        around = colours.get(status)
        if around is None:
            around = colours[status] = {status_at: styled(styles.get(status, ""))}
        out.append(line(values, around))
    sys.stdout.write("\n".join(out) + "\n")
