"""A cloud GPU running a network (or the suffix of a split) as one sequence of kernels.

Each layer becomes the kernels launched for it (hardware_models/gpu_kernels.py): one per layer in a serving
engine (`execution: graph` with `fuse_epilogues`, the presets' default: TensorRT-like), one more per op
folded or fused into the layer in a framework (`execution: eager`, or `graph` without `fuse_epilogues`: a
CUDA graph captured from PyTorch). Each kernel takes

    gpu_s = fixed_s(kernel class) + max(flops / (rate x efficiency x utilisation), bytes / bandwidth)

where `rate` is the achievable rate of the kernel's arithmetic, `utilisation` the share of the GPU its
thread blocks keep busy, and the efficiencies and fixed times are fitted constants
(hardware_models/gpu_calibration.py).

How the kernels follow each other depends on the execution mode:

- `graph`: back to back, each costing its fixed part plus its busy time, after one graph launch.
- `eager`: the host dispatches one op after another: a per-class dispatch time (an op timed alone), one
  launch per library-internal kernel (the transposes), and, read from the layer's module path
  (`LayerSpec.name`), one module call per container that opens at the layer plus the framework's time per
  op inside a block (ops of a top-level stage or of a flat top-level Sequential pay none). The GPU starts
  a kernel, after a launch gap, when it has been dispatched and the previous one is done. The sequence
  takes max over j of (host time to dispatch kernels ..j + GPU time of kernels j..), the completion time
  of a two-stage pipeline.

GPUs without measurements reach the share of their datasheet peaks that the H200 reached.

Energy per inference assumes the board draws `idle_power_w` for the whole latency plus
(`board_power_w` - `idle_power_w`) x u while a kernel is busy, u being the kernel's fraction of the peak of
its limiting resource (flops / peak rate or bytes / peak bandwidth over its busy time): board power is
linear in utilisation between idle and the board power limit. Divided by the batch.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BeforeValidator, Field, ValidationInfo, field_validator

from hardware_models.base import Accelerator, LayerCost, sum_costs
from hardware_models.errors import UserError, suggest
from hardware_models.gpu_calibration import (
    CALIBRATION_PATH,
    Calibration,
    CalibrationOverrides,
    default_calibration,
    merge_calibration,
    mode_evidence,
    serving_overrides,
)
from hardware_models.gpu_kernels import BYTES_PER_ELEMENT, KernelTable, kernel_table, precision_of
from hardware_models.gpu_modes import EXECUTION_MODES, FUSION_MODES, Execution, Fusion
from hardware_models.layer import LayerSpec
from hardware_models.preset import (
    Bandwidth,
    Duration,
    Frequency,
    PositiveDuration,
    PositiveInteger,
    PresetModel,
    Size,
    StrictModel,
    Watts,
    validate_preset,
)


def _tflops(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"expected a positive number of TFLOP/s, got {value!r}")
    return float(value)


def _gpu_bits(value: object) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or any(b not in (8, 16, 32) for b in value):
        raise ValueError(f"expected a list drawn from 8, 16, 32, got {value!r}")
    return tuple(int(b) for b in value)


TeraFlops = Annotated[float, BeforeValidator(_tflops)]


class Tflops(StrictModel):
    """TFLOP/s per arithmetic (null: the GPU lacks it, e.g. TF32 on Turing)."""

    fp32: TeraFlops | None = None
    tf32: TeraFlops | None = None
    fp16: TeraFlops | None = None
    int8: TeraFlops | None = None

    def flops(self) -> dict[str, float]:
        """FLOP/s of the arithmetics the GPU has."""
        return {math_kind: tflops * 1e12 for math_kind, tflops in self.model_dump().items() if tflops is not None}


class PinnedCopy(StrictModel):
    """One measured host-to-device copy from pinned memory."""

    bytes: Size
    time: PositiveDuration


class HostToDevice(StrictModel):
    """The copy of what the cloud receives to GPU memory: a measured table, else latency + bytes / bandwidth."""

    latency: Duration = 5e-6
    bandwidth: Bandwidth = 25e9
    pinned: list[PinnedCopy] | None = None
    source: str | None = None


class GpuPreset(PresetModel):
    """A `kind: gpu` preset (human units)."""

    sm_count: PositiveInteger = Field(description="the number of streaming multiprocessors")
    clock: Frequency = Field(description="the boost clock, e.g. '1980MHz'")
    memory: Size | None = None
    memory_bandwidth: Bandwidth = Field(description="the datasheet memory bandwidth, e.g. '4.8TB/s'")
    measured_bandwidth: Bandwidth | None = None
    peak_tflops: Tflops = Field(description="datasheet TFLOP/s per arithmetic, e.g. {fp32: 67, fp16: 989.5}")
    measured_tflops: Tflops | None = None
    fuse_epilogues: bool | None = None
    fusion: Fusion | None = None
    execution: Execution = "graph"
    board_power_w: Watts = 300.0
    idle_power_w: Watts | None = None  # default: 15% of the board power
    host_to_device: HostToDevice | None = None
    unified_memory: bool = False  # an SoC GPU (Jetson) sharing DRAM with the CPU: no host-to-device copy
    supported_bits: Annotated[tuple[int, ...], BeforeValidator(_gpu_bits)] = (8, 16, 32)
    calibration: CalibrationOverrides | None = None

    @field_validator("peak_tflops")
    @classmethod
    def _fp32_and_fp16(cls, peak: Tflops) -> Tflops:
        if peak.fp32 is None or peak.fp16 is None:
            raise ValueError("fp32 and fp16 are required")
        return peak

    @field_validator("fusion")
    @classmethod
    def _one_of_fusion_and_fuse_epilogues(cls, fusion: str | None, info: ValidationInfo) -> str | None:
        fuse = info.data.get("fuse_epilogues")
        if fusion is not None and fuse is not None and fuse != (fusion == "serving"):
            raise ValueError(f"{fusion} contradicts fuse_epilogues: {str(fuse).lower()}; give one of them")
        return fusion

    @field_validator("execution")
    @classmethod
    def _serving_runs_as_a_graph(cls, execution: str, info: ValidationInfo) -> str:
        if execution == "eager" and info.data.get("fusion") == "serving":
            raise ValueError("eager with fusion serving: a serving engine runs as one graph; use execution: graph, "
                             "or fusion: framework")
        return execution

    @field_validator("idle_power_w")
    @classmethod
    def _idle_below_board(cls, idle: float | None, info: ValidationInfo) -> float | None:
        board = info.data.get("board_power_w")
        if idle is not None and board is not None and idle > board:
            raise ValueError(f"{idle:g} W exceeds board_power_w {board:g} W")
        return idle


@dataclass(frozen=True)
class SequenceTime:
    """Per-kernel times of a sequence: busy (compute and memory), fixed, and the wait for the host."""

    compute_s: np.ndarray
    memory_s: np.ndarray
    fixed_s: np.ndarray
    host_wait_s: np.ndarray
    launch_s: float

    @property
    def busy_s(self) -> np.ndarray:
        return np.maximum(self.compute_s, self.memory_s)

    @property
    def total_s(self) -> float:
        return float(self.launch_s + np.sum(self.busy_s + self.fixed_s + self.host_wait_s))


def eager_completion_s(host_s: np.ndarray, gpu_s: np.ndarray) -> np.ndarray:
    """For every start index s, the completion time of kernels s..n dispatched by the host one by one.

    Kernel j is dispatched at H_j (the host time of kernels s..j) and runs when the GPU is free; the
    sequence finishes at max over j >= s of (H_j + GPU time of kernels j..n). Returns an array of n + 1
    values (the last, the empty suffix, is 0).
    """
    n = len(host_s)
    out = np.zeros(n + 1)
    if n == 0:
        return out
    host_cum = np.cumsum(host_s)  # H_j from the start of the whole sequence
    gpu_suffix = np.cumsum(gpu_s[::-1])[::-1]  # GPU time of kernels j..n
    best_from = np.maximum.accumulate((host_cum + gpu_suffix)[::-1])[::-1]  # max over j >= s
    host_before = np.concatenate(([0.0], host_cum[:-1]))
    out[:n] = best_from - host_before
    return out


class GPU(Accelerator):
    """A GPU from datasheet peaks (and measured ceilings where known), calibrated overheads and a mode."""

    kind = "gpu"
    fixed_precisions = True

    def __init__(self, *, name: str, sm_count: int, clock_hz: float, memory_bandwidth_bps: float,
                 peak_flops: Mapping[str, float], measured_flops: Mapping[str, float] | None = None,
                 measured_bandwidth_bps: float | None = None, execution: str = "graph",
                 fuse_epilogues: bool = True, board_power_w: float = 300.0, idle_power_w: float = 50.0,
                 h2d_latency_s: float = 5e-6, h2d_bandwidth_bps: float = 25e9,
                 h2d_table: Sequence[tuple[float, float]] | None = None,
                 supported_bits: Sequence[int] = (8, 16, 32), memory_bytes: float | None = None,
                 calibration: Calibration | None = None,
                 achievable_fraction: Mapping[str, float] | None = None, unified_memory: bool = False) -> None:
        if execution not in EXECUTION_MODES:
            raise UserError(f"execution: expected one of {', '.join(EXECUTION_MODES)}, got {execution!r}")
        default_cal, default_fraction = default_calibration()
        self.name = name
        self.sm_count = int(sm_count)
        self.clock_hz = float(clock_hz)
        self.peak_flops = dict(peak_flops)
        self.peak_bandwidth_bps = float(memory_bandwidth_bps)
        self.execution = execution
        self.fuse_epilogues = bool(fuse_epilogues)
        self.board_power_w = float(board_power_w)
        self.idle_power_w = float(idle_power_w)
        self.h2d_latency_s = float(h2d_latency_s)
        self.h2d_bandwidth_bps = float(h2d_bandwidth_bps)
        self.h2d_table = sorted((float(b), float(t)) for b, t in h2d_table) if h2d_table else None
        self.supported_bits = tuple(int(b) for b in supported_bits)
        self.memory_bytes = memory_bytes
        self.unified_memory = bool(unified_memory)
        self.calibration = calibration or default_cal
        # the serving mode (a TensorRT engine) has its own fitted constants; a preset's `calibration:`
        # overrides apply to both modes
        self.serving_calibration = merge_calibration(self.calibration, serving_overrides(),
                                                     f"{CALIBRATION_PATH}: serving.calibration")
        fraction = dict(default_fraction)
        fraction.update(achievable_fraction or {})
        measured_flops = dict(measured_flops or {})
        # achievable ceilings: measured where known, else the datasheet peak x the fraction the H200 reached
        self.achievable_flops: dict[str, float] = {}
        for math_kind, peak in self.peak_flops.items():
            if peak is None:
                continue
            share = fraction.get(math_kind, fraction.get("fp16", 1.0))
            self.achievable_flops[math_kind] = measured_flops.get(math_kind, peak * share)
        self.achievable_bandwidth_bps = measured_bandwidth_bps or self.peak_bandwidth_bps * fraction["bandwidth"]
        self.rates_evidence = ("Rates: measured ceilings." if measured_flops else
                               "Rates: datasheet peaks x the fitted efficiencies (no measurements of this GPU).")

    @property
    def fusion(self) -> str:
        """`serving` (a TensorRT-like engine: one kernel per layer, epilogues fused, constants fitted on
        published TensorRT results) or `framework` (PyTorch's kernels, fitted on the H200 profile)."""
        return "serving" if self.fuse_epilogues else "framework"

    def with_mode(self, execution: str | None = None, fusion: str | None = None, where: str = "") -> GPU:
        """A copy of this GPU run in another execution mode (graph|eager) and fusion (serving|framework).

        A serving engine runs as one captured graph: `eager` with `serving` is refused."""
        prefix = f"{where}: " if where else ""
        if execution is not None and execution not in EXECUTION_MODES:
            raise UserError(f"{prefix}execution: expected one of {', '.join(EXECUTION_MODES)}, got {execution!r}"
                            f"{suggest(str(execution), EXECUTION_MODES)}")
        if fusion is not None and fusion not in FUSION_MODES:
            raise UserError(f"{prefix}fusion: expected one of {', '.join(FUSION_MODES)}, got {fusion!r}"
                            f"{suggest(str(fusion), FUSION_MODES)}")
        out = copy.copy(self)
        if fusion is not None:
            out.fuse_epilogues = fusion == "serving"
        if execution is not None:
            out.execution = execution
            if execution == "eager" and fusion is None:
                out.fuse_epilogues = False  # eager means PyTorch's own kernels
        if out.execution == "eager" and out.fuse_epilogues:
            raise UserError(f"{prefix}execution eager with fusion serving: a serving engine (TensorRT) runs as "
                            f"one graph; use execution graph, or fusion framework for PyTorch eager")
        return out

    def mode(self) -> dict[str, str]:
        return {"execution": self.execution, "fusion": self.fusion}

    @property
    def default_bits(self) -> int:
        """16: the cloud's half precision (DESIGN's CLOUD16)."""
        return 16

    def evidence(self) -> str:
        """What validates this GPU's mode, with the error measured, and how the GPU's rates were derived."""
        text = mode_evidence().get(self.fusion, "no validation recorded")
        parts = (f"{self.mode_label()}: {text}", self.rates_evidence, self.preset_evidence)
        return " ".join(part for part in parts if part)

    # --- construction from a preset -------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Mapping[str, Any], source: str) -> GPU:
        """A GPU from a preset mapping (without `kind`); a UserError names `source` and the bad key."""
        preset = validate_preset(GpuPreset, config, source)
        fuse = True if preset.fuse_epilogues is None else preset.fuse_epilogues
        if preset.fusion is not None:
            fuse = preset.fusion == "serving"
        if preset.execution == "eager":
            fuse = False  # eager is PyTorch's own kernels (fuse_epilogues only applies to graph mode)
        h2d = preset.host_to_device or HostToDevice()
        table = [(point.bytes, point.time) for point in h2d.pinned] if h2d.pinned else None
        overrides = preset.calibration
        calibration = fraction = None
        if overrides is not None:
            calibration = merge_calibration(default_calibration()[0], overrides.constants(), f"{source}: calibration")
            fraction = overrides.achievable_fraction
        gpu = cls(name=preset.name or Path(source).stem, sm_count=preset.sm_count, clock_hz=preset.clock,
                  memory_bandwidth_bps=preset.memory_bandwidth, peak_flops=preset.peak_tflops.flops(),
                  measured_flops=preset.measured_tflops.flops() if preset.measured_tflops else None,
                  measured_bandwidth_bps=preset.measured_bandwidth, execution=preset.execution, fuse_epilogues=fuse,
                  board_power_w=preset.board_power_w,
                  idle_power_w=0.15 * preset.board_power_w if preset.idle_power_w is None else preset.idle_power_w,
                  h2d_latency_s=h2d.latency, h2d_bandwidth_bps=h2d.bandwidth, h2d_table=table,
                  supported_bits=preset.supported_bits, memory_bytes=preset.memory, calibration=calibration,
                  achievable_fraction=fraction, unified_memory=preset.unified_memory)
        gpu.preset_evidence = preset.evidence or ""
        if overrides is not None:
            # the preset's constants win over the serving mode's fitted ones too
            gpu.serving_calibration = merge_calibration(gpu.serving_calibration, overrides.constants(),
                                                        f"{source}: calibration")
        return gpu

    # --- kernels ------------------------------------------------------------------------------------------
    def kernel_table(self, layers: Sequence[LayerSpec], precisions: Sequence[str],
                     fuse: bool | None = None) -> KernelTable:
        """The kernels launched for `layers` at `precisions`, as a serving engine (`fuse`, by default the
        preset's `fuse_epilogues`) or a framework launches them (see hardware_models/gpu_kernels.py)."""
        return kernel_table(layers, precisions, fuse=self.fuse_epilogues if fuse is None else fuse,
                            sm_count=self.sm_count, achievable_flops=self.achievable_flops,
                            peak_flops=self.peak_flops)

    def sequence_time(self, table: KernelTable, execution: str | None = None,
                      calibration: Calibration | None = None) -> SequenceTime:
        """Per-kernel times of `table` run in `execution` mode (the preset's by default)."""
        execution = execution or self.execution
        cal = calibration or (self.serving_calibration if table.serving else self.calibration)
        efficiency = cal.efficiency_vector()[table.efficiency_code]
        compute = np.where(table.flops > 0, table.flops / np.maximum(table.rate_flops * efficiency, 1e-30), 0.0)
        memory = table.bytes / (self.achievable_bandwidth_bps * cal.bandwidth_vector()[table.class_code])
        fixed = cal.fixed_vector()[table.class_code]
        if execution == "graph":
            return SequenceTime(compute, memory, fixed, np.zeros(len(fixed)), cal.graph_launch_s)
        host = cal.host_vector(table)
        fixed = fixed + cal.eager_gap_s * (cal.fixed_vector()[table.class_code] > 0)
        gpu = np.maximum(compute, memory) + fixed
        # GPU timeline: kernel j starts at max(dispatched, previous done); the gap is host wait
        dispatched = np.cumsum(host)
        wait = np.zeros(len(gpu))
        free = 0.0
        for j in range(len(gpu)):
            start = max(dispatched[j], free)
            wait[j] = start - free
            free = start + gpu[j]
        return SequenceTime(compute, memory, fixed, wait, 0.0)

    # --- the Accelerator interface --------------------------------------------------------------------
    def layer_cost(self, layer: LayerSpec, weight_bits: int = 16, activation_bits: int = 16,
                   batch: int = 1) -> LayerCost:
        """One layer alone (its kernels back to back in the preset's mode, no graph launch)."""
        rows, _ = self.network_cost([layer], weight_bits, activation_bits, batch, include_launch=False)
        return rows[0]

    def network_cost(self, layers: Sequence[LayerSpec], weight_bits: int | Sequence[int] = 16,
                     activation_bits: int | Sequence[int] = 16, batch: int = 1, *,
                     execution: str | None = None, include_launch: bool = True) -> tuple[list[LayerCost], LayerCost]:
        """Per-layer rows and the whole sequence's cost, run as one piece in `execution` mode.

        Each layer's `op` tells kernel classes apart where its kind cannot, and its `fused_ops` (the ops
        folded or fused into it) are launched as separate kernels in eager mode (and in graph mode without
        `fuse_epilogues`). A row's latency is its kernels' busy and fixed time plus, in eager mode, the GPU's
        wait for the host before them, so the rows add up to the total except the graph launch. `batch` > 1
        replaces the layers' batch. Energy and latency are for the whole batch; divide by it for one inference.
        """
        execution = execution or self.execution
        if execution not in EXECUTION_MODES:
            raise UserError(f"execution: expected one of {', '.join(EXECUTION_MODES)}, got {execution!r}")
        n = len(layers)
        if n == 0:
            return [], LayerCost("total", 0.0, 0.0, 0.0, 0.0, 0.0)
        if batch != 1:
            layers = [replace(layer, batch=batch) for layer in layers]
        wbits = [weight_bits] * n if isinstance(weight_bits, int) else list(weight_bits)
        abits = [activation_bits] * n if isinstance(activation_bits, int) else list(activation_bits)
        precisions = [precision_of(w, a) for w, a in zip(wbits, abits)]
        fuse = self.fuse_epilogues and execution == "graph"
        table = self.kernel_table(layers, precisions, fuse=fuse)
        times = self.sequence_time(table, execution)
        launch = times.launch_s if include_launch else 0.0
        rows = self._rows(layers, table, times)
        total = sum_costs(rows, "total")
        idle_energy = self.idle_power_w * launch
        total = replace(total, latency_s=total.latency_s + launch, overhead_s=total.overhead_s + launch,
                        overhead_cycles=total.overhead_cycles + launch * self.clock_hz,
                        energy_j=total.energy_j + idle_energy,
                        parts={**total.parts, "overhead_s": total.parts.get("overhead_s", 0.0) + launch})
        return rows, total

    def _rows(self, layers: Sequence[LayerSpec], table: KernelTable, times: SequenceTime) -> list[LayerCost]:
        busy = times.busy_s
        compute = np.minimum(times.compute_s, busy)
        stall = busy - compute
        overhead = times.fixed_s + times.host_wait_s
        # utilisation of the limiting resource while busy, for energy
        peak_compute = np.where(table.flops > 0, table.flops / np.maximum(table.peak_flops, 1.0), 0.0)
        peak_memory = table.bytes / self.peak_bandwidth_bps
        active = np.minimum(np.maximum(peak_compute, peak_memory), busy)
        dynamic_w = self.board_power_w - self.idle_power_w
        rows = []
        for i, layer in enumerate(layers):
            sel = table.layer == i
            c, s, o = float(compute[sel].sum()), float(stall[sel].sum()), float(overhead[sel].sum())
            latency = c + s + o
            dynamic = dynamic_w * float(active[sel].sum())
            idle = self.idle_power_w * latency
            dram = float(table.bytes[sel].sum())
            rows.append(LayerCost(
                name=layer.name, compute_cycles=c * self.clock_hz, stall_cycles=s * self.clock_hz,
                latency_s=latency, energy_j=idle + dynamic, dram_bytes=dram, overhead_s=o,
                overhead_cycles=o * self.clock_hz,
                energy_parts_j={"idle": idle, "dynamic": dynamic},
                parts={"compute_s": c, "memory_s": s, "overhead_s": o, "kernels": float(sel.sum())},
            ))
        return rows

    def energy_per_inference_j(self, layers: Sequence[LayerSpec], weight_bits: int | Sequence[int] = 16,
                               activation_bits: int | Sequence[int] = 16, batch: int = 1, *,
                               execution: str | None = None) -> float:
        """Board energy of one inference when `batch` of them run together (see the module docstring)."""
        _, total = self.network_cost(layers, weight_bits, activation_bits, batch, execution=execution)
        return total.energy_j / batch

    def suffix_cost(self, layers: Sequence[LayerSpec], cut_index: int, weight_bits: int | Sequence[int] = 16,
                    activation_bits: int | Sequence[int] = 16, batch: int = 1, *,
                    execution: str | None = None) -> tuple[list[LayerCost], LayerCost]:
        """The cloud side of a split after `cut_index` layers: layers[cut_index:] run as one sequence."""
        if not 0 <= cut_index <= len(layers):
            raise ValueError(f"cut_index {cut_index} outside 0..{len(layers)}")
        if cut_index == len(layers):
            return [], LayerCost("total", 0.0, 0.0, 0.0, 0.0, 0.0)
        tail = slice(cut_index, None)
        wbits = weight_bits if isinstance(weight_bits, int) else list(weight_bits)[tail]
        abits = activation_bits if isinstance(activation_bits, int) else list(activation_bits)[tail]
        return self.network_cost(list(layers)[tail], wbits, abits, batch, execution=execution)

    def copy_to_device_s(self, payload_bytes: float) -> float:
        """Host-to-device copy of `payload_bytes` from pinned memory: the measured table (interpolated,
        extrapolated with its last segment's bandwidth) where the preset has one, else latency + bytes/bw;
        0 for a GPU with unified memory (a Jetson reads what the CPU received where it lies)."""
        if payload_bytes <= 0 or self.unified_memory:
            return 0.0
        if self.h2d_table:
            sizes = np.array([b for b, _ in self.h2d_table])
            times = np.array([t for _, t in self.h2d_table])
            if payload_bytes <= sizes[0]:
                return float(times[0])
            if payload_bytes >= sizes[-1]:
                slope = (times[-1] - times[-2]) / (sizes[-1] - sizes[-2])
                return float(times[-1] + (payload_bytes - sizes[-1]) * slope)
            return float(np.interp(payload_bytes, sizes, times))
        return self.h2d_latency_s + payload_bytes / self.h2d_bandwidth_bps

    def suffix_latency_s(self, layers: Sequence[LayerSpec], cut_index: int, received_bytes: float | None = None,
                         weight_bits: int | Sequence[int] = 16, activation_bits: int | Sequence[int] = 16,
                         batch: int = 1, *, execution: str | None = None) -> float:
        """Cloud latency of a split: copy of the received tensors to the GPU + the suffix as a whole.

        `received_bytes` is the payload crossing the cut; by default the input of layers[cut_index] at the
        cloud's activation precision (exact for a chain, an under-estimate where skip tensors also cross).
        """
        if cut_index >= len(layers):
            return 0.0
        if received_bytes is None:
            abits = activation_bits if isinstance(activation_bits, int) else list(activation_bits)[cut_index]
            wbits = weight_bits if isinstance(weight_bits, int) else list(weight_bits)[cut_index]
            element = BYTES_PER_ELEMENT[precision_of(wbits, abits)]
            first = layers[cut_index]
            received_bytes = first.input_elements * element * (batch if batch != 1 else 1)
        _, total = self.suffix_cost(layers, cut_index, weight_bits, activation_bits, batch, execution=execution)
        return self.copy_to_device_s(received_bytes) + total.latency_s

