"""The jobs table drawn without rich's Table, where it draws the same thing (used by
:mod:`.render`)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..model.job import SUMMARY_COLUMNS

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

    def template(around: dict[int, tuple[str, str]]) -> Callable[..., str]:
        """``line(values, around)`` as one ``str.format`` of cells already cut to their width."""
        fields = []
        for k, (width, to_right) in enumerate(zip(widths, right, strict=True)):
            before, after = (text.replace("{", "{{").replace("}", "}}")
                             for text in around.get(k, ("", "")))
            fields.append(f" {before}{{:{'>' if to_right else '<'}{width}}}{after} ")
        return "".join(fields).format

    bold = styled("bold")
    out = [line(headers, dict.fromkeys(range(len(headers)), bold), "".join((bold[0], " ", bold[1])))]
    cut = [k for k, (width, column) in enumerate(zip(widths, zip(*cells, strict=True), strict=True))
           if max(map(len, column)) > width]
    formats: dict[str, Callable[..., str]] = {}
    for row, values in zip(rows, cells, strict=True):
        status = row["status"]
        fmt = formats.get(status)
        if fmt is None:
            fmt = formats[status] = template({status_at: styled(styles.get(status, ""))})
        if cut:
            values = [fit(value, widths[k], right[k]) if k in cut else value
                      for k, value in enumerate(values)]
        out.append(fmt(*values))
    if console is None:
        out = [text.rstrip() for text in out]
    sys.stdout.write("\n".join(out) + "\n")
