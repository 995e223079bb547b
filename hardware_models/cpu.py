"""A multi-core CPU running a network layer by layer (ncnn-like: Raspberry Pi, Jetson CPU complexes, phones).

Each core issues `fma_pipes` SIMD fused multiply-adds of `simd_bits` per cycle. A layer's arithmetic rate on
one core, in MACs per cycle, is `simd_bits / element_bits x fma_pipes` for the arithmetic it runs in:

- 32 bits: fp32 lanes.
- 16 bits: fp16 lanes where the core has ARMv8.2 half-precision arithmetic (`fp16_arithmetic`), as ncnn runs
  "fp32" models on such cores; else fp32 lanes (storage only).
- 8 bits: int8 dot products into 8-bit lanes where the core has SDOT (`int8_dot`; ARMv8.2 cores whose
  int8 kernels in ncnn use it), else widening multiply-adds into 16-bit lanes; each path has its own fitted
  efficiency (requantisation and packing).

A preset lists its core clusters fastest first; `threads` threads take the first cores of that list and
split a layer evenly (OpenMP static schedule), so the slowest core used sets the pace:
`rate = (1 + (threads - 1) x thread_efficiency) x min(core rate of the cores used)`.

    layer_s = max(macs / (rate x efficiency(layer class)), dram bytes / (dram_bandwidth x bandwidth_efficiency))
              + (layer_overhead_cycles + [threads > 1] x sync_cycles) / clock of the first core

Layer classes: `winograd` (3x3 stride-1 dense conv: ncnn's Winograd transform does fewer multiplies, so its
efficiency may exceed 1), `gemm` (any other dense conv, a linear layer), `depthwise`; int8 layers are further
scaled by `int8_efficiency` or `int8_dot_efficiency` (requantisation, packing). Element-wise, pooling and data
layers cost their memory time. DRAM bytes are the layer's weights, plus `activation_traffic` x its input and
output when they do not fit in `last_level_cache` together (im2col and Winograd buffers, concatenation copies).
The efficiencies, overheads and `thread_efficiency` are fitted once for every CPU preset on ncnn's published
benchmarks (hardware_models/cpu_calibration.yaml, benchmarks/calibrate_cpu.py); a preset's own datasheet figures
(clocks, cores, pipes, SIMD width, bandwidth, cache) are all that tells boards apart.
Energy is `active_power_w` x latency (a board-level average, not a per-action model).
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from hardware_models.base import Accelerator, LayerCost
from hardware_models.errors import UserError
from hardware_models.layer import LayerSpec
from hardware_models.preset import (
    Bandwidth,
    BitList,
    Fraction,
    Frequency,
    NonNegativeNumber,
    PositiveInteger,
    PositiveNumber,
    PresetModel,
    Size,
    StrictModel,
    Watts,
    validate_preset,
)
from hardware_models.yaml_io import read_yaml

CALIBRATION_PATH = Path(__file__).parent / "cpu_calibration.yaml"
LAYER_CLASSES = ("winograd", "gemm", "depthwise")
# plausibility ranges of datasheet figures: outside them a preset is a typo (a clock in Hz written as GHz)
CLOCK_RANGE_HZ = (10e6, 10e9)
BANDWIDTH_RANGE = (100e6, 2e12)
CACHE_RANGE = (1024.0, 2.0**31)


def _within(value: float, bounds: tuple[float, float], what: str) -> float:
    low, high = bounds
    if not low <= value <= high:
        raise ValueError(f"expected {what} between {low:g} and {high:g}, got {value:g}")
    return value


class CpuCalibration(StrictModel):
    """The CPU model's fitted constants, shared by every CPU preset (a preset may override them)."""

    efficiency: dict[str, PositiveNumber] = Field(description="share of the peak MAC rate per layer class")
    int8_efficiency: PositiveNumber = 1.0  # int8 by widening multiply-adds
    int8_dot_efficiency: PositiveNumber = 1.0  # int8 by SDOT
    activation_traffic: PositiveNumber = 1.0  # DRAM bytes per activation byte of a layer that spills the cache
    thread_efficiency: Fraction = 1.0
    bandwidth_efficiency: Fraction = 1.0
    layer_overhead_cycles: NonNegativeNumber = 0.0
    sync_cycles: NonNegativeNumber = 0.0
    source: str | None = None
    evidence: dict[str, str] | None = None

    @field_validator("efficiency")
    @classmethod
    def _every_class(cls, efficiency: dict[str, float]) -> dict[str, float]:
        if set(efficiency) != set(LAYER_CLASSES):
            raise ValueError(f"expected one efficiency per layer class ({', '.join(LAYER_CLASSES)}), "
                             f"got {sorted(efficiency)}")
        return efficiency


