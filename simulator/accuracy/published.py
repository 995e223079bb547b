"""Published post-training-quantization results as per-layer bit assignments on the zoo's layers.

Two tables (copied from ../shared/data/quant/ into `data/`):
- `ptq_published.csv`: uniform precision W/A by method, tier and granularity;
- `ptq_layerwise_published.csv`: one layer alone at low bits, first/last-layer ablations, per-layer mixed
  configurations, low-bit reconstruction rows and the Auto-Split figure's split plans.

`calibration_rows()` turns every row into a `CalibrationRow`: the zoo model, the PTQ tier and granularity, and
one weight and one activation bit-width per layer of the zoo graph (16 = float). A layer's activation bits
quantize its output tensor. Conventions, per source:
- "except first/last" (MQBench's academic backend, ZeroQ, torchvision, Banner et al.): the first conv's
  weights and the classifier's weights and input at 8 bits, the logits float;
- "all layers" (AdaRound's Table 2, Distiller, the Auto-Split figure's edge-only rows): every layer, the
  logits included where the row says the output is quantized;
- the Auto-Split split plans "8.0_<split>_<a>": the first <split> layers on the edge at W8, every edge
  activation at <a> bits (the label's average-bit constraint; the solver's per-layer allocation is not
  published), the cloud float.
A row the proxy cannot represent is kept out of `calibration_rows()` and listed by `unrepresentable_rows()` with
the reason (rounding variants, per-channel activation bits, a quantizer the proxy does not model).
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from simulator.accuracy.distortion import FLOAT_BITS
from simulator.graph import load_model

DATA_DIR = Path(__file__).resolve().parent / "data"
UNIFORM_CSV = DATA_DIR / "ptq_published.csv"
LAYERWISE_CSV = DATA_DIR / "ptq_layerwise_published.csv"
TRANSFORMER_CSV = DATA_DIR / "ptq_vit_published.csv"
KEPT_BITS = 8
"""Bits of the layers a benchmark keeps at high precision ("first and last layers at 8 bits")."""

_MODELS = {"resnet-18": "resnet18", "resnet-50": "resnet50", "mobilenetv2": "mobilenet_v2",
           "resnet18": "resnet18", "resnet50": "resnet50", "mobilenet_v2": "mobilenet_v2"}
_SOURCES = (("MQBench", "MQBench"), ("Adaptive Rounding", "AdaRound"), ("Auto-Split", "Auto-Split"),
            ("Distiller", "Distiller"), ("OMPQ", "OMPQ"), ("OMSE", "AdaRound"), ("torchvision", "torchvision"),
            ("ZeroQ", "ZeroQ"), ("Banner", "Banner et al."), ("DFQ", "DFQ"))


@dataclass(frozen=True)
class CalibrationRow:
    """One published result as a per-layer plan on the zoo graph of `model`; accuracies in percent."""

    row_id: str
    model: str
    source: str
    method: str
    tier: str
    granularity: str
    fp32_top1: float
    top1: float
    weight_bits: tuple[int, ...]
    activation_bits: tuple[int, ...]
    description: str

    @property
    def drop(self) -> float:
        return self.fp32_top1 - self.top1


@dataclass(frozen=True)
class SkippedRow:
    row_id: str
    model: str
    method: str
    top1: float
    reason: str


def source_of(text: str) -> str:
    """A short source name (the paper or repository that published a row)."""
    for needle, name in _SOURCES:
        if needle.lower() in text.lower():
            return name
    return text.split(",")[0].strip()


def _zoo_model(text: str) -> str:
    key = text.split("(")[0].strip().lower().replace(" ", "")
    if key not in _MODELS:
        raise ValueError(f"no zoo model for {text!r}")
    return _MODELS[key]


def _first_number(text: str) -> float:
    match = re.search(r"\d+(?:\.\d+)?", text)
    if not match:
        raise ValueError(f"no number in {text!r}")
    return float(match.group())


@cache
def _cached_graph(model: str):
    return load_model(model)


# --- plans on a graph ----------------------------------------------------------------------------------
class PlanBuilder:
    """Per-layer (weight, activation) bits on a zoo graph, built from the descriptions published rows use."""

    def __init__(self, model: str) -> None:
        self.graph = _cached_graph(model)
        layers = self.graph.layers
        self.names = [l.name for l in layers]
        self.weight_layers = [i for i, l in enumerate(layers) if l.weight_elements]
        self.first, self.last = self.weight_layers[0], self.weight_layers[-1]
        producer = {l.name: i for i, l in enumerate(layers)}
        # the classifier's input: the tensor (and the pooling / flatten layers) feeding the last weight layer
        self.classifier_input = [producer[t] for t in layers[self.last].inputs if t in producer]
        self.logits = len(layers) - 1

    def uniform(self, w: int, a: int, first_last: int | None = KEPT_BITS, logits: int = FLOAT_BITS):
        """Every layer at W/A; `first_last` bits (None: the same W/A) for the first conv's weights and the
        classifier's weights and input; the logits at `logits` bits."""
        n = len(self.names)
        wb, ab = np.full(n, w), np.full(n, a)
        if first_last is not None:
            wb[[self.first, self.last]] = first_last
            ab[self.classifier_input] = first_last
        ab[self.logits] = logits
        return wb, ab

    def only(self, layer: int, w: int = FLOAT_BITS, a: int = FLOAT_BITS):
        """One layer's weights and/or output at low bits, every other tensor float."""
        n = len(self.names)
        wb, ab = np.full(n, FLOAT_BITS), np.full(n, FLOAT_BITS)
        wb[layer], ab[layer] = w, a
        return wb, ab

    def split(self, cut: int, w: int, sent: int, other: int = KEPT_BITS):
        """The first `cut` layers on the edge at W`w`, the tensors crossing the cut at `sent` bits, the other
        edge activations at `other` bits; the cloud float."""
        n = len(self.names)
        wb, ab = np.full(n, FLOAT_BITS), np.full(n, FLOAT_BITS)
        wb[[i for i in self.weight_layers if i < cut]] = w
        ab[:cut] = other
        producer = {l.name: i for i, l in enumerate(self.graph.layers)}
        for layer in self.graph.layers[cut:]:
            for t in layer.inputs:
                if t in producer and producer[t] < cut:
                    ab[producer[t]] = sent
        return wb, ab

    def weight_list(self, bits_by_weight_layer: list[int], a: int, logits: int = FLOAT_BITS):
        """Weight bits given per weight layer in order; every activation at `a` bits."""
        if len(bits_by_weight_layer) != len(self.weight_layers):
            raise ValueError(f"{len(bits_by_weight_layer)} weight bit-widths for {len(self.weight_layers)} weight layers")
        n = len(self.names)
        wb, ab = np.full(n, FLOAT_BITS), np.full(n, a)
        wb[self.weight_layers] = bits_by_weight_layer
        ab[self.logits] = logits
        return wb, ab

    def named_weights(self, spec: str, a: int):
        """`conv1:4 layer1.0.conv2+downsample:3 ... fc:3` (OMPQ's module order; '+downsample' also sets the
        block's downsample conv) -> weights by name, activations at `a` bits, the logits float."""
        n = len(self.names)
        wb, ab = np.full(n, FLOAT_BITS), np.full(n, a)
        ab[self.logits] = FLOAT_BITS
        index = {name: i for i, name in enumerate(self.names)}
        for item in spec.split():
            name, bits = item.rsplit(":", 1)
            targets = [name.replace("+downsample", "")]
            if name.endswith("+downsample"):
                targets.append(name.split(".conv")[0] + ".downsample.0")
            for target in targets:
                if target not in index:
                    raise ValueError(f"no layer {target!r} in {self.graph.name}")
                wb[index[target]] = int(bits)
        if (wb[self.weight_layers] == FLOAT_BITS).any():
            missing = [self.names[i] for i in self.weight_layers if wb[i] == FLOAT_BITS]
            raise ValueError(f"weight bits missing for {missing}")
        return wb, ab

    def adds(self) -> list[int]:
        return [i for i, l in enumerate(self.graph.layers) if l.op == "add"]

    def matmul_inputs(self, w: int, a: int):
        """The vision-transformer PTQ convention (PTQ4ViT, RepQ-ViT): every weight layer at W`w`, every tensor a
        linear, conv or matmul reads at A`a` (QK^T's q and k, AV's softmax and v included); LayerNorm, Softmax,
        GELU and the residual adds compute in float, the logits stay float."""
        n = len(self.names)
        wb, ab = np.full(n, FLOAT_BITS), np.full(n, FLOAT_BITS)
        wb[self.weight_layers] = w
        producer = {name: i for i, name in enumerate(self.names)}
        read = [producer[t] for l in self.graph.layers if l.op in ("linear", "conv", "matmul") for t in l.inputs
                if t in producer]
        ab[read] = a
        return wb, ab


