"""Predicted and measured accuracy of one bit assignment: what `autosplit accuracy` answers.

- A zoo model: the proxy from assumed distortions and the published calibration (`calibration.zoo_proxy`);
  nothing to measure.
- An ONNX file with `data` (.npz with x, y): distortions from its real weights and calibration activations,
  sensitivities fitted to single-layer measurements on `data`, and the plan measured with onnxruntime.
  Calibration inputs are `calibration` (.npz) or the first `measure.CALIBRATION_SAMPLES` inputs of `data`.
- An ONNX file without data: the proxy from assumed distortions needs the float accuracy, `fp_accuracy`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hardware_models.errors import UserError
from simulator.accuracy.cache import dataclass_from_json, dataclass_to_json, fit_stamp
from simulator.accuracy.calibration import (
    PLAN_MEASUREMENTS,
    SINGLE_LAYER_BITS,
    calibrate_on_measurements,
    fp32_reference,
    proxy_for_graph,
    zoo_proxy,
)
from simulator.accuracy.distortion import FLOAT_BITS
from simulator.accuracy.measure import cached_meter
from simulator.accuracy.proxy import AccuracyProxy
from simulator.choices import GRANULARITIES, TIERS, measured_tier
from simulator.graph import load_model


def _check(tier: str, granularity: str) -> None:
    if tier not in TIERS:
        raise UserError(f"--tier: unknown tier {tier!r}; expected one of {', '.join(TIERS)}")
    if granularity not in GRANULARITIES:
        raise UserError(f"--granularity: unknown {granularity!r}; expected one of {', '.join(GRANULARITIES)}")


def per_layer_bits(graph, pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """One (weight, activation) pair for every layer: a single pair applies to all layers."""
    n = len(graph.layers)
    if len(pairs) == 1:
        pairs = pairs * n
    if len(pairs) != n:
        raise UserError(f"--bits: {len(pairs)} W/A pairs given but {graph.name} has {n} layers "
                        f"(one pair per layer of `autosplit inspect`, or a single pair for all)")
    wbits = np.array([w for w, _ in pairs])
    abits = np.array([a for _, a in pairs])
    for bits in (wbits, abits):
        bad = [int(b) for b in bits if b < 1 or (8 < b < FLOAT_BITS)]
        if bad:
            raise UserError(f"--bits: unsupported bit-width {bad[0]}; expected 1..8, or 16 (or more) for float")
    return wbits, abits


def fitted_proxy(meter, chance: float) -> AccuracyProxy:
    """`calibrate_on_measurements` of `meter`, with a progress bar over its measurements; kept in the meter's
    cache (when it has one) with the fitting code's stamp, so the same files and code are fitted once."""
    key = f"{fit_stamp()}/{chance!r}"
    stored = None if meter.cache is None else meter.cache.get("proxy", key)
    if stored is not None:
        return dataclass_from_json(AccuracyProxy, stored)
    total = len(SINGLE_LAYER_BITS) * (len(meter.layers) + len(meter.weight_layers)) + PLAN_MEASUREMENTS
    with meter.progress("measuring single layers and plans", total):
        proxy = calibrate_on_measurements(meter, chance=chance)
    if meter.cache is not None:
        meter.cache.put("proxy", key, dataclass_to_json(proxy))
    return proxy


def assess(model: str, pairs: list[tuple[int, int]], tier: str = "calibrated", granularity: str = "per-channel",
           data: str | None = None, calibration: str | None = None, fp_accuracy: float | None = None, *,
           input_shape: tuple[int, ...] | None = None, until: str | None = None) -> dict:
    """The `accuracy` command's answer as a dict (DESIGN's keys plus provenance); `input_shape` and `until` are
    --input-shape and --until."""
    _check(tier, granularity)
    graph = load_model(model, input_shape=input_shape, until=until)
    wbits, abits = per_layer_bits(graph, pairs)
    is_onnx = model.endswith(".onnx") or Path(model).is_file()
    measured = None
    cache = None
    notes = []
    if not is_onnx:
        if data:
            raise UserError("--data: measuring needs an .onnx model with weights; zoo models have none")
        proxy = zoo_proxy(model, tier, granularity, graph=graph)
    elif data:
        if tier == "reconstruction":
            notes.append("measured with the calibrated quantizer: rounding optimisation is not implemented")
        meter = cached_meter(model, data, calibration, measured_tier(tier), granularity, input_shape=input_shape,
                             until=until)
        if meter.layers != [l.name for l in graph.layers]:
            raise UserError(f"{model}: the fake-quantized model's layers do not match inspect's")
        classes = int(np.prod(graph.layers[-1].output_shape[1:]))
        proxy = fitted_proxy(meter, chance=100.0 / max(classes, 1))
        measured = meter.accuracy_of_lists(list(wbits), list(abits))
        cache = meter.cache
    else:
        if fp_accuracy is None:
            raise UserError(f"{model}: an ONNX model without --data needs --fp-accuracy (its float accuracy, "
                            f"percent) for a prediction, or --data FILE.npz to measure")
        classes = int(np.prod(graph.layers[-1].output_shape[1:]))
        proxy = proxy_for_graph(graph, graph.name, tier, granularity, fp_accuracy, 100.0 / max(classes, 1))
    weighted = float(proxy.weighted_sum(wbits, abits))
    low, high = proxy.predict_interval(wbits, abits)
    result = {
        "model": graph.name if is_onnx else model,
        "fp_accuracy": proxy.fp_accuracy,
        "predicted_accuracy": float(proxy.predict_from_weighted_sum(weighted)),
        "measured_accuracy": measured,
        "predicted_drop": proxy.fp_accuracy - float(proxy.predict_from_weighted_sum(weighted)),
        "predicted_low": float(low),
        "predicted_high": float(high),
        "chance_accuracy": proxy.chance_accuracy,
        "weighted_distortion": weighted,
        "tier": tier,
        "granularity": granularity,
        "layers": len(graph.layers),
        "distortion_source": proxy.distortion_source,
        "sensitivity_source": proxy.sensitivity_source,
        "inside_envelope": bool(proxy.inside(wbits, abits)),
    }
    if not result["inside_envelope"]:
        assert proxy.weight_floor is not None and proxy.activation_floor is not None  # AccuracyProxy.__post_init__
        below = [f"{layer.name} {kind} {int(bits[i])} < {int(floor[i])}" for kind, bits, floor in
                 (("weights", wbits, proxy.weight_floor), ("activations", abits, proxy.activation_floor))
                 for i, layer in enumerate(graph.layers) if bits[i] < floor[i]]
        notes.append(f"outside the evidence envelope (no two sources' rows go this low): {', '.join(below[:4])}"
                     + (f" and {len(below) - 4} more" if len(below) > 4 else "")
                     + "; the interval is widened there and searches avoid it unless --extrapolate")
    if cache is not None:
        result |= {"measurements_made": cache.made, "measurements_reused": cache.hits,
                   "measurement_cache": str(cache.path)}
    if not is_onnx:
        result["metric"] = fp32_reference().get(model, (None, "unknown"))[1]
    if notes:
        result["notes"] = notes
    return result
