"""Measured hardware: a per-layer latency profile of one model, written by `autosplit profile`, as an accelerator.

A profile is how a user brings a device no preset covers: profile the model on it, split with it. It answers
for the model it measured (its SHA-256) at the precision it measured; other bit-widths need `based_on:`, an
analytic preset whose latency ratio scales each measured layer (`measured x preset(w, a) / preset(measured)`).

**The CSV format** (`PROFILE_FORMAT`). Header lines `# key: value` (`HEADER_KEYS`; unknown keys are errors), then
a table with the columns `layer,latency_s,ort_nodes`: one row per autosplit layer of the simplified graph, its
median latency in seconds, and the onnxruntime nodes (after onnxruntime's own fusions) whose time it got a share
of, `;`-separated. `end_to_end_s` is the median wall time of a whole `session.run` without the profiler and
`end_to_end_cpu_s` the calling thread's CPU time in those runs (on a loaded machine, with 1 thread, the
latency the machine would have unloaded), `unmapped_s` the time of the nodes that map to no layer (constant
chains autosplit folded); they are recorded, not spread over the layers. `clock` says what a node's time
is: `wall`, or `cpu`, the CPU time the computing thread spent in it (1 thread), which leaves out the time other
processes held the core on a loaded machine; `statistic` says which of the runs: `median` or `min`.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from hardware_models.base import Accelerator, LayerCost
from hardware_models.errors import UserError
from hardware_models.layer import LayerSpec
from hardware_models.preset import PresetModel, validate_preset

PROFILE_FORMAT = "autosplit-profile 1"
PRECISION_BITS = {"fp32": 32, "fp16": 16, "int8": 8}
COLUMNS = ("layer", "latency_s", "ort_nodes")
# header key -> what it says; `autosplit profile` writes every key but the OPTIONAL_KEYS not given to it
HEADER_KEYS = {
    "format": f"the file format, '{PROFILE_FORMAT}'",
    "model": "the profiled ONNX file as given",
    "model_sha256": "the SHA-256 of the ONNX file's bytes",
    "precision": "the arithmetic measured: fp32, fp16 or int8",
    "batch": "the batch size of the measured input",
    "provider": "the onnxruntime execution provider",
    "threads": "onnxruntime's intra-op threads",
    "runs": "the timed runs (each layer's latency is their median, or minimum: `statistic`)",
    "statistic": "median (the default) or min: which statistic of the runs each layer's latency is",
    "clock": "wall, or cpu: the CPU time the computing thread spent in each node (1 thread; a loaded machine)",
    "warmup": "the untimed runs before them",
    "onnxruntime": "onnxruntime's version",
    "graph_optimization": "onnxruntime's graph optimisation level",
    "device": "the machine measured on (processor, cores)",
    "end_to_end_s": "median wall time of a whole session.run without the profiler, seconds",
    "end_to_end_cpu_s": "median CPU time of the calling thread in those runs, seconds (with 1 thread: the latency "
                        "on an unloaded machine; a lower bound otherwise)",
    "unmapped_s": "median time of onnxruntime nodes that map to no layer, seconds",
    "based_on": "optional: an analytic preset whose latency ratio gives the other bit-widths",
    "input_shape": "optional: the input shape the model was imported and run with (--input-shape)",
    "until": "optional: where autosplit's graph of the model ends (--until)",
}
OPTIONAL_KEYS = ("based_on", "input_shape", "until")
NUMBER_KEYS = ("end_to_end_s", "end_to_end_cpu_s", "unmapped_s")
STATISTICS = ("median", "min")
CLOCKS = ("wall", "cpu")
WHOLE_KEYS = ("batch", "threads", "runs", "warmup")
CLOCK_HZ = 1e9  # cycles are nanoseconds


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_profile(header: Mapping[str, object], rows: list[tuple[str, float, list[str]]]) -> str:
    """A profile's CSV text from its header (HEADER_KEYS) and rows (layer, latency_s, onnxruntime nodes)."""
    unknown = [k for k in header if k not in HEADER_KEYS]
    if unknown:
        raise ValueError(f"unknown profile header keys {unknown}")
    out = io.StringIO()
    for key, value in {"format": PROFILE_FORMAT, **header}.items():
        out.write(f"# {key}: {value!r}\n" if isinstance(value, float) else f"# {key}: {value}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for layer, latency_s, nodes in rows:
        writer.writerow([layer, repr(float(latency_s)), ";".join(nodes)])
    return out.getvalue()


def read_profile(path: str | Path) -> tuple[dict[str, str], dict[str, float], dict[str, list[str]]]:
    """(header, layer -> latency_s, layer -> onnxruntime nodes) of a profile CSV; a UserError names the file and
    the line or key at fault."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such profile file (write one with `autosplit profile MODEL.onnx --out {path}`)")
    lines = path.read_text(errors="replace").splitlines()
    header: dict[str, str] = {}
    body_start = len(lines)
    for number, line in enumerate(lines):
        if not line.startswith("#"):
            body_start = number
            break
        key, colon, text = line[1:].partition(":")
        key = key.strip()
        if not colon or key not in HEADER_KEYS:
            raise UserError(f"{path}: line {number + 1}: expected '# key: value' with a key among "
                            f"{', '.join(HEADER_KEYS)}, got {line!r}")
        header[key] = text.strip()
    if header.get("format") != PROFILE_FORMAT:
        raise UserError(f"{path}: format: expected '{PROFILE_FORMAT}' (a file written by `autosplit profile`), "
                        f"got {header.get('format')!r}")
    missing = [k for k in HEADER_KEYS if k not in header and k not in OPTIONAL_KEYS]
    if missing:
        raise UserError(f"{path}: header key {missing[0]} missing ({HEADER_KEYS[missing[0]]})")
    if header["precision"] not in PRECISION_BITS:
        raise UserError(f"{path}: precision: expected one of {', '.join(PRECISION_BITS)}, got {header['precision']!r}")
    if header["statistic"] not in STATISTICS:
        raise UserError(f"{path}: statistic: expected one of {', '.join(STATISTICS)}, got {header['statistic']!r}")
    if header["clock"] not in CLOCKS:
        raise UserError(f"{path}: clock: expected one of {', '.join(CLOCKS)}, got {header['clock']!r}")
    for key in NUMBER_KEYS + WHOLE_KEYS:
        try:
            number_value = float(header[key]) if key in NUMBER_KEYS else float(int(header[key]))
        except ValueError:
            number_value = -1.0
        if not (math.isfinite(number_value) and number_value >= 0):
            raise UserError(f"{path}: {key}: expected a {'number' if key in NUMBER_KEYS else 'whole number'} >= 0, "
                            f"got {header[key]!r}")
    reader = csv.reader(lines[body_start:])
    if next(reader, None) != list(COLUMNS):
        raise UserError(f"{path}: line {body_start + 1}: expected the columns {','.join(COLUMNS)}")
    latency: dict[str, float] = {}
    nodes: dict[str, list[str]] = {}
    for offset, row in enumerate(reader, start=body_start + 2):
        try:
            seconds = float(row[1]) if len(row) == len(COLUMNS) else math.nan
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds >= 0) or row[0] in latency:
            raise UserError(f"{path}: line {offset}: expected 'layer,latency_s,ort_nodes' with a new layer and a "
                            f"latency >= 0 seconds, got {','.join(row)!r}")
        latency[row[0]] = seconds
        nodes[row[0]] = [n for n in row[2].split(";") if n]
    return header, latency, nodes


class MeasuredPreset(PresetModel):
    """A `kind: measured` preset: a profile CSV and, optionally, the analytic preset for other bit-widths."""

    profile: str = Field(description="the profile CSV written by `autosplit profile` (relative to this file)")
    based_on: str | None = Field(default=None, description="an analytic preset whose latency ratio between the "
                                 "asked and the measured bit-widths scales each measured layer")


@dataclass(frozen=True)
class MeasuredProfile(Accelerator):
    """Per-layer latencies measured on a device (seconds), for one model (its SHA-256) at one precision."""

    kind: ClassVar[str] = "measured"

    name: str
    source: str  # the profile CSV
    layer_latency_s: dict[str, float] = field(repr=False, compare=False)  # compare=False: hashable
    header: dict[str, str] = field(repr=False, compare=False)
    based_on: str | None = None  # the analytic preset's name, resolved by the registry into `basis`
    basis: Accelerator | None = field(default=None, repr=False, compare=False)
    clock_hz: float = CLOCK_HZ
    preset_evidence: str = field(default="", repr=False, compare=False)

    @classmethod
    def from_file(cls, path: str | Path, based_on: str | None = None, name: str | None = None,
                  evidence: str = "") -> MeasuredProfile:
        """The profile in the CSV at `path` (its `based_on` header key unless `based_on` is given)."""
        header, latency, _ = read_profile(path)
        return cls(name=name or Path(path).stem, source=str(path), layer_latency_s=latency, header=header,
                   based_on=based_on or header.get("based_on") or None, preset_evidence=evidence)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], source: str) -> MeasuredProfile:
        """A profile named by a `kind: measured` preset; its `profile:` is relative to the preset's folder."""
        preset = validate_preset(MeasuredPreset, config, source)
        path = Path(preset.profile)
        if not path.is_absolute():
            path = Path(source).parent / path
        if not path.is_file():
            raise UserError(f"{source}: profile: no such profile file {preset.profile!r} (looked at {path})")
        return cls.from_file(path, preset.based_on, preset.name, preset.evidence or "")

    # --- what it measured ----------------------------------------------------------------------------------
    @property
    def measured_bits(self) -> int:
        return PRECISION_BITS[self.header["precision"]]

    @property
    def model_sha256(self) -> str:
        return self.header["model_sha256"]

    @property
    def batch(self) -> int:
        return int(self.header["batch"])

    @property
    def supported_bits(self) -> tuple[int, ...]:  # type: ignore[override]
        """The measured bit-width, and with a basis every width the basis computes at."""
        if self.basis is None:
            return (self.measured_bits,)
        return tuple(sorted(set(self.basis.supported_bits) | {self.measured_bits}))

    @property
    def default_bits(self) -> int:
        return self.measured_bits

    def with_basis(self, basis: Accelerator) -> MeasuredProfile:
        """This profile with the analytic preset `based_on` names (it must run the measured bit-width)."""
        if self.measured_bits not in basis.supported_bits:
            raise UserError(f"{self.source}: based_on: {basis.name} does not compute at the measured "
                            f"{self.header['precision']} ({self.measured_bits} bits), so it cannot give a ratio to it; "
                            f"it computes at {', '.join(map(str, basis.supported_bits))} bits")
        return MeasuredProfile(self.name, self.source, self.layer_latency_s, self.header, self.based_on, basis,
                               self.clock_hz, self.preset_evidence)

    def check_model(self, model: str, path: str | None) -> None:
        """A UserError unless `path` is the ONNX file this profile measured (same SHA-256)."""
        if path is None or not Path(path).is_file():
            raise UserError(f"{self.source}: this profile measured the ONNX model with SHA-256 {self.model_sha256} "
                            f"({self.header['model']}); {model} is not that file")
        sha = file_sha256(path)
        if sha != self.model_sha256:
            raise UserError(f"{self.source}: this profile measured the ONNX model with SHA-256 {self.model_sha256} "
                            f"({self.header['model']}), not {path} (SHA-256 {sha}); profile it with "
                            f"`autosplit profile {path} --out PROFILE.csv`")

    # --- costs -------------------------------------------------------------------------------------------
    def layer_cost(self, layer: LayerSpec, weight_bits: int = 8, activation_bits: int = 8,
                   batch: int = 1) -> LayerCost:
        """The measured median latency of `layer` (0 s when the profile has no such layer), scaled by the
        basis's latency ratio at other bit-widths."""
        if batch != self.batch:
            raise UserError(f"{self.source}: measured at batch {self.batch}, not batch {batch}; profile a model "
                            f"exported with that batch size")
        latency_s = self.layer_latency_s.get(layer.name, 0.0)
        measured = self.measured_bits
        if (weight_bits, activation_bits) != (measured, measured):
            if self.basis is None:
                raise UserError(f"{self.source}: measured at {self.header['precision']} ({measured}-bit weights and "
                                f"activations), not {weight_bits}/{activation_bits}; profile at that precision or "
                                f"give `based_on: PRESET` (an analytic preset whose latency ratio scales the layers)")
            asked = self.basis.layer_cost(layer, weight_bits, activation_bits, batch).latency_s
            reference = self.basis.layer_cost(layer, measured, measured, batch).latency_s
            latency_s *= asked / reference if reference > 0 else 1.0
        return LayerCost(layer.name, compute_cycles=latency_s * self.clock_hz, stall_cycles=0.0, latency_s=latency_s,
                         energy_j=0.0, dram_bytes=0.0, parts={"measured_s": latency_s})

    def evidence(self) -> str:
        h = self.header
        total_ms = sum(self.layer_latency_s.values()) * 1e3
        basis = (f"; other bit-widths scaled by {self.basis.name}'s latency ratio" if self.basis is not None
                 else "; no other bit-widths (no based_on)")
        measured = (f"measured: {h['statistic']} {h['clock']} time of {h['runs']} runs of {h['model']} "
                    f"(SHA-256 {h['model_sha256'][:12]}...) "
                    f"with onnxruntime {h['onnxruntime']} ({h['provider']}, {h['threads']} thread(s), "
                    f"{h['graph_optimization']}, {h['precision']}, batch {h['batch']}) on {h['device']}: layers sum "
                    f"{total_ms:.3f} ms, end to end {float(h['end_to_end_s']) * 1e3:.3f} ms, unmapped "
                    f"{float(h['unmapped_s']) * 1e3:.3f} ms; energy not measured (0 J){basis}")
        return f"{self.preset_evidence}; {measured}" if self.preset_evidence else measured
