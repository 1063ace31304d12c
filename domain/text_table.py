"""Fixed-width text tables for the CLI: columns padded to their widest cell, numbers right-aligned."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def render_columns(headers: Sequence[str], body: Sequence[Sequence[str]], *, numeric: Collection[int]) -> str:
    """`numeric`: the indexes of the columns aligned right."""
    widths = [max(len(cells[i]) for cells in (headers, *body)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(cells)
        ).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(cells) for cells in body)])