# --- the uniform table -----------------------------------------------------------------------------------
def _uniform_rows(path: Path = UNIFORM_CSV) -> tuple[list[CalibrationRow], list[SkippedRow]]:
    rows, skipped = [], []
    with open(path, newline="") as f:
        for k, r in enumerate(csv.DictReader(f), start=1):
            row_id = f"U{k:03d}"
            method, top1 = r["method"], float(r["top1"])
            if "Auto-Split" in r["source"]:
                skipped.append(SkippedRow(row_id, r["model"], method, top1, "the same Auto-Split edge-only point as "
                                          "a row of the layer-wise table (R049-R052); counted once"))
                continue
            if "equalization" in method:
                skipped.append(SkippedRow(row_id, r["model"], method, top1, "cross-layer equalization rescales the "
                                          "weights before quantizing; the proxy's per-tensor weight distortion assumes "
                                          "the trained channel scales"))
                continue
            if "bit allocation" in method:
                skipped.append(SkippedRow(row_id, r["model"], method, top1, "per-channel activation bit allocation "
                                          "and bias correction: the proxy has one bit-width per tensor"))
                continue
            plan = PlanBuilder(r["model"])
            w, a = int(r["w_bits"]), int(r["a_bits"])
            # DFQ's naive per-tensor row quantizes every layer; the benchmarks keep first and last at 8 bits
            first_last = None if r["source"].startswith("DFQ") else KEPT_BITS
            wb, ab = plan.uniform(w, a, first_last)
            rows.append(CalibrationRow(row_id, r["model"], source_of(r["source"]), method, r["tier"], r["granularity"],
                                       float(r["fp32_top1"]), top1, tuple(map(int, wb)), tuple(map(int, ab)),
                                       f"W{w}A{a}" + (" all layers" if first_last is None else " first/last at 8")))
    return rows, skipped


