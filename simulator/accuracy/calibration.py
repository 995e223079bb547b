"""Calibration of the accuracy proxy on published post-training-quantization results, with honest errors.

The zoo models have no weights here, so their distortion tables come from the stated assumptions
(`proxy.assumed_distortion_tables`) and their sensitivities from a few shared parameters:

    s^w_i = m_model * weight_scale     * e_i * (reconstruction_factor if tier == reconstruction) / n_weight_layers
    s^a_i = m_model * activation_scale * e_i / n_weight_layers

with e_i = edge_factor for the first and last weight layers (and the logits' activation), 1 elsewhere; m_model a
per-model robustness (1 for a model without published rows); and the link's `shape`. All are fitted by
least squares (Levenberg-Marquardt, in points of top-1) on `data/ptq_published.csv`, drops taken against
each source's own FP32, with weak Gaussian priors on the logarithms (below) so that a parameter the fit
cannot see stays at its prior. A table row W/A means every layer at W/A except the first and last weight
layers (8 bits, as the benchmarks keep them); rows whose method says "edge-only" (the Auto-Split figure's
U-rows) quantize every layer, first and last included.

`leave_one_source_out` refits without all rows of a source and predicts them: the error a lookup table
could not fake.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from simulator.accuracy.distortion import FLOAT_BITS
from simulator.accuracy.proxy import AccuracyProxy, assumed_distortion_tables, bit_columns

DATA_DIR = Path(__file__).resolve().parent / "data"
PUBLISHED_CSV = DATA_DIR / "ptq_published.csv"
FP32_CSV = DATA_DIR / "fp32_reference.csv"
EDGE_ONLY_MARK = "edge-only"
BENCHMARK_EDGE_BITS = 8

# (name, prior mean of the log, prior std of the log)
PARAMETERS = (
    ("weight_scale", 0.0, 10.0),
    # relative noise injected at a layer's weights or at its output propagates alike: ratio near 1
    ("activation_to_weight", 0.0, 0.5),
    ("edge_factor", 0.0, 1.0),
    # rounding optimisation (AdaRound, BRECQ) is worth about one weight bit: a quarter of the MSE
    ("reconstruction_factor", float(np.log(0.25)), 0.5),
    ("shape", float(np.log(0.75)), 0.5),
)
MODEL_PRIOR_STD = 1.0
ROBUST_SCALE_POINTS = 1.0
PRIOR_WEIGHT_POINTS = 1.0
"""A prior's pull, in points of top-1 per prior standard deviation."""


@dataclass(frozen=True)
class PublishedRow:
    model: str
    source: str
    method: str
    tier: str
    granularity: str
    fp32_top1: float
    weight_bits: int
    activation_bits: int
    top1: float

    @property
    def edge_only(self) -> bool:
        """True for the Auto-Split figure's uniform edge-only rows: first and last layers quantized too."""
        return EDGE_ONLY_MARK in self.method


def published_rows(path: Path = PUBLISHED_CSV) -> list[PublishedRow]:
    with open(path, newline="") as f:
        return [PublishedRow(r["model"], r["source"], r["method"], r["tier"], r["granularity"], float(r["fp32_top1"]),
                             int(r["w_bits"]), int(r["a_bits"]), float(r["top1"])) for r in csv.DictReader(f)]


@lru_cache(maxsize=None)
def fp32_reference(path: Path = FP32_CSV) -> dict[str, tuple[float, str]]:
    """Model -> (FP32 accuracy in percent, metric)."""
    with open(path, newline="") as f:
        return {r["model"]: (float(r["fp32"]), r["metric"]) for r in csv.DictReader(f)}


def chance_accuracy(metric: str) -> float:
    """Chance level of a task metric in percent: 1/1000 for ImageNet top-1, 0 for mAP."""
    return 0.1 if "ImageNet" in metric else 0.0


@dataclass
class ZooCalibration:
    """Fitted parameters (plain values, not logs) and each model's robustness."""

    weight_scale: float
    activation_scale: float
    edge_factor: float
    reconstruction_factor: float
    shape: float
    model_robustness: dict[str, float] = field(default_factory=dict)
    rows_used: int = 0

    def robustness(self, model: str) -> float:
        return self.model_robustness.get(model, 1.0)

    def sensitivities(self, graph, model: str, tier: str) -> tuple[np.ndarray, np.ndarray]:
        """(s^w, s^a) per layer of `graph` for `tier`."""
        weight_idx, edge = _edges(graph)
        scale = self.robustness(model) / max(1, len(weight_idx))
        factor = np.where(edge, self.edge_factor, 1.0)
        recon = self.reconstruction_factor if tier == "reconstruction" else 1.0
        return (scale * self.weight_scale * recon * factor, scale * self.activation_scale * factor)


