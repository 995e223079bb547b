"""Cost tables kept on disk, so that the hardware models cost a network once per model, preset and bit-widths.

The arrays the hardware models produce for `CostTables` (the edge's latency and energy per layer and bit-width
pair, the cloud's latency per layer and per suffix) depend on the layers as the accelerators see them
(`LayerSpec`s), the accelerator's whole state (its resolved preset, mode and threads), the bit-widths, the batch
and, for the cloud, the bytes it receives at each cut. Those inputs, the cost models' code (every file of
`hardware_models`, and `simulator/evaluate.py`, which assembles the tables) and `TABLES_VERSION` are hashed into
the file's name: a changed layer, preset or cost model is a new file, never a stale answer. The file also holds
the whole hash, so a file of another identity under that name (a foreign or truncated one) is ignored and
rebuilt, as is one that cannot be read. Files are `.npz` under `cache_folder()/tables`, written atomically;
deleting the folder is always safe.
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hardware_models.errors import UserError
from simulator.accuracy.cache import cache_folder
from simulator.atomic import write_with

TABLES_VERSION = 1
"""Bump when what a table means changes without a change to the hashed code (e.g. the layout of a file)."""

_CODE_ROOTS = (Path(__file__).parents[1] / "hardware_models", Path(__file__).parent / "evaluate.py",
               Path(__file__))
_KEY = "identity_sha256"
_code_stamp: str | None = None
stats = {"hits": 0, "misses": 0}
"""Tables found on disk and tables built, in this process (what the tests check)."""


def code_stamp() -> str:
    """SHA-256 of the cost models' code and data files (see `_CODE_ROOTS`), computed once per process."""
    global _code_stamp
    if _code_stamp is None:
        digest = hashlib.sha256()
        for root in _CODE_ROOTS:
            files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
            for path in files:
                if "__pycache__" not in path.parts:
                    digest.update(path.relative_to(root.parent).as_posix().encode() + b"\0" + path.read_bytes())
        _code_stamp = digest.hexdigest()
    return _code_stamp


def canonical(value: Any) -> Any:
    """`value` as plain JSON data with its whole state: dataclasses, pydantic models and objects by their class
    and fields, mappings and sets in sorted order, arrays by dtype, shape and SHA-256 of their bytes. A TypeError
    for what has no such form (a function): its tables are not cached."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return {"array": str(data.dtype), "shape": list(data.shape),
                "sha256": hashlib.sha256(data.tobytes()).hexdigest()}
    if isinstance(value, enum.Enum):
        return canonical(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((canonical(v) for v in value), key=_sort_key)
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):  # json.dumps(sort_keys=True) orders them
            return {k: canonical(v) for k, v in value.items()}
        return sorted(([canonical(k), canonical(v)] for k, v in value.items()), key=_sort_key)
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        state = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    elif hasattr(value, "model_dump"):  # a pydantic model
        state = value.model_dump()
    elif hasattr(value, "__dict__") and not callable(value):
        state = vars(value)
    else:
        raise TypeError(f"cannot key a cost table on a {kind}")
    return {"class": kind, "state": canonical(state)}


def _sort_key(item: Any) -> str:
    return json.dumps(item, sort_keys=True)


def identity_hash(identity: Mapping[str, Any]) -> str:
    """SHA-256 of `identity` (canonical form), the code stamp and `TABLES_VERSION`."""
    text = json.dumps([TABLES_VERSION, code_stamp(), canonical(identity)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def cached_arrays(kind: str, identity: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]],
                  build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The float64 arrays `build()` returns (named and shaped as `shapes`) for the inputs `identity`: read from
    the cache when a file of this identity is there, else built and stored. `kind` names the file's folder."""
    try:
        key = identity_hash(identity)
    except TypeError:  # an accelerator with state that has no canonical form: build every time
        stats["misses"] += 1
        return build()
    path = cache_folder() / "tables" / kind / f"{key[:32]}.npz"
    stored = _read(path, key, shapes)
    if stored is not None:
        stats["hits"] += 1
        return stored
    stats["misses"] += 1
    arrays = build()
    try:
        write_with(path, lambda temporary: _save(temporary, key, arrays))
    except (OSError, UserError):  # a read-only or full cache folder: the tables still count in this process
        pass
    return arrays


def _save(path: Path, key: str, arrays: dict[str, np.ndarray]) -> None:
    named: dict[str, Any] = {_KEY: np.array(key), **arrays}
    with open(path, "wb") as handle:  # a file object: np.savez would append .npz to the temporary's name
        np.savez(handle, **named)


def _read(path: Path, key: str, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray] | None:
    """The arrays stored at `path` if it holds exactly `shapes` as float64 under identity `key`, else None."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if set(archive.files) != {_KEY, *shapes} or str(archive[_KEY]) != key:
                return None
            arrays = {name: archive[name] for name in shapes}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):  # absent, cut short or not an archive
        return None
    if any(a.dtype != np.float64 or a.shape != tuple(shapes[n]) for n, a in arrays.items()):
        return None
    return arrays
