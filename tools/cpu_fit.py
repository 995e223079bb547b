"""Fitting the CPU model's shared constants to published ncnn benchmarks (hardware_models/data/
jetson_cpu_published.csv, a copy of ../shared/data/edge/), vectorised over every layer of every row.

A row is one network on one board at one thread count and precision (ncnn's float models run at 16 bits:
fp16 arithmetic on ARMv8.2 cores, fp32 elsewhere; its int8 models at 8 bits). `features` turns a row into
per-layer arrays that do not depend on the constants; `predict_s` evaluates cpu.py's formula on them for a
parameter vector, so a fit does not rebuild a CPU per trial (tests check it equals `CPU.network_cost`).
Constants are fitted by minimising the sum of |log(predicted / measured)| (robust to the few rows a
thermally throttled phone made slow).
"""
from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware_models.cpu import CPU, LAYER_CLASSES, CpuCalibration, layer_class
from hardware_models.layer import LayerSpec
from tools.gpu_fit import nelder_mead

DATA_PATH = Path(__file__).resolve().parents[1] / "hardware_models" / "data" / "jetson_cpu_published.csv"
# the parameter vector: log of each positive constant; thread and bandwidth efficiencies through a logistic
PARAMETERS = (*(f"efficiency.{c}" for c in LAYER_CLASSES), "int8_efficiency", "int8_dot_efficiency",
              "activation_traffic", "thread_efficiency", "bandwidth_efficiency", "layer_overhead_cycles",
              "sync_cycles")
FRACTIONS = ("thread_efficiency", "bandwidth_efficiency")


@dataclass(frozen=True)
class CpuRow:
    """One published ncnn CPU latency."""

    row_id: str
    board: str  # the device as the CSV names it
    network: str  # ncnn's model name (resnet18, mobilenet_int8, ...)
    threads: int
    bits: int
    measured_s: float


def read_rows(path: Path = DATA_PATH) -> list[CpuRow]:
    """Every ncnn CPU latency row of the CSV."""
    rows = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            if row["framework"] != "ncnn benchncnn (CPU)" or row["metric"] != "latency_ms":
                continue
            network = row["model"].split("[ncnn ")[1].rstrip("]")
            threads = int(row["power_mode_or_threads"].split()[0])
            rows.append(CpuRow(row["row_id"], row["device"], network, threads, 8 if "int8" in network else 16,
                               float(row["value"]) / 1e3))
    return rows


@dataclass(frozen=True)
class Features:
    """Per-layer arrays of many rows (constants not applied); `row` maps each layer to its row."""

    row: np.ndarray
    macs: np.ndarray
    klass: np.ndarray  # index into LAYER_CLASSES, -1 for a layer without MACs
    int8: np.ndarray  # 0 float, 1 int8 by widening multiply-adds, 2 int8 by SDOT
    weight_bytes: np.ndarray
    spilled_bytes: np.ndarray  # activation bytes that go to DRAM (before activation_traffic)
    per_core_macs_per_s: np.ndarray
    threads: np.ndarray
    dram_bandwidth_bps: np.ndarray
    clock_hz: np.ndarray
    rows: int


def features(cases: Sequence[tuple[CPU, Sequence[LayerSpec], int]]) -> Features:
    """Features of (cpu with its threads, layers, bits) cases."""
    names = ("row", "macs", "klass", "int8", "per_core", "threads", "weight", "spilled", "bandwidth", "clock")
    columns: dict[str, list] = {k: [] for k in names}
    for index, (cpu, layers, bits) in enumerate(cases):
        # the slowest core used, without the thread scaling (that is a fitted constant)
        per_core = cpu.macs_per_s(bits, bits) / (1 + (cpu.threads - 1) * cpu.calibration.thread_efficiency)
        for layer in layers:
            klass = layer_class(layer)
            columns["row"].append(index)
            columns["macs"].append(layer.macs)
            columns["klass"].append(-1 if klass is None else LAYER_CLASSES.index(klass))
            columns["int8"].append(0 if bits > 8 else 2 if cpu.int8_dot else 1)
            columns["per_core"].append(per_core)
            columns["threads"].append(cpu.threads)
            activation_bytes = (layer.input_elements + layer.output_elements) * bits / 8
            columns["weight"].append(layer.weight_elements * bits / 8)
            columns["spilled"].append(activation_bytes if activation_bytes > cpu.last_level_cache_bytes else 0.0)
            columns["bandwidth"].append(cpu.dram_bandwidth_bps)
            columns["clock"].append(cpu.clock_hz)
    return Features(row=np.array(columns["row"]), macs=np.array(columns["macs"], float),
                    klass=np.array(columns["klass"]), int8=np.array(columns["int8"]),
                    per_core_macs_per_s=np.array(columns["per_core"]), threads=np.array(columns["threads"], float),
                    weight_bytes=np.array(columns["weight"], float), spilled_bytes=np.array(columns["spilled"], float),
                    dram_bandwidth_bps=np.array(columns["bandwidth"]),
                    clock_hz=np.array(columns["clock"]), rows=len(cases))


