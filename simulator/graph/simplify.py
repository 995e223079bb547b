"""The inference simplifications every deployment applies, made explicit and reported.

1. no-ops at inference (dropout, identity, stochastic depth) are removed;
2. a batchnorm right after a conv or linear layer (its only consumer) is folded into it: the layer keeps
   its name and absorbs the batchnorm's params (so totals still equal torchvision's) and, when real weights
   are known, its scale and shift;
3. an activation whose producer has no other consumer is fused into the producer.
Removed layers are listed in the surviving layer's `fused`; consumers are rewired to the survivor.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from simulator.graph.ir import ACTIVATION_OPS, DATA_OPS, Graph, Layer

NO_OPS = ("dropout", "identity")
FOLDABLE_INTO = ("conv", "linear", "matmul")
FUSES_ACTIVATION = ("conv", "linear", "matmul", "add", "mul", "batchnorm", "maxpool", "avgpool", "globalavgpool",
                    "upsample")


def simplify(graph: Graph) -> Graph:
    """A new, simplified Graph (the input is not modified)."""
    if graph.simplified:
        return graph
    consumers = graph.consumers
    weights = {k: dict(v) for k, v in graph.weights.items()}
    kept: dict[str, Layer] = {}
    rename: dict[str, str] = {}  # removed tensor -> the tensor that now stands for it

    for layer in graph.layers:
        inputs = tuple(rename.get(t, t) for t in layer.inputs)
        producer = kept.get(inputs[0]) if inputs else None
        alone = bool(inputs) and len(consumers[layer.inputs[0]]) == 1  # the only reader of its input
        graph_output = layer.name in graph.outputs
        if layer.op in NO_OPS and len(inputs) == 1 and not graph_output:
            rename[layer.name] = inputs[0]
            if producer is not None:
                _absorb(producer, layer)
            continue
        if (layer.op == "batchnorm" and producer is not None and alone and producer.op in FOLDABLE_INTO
                and not producer.attrs.get("activation")):
            producer.params += layer.params
            _absorb(producer, layer, batchnorm=layer.name)
            _fold_batchnorm(weights, producer.name, layer.name)
            rename[layer.name] = producer.name
            continue
        if (layer.op in ACTIVATION_OPS and producer is not None and alone
                and producer.op in FUSES_ACTIVATION and "activation" not in producer.attrs):
            _absorb(producer, layer, activation=layer.op)
            rename[layer.name] = producer.name
            continue
        kept[layer.name] = replace(layer, inputs=inputs, attrs=dict(layer.attrs))

    out = Graph(graph.name, graph.inputs, list(kept.values()), simplified=True,
                weights={k: v for k, v in weights.items() if k in kept}, source=graph.source)
    return out


def _absorb(survivor: Layer, removed: Layer, **attrs) -> None:
    """Record that `removed` now runs inside `survivor` (its name in `fused`, its op in attrs["fused_ops"])."""
    survivor.fused += (removed.name,)
    survivor.attrs = {**survivor.attrs, **attrs,
                      "fused_ops": (*survivor.attrs.get("fused_ops", ()), removed.op)}


def _fold_batchnorm(weights: dict[str, dict[str, np.ndarray]], conv: str, bn: str) -> None:
    """w' = w * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta, when real weights are known."""
    if conv not in weights or bn not in weights:
        return
    p = weights.pop(bn)
    scale = p["scale"] / np.sqrt(p["var"] + p.get("eps", 1e-5))
    w = weights[conv]["weight"]
    weights[conv]["weight"] = (w * scale.reshape(-1, *([1] * (w.ndim - 1)))).astype(w.dtype)
    bias = weights[conv].get("bias")
    bias = np.zeros_like(p["mean"]) if bias is None else bias
    weights[conv]["bias"] = ((bias - p["mean"]) * scale + p["bias"]).astype(w.dtype)


__all__ = ["simplify", "DATA_OPS"]