# --- the layer-wise table --------------------------------------------------------------------------------
_UNREPRESENTABLE = (
    (r"always round", "rounding variant (always up/down): the proxy models round-to-nearest and optimised rounding"),
    (r"stochastic rounding", "stochastic rounding: a random rounding the proxy does not model (the best-of-100 "
                             "sample is also chosen on the evaluation data)"),
    (r"fc output clipped", "the logits clipped by a calibrated range inside an otherwise min-max network: the "
                           "proxy has one clipping method per plan"),
    (r"AdaRound on Min-Max weight grid", "AdaRound's ablation on a min-max weight grid: the proxy's reconstruction tier "
                                        "optimises rounding on a calibrated grid, and no tier has a min-max grid with "
                                        "optimised rounding"),
    (r"range-based linear PTQ \(symmetric\)", "symmetric activation quantizer on non-negative activations: the "
                                              "proxy's activation quantizer is asymmetric"),
)


def _tier(method: str, granularity_text: str) -> str:
    m = method.lower()
    if re.search(r"adaround|brecq|qdrop|qubo|continuous relaxation|ste-optimised|reconstruction", m):
        return "reconstruction"
    if re.search(r"minmax|min-max|range-based linear", m):
        return "naive"
    return "calibrated"


def _granularity(text: str) -> str:
    t = text.lower()
    if "per-tensor" in t or "per-layer scale" in t:
        return "per-tensor"
    return "per-channel"  # stated per-channel, or MQBench's academic default (per-channel weights)


