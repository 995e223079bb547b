"""Fit the GPU model's free constants to a measured PyTorch profile, and hold networks out to test it.

The profile (tests/fixtures/h200_pytorch_profile.json, a copy of ../shared/data/gpu/h200_pytorch_profile.json)
gives, per network and precision (fp32 = TF32 convolutions, fp16): every leaf module timed alone in eager
mode, the whole network in eager mode at batch 1/8/32/128 and replayed as a CUDA graph at batch 1, and the
eager cloud suffix after every top-level stage. The caller supplies each network as the ops PyTorch runs
(one per layer: the unsimplified graph, with module paths as names), so this module needs nothing from
autosplit's graph code.

Fitting: host dispatch times per kernel class come from the leaves the model says are host-bound (the
median of their times); the other constants (PARAMETERS) minimise the weighted sum of squared log errors
over the whole networks, the suffixes (with a 20 us floor, the profile's noise) and the leaves, plus a weak
pull toward their starting values, by Nelder-Mead in log space; the two steps alternate twice.
`leave_one_out` fits on all networks but one and reports the errors on the one left out.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from hardware_models.gpu import GPU, eager_completion_s
from hardware_models.gpu_calibration import Calibration
from hardware_models.gpu_kernels import KERNEL_CLASSES, NO_DISPATCH_CLASSES, KernelTable
from hardware_models.layer import LayerSpec

PRECISION_BITS = {"fp32": 32, "fp16": 16}
WHOLE_BATCHES = (1, 8, 32, 128)
SUFFIX_FLOOR_S = 20e-6  # absolute tolerance on suffixes: eager dispatch noise of short suffixes
# the fitted constants, in order, with their starting values (rough a-priori guesses, not fitted values)
PARAMETERS = (
    ("tensor_efficiency.tf32", 0.3), ("tensor_efficiency.fp16", 0.3), ("gemm_efficiency", 0.7),
    ("simt_efficiency", 0.3), ("bandwidth_efficiency", 0.8), ("fixed_s.conv", 5e-6), ("fixed_s.pointwise", 3e-6),
    ("fixed_s.dwconv", 3e-6), ("fixed_s.other", 2e-6),
    ("host_extra_s", 2e-6), ("graph_launch_s", 10e-6), ("eager_gap_s", 1e-6),
    ("host_container_s", 2e-6), ("host_launch_s", 2e-6),
)


@dataclass
class ProfileNetwork:
    """A network as PyTorch runs it: `layers` (one kernel each), their module `names` and graph `ops`."""

    name: str
    layers: list[LayerSpec]
    names: list[str]
    ops: list[str]


@dataclass
class _Case:
    """One network at one precision: its kernel tables per batch and its measurements (seconds)."""

    network: str
    precision: str
    tables: dict[int, KernelTable]
    whole_eager_s: dict[int, float]
    whole_graph_s: float
    suffix_start: list[int]  # first layer of each suffix
    suffix_s: list[float]
    leaf_index: list[int]  # layer index of each measured leaf
    leaf_s: list[float]


@dataclass
class Prediction:
    network: str
    precision: str
    quantity: str  # whole.cudagraph_bs1, whole.eager_bs1, ..., suffix.<stage>
    measured_s: float
    predicted_s: float
    bound_rel: float
    bound_abs_s: float

    @property
    def error(self) -> float:
        return self.predicted_s / self.measured_s - 1.0

    @property
    def within(self) -> bool:
        return abs(self.predicted_s - self.measured_s) <= max(self.bound_rel * self.measured_s, self.bound_abs_s)


def stage_of(name: str) -> str:
    """The top-level stage of a module path, as the profile cuts: `features.N`/`classifier.N` children of a
    Sequential are stages of their own, any other module path belongs to its first component."""
    parts = name.split(".")
    if parts[0] in ("features", "classifier") and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0].split("#")[0]


def load_profile(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def build_cases(gpu: GPU, profile: dict, networks: Sequence[ProfileNetwork]) -> list[_Case]:
    """Kernel tables and measurements of every network and precision in the profile."""
    cases = []
    for net in networks:
        stages: list[int] = []
        seen: set[str] = set()
        for i, name in enumerate(net.names):
            key = stage_of(name)
            if key not in seen:
                seen.add(key)
                stages.append(i)
        for precision, data in profile["models"][net.name].items():
            suffix = data["suffix"]
            if len(suffix) != len(stages) + 1:
                raise ValueError(f"{net.name}: {len(stages)} stages but {len(suffix)} suffixes in the profile")
            for entry, start in zip(suffix, stages):
                layer = net.layers[start]
                if entry["tensor_elems"] != layer.input_elements // max(layer.num_inputs, 1):
                    raise ValueError(f"{net.name}: suffix {entry['cut_after_stage']} starts with a "
                                     f"{entry['tensor_elems']}-element tensor, layer {net.names[start]} reads "
                                     f"{layer.input_elements}")
            bits = PRECISION_BITS[precision]
            precisions = [_precision(bits)] * len(net.layers)
            tables = {}
            for batch in WHOLE_BATCHES:
                layers = [replace(l, batch=batch, op=op) for l, op in zip(net.layers, net.ops)]
                tables[batch] = gpu.kernel_table(layers, precisions, fuse=False)
            leaf_index, leaf_s = _match_leaves(net, data["leaves"])
            cases.append(_Case(
                network=net.name, precision=precision, tables=tables,
                whole_eager_s={b: data["whole"][f"eager_bs{b}"]["median_us"] * 1e-6 for b in WHOLE_BATCHES},
                whole_graph_s=data["whole"]["cudagraph_bs1"]["median_us"] * 1e-6,
                suffix_start=stages, suffix_s=[s["suffix_us"] * 1e-6 for s in suffix[:-1]],
                leaf_index=leaf_index, leaf_s=leaf_s,
            ))
    return cases


def _precision(bits: int) -> str:
    return "fp32" if bits == 32 else "fp16"


def _match_leaves(net: ProfileNetwork, leaves: list[dict]) -> tuple[list[int], list[float]]:
    """Layer index of each profiled leaf, matched by name in order (a module used twice is `name#2`)."""
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(net.names):
        positions.setdefault(name.split("#")[0], []).append(i)
    used: dict[str, int] = {}
    index, times = [], []
    for leaf in leaves:
        name = leaf["name"]
        k = used.get(name, 0)
        if name not in positions or k >= len(positions[name]):
            raise ValueError(f"{net.name}: profiled leaf {name!r} has no layer")
        used[name] = k + 1
        index.append(positions[name][k])
        times.append(leaf["median_us"] * 1e-6)
    return index, times


# --- the model as a function of the parameter vector -------------------------------------------------------
def calibration_from(theta: np.ndarray, host: dict[str, dict[str, float]]) -> Calibration:
    values = dict(zip((p for p, _ in PARAMETERS), (float(v) for v in np.exp(theta))))
    fixed = {"conv": values["fixed_s.conv"], "pwconv": values["fixed_s.pointwise"],
             "gemm": values["fixed_s.pointwise"], "dwconv": values["fixed_s.dwconv"]}
    return Calibration(
        tensor_efficiency={"tf32": values["tensor_efficiency.tf32"], "fp16": values["tensor_efficiency.fp16"],
                           "int8": values["tensor_efficiency.fp16"]},
        gemm_efficiency=values["gemm_efficiency"], simt_efficiency=values["simt_efficiency"],
        bandwidth_efficiency=values["bandwidth_efficiency"],
        mac_bandwidth_efficiency=1.0,
        fixed_s={c: fixed.get(c, values["fixed_s.other"]) for c in KERNEL_CLASSES if c != "view"},
        host_dispatch_s=host, host_extra_s=values["host_extra_s"], graph_launch_s=values["graph_launch_s"],
        eager_gap_s=values["eager_gap_s"], host_container_s=values["host_container_s"],
        host_launch_s=values["host_launch_s"],
    )


def _gpu_and_host(gpu: GPU, table: KernelTable, cal: Calibration) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per kernel: GPU time, host dispatch time of the op alone, and the framework's extra time per op."""
    times = gpu.sequence_time(table, "graph", cal)
    gpu_s = times.busy_s + times.fixed_s
    own = cal.host_matrix()[table.precision_code, table.class_code]
    return gpu_s, own, cal.host_vector(table) - own


