"""Measured accuracies kept on disk, so that a measurement is made once per model, data and quantizer.

A measurement is the top-1 of a fake-quantized model on the whole data file, for one bit assignment (the
tensors below float and their bits). They are stored in one JSON file per (model, data, calibration, tier,
granularity), named by the SHA-256 of the model's and data files' bytes, the `--until` cut and `CACHE_VERSION`:
a changed file, or a changed quantizer (a new version stamp), is a new file, never a stale answer. Beside the
accuracies the file keeps the activation ranges the calibration found and the proxy fitted to the
measurements, the latter stamped with the SHA-256 of the fitting code (`fit_stamp`), so that a changed fit is
refitted. The folder is
`$AUTOSPLIT_CACHE`, else `$XDG_CACHE_HOME/autosplit`, else `~/.cache/autosplit`; files are written atomically
(`simulator.atomic`) and merged with what another process wrote meanwhile. Deleting the folder is always safe.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from simulator.accuracy.distortion import FLOAT_BITS
from simulator.atomic import write_text

CACHE_VERSION = 1
"""Bump when the fake quantizer's arithmetic changes: older measurements are then not reused."""

_HASHES: dict[tuple[str, int, int], str] = {}  # (resolved path, size, mtime_ns) -> SHA-256, in this process


def cache_folder() -> Path:
    """Where measurements are kept (see the module docstring)."""
    if os.environ.get("AUTOSPLIT_CACHE"):
        return Path(os.environ["AUTOSPLIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "autosplit"


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks; remembered in this process while the file's size
    and modification time are unchanged."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(2**20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def assignment_key(weight_bits: dict[str, int], activation_bits: dict[str, int]) -> str:
    """A bit assignment as text: the layers' weight and activation bits, sorted, float tensors left out."""
    weights = sorted((name, int(b)) for name, b in weight_bits.items() if int(b) < FLOAT_BITS)
    activations = sorted((name, int(b)) for name, b in activation_bits.items() if int(b) < FLOAT_BITS)
    return json.dumps([weights, activations], separators=(",", ":"))


class MeasurementCache:
    """What measuring one model on one data file with one quantizer found, by section: `accuracy` (top-1 in
    percent, by `assignment_key`), `range` (an activation's clipping range [lo, hi], by 'layer/bits') and
    `proxy` (the fitted proxy as `dataclass_to_json` writes it, by `fit_stamp` and chance level)."""

    SECTIONS = ("accuracy", "range", "proxy")

    def __init__(self, model: str | Path, data: str | Path, calibration: str | Path | None, tier: str,
                 granularity: str, *, until: str | None = None) -> None:
        identity = {"version": CACHE_VERSION, "model": file_sha256(model), "data": file_sha256(data),
                    "calibration": None if calibration is None else file_sha256(calibration),
                    "tier": tier, "granularity": granularity, "until": until}
        name = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
        self.path = cache_folder() / "measured" / f"{name}.json"
        self.identity = {**identity, "model_file": str(Path(model).resolve()), "data_file": str(Path(data).resolve())}
        self.values = self._read()
        self.hits = 0  # accuracies found here
        self.made = 0  # accuracies measured and added

    def _read(self) -> dict[str, dict]:
        empty: dict[str, dict] = {section: {} for section in self.SECTIONS}
        try:
            stored = json.loads(self.path.read_text())
        except (OSError, ValueError):  # no file yet, or one cut short outside this module: measure again
            return empty
        if not isinstance(stored, dict) or stored.get("version") != CACHE_VERSION:
            return empty
        return {section: dict(stored.get(section, {})) for section in self.SECTIONS}

    def get(self, section: str, key: str):
        value = self.values[section].get(key)
        if value is not None and section == "accuracy":
            self.hits += 1
        return value

    def put(self, section: str, key: str, value) -> None:
        """Keep `value` and write the file (merged with what another process may have added meanwhile)."""
        if section == "accuracy":
            self.made += 1
        stored = self._read()
        self.values = {s: {**stored[s], **self.values[s]} for s in self.SECTIONS}
        self.values[section][key] = value
        try:
            write_text(self.path, json.dumps({**self.identity, **self.values}))
        except OSError:  # a read-only home: the value still counts in this process
            pass


FIT_MODULES = ("calibration.py", "distortion.py", "proxy.py", "published.py", "sensitivity.py")


def fit_stamp() -> str:
    """SHA-256 of the code that fits a proxy to measurements (the modules in `FIT_MODULES`)."""
    digest = hashlib.sha256()
    for name in FIT_MODULES:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:32]


def dataclass_to_json(value: Any) -> dict[str, Any]:
    """A dataclass's init fields as JSON values: arrays and tuples tagged so `dataclass_from_json` restores them."""

    def encode(v: Any) -> Any:
        if isinstance(v, np.ndarray):
            return {"array": v.tolist(), "dtype": str(v.dtype)}
        if isinstance(v, tuple):
            return {"tuple": [encode(item) for item in v]}
        if isinstance(v, np.generic):
            return v.item()
        return v

    return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}


def dataclass_from_json(cls: type, stored: dict[str, Any]) -> Any:
    """The `cls` instance `dataclass_to_json` wrote."""

    def decode(v: Any) -> Any:
        if isinstance(v, dict) and "array" in v:
            return np.array(v["array"], dtype=v["dtype"])
        if isinstance(v, dict) and "tuple" in v:
            return tuple(decode(item) for item in v["tuple"])
        return v

    return cls(**{name: decode(v) for name, v in stored.items()})