class Cluster(StrictModel):
    """Identical cores at one clock."""

    cores: PositiveInteger
    clock: Frequency = Field(description="the cores' maximum clock, e.g. '2.4GHz'")
    fma_pipes: PositiveNumber = Field(description="SIMD FMA instructions per cycle per core (0.5: a 64-bit pipe)")
    core: str | None = None  # the core's name, e.g. Cortex-A76

    @field_validator("clock")
    @classmethod
    def _plausible_clock(cls, clock: float) -> float:
        return _within(clock, CLOCK_RANGE_HZ, "a clock in Hz")

    @field_validator("fma_pipes")
    @classmethod
    def _plausible_pipes(cls, pipes: float) -> float:
        return _within(pipes, (0.125, 16), "FMA pipes per core")

    @field_validator("cores")
    @classmethod
    def _plausible_cores(cls, cores: int) -> int:
        return int(_within(cores, (1, 512), "a core count"))


class CpuPreset(PresetModel):
    """A `kind: cpu` preset (human units)."""

    clusters: list[Cluster] = Field(description="core clusters, fastest first: [{cores, clock, fma_pipes}]")
    simd_bits: PositiveInteger = 128
    fp16_arithmetic: bool = False
    int8_dot: bool = False
    last_level_cache: Size = Field(description="the largest cache the cores share, e.g. '2MiB'")
    dram_bandwidth: Bandwidth = Field(description="the DRAM's datasheet bandwidth, e.g. '17GB/s'")
    memory: Size | None = None
    threads: PositiveInteger | None = None  # default: every core
    active_power_w: Watts = 5.0
    supported_bits: BitList = (8, 16, 32)
    calibration: CpuCalibration | None = None

    @field_validator("clusters")
    @classmethod
    def _some_cores(cls, clusters: list[Cluster]) -> list[Cluster]:
        if not clusters:
            raise ValueError("expected at least one cluster of cores")
        return clusters

    @field_validator("simd_bits")
    @classmethod
    def _simd_width(cls, bits: int) -> int:
        if bits not in (64, 128, 256, 512, 1024, 2048):
            raise ValueError(f"expected a SIMD width of 64, 128, 256, 512, 1024 or 2048 bits, got {bits}")
        return bits

    @field_validator("last_level_cache")
    @classmethod
    def _plausible_cache(cls, size: float) -> float:
        return _within(size, CACHE_RANGE, "a cache size in bytes")

    @field_validator("dram_bandwidth")
    @classmethod
    def _plausible_bandwidth(cls, bandwidth: float) -> float:
        return _within(bandwidth, BANDWIDTH_RANGE, "a DRAM bandwidth in bytes/s")

    @field_validator("threads")
    @classmethod
    def _at_most_the_cores(cls, threads: int | None, info: ValidationInfo) -> int | None:
        clusters = info.data.get("clusters")
        if threads is not None and clusters and threads > sum(c.cores for c in clusters):
            raise ValueError(f"{threads} threads on {sum(c.cores for c in clusters)} cores")
        return threads

    @field_validator("supported_bits")
    @classmethod
    def _cpu_bits(cls, bits: tuple[int, ...]) -> tuple[int, ...]:
        if not set(bits) <= {8, 16, 32}:
            raise ValueError(f"expected bit-widths drawn from 8, 16, 32, got {list(bits)}")
        return bits