def _eager_gap(table: KernelTable, cal: Calibration) -> np.ndarray:
    return cal.eager_gap_s * (cal.fixed_vector()[table.class_code] > 0)


def predict_vector(gpu: GPU, case: _Case, cal: Calibration) -> np.ndarray:
    """The model's value of every measured quantity of `case`, in `quantities(case)` order (seconds)."""
    wholes, graph, suffixes, leaves = [], 0.0, np.zeros(0), np.zeros(0)
    for batch, table in case.tables.items():
        graph_s, host_s, extra_s = _gpu_and_host(gpu, table, cal)
        gpu_s = graph_s + _eager_gap(table, cal)
        per_layer_gpu = np.bincount(table.layer, gpu_s, minlength=table.count_layers)
        per_layer_host = np.bincount(table.layer, host_s, minlength=table.count_layers)
        per_layer_extra = np.bincount(table.layer, extra_s, minlength=table.count_layers)
        completion = eager_completion_s(per_layer_host + per_layer_extra, per_layer_gpu)
        wholes.append(completion[0])
        if batch == 1:
            graph = graph_s.sum() + cal.graph_launch_s
            suffixes = completion[case.suffix_start]
            # a leaf timed alone in a loop: its own dispatch (no module-call overhead) against its GPU time
            leaves = np.maximum(per_layer_host, per_layer_gpu)[case.leaf_index]
    return np.concatenate((wholes, [graph], suffixes, leaves))