def _layerwise_plan(r: dict, plan: PlanBuilder):
    """(weight bits, activation bits, description) of a layer-wise row."""
    spec = r["layer_bits"]
    if spec.startswith("ONLY conv1 weights 4-bit"):
        return (*plan.only(plan.first, w=4), "conv1 weights alone at W4")
    if m := re.match(r'plan "8\.0_(\d+)_(\d+)"', spec):
        # the solver's per-layer activation bits are not published: every edge activation at the average
        cut, average = int(m.group(1)), int(m.group(2))
        return (*plan.split(cut, 8, average, other=average), f"split after {cut} layers, W8, edge activations A{average}")
    if m := re.match(r"whole network on edge, uniform W(\d)A(\d)", spec):
        w, a = int(m.group(1)), int(m.group(2))
        return (*plan.uniform(w, a, None, logits=a), f"W{w}A{a} every layer, logits included")
    if m := re.match(r"W(\d)A(\d+) on all layers except first/last", spec):
        w, a = int(m.group(1)), int(m.group(2))
        return (*plan.uniform(w, a), f"W{w}A{a}, first/last at 8")
    if m := re.match(r"W(\d)A(\d+) on all layers \(paper text: first and last layers are quantized", spec):
        w, a = int(m.group(1)), int(m.group(2))
        a = FLOAT_BITS if a >= FLOAT_BITS else a
        return (*plan.uniform(w, a, None), f"W{w}A{a if a < FLOAT_BITS else 'float'} every layer")
    if m := re.match(r"W(\d)A32; per AdaRound text such baselines leave first and last", spec):
        return (*plan.uniform(int(m.group(1)), FLOAT_BITS, FLOAT_BITS), f"W{m.group(1)} middle layers, first/last float")
    if spec.startswith("weight bits in module order"):
        return (*plan.named_weights(spec.removeprefix("weight bits in module order"), KEPT_BITS),
                "OMPQ per-layer weight bits, A8")
    if m := re.match(r"first (\d+) layers W(\d), then features.17 projection conv W(\d), features.18 conv W(\d), "
                     r"classifier W(\d)", spec):
        n, w, p, c, cls = map(int, m.groups())
        return (*plan.weight_list([w] * n + [p, c, cls], KEPT_BITS), f"OMPQ: {n} layers W{w}, then W{p}, W{c}, W{cls}, A8")
    if m := re.match(r"first (\d+) layers W(\d), classifier W(\d)", spec):
        n, w, cls = map(int, m.groups())
        return (*plan.weight_list([w] * n + [cls], KEPT_BITS), f"OMPQ: {n} layers W{w}, classifier W{cls}, A8")
    if m := re.match(r"all layers W(\d)A(\d) incl\. conv1, fc and eltwise adds; fc output NOT clipped", spec):
        w, a = int(m.group(1)), int(m.group(2))
        return (*plan.uniform(w, a, None, logits=a), f"W{w}A{a} every layer and the logits")
    if m := re.match(r"all conv/fc W(\d)A(\d); eltwise adds 8-bit", spec):
        w, a = int(m.group(1)), int(m.group(2))
        wb, ab = plan.uniform(w, a, None, logits=a)
        ab[plan.adds()] = KEPT_BITS
        return wb, ab, f"W{w}A{a} every layer and the logits, adds at A8"
    if m := re.match(r"conv1 and fc W8A8; every other layer \(incl\. adds\) W(\d)A(\d)", spec):
        w, a = int(m.group(1)), int(m.group(2))
        wb, ab = plan.uniform(w, a, KEPT_BITS, logits=a)
        ab[plan.first] = KEPT_BITS
        return wb, ab, f"W{w}A{a}, conv1 and fc W8A8"
    if m := re.match(r"conv1, fc and eltwise adds W8A8; other convs W(\d)A(\d)", spec):
        w, a = int(m.group(1)), int(m.group(2))
        wb, ab = plan.uniform(w, a, KEPT_BITS, logits=a)
        ab[[plan.first, *plan.adds()]] = KEPT_BITS
        return wb, ab, f"W{w}A{a}, conv1, fc and adds at 8"
    if m := re.match(r"all layers W(\d)A(\d) \(command-line config; no overrides\)", spec):
        w, a = int(m.group(1)), int(m.group(2))
        return (*plan.uniform(w, a, None, logits=a), f"W{w}A{a} every layer and the logits")
    raise ValueError(f"no translation for layer_bits {spec!r}")


