"""A cloud GPU running a network (or the suffix of a split) as one sequence of kernels.

Each layer becomes the kernels launched for it. A serving engine (`execution: graph` with
`fuse_epilogues`, the presets' default: TensorRT-like) launches one kernel per layer, batchnorms,
activations and residual adds riding in its epilogue. A framework (`execution: eager`, or `graph` without
`fuse_epilogues`: a CUDA graph captured from PyTorch) launches one more kernel per op folded or fused into
the layer, and cuDNN's NCHW<->NHWC transposes around half-precision and int8 convolutions. Each kernel takes

    gpu_s = fixed_s(kernel class) + max(flops / (rate x efficiency x utilisation), bytes / bandwidth)

where `rate` is the achievable rate of the arithmetic (fp32 convolutions run TF32 on GPUs that have it,
as cuDNN does by default; fp32 matmuls run strict fp32; depthwise convolutions and matrix-vector products
run on CUDA cores) and `utilisation` the share of the GPU the kernel's thread blocks keep busy: 128x128
output tiles (the reduction split at most SPLIT_K_MAX ways when there are fewer tiles than SMs) quantised
into waves over the SMs, times the padding of a short reduction (few input channels) to the MMA step.
A block runs its reduction serially, so a batch-1 layer with few tiles and a long reduction is slow.

How the kernels follow each other depends on the execution mode:

- `graph`: back to back, each costing its fixed part plus its busy time, after one graph launch.
- `eager`: the host dispatches one op after another: a per-class dispatch time (an op timed alone), one
  launch per library-internal kernel (the transposes), and, read from the layer's module path
  (`LayerSpec.name`), one module call per container that opens at the layer plus the framework's time per
  op inside a block (ops of a top-level stage or of a flat top-level Sequential pay none). The GPU starts
  a kernel, after a launch gap, when it has been dispatched and the previous one is done. The sequence
  takes max over j of (host time to dispatch kernels ..j + GPU time of kernels j..), the completion time
  of a two-stage pipeline.

The free constants are fitted on a measured H200 profile: hardware_models/gpu_calibration.yaml, written by
benchmarks/calibrate_gpu.py with hardware_models/gpu_fit.py. GPUs without measurements reach the share of
their datasheet peaks that the H200 reached.

Energy per inference assumes the board draws `idle_power_w` for the whole latency plus
(`board_power_w` - `idle_power_w`) x u while a kernel is busy, u being the kernel's fraction of the peak of
its limiting resource (flops / peak rate or bytes / peak bandwidth over its busy time): board power is
linear in utilisation between idle and the board power limit. Divided by the batch.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml

from hardware_models.base import Accelerator, LayerCost, sum_costs
from hardware_models.errors import UserError, check_keys, suggest
from hardware_models.layer import LayerSpec
from hardware_models.units import BYTE_UNITS, parse_bytes, parse_frequency, parse_time, positive

CALIBRATION_PATH = Path(__file__).parent / "gpu_calibration.yaml"

EXECUTION_MODES = ("graph", "eager")
PRECISIONS = ("fp32", "fp16", "int8")
BYTES_PER_ELEMENT = {"fp32": 4, "fp16": 2, "int8": 1}
# kernel classes: what a framework launches; host dispatch and fixed GPU time are per class
KERNEL_CLASSES = ("conv", "pwconv", "dwconv", "gemm", "batchnorm", "eltwise", "pool", "view", "copy", "transpose")
# launched by a library inside another op's call: no framework dispatch of their own
NO_DISPATCH_CLASSES = ("transpose",)
MAC_CLASSES = ("conv", "pwconv", "dwconv", "gemm")
VIEW_OPS = ("flatten", "reshape", "identity", "dropout")
COPY_OPS = ("concat", "transpose", "slice", "pad")
TILES = ((128, 128),)  # output tiles (rows x columns) a GEMM or convolution kernel may use
SPLIT_K_MIN = 256  # a split-K slice keeps at least this many reduction elements
SPLIT_K_MAX = 4  # and the reduction is split at most this many ways
# a serving engine (TensorRT) times several tactics per layer when it builds the engine and keeps the best:
# narrower tiles for layers with few output channels, deeper split-K for batch-1 layers with few tiles
SERVING_TILES = ((256, 128), (128, 128), (128, 64), (64, 64))
SERVING_SPLIT_K_MAX = 16
FUSION_MODES = ("serving", "framework")
MMA_K_STEP = {"tf32": 8, "fp16": 16, "int8": 32, "fp32": 1}
GEMV_MAX_ROWS = 16  # a GEMM with fewer rows (or columns) than this runs as a matrix-vector kernel
EFFICIENCY_KEYS = ("none", "simt", "gemm", "tf32", "fp16", "int8", "gemv")

_RATE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z]*)/s\s*$")


def precision_of(weight_bits: int, activation_bits: int) -> str:
    """32 bits -> fp32 (TF32 convolutions), 16 -> fp16, 8 or fewer -> int8 (the wider of the two decides)."""
    bits = max(int(weight_bits), int(activation_bits))
    if bits > 16:
        return "fp32"
    if bits > 8:
        return "fp16"
    return "int8"


def parse_bandwidth(value: object, key: str) -> float:
    """'4.8TB/s' -> 4.8e12 bytes per second; a bare number is already in bytes per second."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _RATE.match(str(value))
    if not match or match.group(2) not in BYTE_UNITS:
        raise UserError(f"{key}: expected a bandwidth in bytes per second such as '4.8TB/s', got {value!r}")
    return float(match.group(1)) * BYTE_UNITS[match.group(2)]