def quantities(case: _Case) -> list[str]:
    return ([f"whole.eager_bs{b}" for b in case.tables] + ["whole.cudagraph_bs1"]
            + [f"suffix.{k}" for k in range(len(case.suffix_start))] + [f"leaf.{j}" for j in range(len(case.leaf_s))])


def measured_vector(case: _Case) -> np.ndarray:
    return np.concatenate(([case.whole_eager_s[b] for b in case.tables], [case.whole_graph_s], case.suffix_s,
                           case.leaf_s))


def predict_case(gpu: GPU, case: _Case, cal: Calibration) -> dict[str, float]:
    """The model's value of every measured quantity of `case` (seconds), by name."""
    return dict(zip(quantities(case), (float(v) for v in predict_vector(gpu, case, cal))))


def measured_case(case: _Case) -> dict[str, float]:
    return dict(zip(quantities(case), (float(v) for v in measured_vector(case))))


def _weights(case: _Case) -> tuple[np.ndarray, np.ndarray]:
    """Weight and absolute floor (seconds) of each quantity in the fit's objective, in `quantities` order."""
    whole = {1: 2.0, 8: 1.0, 32: 1.0, 128: 4.0}
    n_suffix, n_leaf = max(len(case.suffix_start), 1), max(len(case.leaf_s), 1)
    weight = ([whole.get(b, 1.0) for b in case.tables] + [4.0] + [4.0 / n_suffix] * len(case.suffix_start)
              + [2.0 / n_leaf] * len(case.leaf_s))
    floor = [0.0] * (len(case.tables) + 1) + [SUFFIX_FLOOR_S] * len(case.suffix_start) + [0.0] * len(case.leaf_s)
    return np.array(weight), np.array(floor)


# every convolution goes through the same framework and cuDNN dispatch path, whatever its kernel and its
# dtype (half precision's transposes are charged as launches); a half-precision batchnorm does measurably
# more host work than an fp32 one, so other classes keep a dispatch time per precision
HOST_CLASS = {"pwconv": "conv", "dwconv": "conv"}
DTYPE_FREE_DISPATCH = ("conv",)


def host_from_leaves(gpu: GPU, cases: Sequence[_Case], cal: Calibration | None) -> dict[str, dict[str, float]]:
    """Host dispatch per precision and kernel class: median time of the leaves that are host-bound.

    A leaf counts as host-bound when the model's GPU time for it is under 60% of its measured time (all
    leaves of a class, before any GPU constants are known). A class with no host-bound leaf takes its
    smallest leaf time. Convolutions of every kind and dtype share one dispatch time (HOST_CLASS,
    DTYPE_FREE_DISPATCH); the launches of library-internal kernels (transposes) are taken off first.
    """
    samples: dict[tuple[str, str], list[tuple[float, bool]]] = {}
    for case in cases:
        table = case.tables[1]
        gpu_layer = None
        if cal is not None:
            gpu_s = _gpu_and_host(gpu, table, cal)[0] + _eager_gap(table, cal)
            gpu_layer = np.bincount(table.layer, gpu_s, minlength=table.count_layers)
        # the layer's own kernel: the first one the framework dispatches (not a library-internal transpose)
        first_kernel = {int(l): k for k, l in reversed(list(enumerate(table.layer)))
                        if table.kernel_class[k] not in NO_DISPATCH_CLASSES}
        # library-internal kernels of a layer (transposes) cost the host a launch each, not a dispatch
        launches = np.bincount(table.layer, [c in NO_DISPATCH_CLASSES for c in table.kernel_class],
                               minlength=table.count_layers)
        launch_s = cal.host_launch_s if cal is not None else dict(PARAMETERS)["host_launch_s"]
        for i, t in zip(case.leaf_index, case.leaf_s):
            klass = HOST_CLASS.get(table.kernel_class[first_kernel[i]], table.kernel_class[first_kernel[i]])
            host_bound = gpu_layer is None or gpu_layer[i] < 0.6 * t
            precision = "any" if klass in DTYPE_FREE_DISPATCH else case.precision
            samples.setdefault((precision, klass), []).append((t - launches[i] * launch_s, host_bound))
    host: dict[str, dict[str, float]] = {}
    precisions = sorted({case.precision for case in cases})
    for (precision, klass), values in samples.items():
        bound = [t for t, ok in values if ok]
        value = float(np.median(bound)) if bound else min(t for t, _ in values)
        for p in (precisions if precision == "any" else [precision]):
            host.setdefault(p, {})[klass] = value
    return host


