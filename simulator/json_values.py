"""Values as JSON can hold them: the one conversion every JSON file, JSON cell and `--format json` output uses."""
from __future__ import annotations

import math


def json_safe(value: object) -> object:
    """`value` with numpy scalars and arrays as Python numbers and lists (inside dicts, lists and tuples too)
    and NaN or infinities as None (JSON has neither). Duck-typed, so that the CLI need not load numpy."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