def calibration_from(theta: np.ndarray, base: CpuCalibration) -> CpuCalibration:
    """The constants of a parameter vector."""
    values = dict(zip(PARAMETERS, theta))
    decoded = {k: float(1 / (1 + np.exp(-v)) if k in FRACTIONS else np.exp(v)) for k, v in values.items()}
    efficiency = {c: decoded.pop(f"efficiency.{c}") for c in LAYER_CLASSES}
    return base.model_copy(update={"efficiency": efficiency, **decoded})


def theta_of(calibration: CpuCalibration) -> np.ndarray:
    """The parameter vector of some constants (the inverse of `calibration_from`)."""
    values = {f"efficiency.{c}": calibration.efficiency[c] for c in LAYER_CLASSES}
    values.update({k: getattr(calibration, k) for k in PARAMETERS if "." not in k})
    return np.array([np.log(v / (1 - v)) if k in FRACTIONS else np.log(max(v, 1e-9))
                     for k, v in ((k, min(values[k], 0.999)) if k in FRACTIONS else (k, values[k])
                                  for k in PARAMETERS)])


def predict_s(feats: Features, calibration: CpuCalibration) -> np.ndarray:
    """Predicted latency of every row (cpu.py's formula, vectorised)."""
    efficiency = np.array([calibration.efficiency[c] for c in LAYER_CLASSES])
    layer_efficiency = np.where(feats.klass >= 0, efficiency[np.maximum(feats.klass, 0)], 1.0)
    int8 = np.array([1.0, calibration.int8_efficiency, calibration.int8_dot_efficiency])
    layer_efficiency = layer_efficiency * int8[feats.int8]
    rate = feats.per_core_macs_per_s * (1 + (feats.threads - 1) * calibration.thread_efficiency)
    compute_s = np.where(feats.klass >= 0, feats.macs / (rate * layer_efficiency), 0.0)
    dram_bytes = feats.weight_bytes + feats.spilled_bytes * calibration.activation_traffic
    memory_s = dram_bytes / (feats.dram_bandwidth_bps * calibration.bandwidth_efficiency)
    overhead_s = (calibration.layer_overhead_cycles
                  + np.where(feats.threads > 1, calibration.sync_cycles, 0.0)) / feats.clock_hz
    return np.bincount(feats.row, np.maximum(compute_s, memory_s) + overhead_s, minlength=feats.rows)


def fit(feats: Features, measured_s: np.ndarray, base: CpuCalibration, iterations: int = 3000) -> CpuCalibration:
    """Constants minimising sum |log(predicted / measured)| over the rows, from `base`."""
    def objective(theta: np.ndarray) -> float:
        return float(np.sum(np.abs(np.log(predict_s(feats, calibration_from(theta, base)) / measured_s))))

    theta = theta_of(base)
    for step in (1.0, 0.3, 0.1):
        theta = nelder_mead(objective, theta, step=step, iterations=iterations)
    return calibration_from(theta, base)


def leave_one_group_out(feats: Features, measured_s: np.ndarray, groups: np.ndarray, base: CpuCalibration,
                        fit_fn: Callable[..., CpuCalibration] = fit) -> np.ndarray:
    """Each row's prediction by constants fitted without its group (a board)."""
    out = np.zeros(len(measured_s))
    for group in np.unique(groups):
        held = groups == group
        keep_layers = ~held[feats.row]
        train = _subset(feats, keep_layers, np.flatnonzero(~held))
        test = _subset(feats, ~keep_layers, np.flatnonzero(held))
        calibration = fit_fn(train, measured_s[~held], base)
        out[held] = predict_s(test, calibration)
    return out


def _subset(feats: Features, layers: np.ndarray, rows: np.ndarray) -> Features:
    renumber = np.full(feats.rows, -1)
    renumber[rows] = np.arange(len(rows))
    return Features(row=renumber[feats.row[layers]], macs=feats.macs[layers], klass=feats.klass[layers],
                    int8=feats.int8[layers], per_core_macs_per_s=feats.per_core_macs_per_s[layers],
                    threads=feats.threads[layers], weight_bytes=feats.weight_bytes[layers],
                    spilled_bytes=feats.spilled_bytes[layers],
                    dram_bandwidth_bps=feats.dram_bandwidth_bps[layers], clock_hz=feats.clock_hz[layers],
                    rows=len(rows))
