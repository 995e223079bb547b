"""Split candidates: where the edge stops and the cloud starts.

A split is valid when its edge set is closed under predecessors. The payload is every tensor produced on
the edge side (the graph input counts as produced there: the camera is on the edge) and read on the cloud
side: a cut inside a residual block sends the branch and the skip tensor, a cut inside an inception module
sends every open branch. A prefix of the execution order is always closed; its `index` is the number of
layers on the edge (0 = cloud-only, len(layers) = edge-only, which sends nothing).
"""
from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np

from simulator.graph.ir import Graph, Tensor


@dataclass(frozen=True)
class Cut:
    """The split after the first `index` layers in execution order."""

    index: int
    after: str | None  # the last edge layer (None for cloud-only)
    tensors: tuple[Tensor, ...]

    @property
    def elements(self) -> int:
        return sum(t.elements for t in self.tensors)


def tensor_lifetimes(graph: Graph) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per tensor: the position of its producer (-1 for a graph input) and of its last consumer.

    A tensor crosses prefix cut k exactly when producer < k <= last consumer.
    """
    names = list(graph.tensors)
    produced = np.array([graph.index.get(t, -1) for t in names])
    last_use = np.array([max((graph.index[c] for c in graph.consumers[t]), default=-1) for t in names])
    return names, produced, last_use


def crossing_elements(graph: Graph) -> np.ndarray:
    """Elements crossing each prefix cut, indexed 0..len(layers) (a difference array over lifetimes)."""
    names, produced, last_use = tensor_lifetimes(graph)
    sizes = np.array([graph.tensors[t].elements for t in names], dtype=np.int64)
    delta = np.zeros(len(graph.layers) + 2, dtype=np.int64)
    live = last_use > produced
    np.add.at(delta, produced[live] + 1, sizes[live])
    np.add.at(delta, last_use[live] + 1, -sizes[live])
    return np.cumsum(delta)[: len(graph.layers) + 1]


def enumerate_cuts(graph: Graph) -> list[Cut]:
    """Every prefix cut, 0 (cloud-only) to len(layers) (edge-only), with its crossing tensors."""
    names, produced, last_use = tensor_lifetimes(graph)
    order = np.argsort(produced, kind="stable")
    cuts = []
    for k in range(len(graph.layers) + 1):
        crossing = [names[i] for i in order if produced[i] < k <= last_use[i]]
        after = graph.layers[k - 1].name if k else None
        cuts.append(Cut(k, after, tuple(graph.tensors[t] for t in crossing)))
    return cuts


def viable_cuts(graph: Graph, activation_bits: int = 1, weight_bits: int = 1, input_bits: int = 8,
                edge_memory_bytes: float | None = None) -> list[Cut]:
    """The Auto-Split paper's filter (its Eq. 6): at the lowest bit-widths, a cut sends no more than the raw
    8-bit input and (when a budget is given) the edge part fits the memory: weights plus the largest
    single activation (the paper's `max_layer` memory model). Cloud-only is always kept."""
    raw_input_bits = graph.input_elements * input_bits
    weights = np.cumsum([0] + [l.weight_elements for l in graph.layers]) * weight_bits
    largest = np.maximum.accumulate([0] + [l.output_elements for l in graph.layers]) * activation_bits
    keep = []
    for cut in enumerate_cuts(graph):
        if cut.index == 0:
            keep.append(cut)
            continue
        fits = edge_memory_bytes is None or (weights[cut.index] + largest[cut.index]) / 8 <= edge_memory_bytes
        if cut.elements * activation_bits <= raw_input_bits and fits:
            keep.append(cut)
    return keep


# --- general (non-prefix) splits ---------------------------------------------------------------------
def is_closed(graph: Graph, edge_layers: Collection[str]) -> bool:
    """True when every input of every edge layer is a graph input or produced on the edge."""
    edge = set(edge_layers)
    return all(t in graph.inputs or t in edge for name in edge for t in graph.layer(name).inputs)


def crossing_tensors(graph: Graph, edge_layers: Iterable[str]) -> list[Tensor]:
    """Tensors produced on the edge (graph inputs included) and read by at least one cloud layer."""
    edge = set(edge_layers)
    sources = [*graph.inputs, *(l.name for l in graph.layers if l.name in edge)]
    return [graph.tensors[t] for t in sources if any(c not in edge for c in graph.consumers[t])]


def prefix_index(graph: Graph, edge_layers: Collection[str]) -> int | None:
    """The cut_index of `edge_layers` when they are a prefix of the execution order, else None."""
    k = len(edge_layers)
    return k if set(edge_layers) == {l.name for l in graph.layers[:k]} else None


def payload_bytes(elements: int, bits: int) -> int:
    """Bytes of `elements` values of `bits` bits, packed."""
    return math.ceil(elements * bits / 8)