def _layerwise_rows(path: Path = LAYERWISE_CSV) -> tuple[list[CalibrationRow], list[SkippedRow]]:
    rows, skipped = [], []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            model, top1 = _zoo_model(r["model"]), float(r["quant_top1"])
            text = " ".join((r["method"], r["layer_bits"], r["act_quant"]))
            reason = next((why for pattern, why in _UNREPRESENTABLE if re.search(pattern, text)), None)
            if reason is None and r["row_id"] == "R005":
                reason = "best of 100 stochastic roundings, selected on the evaluation data"
            if reason:
                skipped.append(SkippedRow(r["row_id"], model, r["method"], top1, reason))
                continue
            wb, ab, description = _layerwise_plan(r, PlanBuilder(model))
            rows.append(CalibrationRow(r["row_id"], model, source_of(r["source"]), r["method"],
                                       _tier(r["method"], r["weight_granularity"]), _granularity(r["weight_granularity"]),
                                       _first_number(r["fp32_top1"]), top1, tuple(map(int, wb)), tuple(map(int, ab)),
                                       description))
    return rows, skipped


def _deduplicate(rows: list[CalibrationRow]) -> tuple[list[CalibrationRow], list[SkippedRow]]:
    """Drop a row of one table that repeats a row of the other (same source, model, tier, plan and result)."""
    seen: dict[tuple, str] = {}
    kept, skipped = [], []
    for row in rows:
        key = (row.source, row.model, row.tier, row.weight_bits, row.activation_bits, round(row.top1, 2))
        if key in seen and seen[key][0] != row.row_id[0]:
            skipped.append(SkippedRow(row.row_id, row.model, row.method, row.top1, f"repeats {seen[key]}"))
            continue
        seen.setdefault(key, row.row_id)
        kept.append(row)
    return kept, skipped


@cache
def _all() -> tuple[tuple[CalibrationRow, ...], tuple[SkippedRow, ...]]:
    uniform, skipped_u = _uniform_rows()
    layerwise, skipped_l = _layerwise_rows()
    rows, repeats = _deduplicate(uniform + layerwise)
    return tuple(rows), tuple(skipped_u + skipped_l + repeats)


def transformer_rows(path: Path = TRANSFORMER_CSV) -> tuple[list[CalibrationRow], list[SkippedRow]]:
    """The published vision-transformer PTQ rows (`ptq_vit_published.csv`: PTQ4ViT, RepQ-ViT, FQ-ViT) as plans on
    the zoo's vit_b_16 and swin_t (DeiT-B and ViT-B share vit_b_16's architecture, not its weights), and the
    rows the proxy cannot represent (LayerNorm and Softmax quantized). Kept out of `calibration_rows()`: the
    CNN fit does not see them; they are the evidence for the transformers' proxy."""
    rows, skipped = [], []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            top1 = float(r["top1"])
            if r["representable"] != "yes":
                skipped.append(SkippedRow(r["row_id"], r["model"], r["method"], top1,
                                          f"{r['scope']}: the proxy keeps LayerNorm and Softmax float"))
                continue
            w, a = int(r["w_bits"]), int(r["a_bits"])
            wb, ab = PlanBuilder(r["model"]).matmul_inputs(w, a)
            rows.append(CalibrationRow(r["row_id"], r["model"], source_of(r["source"]), r["method"], r["tier"],
                                       r["granularity"], float(r["fp32_top1"]), top1, tuple(map(int, wb)),
                                       tuple(map(int, ab)), f"W{w}A{a} linear/matmul inputs ({r['published_model']})"))
    return rows, skipped


def calibration_rows() -> list[CalibrationRow]:
    """Every representable published row of both tables, as per-layer plans."""
    return list(_all()[0])


def unrepresentable_rows() -> list[SkippedRow]:
    """The rows left out of the fit, each with its reason."""
    return list(_all()[1])
