"""The GPU model's fitted constants: what they are, where they are stored, how a preset overrides them.

The constants are fitted on a measured H200 profile (framework mode: benchmarks/calibrate_gpu.py with
tools/gpu_fit.py) and on published TensorRT results (serving mode: benchmarks/calibrate_gpu_serving.py
with tools/gpu_serving_fit.py), and stored in hardware_models/gpu_calibration.yaml with the share
of its datasheet peaks the H200 reached (`achievable_fraction`) and what validates each mode (`evidence`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hardware_models.errors import UserError, suggest
from hardware_models.gpu_kernels import KERNEL_CLASSES, MAC_CLASSES, NO_DISPATCH_CLASSES, PRECISIONS, KernelTable
from hardware_models.preset import Fraction, NonNegativeNumber, PositiveNumber, StrictModel
from hardware_models.yaml_io import read_yaml

CALIBRATION_PATH = Path(__file__).parent / "gpu_calibration.yaml"


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
    def from_mapping(cls, data: Mapping[str, Any], source: str) -> Calibration:
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

    def as_mapping(self) -> dict[str, Any]:
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

    def host_vector(self, table: KernelTable) -> np.ndarray:
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


class CalibrationOverrides(StrictModel):
    """A GPU preset's `calibration:` section: constants that replace the shipped ones in both modes (mappings
    merged key by key), and `achievable_fraction`, the share of the datasheet peaks a GPU without
    measurements reaches (per math: fp32, tf32, fp16, int8, bandwidth)."""

    tensor_efficiency: dict[str, PositiveNumber] | None = None
    gemm_efficiency: PositiveNumber | None = None
    simt_efficiency: PositiveNumber | None = None
    bandwidth_efficiency: PositiveNumber | None = None
    mac_bandwidth_efficiency: PositiveNumber | None = None
    fixed_s: dict[str, NonNegativeNumber] | None = None
    host_dispatch_s: dict[str, dict[str, NonNegativeNumber]] | None = None
    host_extra_s: NonNegativeNumber | None = None
    eager_gap_s: NonNegativeNumber | None = None
    host_container_s: NonNegativeNumber | None = None
    host_launch_s: NonNegativeNumber | None = None
    graph_launch_s: NonNegativeNumber | None = None
    achievable_fraction: dict[str, Fraction] | None = None

    def constants(self) -> dict[str, Any]:
        """The fitted constants given (achievable_fraction apart), as `merge_calibration` takes them."""
        return self.model_dump(exclude_none=True, exclude={"achievable_fraction"})


def _stored() -> dict[str, Any]:
    return read_yaml(CALIBRATION_PATH, "GPU calibration")


def default_calibration() -> tuple[Calibration, dict[str, float]]:
    """The fitted constants shipped with the package, and the ceiling fractions measured on the H200."""
    data = _stored()
    return Calibration.from_mapping(data["calibration"], str(CALIBRATION_PATH)), data["achievable_fraction"]


def serving_overrides() -> dict[str, Any]:
    """The serving mode's constants (fitted on published TensorRT results), as overrides of the framework
    calibration; {} where the file has none."""
    return dict((_stored().get("serving") or {}).get("calibration") or {})


def mode_evidence() -> dict[str, str]:
    """What validates each fusion mode, with the error measured (from gpu_calibration.yaml)."""
    return {mode: " ".join(str(text).split()) for mode, text in (_stored().get("evidence") or {}).items()}


def merge_calibration(base: Calibration, overrides: Mapping[str, Any], source: str) -> Calibration:
    """`base` with the constants in `overrides` replaced (mappings merged key by key)."""
    merged = base.as_mapping()
    for key, value in overrides.items():
        if key not in merged:
            raise UserError(f"{source}: unknown key {key!r}{suggest(key, merged)}; expected one of {', '.join(merged)}")
        merged[key] = {**merged[key], **value} if isinstance(merged[key], dict) else value
    return Calibration.from_mapping(merged, source)
