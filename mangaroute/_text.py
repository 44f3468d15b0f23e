"""Plain-text tables for the command line: one formatter for every command's output.

Below every layer (it imports nothing of mangaroute), so the planning, simulator, demo and
CLI modules all format through it.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

__all__ = ["text_table"]


def text_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Container[int] = ()
) -> str:
    """Columns aligned and separated by two spaces, a rule under the headers (none when every
    header is empty); the column indexes in ``right`` are right-aligned, the rest left."""
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    head = [line(headers), "  ".join("-" * w for w in widths)] if any(headers) else []
    return "\n".join([*head, *(line(row) for row in rows)])
