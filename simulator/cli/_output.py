"""What a command prints: rows as an aligned table or exact CSV, data as JSON (`--format table|csv|json`)."""
from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence

from simulator.json_values import json_safe

Row = Mapping[str, object]


def _cell(value: object, exact: bool = False) -> str:
    """A value as table text (6 significant digits) or, `exact`, as CSV text that reads back to the same value."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if isinstance(value, float):
        if exact:
            return repr(value) if math.isfinite(value) else ""
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "x".join(map(str, value)) if all(isinstance(v, int) for v in value) else ",".join(map(str, value))
    return "" if value is None else str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_table(rows: Sequence[Row], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts as an aligned plain-text table (numbers right-aligned)."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    numeric = [all(_is_number(row.get(c)) for row in rows) for c in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def format_csv(rows: Sequence[Row], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts as CSV with a header; floats written exactly (repr), NaN/inf and None empty."""
    if not rows:
        return ""
    columns = list(columns or rows[0].keys())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[_cell(row.get(c), exact=True) for c in columns] for row in rows])
    return out.getvalue().rstrip("\n")


def emit(fmt: str, data: object, rows: Sequence[Row], columns: Sequence[str] | None = None,
         title: str | None = None, footer: str | None = None) -> None:
    """Print `data` as JSON, or `rows` as a table (with `title` and `footer`) or CSV."""
    if fmt == "json":
        print(json.dumps(json_safe(data), indent=1))
        return
    if fmt == "csv":
        print(format_csv(rows, columns))
        return
    if title:
        print(title)
    print(format_table(rows, columns))
    if footer:
        print(footer)
