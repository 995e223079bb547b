"""Where a tensor sits in the graph, as features of its sensitivity to quantization noise.

A tensor's quantization noise reaches the logits through every layer after it, so how much accuracy a given
relative noise costs depends on what the tensor is and where it is, not on one constant shared by every
layer. The proxy models the noise gain of each tensor as log-linear in these structural features:

- `first`: the first conv's weights, and the stem's output (every tensor before the second weight layer);
- `classifier`: the last weight layer's weights; `classifier_input`: the tensors between the last hidden
  weight layer and the classifier (the pooled features); `logits`: the network's output;
- `depthwise`: a depthwise conv's weights and output (one filter per channel: no averaging of the noise);
- `feeds_add`: a tensor that enters a residual add (its noise rides the identity path to the output);
- `depth`: the fraction of weight layers still to come (1 at the input, 0 at the output).

`weight_features` and `activation_features` return (layers, len(FEATURES)) arrays; a layer without weights has
a zero weight row (its weight distortion is zero anyway).
"""
from __future__ import annotations

import numpy as np

from simulator.graph.ir import Graph

FEATURES = ("first", "classifier", "classifier_input", "logits", "depthwise", "feeds_add", "depth")


def is_depthwise(layer) -> bool:
    """A grouped conv with one input channel per group."""
    if layer.op != "conv" or layer.attrs.get("groups", 1) <= 1:
        return False
    channels = layer.output_shape[1]
    return layer.weight_elements // max(1, channels) == int(np.prod(layer.attrs.get("kernel", (1, 1))))


def roles(graph: Graph) -> dict[str, np.ndarray]:
    """Boolean masks (and `depth`) of where each layer sits, for the features and coverage bookkeeping."""
    layers = graph.layers
    n = len(layers)
    weight_layers = np.array([i for i, l in enumerate(layers) if l.weight_elements], dtype=int)
    if weight_layers.size == 0:
        zero = np.zeros(n, bool)
        return {"first": zero, "stem": zero, "classifier": zero, "classifier_input": zero, "logits": zero,
                "depthwise": zero, "feeds_add": zero, "depth": np.zeros(n)}
    index = np.arange(n)
    first, last = weight_layers[0], weight_layers[-1]
    second = weight_layers[1] if weight_layers.size > 1 else n
    hidden_end = weight_layers[-2] if weight_layers.size > 1 else -1
    add_inputs = {t for l in layers if l.op == "add" for t in l.inputs}
    after = np.array([(weight_layers > i).sum() for i in range(n)], dtype=float)
    return {
        "first": index == first,
        "stem": index < second,
        "classifier": index == last,
        "classifier_input": (index > hidden_end) & (index < last),
        "logits": index == n - 1,
        "depthwise": np.array([is_depthwise(l) for l in layers]),
        "feeds_add": np.array([l.name in add_inputs for l in layers]),
        "depth": after / weight_layers.size,
    }


def weight_features(graph: Graph) -> np.ndarray:
    """(layers, FEATURES) of each layer's weights."""
    r = roles(graph)
    has = np.array([l.weight_elements > 0 for l in graph.layers])
    columns = {"first": r["first"], "classifier": r["classifier"], "depthwise": r["depthwise"], "depth": r["depth"]}
    return np.stack([np.where(has, columns[f], 0.0) if f in columns else np.zeros(len(has)) for f in FEATURES], 1)


def activation_features(graph: Graph) -> np.ndarray:
    """(layers, FEATURES) of each layer's output tensor."""
    r = roles(graph)
    columns = {"first": r["stem"], "classifier_input": r["classifier_input"], "logits": r["logits"],
               "depthwise": r["depthwise"], "feeds_add": r["feeds_add"], "depth": r["depth"]}
    return np.stack([np.asarray(columns.get(f, np.zeros(len(graph.layers))), float) for f in FEATURES], 1)
