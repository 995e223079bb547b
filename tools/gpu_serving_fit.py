"""Fit the GPU model's serving mode (a TensorRT engine) to published TensorRT results, and hold groups out.

Data: hardware_models/data/tensorrt_published.csv (a copy of ../shared/data/gpu/tensorrt_published.csv):
ResNet-50 on A100 (SXM and PCIe), A10 and T4 from MLPerf Inference (NVIDIA's closed submissions:
SingleStream batch 1, MultiStream batch 8, Offline throughput), Paddle-TRT batch sweeps (NVIDIA
DeepLearningExamples) and TensorRT's own examples (trtexec, batch 1). What each latency includes (the
file's `latency_scope_and_host_device_copies`) decides how a row is predicted:

- MLPerf rows on the SXM board start from device memory; the PCIe and T4 rows include the host-to-device
  copy of the INT8 input (224 x 224 x 3 bytes per image), which the model adds through the preset's copy.
- Offline rows give a throughput: the model's time per image at the submission's batch size.
- NVIDIA's MLPerf engines fuse more than stock TensorRT (custom plugins such as RES2_FULL_FUSION): their
  times are the engine's times x `mlperf_time_factor`, a nuisance constant fitted with the others. The
  serving mode itself is stock TensorRT (what Triton or trtexec run).
- Paddle-TRT rows are a host wall-clock around `predictor.run()`: the engine plus a per-run framework
  floor (`paddle_floor_s`, a nuisance constant fitted with the others and not part of the GPU model).
- Triton gRPC rows (END-TO-END client latencies with tensor serialization) are not used: the GPU is a
  minor part of them, and nothing in the model describes gRPC.

The fitted constants (SERVING_PARAMETERS) are the serving mode's: tensor-core efficiency per arithmetic
(tf32, fp16, int8), the share of the bandwidth convolutions stream at, the fixed time of a convolution or
matmul kernel and of any other kernel, and the engine's launch per inference (plus the two nuisance
constants of the sources, paddle_floor_s and mlperf_time_factor); they are shared by every GPU, whose rates
come from its datasheet peaks. The objective is the sum of squared log errors over the rows, each row group
weighted equally, plus a weak pull toward the starting values; the loss is soft-L1 beyond a 15% log error.
`leave_one_group_out` fits on every row group but one (a group is one source on one GPU: "mlperf/A100-SXM",
"paddle/A10", ...) and predicts the one left out.
"""
from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hardware_models.gpu import GPU
from hardware_models.gpu_calibration import Calibration
from hardware_models.gpu_kernels import KERNEL_CLASSES, KernelTable, precision_of
from hardware_models.layer import LayerSpec
from tools.gpu_fit import nelder_mead

DATA_PATH = Path(__file__).resolve().parents[1] / "hardware_models" / "data" / "tensorrt_published.csv"
INPUT_ELEMENTS = 3 * 224 * 224  # ResNet-50's input, one image
# the GPU of each row (a substring of the csv's `gpu`) -> the preset that describes it
GPU_PRESETS = (("A100-SXM", "a100"), ("A100-PCIe", "a100_pcie"), ("A100 (variant", "a100"), ("A10 ", "a10"),
               ("A10", "a10"), ("T4", "t4"))
OFFLINE_BATCH_ASSUMED = 256  # A10's Offline batch was not retrieved; per-image time is flat beyond ~128
# (name, starting value): rough a-priori values, not fitted ones
SERVING_PARAMETERS = (
    ("tensor_efficiency.tf32", 0.6), ("tensor_efficiency.fp16", 0.6), ("tensor_efficiency.int8", 0.6),
    ("mac_bandwidth_efficiency", 0.8), ("fixed_s.mac", 4e-6), ("fixed_s.other", 2e-6), ("graph_launch_s", 10e-6),
    ("paddle_floor_s", 100e-6), ("mlperf_time_factor", 0.9),
)
PRIOR_WEIGHT = 0.02
EFFICIENCY_WALL = math.log(1.0 / 0.72)
ROBUST_SCALE = 0.15  # log error beyond which a row's pull grows linearly, not quadratically


@dataclass(frozen=True)
class PublishedRow:
    """One published TensorRT result, as the model predicts it (seconds)."""

    row_id: int
    group: str  # source family / GPU: the unit held out
    preset: str
    precision: str  # fp32 (TF32), fp16, int8
    batch: int
    measured_s: float  # latency of the batch, or time per image for an Offline throughput
    per_image: bool  # Offline: measured_s is 1 / throughput
    h2d_bytes: float  # bytes copied host -> device inside the measured time
    paddle: bool  # a Paddle-TRT host wall-clock (framework floor included)
    scenario: str