def default_calibration() -> CpuCalibration:
    """The fitted constants stored in hardware_models/cpu_calibration.yaml."""
    return validate_preset(CpuCalibration, read_yaml(CALIBRATION_PATH, "CPU calibration"), str(CALIBRATION_PATH))


def layer_class(layer: LayerSpec) -> str | None:
    """The class whose efficiency applies to a MAC layer (None for a layer without MACs)."""
    if not layer.is_mac_layer:
        return None
    if layer.groups > 1 and layer.groups == layer.in_channels:
        return "depthwise"
    if layer.kind == "conv" and layer.kernel_height == layer.kernel_width == 3 and layer.stride == 1 \
            and layer.groups == 1:
        return "winograd"
    return "gemm"


class CPU(Accelerator):
    """A CPU from its datasheet (clusters, SIMD, cache, DRAM) and the constants fitted for every CPU."""

    kind = "cpu"
    fixed_precisions = True
    slower_at_fewer_bits = ("without SDOT, int8 runs as widening multiply-adds into 16-bit lanes with requantisation "
                            "(`int8_efficiency`, fitted on ncnn's rows), which can be slower than fp16 arithmetic")

    def __init__(self, *, name: str, clusters: list[tuple[int, float, float]], simd_bits: int = 128,
                 fp16_arithmetic: bool = False, int8_dot: bool = False, last_level_cache_bytes: float,
                 dram_bandwidth_bps: float, threads: int | None = None, active_power_w: float = 5.0,
                 supported_bits: tuple[int, ...] = (8, 16, 32), memory_bytes: float | None = None,
                 calibration: CpuCalibration | None = None, preset_evidence: str = "", preset: str = "") -> None:
        self.name = name
        self.preset = preset  # the preset's file stem, which keys its held-out error in the calibration
        self.clusters = [(int(n), float(clock), float(pipes)) for n, clock, pipes in clusters]
        self.cores = sum(n for n, _, _ in self.clusters)
        self.simd_bits = int(simd_bits)
        self.fp16_arithmetic = bool(fp16_arithmetic)
        self.int8_dot = bool(int8_dot)
        self.last_level_cache_bytes = float(last_level_cache_bytes)
        self.dram_bandwidth_bps = float(dram_bandwidth_bps)
        self.active_power_w = float(active_power_w)
        self.supported_bits = tuple(supported_bits)
        self.memory_bytes = memory_bytes
        self.calibration = calibration or default_calibration()
        self.preset_evidence = preset_evidence
        self.threads = self.cores
        self._set_threads(self.cores if threads is None else threads, name)
        self.clock_hz = self.clusters[0][1]

    def _set_threads(self, threads: int, where: str) -> None:
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= self.cores:
            raise UserError(f"{where}: threads: expected a whole number between 1 and {self.cores} (the cores of "
                            f"{self.name}), got {threads!r}")
        self.threads = threads

    @classmethod
    def from_config(cls, config: Mapping[str, Any], source: str) -> CPU:
        """A CPU from a preset mapping (without `kind`); a UserError names `source` and the bad key."""
        preset = validate_preset(CpuPreset, config, source)
        return cls(name=preset.name or source,
                   clusters=[(c.cores, c.clock, c.fma_pipes) for c in preset.clusters],
                   simd_bits=preset.simd_bits, fp16_arithmetic=preset.fp16_arithmetic, int8_dot=preset.int8_dot,
                   last_level_cache_bytes=preset.last_level_cache, dram_bandwidth_bps=preset.dram_bandwidth,
                   threads=preset.threads, active_power_w=preset.active_power_w,
                   supported_bits=preset.supported_bits, memory_bytes=preset.memory,
                   calibration=preset.calibration, preset_evidence=preset.evidence or "", preset=Path(source).stem)

    def with_threads(self, threads: int, where: str = "") -> CPU:
        """A copy running `threads` threads on the first cores of the cluster list."""
        out = copy.copy(self)
        out._set_threads(threads, where or self.name)
        return out

    # --- rates -------------------------------------------------------------------------------------------
    def lanes(self, weight_bits: int, activation_bits: int) -> float:
        """SIMD lanes of one FMA instruction for operands of these widths (see the module docstring)."""
        bits = max(weight_bits, activation_bits)
        if bits > 16:
            element = 32
        elif bits > 8:
            element = 16 if self.fp16_arithmetic else 32
        else:
            element = 8 if self.int8_dot else 16
        return self.simd_bits / element

    def macs_per_s(self, weight_bits: int = 16, activation_bits: int = 16) -> float:
        """Peak MACs per second of `threads` threads (thread scaling included, no layer-class efficiency)."""
        used, cycles_per_s = 0, []
        for n, clock, pipes in self.clusters:
            take = min(n, self.threads - used)
            if take > 0:
                cycles_per_s.append(clock * pipes)
                used += take
        per_core = min(cycles_per_s) * self.lanes(weight_bits, activation_bits)
        return per_core * (1 + (self.threads - 1) * self.calibration.thread_efficiency)

    def int8_factor(self, weight_bits: int, activation_bits: int) -> float:
        """The fitted efficiency of int8 arithmetic (1 for float)."""
        if max(weight_bits, activation_bits) > 8:
            return 1.0
        return self.calibration.int8_dot_efficiency if self.int8_dot else self.calibration.int8_efficiency

    # --- the layer ---------------------------------------------------------------------------------------
    def layer_cost(self, layer: LayerSpec, weight_bits: int = 8, activation_bits: int = 8,
                   batch: int = 1) -> LayerCost:
        """Time, energy and DRAM bytes of `layer` (batch multiplies its MACs and activations)."""
        cal = self.calibration
        if not {weight_bits, activation_bits} <= set(self.supported_bits):
            raise UserError(f"{self.name}: computes at {', '.join(map(str, self.supported_bits))} bits, not "
                            f"{weight_bits}/{activation_bits}")
        weight_bytes = layer.weight_elements * weight_bits / 8
        activation_bytes = (layer.input_elements + layer.output_elements) * batch * activation_bits / 8
        spills = activation_bytes > self.last_level_cache_bytes
        dram_bytes = weight_bytes + (activation_bytes * cal.activation_traffic if spills else 0.0)
        memory_s = dram_bytes / (self.dram_bandwidth_bps * cal.bandwidth_efficiency)
        compute_s = 0.0
        klass = layer_class(layer)
        if klass is not None:
            efficiency = cal.efficiency[klass] * self.int8_factor(weight_bits, activation_bits)
            compute_s = layer.macs * batch / (self.macs_per_s(weight_bits, activation_bits) * efficiency)
        overhead_cycles = cal.layer_overhead_cycles + (cal.sync_cycles if self.threads > 1 else 0.0)
        overhead_s = overhead_cycles / self.clock_hz
        busy_s = max(compute_s, memory_s)
        latency_s = busy_s + overhead_s
        return LayerCost(
            name=layer.name,
            compute_cycles=compute_s * self.clock_hz,
            stall_cycles=(busy_s - compute_s) * self.clock_hz,
            latency_s=latency_s,
            energy_j=self.active_power_w * latency_s,
            dram_bytes=dram_bytes,
            overhead_s=overhead_s,
            overhead_cycles=overhead_cycles,
            energy_parts_j={"board": self.active_power_w * latency_s},
            parts={"compute_s": compute_s, "memory_s": memory_s, "overhead_s": overhead_s,
                   "threads": float(self.threads)},
        )

    @property
    def default_bits(self) -> int:
        """16: the float model ncnn runs (fp16 arithmetic on ARMv8.2 cores, fp32 elsewhere)."""
        return 16

    def evidence(self) -> str:
        """The preset's own evidence, its board's held-out error, then how the shared constants were fitted."""
        fitted = self.calibration.evidence or {}
        parts = (f"{self.threads} threads.", self.preset_evidence, fitted.get(self.preset, ""), fitted.get("fit", ""))
        return " ".join(part for part in parts if part)