PRIOR_WEIGHT = 0.05  # per parameter, on the squared log distance from its starting value


def objective(gpu: GPU, cases: Sequence[_Case], theta: np.ndarray, host: dict) -> float:
    """Weighted squared log errors, plus a weak pull of every constant toward its prior (constants the
    training networks do not constrain stay plausible) and a wall at efficiencies above 1."""
    cal = calibration_from(theta, host)
    prior = np.log(np.array([v for _, v in PARAMETERS]))
    total = PRIOR_WEIGHT * float(np.sum((theta - prior) ** 2))
    for (name, _), value in zip(PARAMETERS, theta):
        if "efficiency" in name and value > 0.0:
            total += 100.0 * value**2
    for case in cases:
        weight, floor = _weights(case)
        ratio = (predict_vector(gpu, case, cal) + floor) / (measured_vector(case) + floor)
        total += float(np.sum(weight * np.log(ratio) ** 2))
    return total


def nelder_mead(f: Callable[[np.ndarray], float], x0: np.ndarray, step: float = 0.5, iterations: int = 800,
                tolerance: float = 1e-7) -> np.ndarray:
    """Minimise `f` from `x0` by Nelder-Mead (standard coefficients); returns the best point found."""
    n = len(x0)
    simplex = [x0.astype(float)] + [x0 + step * np.eye(n)[i] for i in range(n)]
    values = [f(x) for x in simplex]
    for _ in range(iterations):
        order = np.argsort(values)
        simplex = [simplex[i] for i in order]
        values = [values[i] for i in order]
        if abs(values[-1] - values[0]) < tolerance:
            break
        centroid = np.mean(simplex[:-1], axis=0)
        reflected = centroid + (centroid - simplex[-1])
        fr = f(reflected)
        if values[0] <= fr < values[-2]:
            simplex[-1], values[-1] = reflected, fr
            continue
        if fr < values[0]:
            expanded = centroid + 2.0 * (centroid - simplex[-1])
            fe = f(expanded)
            simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
            continue
        contracted = centroid + 0.5 * (simplex[-1] - centroid)
        fc = f(contracted)
        if fc < values[-1]:
            simplex[-1], values[-1] = contracted, fc
            continue
        best = simplex[0]
        simplex = [best] + [best + 0.5 * (x - best) for x in simplex[1:]]
        values = [values[0]] + [f(x) for x in simplex[1:]]
    return simplex[int(np.argmin(values))]


def fit(gpu: GPU, cases: Sequence[_Case], iterations: int = 400, rounds: int = 2) -> Calibration:
    """Constants that minimise the objective on `cases` (host times re-estimated between rounds)."""
    theta = np.log(np.array([v for _, v in PARAMETERS]))
    host = host_from_leaves(gpu, cases, None)
    for _ in range(rounds):
        theta = nelder_mead(partial(objective, gpu, cases, host=host), theta, iterations=iterations)
        host = host_from_leaves(gpu, cases, calibration_from(theta, host))
    theta = nelder_mead(lambda t: objective(gpu, cases, t, host), theta, step=0.1, iterations=iterations // 2)
    return calibration_from(theta, host)


# the targets of issue 4, for networks not in the fit: (relative bound, absolute bound in seconds)
TARGETS = {
    "whole.cudagraph_bs1": (0.20, 20e-6),
    "whole.eager_bs128": (0.20, 20e-6),
    "whole.eager_bs1": (0.30, 20e-6),
    "suffix": (0.30, 20e-6),
}
REPORTED = ("whole.eager_bs8", "whole.eager_bs32")


def predictions(gpu: GPU, cases: Sequence[_Case], cal: Calibration) -> list[Prediction]:
    """Model against measurement for every target quantity (and batch 8/32, reported without a bound)."""
    out = []
    for case in cases:
        predicted = predict_case(gpu, case, cal)
        measured = measured_case(case)
        for key, value in measured.items():
            group = "suffix" if key.startswith("suffix.") else key
            if group in TARGETS:
                rel, floor = TARGETS[group]
            elif key in REPORTED:
                rel, floor = math.inf, math.inf
            else:
                continue
            if key.startswith("suffix.") and value <= 0:
                continue
            out.append(Prediction(case.network, case.precision, key, value, predicted[key], rel, floor))
    return out


def leave_one_out(gpu: GPU, cases: Sequence[_Case], iterations: int = 400) -> list[Prediction]:
    """Fit on every network but one, predict the one left out; all networks in turn."""
    out = []
    for held_out in sorted({c.network for c in cases}):
        train = [c for c in cases if c.network != held_out]
        test = [c for c in cases if c.network == held_out]
        cal = fit(gpu, train, iterations=iterations)
        out.extend(predictions(gpu, test, cal))
    return out