@dataclass(frozen=True)
class ServingPrediction:
    row: PublishedRow
    predicted_s: float

    @property
    def error(self) -> float:
        return self.predicted_s / self.row.measured_s - 1.0


def _preset_of(gpu_text: str) -> str:
    for key, preset in GPU_PRESETS:
        if gpu_text.startswith(key) or key in gpu_text:
            return preset
    raise ValueError(f"no preset for GPU {gpu_text!r}")


def _precision(text: str) -> str:
    upper = text.upper()
    if upper.startswith("INT8"):
        return "int8"
    if upper.startswith("FP16"):
        return "fp16"
    return "fp32"  # TF32 (TensorRT's default fp32 math on Ampere)


def read_rows(path: str | Path = DATA_PATH) -> tuple[list[PublishedRow], list[dict]]:
    """The rows the fit uses, and the ones it leaves out (with the reason under `excluded_because`)."""
    used, left_out = [], []
    with open(path, newline="") as handle:
        for raw in csv.DictReader(handle):
            framework = raw["framework_compiler"]
            scope = raw["latency_scope_and_host_device_copies"]
            if "gRPC" in framework:
                left_out.append({**raw, "excluded_because": "Triton over gRPC: client latency dominated by "
                                 "tensor serialization and the server, not modelled"})
                continue
            match = re.match(r"\s*(\d+)", raw["batch_size"])
            batch = int(match.group(1)) if match else OFFLINE_BATCH_ASSUMED
            preset = _preset_of(raw["gpu"])
            gpu_short = {"a100": "A100-SXM", "a100_pcie": "A100-PCIe", "a10": "A10", "t4": "T4"}[preset]
            if "MLPerf" in raw["source"]:
                family = "mlperf"
            elif "Paddle" in framework:
                family = "paddle"
            else:
                family = "trtexec"
            offline = raw["scenario"].startswith("Offline")
            if offline:
                measured = 1.0 / float(raw["throughput_img_s"])
            else:
                measured = float(raw["latency_ms_primary"]) * 1e-3
            precision = _precision(raw["precision"])
            includes_h2d = family == "mlperf" and not offline and (
                "NOT set" in scope or "includes H2D" in scope or "H2D of INT8" in scope)
            h2d = INPUT_ELEMENTS * batch * 1.0 if includes_h2d else 0.0  # INT8 input, one byte an element
            used.append(PublishedRow(
                row_id=int(raw["id"]), group=f"{family}/{gpu_short}", preset=preset, precision=precision,
                batch=batch, measured_s=measured, per_image=offline, h2d_bytes=h2d, paddle=family == "paddle",
                scenario=raw["scenario"]))
    return used, left_out


@dataclass
class _Case:
    row: PublishedRow
    gpu: GPU
    table: KernelTable


def build_cases(rows: Sequence[PublishedRow], layers: Sequence[LayerSpec], gpus: Mapping[str, GPU]) -> list[_Case]:
    """The serving-mode kernel table of every row (the network is the caller's: ResNet-50's layers, with their
    ops and fused ops)."""
    cases = []
    tables: dict[tuple, KernelTable] = {}
    for row in rows:
        gpu = gpus[row.preset]
        key = (row.preset, row.precision, row.batch)
        if key not in tables:
            bits = {"fp32": 32, "fp16": 16, "int8": 8}[row.precision]
            specs = [replace(layer, batch=row.batch) for layer in layers]
            assert precision_of(bits, bits) == row.precision
            tables[key] = gpu.kernel_table(specs, [row.precision] * len(specs), fuse=True)
        cases.append(_Case(row, gpu, tables[key]))
    return cases


def serving_calibration(values: Mapping[str, float], base: Calibration) -> Calibration:
    """The framework calibration `base` with the serving constants in `values` put in."""
    fixed = {c: (values["fixed_s.mac"] if c in ("conv", "pwconv", "dwconv", "gemm") else values["fixed_s.other"])
             for c in KERNEL_CLASSES if c != "view"}
    return replace(base, tensor_efficiency={k: values[f"tensor_efficiency.{k}"] for k in ("tf32", "fp16", "int8")},
                   mac_bandwidth_efficiency=values["mac_bandwidth_efficiency"], fixed_s=fixed,
                   graph_launch_s=values["graph_launch_s"])