def _edges(graph) -> tuple[list[int], np.ndarray]:
    """Indices of weight layers, and a mask of the edge layers (first and last weight layers, the logits)."""
    weight_idx = [i for i, l in enumerate(graph.layers) if l.weight_elements]
    edge = np.zeros(len(graph.layers), dtype=bool)
    if weight_idx:
        edge[[weight_idx[0], weight_idx[-1]]] = True
    edge[len(graph.layers) - 1] = True
    return weight_idx, edge


def row_bits(graph, row: PublishedRow) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer (weight, activation) bits that a table row stands for."""
    n = len(graph.layers)
    wbits, abits = np.full(n, row.weight_bits), np.full(n, row.activation_bits)
    if not row.edge_only:
        _, edge = _edges(graph)
        wbits[edge] = np.maximum(wbits[edge], BENCHMARK_EDGE_BITS)
        abits[edge] = np.maximum(abits[edge], BENCHMARK_EDGE_BITS)
    return wbits, abits


@lru_cache(maxsize=None)
def _graph(model: str):
    from simulator.graph import load_model

    return load_model(model)


@lru_cache(maxsize=None)
def _tables(model: str, tier: str, granularity: str) -> tuple[np.ndarray, np.ndarray]:
    # the distortion of reconstruction's quantizer is the calibrated one; its gain is a sensitivity factor
    return assumed_distortion_tables(_graph(model), "naive" if tier == "naive" else "calibrated", granularity)


def _row_features(rows: list[PublishedRow]) -> np.ndarray:
    """(rows, 4): sums of weight distortion (middle, edge) and activation distortion (middle, edge) / n_weight."""
    out = np.zeros((len(rows), 4))
    for r, row in enumerate(rows):
        graph = _graph(row.model)
        wtab, atab = _tables(row.model, row.tier, row.granularity)
        weight_idx, edge = _edges(graph)
        wbits, abits = row_bits(graph, row)
        idx = np.arange(len(graph.layers))
        dw, da = wtab[idx, bit_columns(wbits)], atab[idx, bit_columns(abits)]
        out[r] = [dw[~edge].sum(), dw[edge].sum(), da[~edge].sum(), da[edge].sum()]
        out[r] /= max(1, len(weight_idx))
    return out


class _Problem:
    """Residuals (points of top-1) of the table rows plus the priors, as a function of the log-parameters."""

    def __init__(self, rows: list[PublishedRow], models: list[str]) -> None:
        self.rows = rows
        self.models = models
        self.features = _row_features(rows)
        self.model_of_row = np.array([models.index(r.model) for r in rows], dtype=int)
        self.recon = np.array([r.tier == "reconstruction" for r in rows])
        self.fp = np.array([r.fp32_top1 for r in rows])
        self.top1 = np.array([r.top1 for r in rows])
        self.chance = np.array([chance_accuracy(fp32_reference()[r.model][1]) for r in rows])
        self.prior_mean = np.array([p[1] for p in PARAMETERS] + [0.0] * len(models))
        self.prior_std = np.array([p[2] for p in PARAMETERS] + [MODEL_PRIOR_STD] * len(models))

    def predict(self, theta: np.ndarray, features=None, model_of_row=None, recon=None, fp=None, chance=None):
        features = self.features if features is None else features
        model_of_row = self.model_of_row if model_of_row is None else model_of_row
        recon = self.recon if recon is None else recon
        fp = self.fp if fp is None else fp
        chance = self.chance if chance is None else chance
        w_scale, a_ratio, edge, recon_factor, shape = np.exp(theta[:5])
        a_scale = w_scale * a_ratio
        m = np.exp(theta[5:])[model_of_row]
        weight = (features[:, 0] + edge * features[:, 1]) * np.where(recon, recon_factor, 1.0)
        activation = features[:, 2] + edge * features[:, 3]
        x = m * (w_scale * weight + a_scale * activation)
        return chance + (fp - chance) * np.exp(-np.minimum(np.maximum(x, 0) ** shape, 700.0))

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        prior = (theta - self.prior_mean) / self.prior_std * PRIOR_WEIGHT_POINTS
        return np.concatenate([robust(self.predict(theta) - self.top1), prior])


def robust(error_points: np.ndarray, scale: float = None) -> np.ndarray:
    """Pseudo-Huber residuals: quadratic within `ROBUST_SCALE_POINTS`, linear beyond, so that a row the
    model cannot explain (a method that fixes what the assumptions break) has bounded pull on the fit."""
    scale = ROBUST_SCALE_POINTS if scale is None else scale
    loss = 2 * scale ** 2 * (np.sqrt(1 + (error_points / scale) ** 2) - 1)
    return np.sign(error_points) * np.sqrt(loss)


def _levenberg_marquardt(fun, x0: np.ndarray, iterations: int = 300) -> np.ndarray:
    """Minimise sum(fun(x)^2): damped Gauss-Newton with a forward-difference Jacobian."""
    x = np.asarray(x0, float)
    r = fun(x)
    cost = r @ r
    damping = 1e-2
    for _ in range(iterations):
        jac = np.empty((r.size, x.size))
        for j in range(x.size):
            dx = np.zeros_like(x)
            dx[j] = 1e-6
            jac[:, j] = (fun(x + dx) - r) / 1e-6
        hess, grad = jac.T @ jac, jac.T @ r
        improved = False
        while damping < 1e12:
            step = np.linalg.solve(hess + damping * (np.diag(np.diag(hess)) + np.eye(x.size)), -grad)
            r_new = fun(x + step)
            cost_new = r_new @ r_new
            if cost_new < cost:
                improved = cost - cost_new > 1e-12 * (1 + cost)
                x, r, cost = x + step, r_new, cost_new
                damping = max(damping / 3, 1e-9)
                break
            damping *= 4
        if not improved:
            break
    return x


def fit(rows: list[PublishedRow]) -> ZooCalibration:
    """Fit the shared parameters and per-model robustness on `rows` (edge-only rows are never fitted)."""
    rows = [r for r in rows if not r.edge_only]
    models = sorted({r.model for r in rows})
    problem = _Problem(rows, models)
    best = None
    for start_shape in (0.5, 1.0):
        theta0 = problem.prior_mean.copy()
        theta0[4] = np.log(start_shape)
        theta = _levenberg_marquardt(problem.residuals, theta0)
        cost = float(problem.residuals(theta) @ problem.residuals(theta))
        if best is None or cost < best[0]:
            best = (cost, theta)
    theta = best[1]
    values = np.exp(theta)
    values[1] *= values[0]  # activation scale = weight scale * ratio
    return ZooCalibration(*values[:5], model_robustness=dict(zip(models, values[5:])), rows_used=len(rows))


def predict_rows(calibration: ZooCalibration, rows: list[PublishedRow]) -> np.ndarray:
    """Predicted top-1 of table rows (each against its own source's FP32)."""
    features = _row_features(rows)
    out = np.empty(len(rows))
    for r, (row, feat) in enumerate(zip(rows, features)):
        graph = _graph(row.model)
        _, edge = _edges(graph)
        m = calibration.robustness(row.model)
        recon = calibration.reconstruction_factor if row.tier == "reconstruction" else 1.0
        x = m * (calibration.weight_scale * recon * (feat[0] + calibration.edge_factor * feat[1])
                 + calibration.activation_scale * (feat[2] + calibration.edge_factor * feat[3]))
        chance = chance_accuracy(fp32_reference()[row.model][1])
        out[r] = chance + (row.fp32_top1 - chance) * np.exp(-max(x, 0.0) ** calibration.shape)
    return out


def leave_one_source_out(rows: list[PublishedRow] | None = None) -> list[dict]:
    """Every row predicted by a fit that saw no row of its source: dicts with the row, prediction and error."""
    rows = published_rows() if rows is None else rows
    out: list[dict] = []
    for source in dict.fromkeys(r.source for r in rows):
        held = [r for r in rows if r.source == source]
        calibration = fit([r for r in rows if r.source != source])
        for row, predicted in zip(held, predict_rows(calibration, held)):
            out.append({"model": row.model, "source": row.source, "method": row.method, "tier": row.tier,
                        "granularity": row.granularity, "bits": f"W{row.weight_bits}A{row.activation_bits}",
                        "fp32_top1": row.fp32_top1, "top1": row.top1, "predicted_top1": float(predicted),
                        "drop": row.fp32_top1 - row.top1, "predicted_drop": row.fp32_top1 - float(predicted),
                        "error": float(predicted) - row.top1, "edge_only": row.edge_only})
    return out


@lru_cache(maxsize=None)
def published_calibration() -> ZooCalibration:
    """The fit on every published row (what `zoo_proxy` uses)."""
    return fit(published_rows())


def zoo_proxy(model: str, tier: str = "calibrated", granularity: str = "per-channel", graph=None) -> AccuracyProxy:
    """The proxy of a zoo model: assumed distortions, sensitivities from the published calibration."""
    graph = graph if graph is not None else _graph(model)
    calibration = published_calibration()
    weights, activations = assumed_distortion_tables(graph, "naive" if tier == "naive" else "calibrated", granularity)
    s_w, s_a = calibration.sensitivities(graph, model, tier)
    fp, metric = fp32_reference().get(model, (100.0, "unknown"))
    known = model in calibration.model_robustness
    return AccuracyProxy(
        layers=[l.name for l in graph.layers], weight_distortion=weights, activation_distortion=activations,
        weight_sensitivity=s_w, activation_sensitivity=s_a, fp_accuracy=fp, chance_accuracy=chance_accuracy(metric),
        shape=calibration.shape, tier=tier, granularity=granularity,
        distortion_source="assumed: He-initialised Gaussian weights, ReLU'd Gaussian activations",
        sensitivity_source=("published PTQ table fit" + ("" if known else " (no rows for this model: robustness 1)")))


# --- calibration on measurements of a real model ---------------------------------------------------------
SINGLE_LAYER_BITS = (2, 3, 4, 5, 6, 7, 8)


def single_layer_measurements(meter, bits: tuple[int, ...] = SINGLE_LAYER_BITS) -> list[tuple[int, str, int, float]]:
    """(layer index, 'weight' | 'activation', bits, measured top-1) with only that layer's tensor quantized."""
    out = []
    for i, name in enumerate(meter.layers):
        for b in bits:
            if name in meter.weight_layers:
                out.append((i, "weight", b, meter.accuracy(weight_bits={name: b})))
            out.append((i, "activation", b, meter.accuracy(activation_bits={name: b})))
    return out


def calibrate_on_measurements(meter, chance: float, measurements: list | None = None) -> AccuracyProxy:
    """A proxy for a real model: distortions from its weights and calibration activations, one sensitivity
    per layer and tensor kind and the link's shape fitted (least squares, points of accuracy) to
    single-layer measurements (`single_layer_measurements`), each layer quantized alone at 2..8 bits."""
    from simulator.accuracy.proxy import measured_distortion_tables

    measurements = single_layer_measurements(meter) if measurements is None else measurements
    quantizer = meter.quantizer
    weights, activations = measured_distortion_tables(quantizer)
    n = len(meter.layers)
    layer = np.array([m[0] for m in measurements])
    is_weight = np.array([m[1] == "weight" for m in measurements])
    columns = bit_columns(np.array([m[2] for m in measurements]))
    distortion = np.where(is_weight, weights[layer, columns], activations[layer, columns])
    measured = np.array([m[3] for m in measurements])
    fp = meter.fp_accuracy
    # parameters: log s^w (n), log s^a (n), log shape; priors keep an unseen sensitivity near the median
    start = np.log(1.0 / max(np.median(distortion[distortion > 0]), 1e-12))
    prior_mean = np.concatenate([np.full(2 * n, start), [0.0]])
    prior_std = np.concatenate([np.full(2 * n, 3.0), [0.5]])
    index = np.where(is_weight, layer, n + layer)

    def predicted(theta):
        x = np.exp(theta[index]) * distortion
        return chance + (fp - chance) * np.exp(-np.minimum(x ** np.exp(theta[-1]), 700.0))

    def residuals(theta):
        return np.concatenate([predicted(theta) - measured, (theta - prior_mean) / prior_std * 0.1])

    theta = _levenberg_marquardt(residuals, prior_mean.copy())
    has_weights = np.array([name in meter.weight_layers for name in meter.layers])
    return AccuracyProxy(
        layers=list(meter.layers), weight_distortion=weights, activation_distortion=activations,
        weight_sensitivity=np.where(has_weights, np.exp(theta[:n]), 0.0), activation_sensitivity=np.exp(theta[n:2 * n]),
        fp_accuracy=fp, chance_accuracy=chance, shape=float(np.exp(theta[-1])), tier=quantizer.tier,
        granularity=quantizer.granularity,
        distortion_source="measured: the model's folded weights and its activations on the calibration inputs",
        sensitivity_source=f"fitted to {len(measurements)} single-layer measurements")