@dataclass(frozen=True)
class Calibration:
    """The model's fitted constants (SI units). Efficiencies are fractions of the achievable ceilings."""

    tensor_efficiency: Mapping[str, float]  # per tensor-core math ("tf32", "fp16", "int8") for convolutions
    gemm_efficiency: float  # matmuls (cuBLAS), and strict fp32 convolutions (GPUs without TF32)
    simt_efficiency: float  # depthwise convolutions on CUDA cores
    bandwidth_efficiency: float  # element-wise, pooling and copy kernels
    mac_bandwidth_efficiency: float  # convolutions and matmuls streaming their operands
    fixed_s: Mapping[str, float]  # GPU time of a kernel beyond its busy time, per kernel class
    host_dispatch_s: Mapping[str, Mapping[str, float]]  # eager: per precision, per kernel class
    host_extra_s: float  # eager: framework time per op inside a block, beyond its dispatch timed alone
    eager_gap_s: float  # eager: GPU-side gap before each kernel that graph replay removes (launch latency)
    host_container_s: float  # eager: one call of a container module (a block, a Sequential)
    host_launch_s: float  # eager: host time to launch a library-internal kernel (a cuDNN transpose)
    graph_launch_s: float  # graph: one launch of the captured graph

    @classmethod
    def from_mapping(cls, data: Mapping, source: str) -> "Calibration":
        try:
            host = {p: {k: float(v) for k, v in d.items()} for p, d in data["host_dispatch_s"].items()}
            return cls(
                tensor_efficiency={k: float(v) for k, v in data["tensor_efficiency"].items()},
                gemm_efficiency=float(data["gemm_efficiency"]),
                simt_efficiency=float(data["simt_efficiency"]),
                bandwidth_efficiency=float(data["bandwidth_efficiency"]),
                mac_bandwidth_efficiency=float(data["mac_bandwidth_efficiency"]),
                fixed_s={k: float(v) for k, v in data["fixed_s"].items()},
                host_dispatch_s=host,
                host_extra_s=float(data["host_extra_s"]),
                eager_gap_s=float(data.get("eager_gap_s", 0.0)),
                host_container_s=float(data.get("host_container_s", 0.0)),
                host_launch_s=float(data.get("host_launch_s", 0.0)),
                graph_launch_s=float(data["graph_launch_s"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UserError(f"{source}: calibration: missing or bad value ({exc})") from None

    def as_mapping(self) -> dict:
        return {
            "tensor_efficiency": dict(self.tensor_efficiency),
            "gemm_efficiency": self.gemm_efficiency,
            "simt_efficiency": self.simt_efficiency,
            "bandwidth_efficiency": self.bandwidth_efficiency,
            "mac_bandwidth_efficiency": self.mac_bandwidth_efficiency,
            "fixed_s": dict(self.fixed_s),
            "host_dispatch_s": {p: dict(d) for p, d in self.host_dispatch_s.items()},
            "host_extra_s": self.host_extra_s,
            "eager_gap_s": self.eager_gap_s,
            "host_container_s": self.host_container_s,
            "host_launch_s": self.host_launch_s,
            "graph_launch_s": self.graph_launch_s,
        }

    def efficiency_vector(self) -> np.ndarray:
        """Efficiencies in EFFICIENCY_KEYS order."""
        tensor = self.tensor_efficiency
        return np.array([1.0, self.simt_efficiency, self.gemm_efficiency, tensor.get("tf32", 1.0),
                         tensor.get("fp16", 1.0), tensor.get("int8", tensor.get("fp16", 1.0)), 1.0])

    def bandwidth_vector(self) -> np.ndarray:
        """Bandwidth efficiency per kernel in KERNEL_CLASSES order: streaming layers vs element-wise ones."""
        return np.array([self.mac_bandwidth_efficiency if c in MAC_CLASSES else self.bandwidth_efficiency
                         for c in KERNEL_CLASSES])

    def fixed_vector(self) -> np.ndarray:
        """Fixed GPU time per kernel in KERNEL_CLASSES order (a view launches no kernel)."""
        return np.array([0.0 if c == "view" else self.fixed_s.get(c, 0.0) for c in KERNEL_CLASSES])

    def host_extra_vector(self) -> np.ndarray:
        """Framework time per op outside the op, in KERNEL_CLASSES order (none for library-internal kernels)."""
        return np.array([0.0 if c in NO_DISPATCH_CLASSES else self.host_extra_s for c in KERNEL_CLASSES])

    def host_vector(self, table: "KernelTable") -> np.ndarray:
        """Eager host time before each kernel: its op's dispatch, the framework's time per op, and one
        module call per container (a Python nn.Module) that opens at it."""
        containers = table.containers if table.containers is not None else 0.0
        nested = table.nested if table.nested is not None else 1.0
        return (self.host_matrix()[table.precision_code, table.class_code]
                + self.host_extra_vector()[table.class_code] * nested + self.host_container_s * containers)

    def host_matrix(self) -> np.ndarray:
        """Host dispatch time, [precision, kernel class] in PRECISIONS x KERNEL_CLASSES order."""
        return np.array([[self.host(p, c) for c in KERNEL_CLASSES] for p in PRECISIONS])

    def host(self, precision: str, kernel_class: str) -> float:
        """Eager dispatch time of one op of `kernel_class` (a related class's where none was measured)."""
        if kernel_class in NO_DISPATCH_CLASSES:
            return self.host_launch_s
        table = self.host_dispatch_s.get(precision) or self.host_dispatch_s.get("fp16") or {}
        if kernel_class in table:
            return table[kernel_class]
        fallback = {"dwconv": "conv", "pwconv": "conv", "copy": "eltwise", "batchnorm": "eltwise",
                    "pool": "eltwise", "gemm": "conv", "view": "eltwise"}
        return table.get(fallback.get(kernel_class, "eltwise"), 0.0)


def default_calibration() -> tuple[Calibration, dict]:
    """The fitted constants shipped with the package, and the ceiling fractions measured on the H200."""
    data = yaml.safe_load(CALIBRATION_PATH.read_text())
    return Calibration.from_mapping(data["calibration"], str(CALIBRATION_PATH)), data["achievable_fraction"]


def serving_overrides() -> dict:
    """The serving mode's constants (fitted on published TensorRT results), as overrides of the framework
    calibration; {} where the file has none."""
    data = yaml.safe_load(CALIBRATION_PATH.read_text())
    return dict((data.get("serving") or {}).get("calibration") or {})


def mode_evidence() -> dict[str, str]:
    """What validates each fusion mode, with the error measured (from gpu_calibration.yaml)."""
    data = yaml.safe_load(CALIBRATION_PATH.read_text())
    return {mode: " ".join(str(text).split()) for mode, text in (data.get("evidence") or {}).items()}


def merge_calibration(base: Calibration, overrides: Mapping, source: str) -> Calibration:
    """`base` with the constants in `overrides` replaced (mappings merged key by key)."""
    merged = base.as_mapping()
    for key, value in overrides.items():
        if key not in merged:
            raise UserError(f"{source}: unknown key {key!r}{suggest(key, merged)}; expected one of {', '.join(merged)}")
        merged[key] = {**merged[key], **value} if isinstance(merged[key], dict) else value
    return Calibration.from_mapping(merged, source)


@dataclass
class KernelTable:
    """The kernels of a layer sequence, as parallel arrays (one entry per kernel)."""

    layer: np.ndarray  # index of the layer the kernel belongs to
    kernel_class: list[str]
    precision: list[str]
    flops: np.ndarray
    bytes: np.ndarray
    rate_flops: np.ndarray  # achievable rate x utilisation (efficiency applied later), FLOP/s
    math: list[str]  # "tf32", "fp16", "int8", "fp32" (tensor-core or strict), "simt", "none"
    peak_flops: np.ndarray  # datasheet peak of the kernel's math, for energy
    count_layers: int = 0
    serving: bool = False  # built for a serving engine (fused epilogues): its calibration applies
    containers: np.ndarray | None = None  # module containers whose call starts at this kernel (eager)
    nested: np.ndarray | None = None  # 1 where the kernel's module sits inside a block, not a top-level stage

    def __post_init__(self) -> None:
        # integer codes, so that evaluating many calibrations (a fit) is a few numpy gathers
        self.class_code = np.array([KERNEL_CLASSES.index(c) for c in self.kernel_class], dtype=int)
        self.precision_code = np.array([PRECISIONS.index(p) for p in self.precision], dtype=int)
        self.efficiency_code = np.array([EFFICIENCY_KEYS.index(_efficiency_key(m, c))
                                         for m, c in zip(self.math, self.kernel_class)], dtype=int)


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

    CONFIG_KEYS = (
        "name", "source", "sources", "sm_count", "clock", "memory", "memory_bandwidth", "measured_bandwidth",
        "peak_tflops", "measured_tflops", "execution", "fuse_epilogues", "board_power_w", "idle_power_w",
        "host_to_device", "supported_bits", "calibration", "notes", "fusion", "evidence",
    )

    def __init__(self, *, name: str, sm_count: int, clock_hz: float, memory_bandwidth_bps: float,
                 peak_flops: Mapping[str, float], measured_flops: Mapping[str, float] | None = None,
                 measured_bandwidth_bps: float | None = None, execution: str = "graph",
                 fuse_epilogues: bool = True, board_power_w: float = 300.0, idle_power_w: float = 50.0,
                 h2d_latency_s: float = 5e-6, h2d_bandwidth_bps: float = 25e9,
                 h2d_table: Sequence[tuple[float, float]] | None = None,
                 supported_bits: Sequence[int] = (8, 16, 32), memory_bytes: float | None = None,
                 calibration: Calibration | None = None,
                 achievable_fraction: Mapping[str, float] | None = None) -> None:
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

    def with_mode(self, execution: str | None = None, fusion: str | None = None, where: str = "") -> "GPU":
        """A copy of this GPU run in another execution mode (graph|eager) and fusion (serving|framework).

        A serving engine runs as one captured graph: `eager` with `serving` is refused."""
        import copy

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
    def from_config(cls, config: dict, source: str) -> "GPU":
        check_keys(config, cls.CONFIG_KEYS, source, ("sm_count", "clock", "memory_bandwidth", "peak_tflops"),
                   kind="gpu preset")

        def where(key: str) -> str:
            return f"{source}: {key}"

        sm_count = config["sm_count"]
        if not isinstance(sm_count, int) or isinstance(sm_count, bool) or sm_count < 1:
            raise UserError(f"{where('sm_count')}: expected a positive integer, got {sm_count!r}")
        clock_hz = positive(parse_frequency(config["clock"], where("clock")), where("clock"))
        bandwidth = positive(parse_bandwidth(config["memory_bandwidth"], where("memory_bandwidth")),
                             where("memory_bandwidth"))
        measured_bw = None
        if config.get("measured_bandwidth") is not None:
            measured_bw = positive(parse_bandwidth(config["measured_bandwidth"], where("measured_bandwidth")),
                                   where("measured_bandwidth"))
        peak = cls._flops_mapping(config["peak_tflops"], where("peak_tflops"), allow_null=True)
        if not peak.get("fp32") or not peak.get("fp16"):
            raise UserError(f"{where('peak_tflops')}: fp32 and fp16 are required")
        measured = cls._flops_mapping(config.get("measured_tflops") or {}, where("measured_tflops"))
        execution = config.get("execution", "graph")
        if execution not in EXECUTION_MODES:
            raise UserError(f"{where('execution')}: expected one of {', '.join(EXECUTION_MODES)}, "
                            f"got {execution!r}{suggest(str(execution), EXECUTION_MODES)}")
        fuse = config.get("fuse_epilogues", True)
        if not isinstance(fuse, bool):
            raise UserError(f"{where('fuse_epilogues')}: expected true or false, got {fuse!r}")
        if "fusion" in config:
            fusion = config["fusion"]
            if fusion not in FUSION_MODES:
                raise UserError(f"{where('fusion')}: expected one of {', '.join(FUSION_MODES)}, got {fusion!r}"
                                f"{suggest(str(fusion), FUSION_MODES)}")
            if "fuse_epilogues" in config and fuse != (fusion == "serving"):
                raise UserError(f"{where('fusion')}: {fusion} contradicts fuse_epilogues: {fuse}; give one of them")
            fuse = fusion == "serving"
        if execution == "eager" and config.get("fusion") == "serving":
            raise UserError(f"{where('execution')}: eager with fusion serving: a serving engine runs as one graph; "
                            f"use execution: graph, or fusion: framework")
        if execution == "eager":
            fuse = False  # eager is PyTorch's own kernels (fuse_epilogues only applies to graph mode)
        evidence = config.get("evidence", "")
        if not isinstance(evidence, str):
            raise UserError(f"{where('evidence')}: expected a sentence saying what the preset was checked against")
        board = cls._watts(config.get("board_power_w", 300.0), where("board_power_w"))
        idle = cls._watts(config.get("idle_power_w", 0.15 * board), where("idle_power_w"))
        if idle > board:
            raise UserError(f"{where('idle_power_w')}: {idle:g} W exceeds board_power_w {board:g} W")
        h2d = config.get("host_to_device") or {}
        if not isinstance(h2d, dict):
            raise UserError(f"{where('host_to_device')}: expected a mapping (latency, bandwidth, pinned)")
        bad = [k for k in h2d if k not in ("latency", "bandwidth", "pinned", "source")]
        if bad:
            raise UserError(f"{where('host_to_device.' + bad[0])}: unknown key; expected latency, bandwidth, "
                            f"pinned, source")
        h2d_latency = parse_time(h2d.get("latency", "5us"), where("host_to_device.latency"))
        h2d_bandwidth = positive(parse_bandwidth(h2d.get("bandwidth", "25GB/s"), where("host_to_device.bandwidth")),
                                 where("host_to_device.bandwidth"))
        table = None
        if h2d.get("pinned"):
            table = []
            for i, point in enumerate(h2d["pinned"]):
                key = where(f"host_to_device.pinned[{i}]")
                if not isinstance(point, dict) or set(point) != {"bytes", "time"}:
                    raise UserError(f"{key}: expected {{bytes: SIZE, time: DURATION}}, got {point!r}")
                table.append((positive(parse_bytes(point["bytes"], key + ".bytes"), key + ".bytes"),
                              positive(parse_time(point["time"], key + ".time"), key + ".time")))
        bits = config.get("supported_bits", [8, 16, 32])
        if not isinstance(bits, list) or not bits or any(b not in (8, 16, 32) for b in bits):
            raise UserError(f"{where('supported_bits')}: expected a list drawn from 8, 16, 32, got {bits!r}")
        memory = None
        if config.get("memory") is not None:
            memory = positive(parse_bytes(config["memory"], where("memory")), where("memory"))
        calibration = None
        fraction = None
        if config.get("calibration") is not None:
            override = config["calibration"]
            if not isinstance(override, dict):
                raise UserError(f"{where('calibration')}: expected a mapping of fitted constants")
            base, _ = default_calibration()
            merged = base.as_mapping()
            for key, value in override.items():
                if key == "achievable_fraction":
                    if not isinstance(value, dict):
                        raise UserError(f"{where('calibration.achievable_fraction')}: expected a mapping of "
                                        f"math (fp32, tf32, fp16, int8, bandwidth) to a fraction")
                    fraction = {k: float(v) for k, v in value.items()}
                    continue
                if key not in merged:
                    raise UserError(f"{where('calibration.' + key)}: unknown key{suggest(key, merged)}; "
                                    f"expected one of {', '.join(merged)}")
                merged[key] = {**merged[key], **value} if isinstance(merged[key], dict) else value
            calibration = Calibration.from_mapping(merged, where("calibration"))
        gpu = cls(name=str(config.get("name", Path(source).stem)), sm_count=sm_count, clock_hz=clock_hz,
                   memory_bandwidth_bps=bandwidth, peak_flops=peak, measured_flops=measured,
                   measured_bandwidth_bps=measured_bw, execution=execution, fuse_epilogues=fuse,
                   board_power_w=board, idle_power_w=idle, h2d_latency_s=h2d_latency,
                   h2d_bandwidth_bps=h2d_bandwidth, h2d_table=table, supported_bits=bits, memory_bytes=memory,
                   calibration=calibration, achievable_fraction=fraction)._with_evidence(evidence)
        if config.get("calibration"):
            # the preset's constants win over the serving mode's fitted ones too
            own = {k: v for k, v in config["calibration"].items() if k != "achievable_fraction"}
            gpu.serving_calibration = merge_calibration(gpu.serving_calibration, own, where("calibration"))
        return gpu

    def _with_evidence(self, text: str) -> "GPU":
        self.preset_evidence = " ".join(text.split())
        return self

    @staticmethod
    def _flops_mapping(value: object, key: str, allow_null: bool = False) -> dict[str, float]:
        if not isinstance(value, dict):
            raise UserError(f"{key}: expected a mapping of math (fp32, tf32, fp16, int8) to TFLOP/s")
        out: dict[str, float] = {}
        for math_kind, tflops in value.items():
            if math_kind not in ("fp32", "tf32", "fp16", "int8"):
                raise UserError(f"{key}.{math_kind}: unknown math; expected fp32, tf32, fp16, int8")
            if tflops is None and allow_null:
                continue  # not supported by this GPU (no TF32 on Turing)
            if isinstance(tflops, bool) or not isinstance(tflops, (int, float)) or tflops <= 0:
                raise UserError(f"{key}.{math_kind}: expected a positive number of TFLOP/s, got {tflops!r}")
            out[math_kind] = float(tflops) * 1e12
        return out

    @staticmethod
    def _watts(value: object, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise UserError(f"{key}: expected a non-negative number of watts, got {value!r}")
        return float(value)

    # --- kernels ------------------------------------------------------------------------------------------
    def _math_of(self, kernel_class: str, precision: str, layer: LayerSpec | None = None) -> str:
        """Which arithmetic a kernel runs: cuDNN convs use TF32 for fp32 where the GPU has it, matmuls
        strict fp32; depthwise convolutions and matrix-vector products run on CUDA cores ("simt")."""
        if kernel_class not in MAC_CLASSES:
            return "none"
        if kernel_class == "dwconv" or (layer is not None and min(layer.gemm_m, layer.gemm_n) < GEMV_MAX_ROWS):
            return "simt"
        if kernel_class in ("conv", "pwconv") and precision == "fp32":
            return "tf32" if "tf32" in self.achievable_flops else "fp32"
        return precision if precision in self.achievable_flops else "fp16"

    def kernel_table(self, layers: Sequence[LayerSpec], precisions: Sequence[str],
                     fuse: bool | None = None) -> KernelTable:
        """The kernels launched for `layers`: with `fuse` (a serving engine) one per layer; without (a
        framework: eager PyTorch or a CUDA graph captured from it) one more per fused op, and NCHW<->NHWC
        transposes around half-precision and int8 convolutions."""
        fuse = self.fuse_epilogues if fuse is None else fuse
        index: list[int] = []
        classes: list[str] = []
        precs: list[str] = []
        flops: list[float] = []
        nbytes: list[float] = []
        rates: list[float] = []
        maths: list[str] = []
        peaks: list[float] = []
        for i, layer in enumerate(layers):
            precision = precisions[i]
            element = BYTES_PER_ELEMENT[precision]
            op = layer.op
            kernel_class = _kernel_class(layer, op)
            math_kind = self._math_of(kernel_class, precision, layer)
            f, b, util = _work(layer, kernel_class, element, self.sm_count, MMA_K_STEP.get(math_kind, 1),
                               serving=fuse)
            rate, peak = self._rate(math_kind)
            entries = [(kernel_class, f, b, rate * util, math_kind, peak)]
            if fuse and kernel_class == "eltwise" and op in ("add", "mul", "sub") and layer.num_inputs > 1:
                # a serving engine runs a residual add in the epilogue of the kernel that produces one of its
                # inputs: no kernel of its own, only the other inputs read by that epilogue
                other_bytes = (layer.num_inputs - 1) * layer.output_elements * element
                entries = [("view", 0.0, float(other_bytes), 1.0, "none", 1.0)]
            extra_ops = [_fused_class(o) for o in layer.fused_ops]
            if not fuse:
                out_bytes = layer.output_elements * element
                if kernel_class in ("conv", "pwconv") and math_kind in ("fp16", "int8"):
                    # framework tensors are NCHW, half-precision tensor-core kernels NHWC: cuDNN transposes
                    # the input and the output around the convolution (a serving engine keeps NHWC)
                    entries.insert(0, ("transpose", 0.0, 2.0 * layer.input_elements * element, 1.0, "none", 1.0))
                    entries.insert(2, ("transpose", 0.0, 2.0 * out_bytes, 1.0, "none", 1.0))
                for extra_class in extra_ops:
                    if extra_class == "view":
                        entries.append(("view", 0.0, 0.0, 1.0, "none", 1.0))
                    else:
                        reads = 2 if extra_class == "add" else 1
                        entries.append(("eltwise" if extra_class == "add" else extra_class, 0.0,
                                        (reads + 1) * out_bytes, 1.0, "none", 1.0))
            for kernel_class_, f_, b_, r_, m_, p_ in entries:
                index.append(i)
                classes.append(kernel_class_)
                precs.append(precision)
                flops.append(f_)
                nbytes.append(b_)
                rates.append(r_)
                maths.append(m_)
                peaks.append(p_)
        return KernelTable(np.array(index, dtype=int), classes, precs, np.array(flops, dtype=float),
                           np.array(nbytes, dtype=float), np.array(rates, dtype=float), maths,
                           np.array(peaks, dtype=float), len(layers), bool(fuse),
                           _containers_opened([layer.name for layer in layers], index),
                           _nested([layer.name for layer in layers], index))

    def _rate(self, math_kind: str) -> tuple[float, float]:
        """(achievable, datasheet peak) FLOP/s of an arithmetic; SIMT runs at the fp32 rate."""
        if math_kind == "none":
            return 1.0, 1.0
        key = "fp32" if math_kind == "simt" else math_kind
        return self.achievable_flops[key], self.peak_flops[key]

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
        extrapolated with its last segment's bandwidth) where the preset has one, else latency + bytes/bw."""
        if payload_bytes <= 0:
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


def _efficiency_key(math_kind: str, kernel_class: str) -> str:
    """Which fitted efficiency applies. Matrix-vector products (batch 1 matmuls) are bound by memory and take
    the CUDA-core peak as it is; strict fp32 convolutions (no TF32) count as dense CUDA-core work like sgemm."""
    if math_kind == "simt" and kernel_class != "dwconv":
        return "gemv"
    if math_kind in ("none", "simt"):
        return math_kind
    if kernel_class == "gemm" or math_kind == "fp32":
        return "gemm"
    return math_kind


def _containers_opened(names: Sequence[str], kernel_layer: Sequence[int]) -> np.ndarray:
    """Per kernel, how many module containers open at it in eager mode: a layer named by its module path
    (`layer1.0.conv1`) runs inside the containers `layer1` and `layer1.0`; each is called once, at the
    first layer of the sequence that lies inside it. Only the first kernel of a layer counts them."""
    seen: set[str] = set()
    per_layer = []
    for name in names:
        parts = str(name).split("#")[0].split(".")
        opened = 0
        for depth in range(1, len(parts)):
            prefix = ".".join(parts[:depth])
            if prefix not in seen:
                seen.add(prefix)
                opened += 1
        per_layer.append(opened)
    out = np.zeros(len(kernel_layer))
    done: set[int] = set()
    for k, layer in enumerate(kernel_layer):
        if layer not in done:
            done.add(layer)
            out[k] = per_layer[layer]
    return out


def _nested(names: Sequence[str], kernel_layer: Sequence[int]) -> np.ndarray:
    """Per kernel, 1 when its layer's module path puts it inside a block (`layer1.0.conv1`,
    `features.2.conv.0.0`), 0 for a top-level stage or a direct child of a top-level Sequential (`fc`,
    `features.0`, `classifier.3`)."""
    depth = np.array([str(name).split("#")[0].count(".") for name in names])
    return (depth[np.asarray(kernel_layer, dtype=int)] >= 2).astype(float) if len(names) else np.zeros(0)


def _kernel_class(layer: LayerSpec, op: str | None) -> str:
    if layer.kind == "conv":
        if layer.groups > 1 and layer.gemm_n <= 4 and layer.in_channels // layer.groups <= 4:
            return "dwconv"
        return "pwconv" if layer.kernel_height == layer.kernel_width == 1 else "conv"
    if layer.kind == "gemm":
        return "gemm"
    if layer.kind == "pool":
        return "pool"
    if layer.kind == "data":
        if op in COPY_OPS or (op is None and layer.num_inputs > 1):
            return "copy"
        return "view"
    if op == "batchnorm":
        return "batchnorm"
    return "eltwise"


def _fused_class(op: str) -> str:
    op = str(op)
    if op == "batchnorm":
        return "batchnorm"
    if op in VIEW_OPS:
        return "view"
    if op in ("add", "mul", "sub"):
        return "add"
    return "eltwise"


def _work(layer: LayerSpec, kernel_class: str, element_bytes: int, sm_count: int,
          k_step: int, serving: bool = False) -> tuple[float, float, float]:
    """(flops, bytes moved to and from memory, utilisation of the GPU) of a layer's own kernel."""
    in_bytes = layer.input_elements * element_bytes
    out_bytes = layer.output_elements * element_bytes
    if kernel_class in MAC_CLASSES:
        flops = 2.0 * layer.macs
        nbytes = in_bytes + out_bytes + layer.weight_elements * element_bytes
        if kernel_class == "dwconv":
            # a direct depthwise kernel (PyTorch's NCHW one) loads every output's kh x kw window with no
            # on-chip reuse: those loads, not the tensors' sizes, bound it
            window_loads = layer.output_elements * layer.kernel_height * layer.kernel_width * element_bytes
            return flops, window_loads + out_bytes + layer.weight_elements * element_bytes, 1.0
        if min(layer.gemm_m, layer.gemm_n) < GEMV_MAX_ROWS:
            return flops, nbytes, 1.0  # depthwise or matrix-vector: CUDA cores, bound by memory
        return flops, nbytes, _tile_utilisation(layer.gemm_m, layer.gemm_n, layer.gemm_k, layer.groups,
                                                sm_count, k_step, split_k=True, serving=serving)
    if kernel_class == "view":
        return 0.0, 0.0, 1.0
    if kernel_class == "batchnorm":
        return 0.0, in_bytes + out_bytes + 2 * layer.out_channels * element_bytes, 1.0
    return 0.0, in_bytes + out_bytes, 1.0  # eltwise, pool, copy: read the inputs once, write the output


def _tile_utilisation(m: int, n: int, k: int, groups: int, sm_count: int, k_step: int,
                      split_k: bool = False, serving: bool = False) -> float:
    """Share of the GPU's MMA throughput a GEMM of m x n x k (per group) keeps busy.

    One thread block per output tile per SM at a time, the tile being the one of TILES that serves this
    shape best. A block runs the reduction of its tile serially, so a layer with fewer tiles than SMs (small
    spatial size, batch 1) takes as long as its longest block: time = waves x tile work / per-SM rate. With
    `split_k` the reduction may be split over idle SMs, at most SPLIT_K_MAX ways and in slices of at least
    SPLIT_K_MIN elements (the H200 profile's deep batch-1 convolutions show that cuDNN splits little).
    Utilisation = useful work / (waves x SMs x tile work), times the padding of k to the MMA step.
    A serving engine (`serving`) chooses among SERVING_TILES and splits up to SERVING_SPLIT_K_MAX ways.
    """
    best = 0.0
    split_max = SERVING_SPLIT_K_MAX if serving else SPLIT_K_MAX
    for tile_m, tile_n in (SERVING_TILES if serving else TILES):
        tiles = math.ceil(m / tile_m) * math.ceil(n / tile_n) * groups
        split = 1
        if split_k and tiles < sm_count:
            split = max(1, min(sm_count // tiles, k // SPLIT_K_MIN, split_max))
        waves = math.ceil(tiles * split / sm_count)
        best = max(best, m * n * groups * split / (waves * sm_count * tile_m * tile_n))
    k_fill = k / (math.ceil(k / k_step) * k_step)
    return best * k_fill