def _values(theta: np.ndarray) -> dict[str, float]:
    return dict(zip((name for name, _ in SERVING_PARAMETERS), (float(v) for v in np.exp(theta))))


def predict(case: _Case, values: Mapping[str, float], cal: Calibration) -> float:
    """The model's value of the row's measurement (seconds)."""
    times = case.gpu.sequence_time(case.table, "graph", cal)
    latency = times.total_s
    if case.row.group.startswith("mlperf/"):
        # NVIDIA's MLPerf engines fuse more than stock TensorRT (custom plugins): a lower bound on it
        latency *= values["mlperf_time_factor"]
    latency += case.gpu.copy_to_device_s(case.row.h2d_bytes)
    if case.row.paddle:
        latency += values["paddle_floor_s"]
    return latency / case.row.batch if case.row.per_image else latency


def _objective(cases: Sequence[_Case], theta: np.ndarray, base: Calibration) -> float:
    values = _values(theta)
    cal = serving_calibration(values, base)
    prior = np.log(np.array([v for _, v in SERVING_PARAMETERS]))
    total = PRIOR_WEIGHT * float(np.sum((theta - prior) ** 2))
    for (name, _), value in zip(SERVING_PARAMETERS, theta):
        # efficiencies are shares of the ceiling the H200's cuBLAS reached (achievable_fraction of the
        # datasheet peak, 0.66-0.72): a wall where they would pass the datasheet peak itself
        if name.startswith("tensor_efficiency") and value > EFFICIENCY_WALL:
            total += 100.0 * (value - EFFICIENCY_WALL) ** 2
        if name == "mac_bandwidth_efficiency" and value > 0.0:
            total += 100.0 * value ** 2
    groups: dict[str, int] = {}
    for case in cases:
        groups[case.row.group] = groups.get(case.row.group, 0) + 1
    for case in cases:
        error = math.log(predict(case, values, cal) / case.row.measured_s)
        # soft-L1 (pseudo-Huber) on the log error: a row the model cannot describe (a scope the csv marks
        # as unknown) does not drag the others
        total += 2.0 * ROBUST_SCALE ** 2 * (math.sqrt(1.0 + (error / ROBUST_SCALE) ** 2) - 1.0) / groups[case.row.group]
    return total


def fit(cases: Sequence[_Case], base: Calibration, iterations: int = 1500) -> dict[str, float]:
    """Serving constants that minimise the objective on `cases` (two Nelder-Mead restarts)."""
    theta = np.log(np.array([v for _, v in SERVING_PARAMETERS]))
    for step in (0.5, 0.2, 0.05):
        theta = nelder_mead(lambda t: _objective(cases, t, base), theta, step=step, iterations=iterations)
    return _values(theta)


def predictions(cases: Sequence[_Case], values: Mapping[str, float], base: Calibration) -> list[ServingPrediction]:
    cal = serving_calibration(values, base)
    return [ServingPrediction(case.row, predict(case, values, cal)) for case in cases]


def leave_one_group_out(cases: Sequence[_Case], base: Calibration,
                        iterations: int = 1500) -> list[ServingPrediction]:
    """Fit on every row group but one, predict the one left out; every group in turn."""
    out = []
    for held_out in sorted({c.row.group for c in cases}):
        train = [c for c in cases if c.row.group != held_out]
        test = [c for c in cases if c.row.group == held_out]
        out.extend(predictions(test, fit(train, base, iterations), base))
    return out


def leave_one_gpu_out(cases: Sequence[_Case], base: Calibration, iterations: int = 1500) -> list[ServingPrediction]:
    """Fit without any row of one GPU (every source), predict that GPU's rows: a GPU the fit never saw."""
    out = []
    for held_out in sorted({c.row.group.split("/")[1] for c in cases}):
        train = [c for c in cases if c.row.group.split("/")[1] != held_out]
        test = [c for c in cases if c.row.group.split("/")[1] == held_out]
        out.extend(predictions(test, fit(train, base, iterations), base))
    return out


def batch_class(batch: int) -> str:
    """The batch sizes the targets name: 1, 8, 128 (and 'other' for the rest)."""
    if batch in (1, 8):
        return str(batch)
    if batch >= 128:
        return "128+"
    return "other"
