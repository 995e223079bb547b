"""Scenario -> CostTables -> vectorised evaluation of a batch of plans.

A **plan** is an edge set (closed under predecessors) and a weight and an activation bit-width for every
edge layer. Plans are evaluated in batches as numpy arrays: `edge_mask` (plans, layers) bool, and
`weight_bits` / `activation_bits` (plans, layers) as indices into `tables.bits` (entries of cloud layers
are ignored). A prefix plan can be given by its cut index instead of a mask. Everything that depends on a
layer and a bit-width is looked up in tables built once per scenario, so a batch costs a few gathers,
two small matrix products and some sums. The hardware models are called when the tables are built (their
arrays are kept on disk by `table_cache`, and the edge's are built when first read: a cloud-only plan needs
none), and once more for each non-prefix edge set (a DAG min-cut) the first time it is evaluated: its cloud
part runs as one piece, whose latency is not a sum of table entries (cached per edge set).

Latency = edge compute + transfer of every tensor crossing the cut + cloud compute of the rest.
Edge memory = weights at their bits + activations (`peak_live`: the largest set of tensors alive at once
while the edge part runs; `max_layer`: the largest single layer output, the Auto-Split paper's formula).
Accuracy = the proxy's g(sum of sensitivity x distortion), cloud layers at `cloud_bits` (16: no loss).
The evidence envelope (the lowest bits the proxy's calibration covers for each tensor) is a per-layer
constraint like memory: a plan with a tensor below its floor is infeasible unless the scenario extrapolates,
and the tables every search bounds (`weight_cost`, `activation_cost`) price such a tensor at `OUTSIDE_COST`,
a noise no accuracy bound admits, so every method that bounds the drop stays inside without code of its own
and the exact front stays exact (the constraint is a sum over layers: a count of tensors outside).
Edge energy = edge compute energy + the radio's energy for the bits on the wire.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any

import numpy as np

from hardware_models.base import Accelerator
from hardware_models.errors import UserError
from hardware_models.layer import LayerSpec
from hardware_models.registry import load_accelerator
from simulator.accuracy.calibration import zoo_proxy
from simulator.accuracy.proxy import ENDS, AccuracyProxy, bit_columns
from simulator.choices import ACTIVATION_CODECS, CONFIDENCES, INPUT_CODECS, MEMORY_MODELS
from simulator.codecs import check_codec, entropy_bits_per_element, jpeg_bytes
from simulator.graph import load_model
from simulator.graph.cuts import tensor_lifetimes
from simulator.graph.ir import Graph
from simulator.network.transfer import TransferModel
from simulator.table_cache import cached_arrays

# what a layer costs at a bit-width its edge cannot run: finite (0 x inf would poison the sums), never chosen
UNSUPPORTED_S = 1e9
UNSUPPORTED_J = 1e9
NONNEGATIVE_ACTIVATIONS = ("relu", "relu6")
# the float widths an edge may run (32: a device profiled in fp32); the accuracy proxy counts both as no loss
FLOAT_EDGE_BITS = (16, 32)
OUTSIDE_COST = 1e6
"""The searched noise of a tensor outside the evidence envelope: finite (sums stay exact), never admitted."""


@dataclass
class Scenario:
    """A DNN, an edge accelerator, a link, a cloud accelerator and the constraints; SI units throughout.

    `max_accuracy_drop` is in percentage points of the task metric; `edge_bits` are the bit-widths the edge
    may give a layer's weights and activations (default: the edge preset's `supported_bits`).
    """

    graph: Graph
    edge: Accelerator
    cloud: Accelerator
    link: TransferModel
    accuracy: AccuracyProxy
    edge_memory_bytes: float = math.inf
    max_accuracy_drop: float = 1.0
    memory_model: str = "peak_live"
    edge_bits: tuple[int, ...] | None = None
    cloud_bits: int = 16
    input_bits: int = 8
    input_codec: str = "raw"
    activation_codec: str = "raw"
    jpeg_quality: int = 90
    batch: int = 1
    accuracy_confidence: str = "pessimistic"
    extrapolate: bool = False
    """Allow plans outside the accuracy proxy's evidence envelope (`accuracy.extrapolate`)."""

    def __post_init__(self) -> None:
        if self.accuracy_confidence not in CONFIDENCES:
            raise UserError(f"expected one of {', '.join(CONFIDENCES)}, got {self.accuracy_confidence!r}",
                            "accuracy_confidence")
        if self.memory_model not in MEMORY_MODELS:
            raise UserError(f"expected one of {', '.join(MEMORY_MODELS)}, got {self.memory_model!r}", "memory_model")
        check_codec(self.input_codec, INPUT_CODECS, "input_codec")
        check_codec(self.activation_codec, ACTIVATION_CODECS, "activation_codec")
        for side in (self.edge, self.cloud):  # a measured profile answers only for the model it measured
            side.check_model(self.graph.name, self.graph.source)
        # by default the edge's bit-widths a plan may use: up to 16 (a GPU or CPU edge also computes fp32), or all
        # of them on an edge that computes only wider floats (a device profiled in fp32)
        default = [b for b in self.edge.supported_bits if b <= 16] or list(self.edge.supported_bits)
        bits = default if self.edge_bits is None else self.edge_bits
        self.edge_bits = edge_bits = tuple(sorted({int(b) for b in bits}))
        if not edge_bits or min(edge_bits) < 1 or any(b > 8 and b not in FLOAT_EDGE_BITS for b in edge_bits):
            raise UserError(f"expected bit-widths in 1..8 (or 16, 32: float), got {list(edge_bits)}", "edge_bits")
        supported = self.edge.supported_bits
        unsupported = sorted(set(edge_bits) - set(supported))
        if unsupported:
            raise UserError(f"{unsupported} not supported by {self.edge.name} "
                            f"(supported_bits: {', '.join(map(str, supported))})", "edge_bits")
        if self.edge_memory_bytes <= 0:
            raise UserError(f"expected a positive size, got {self.edge_memory_bytes:g} bytes", "edge_memory")
        if self.max_accuracy_drop < 0:
            raise UserError(f"expected >= 0 points, got {self.max_accuracy_drop:g}", "max_accuracy_drop")

    @classmethod
    def build(cls, model: str, edge: str, cloud: str, link: TransferModel, *, accuracy_tier: str = "calibrated",
              granularity: str = "per-channel", input_shape: tuple[int, ...] | None = None, until: str | None = None,
              accuracy: AccuracyProxy | None = None, **fields: Any) -> Scenario:
        """A scenario from names: a zoo model or ONNX path (its input shape and cut, see `load_model`), hardware
        presets (or files), a Link; the accuracy proxy is `accuracy`, else the zoo's."""
        graph = load_model(model, input_shape=input_shape, until=until)
        proxy = accuracy or zoo_proxy(graph.name, tier=accuracy_tier, granularity=granularity, graph=graph)
        return cls(graph=graph, edge=load_accelerator(edge), cloud=load_accelerator(cloud), link=link,
                   accuracy=proxy, **fields)

    @cached_property
    def tables(self) -> CostTables:
        return CostTables.build(self)


@dataclass
class CostTables:
    """Everything a plan's cost depends on, as arrays indexed [layer, bit-width index] or [cut]."""

    scenario: Scenario
    bits: np.ndarray                  # (B,) tabled bit-widths: the edge's plus 16
    edge_bit_index: np.ndarray        # indices into `bits` a quantized plan may use (the edge's bits)
    names: list[str]                  # layer names in execution order
    has_weights: np.ndarray           # (L,) bool
    build_edge_tables: Callable[[], dict[str, np.ndarray]]  # the edge's tables, on first use (`edge_latency_s`)
    weight_bytes: np.ndarray          # (L, B)
    tensor_elements: np.ndarray       # (T,) graph inputs first, then one tensor per layer
    tensor_producer: np.ndarray       # (T,) producing layer, -1 for a graph input
    consumed_by: np.ndarray           # (T, L) bool
    crossing: np.ndarray              # (L+1, T) bool: tensors crossing each prefix cut
    live: np.ndarray                  # (L, T) bool: tensors alive while layer i runs (edge execution order)
    layer_output_tensor: np.ndarray   # (L,) index of each layer's output tensor
    bytes_per_element: np.ndarray     # (T, B) payload bytes per element of each tensor at each bit-width
    input_payload_bytes: float        # what cloud-only sends for the graph input (raw or JPEG)
    cloud_suffix_s: np.ndarray        # (L+1,) cloud latency of layers k.. for prefix cut k
    cloud_layer_s: np.ndarray         # (L,) cloud latency of each layer alone (non-prefix plans)
    weight_cost: np.ndarray           # (L, B) sensitivity x distortion of the weights at edge bits, at the
    activation_cost: np.ndarray       # (L, B)   accuracy_confidence end, OUTSIDE_COST outside the envelope
                                      #          unless the scenario extrapolates (what searches bound)
    weight_noise: np.ndarray          # (L, B) the same without the envelope's price (what plans are reported at)
    activation_noise: np.ndarray      # (L, B)
    weight_inside: np.ndarray         # (L, B) bool: each tensor at each bit-width inside the evidence envelope
    activation_inside: np.ndarray     # (L, B) bool
    cloud_cost: np.ndarray            # (L,) the same at cloud bits (weights + activations)
    other_ends: tuple[str, ...]       # the two ENDS besides the searched one (reported, not searched)
    end_costs: np.ndarray             # (2, L, B, B) weights + activations at each of `other_ends`
    end_cloud_costs: np.ndarray       # (2, L) the same at cloud bits
    _cloud_cache: dict = field(default_factory=dict, repr=False)

    @property
    def layers(self) -> int:
        return len(self.names)

    @cached_property
    def _edge_tables(self) -> dict[str, np.ndarray]:
        return self.build_edge_tables()

    @property
    def edge_latency_s(self) -> np.ndarray:
        """(L, B, B) [layer, weight bits, activation bits] seconds on the edge; built when first read (plans that
        run wholly in the cloud read none)."""
        return self._edge_tables["latency_s"]

    @property
    def edge_energy_j(self) -> np.ndarray:
        """(L, B, B) joules on the edge, as `edge_latency_s`."""
        return self._edge_tables["energy_j"]

    # --- derived arrays the evaluator gathers from (computed once) ----------------------------------------
    @cached_property
    def inputs(self) -> int:
        """Number of graph inputs (the first tensors)."""
        return int((self.tensor_producer < 0).sum())

    @cached_property
    def layer_offset(self) -> np.ndarray:
        """(1, L) offsets of each layer's block in a table flattened over (layer, bits, bits)."""
        B = len(self.bits)
        return (np.arange(self.layers) * B * B)[None, :]

    @cached_property
    def per_layer_terms(self) -> np.ndarray:
        """(8, L*B*B) per (layer, weight bits, activation bits), flattened for np.take: edge latency, edge
        energy, sensitivity x distortion (the searched end), weight bytes, output bytes, the sensitivity x
        distortion at each of `other_ends`, then the number of the layer's tensors outside the envelope."""
        L, B = self.layers, len(self.bits)
        stack = np.empty((8, L, B, B))
        stack[0] = self.edge_latency_s
        stack[1] = self.edge_energy_j
        stack[2] = self.weight_noise[:, :, None] + self.activation_noise[:, None, :]
        stack[3] = self.weight_bytes[:, :, None]
        stack[4] = self.output_bytes[:, None, :]
        stack[5:7] = self.end_costs
        stack[7] = (~self.weight_inside)[:, :, None].astype(float) + (~self.activation_inside)[:, None, :]
        return stack.reshape(8, L * B * B)

    @cached_property
    def cloud_cost_suffix(self) -> np.ndarray:
        """(L+1,) sensitivity x distortion of the layers k.. run in the cloud."""
        return np.concatenate([np.cumsum(self.cloud_cost[::-1])[::-1], [0.0]])

    @cached_property
    def end_cloud_cost_suffix(self) -> np.ndarray:
        """(2, L+1) the same at each of `other_ends`."""
        suffix = np.cumsum(self.end_cloud_costs[:, ::-1], axis=1)[:, ::-1]
        return np.concatenate([suffix, np.zeros((2, 1))], axis=1)

    @cached_property
    def output_bytes(self) -> np.ndarray:
        """(L, B) raw bytes of each layer's output tensor at each activation bit-width."""
        return self.tensor_elements[self.inputs:, None] * self.bits[None, :] / 8.0

    @cached_property
    def input_bytes(self) -> np.ndarray:
        """(inputs,) raw bytes of the graph inputs in edge memory."""
        return self.tensor_elements[: self.inputs] * self.scenario.input_bits / 8.0

    @cached_property
    def payload_per_tensor(self) -> np.ndarray:
        """(T+1, B) bytes each tensor puts on the wire at each bit-width (codec applied); the last row is a
        zero-size dummy, graph inputs cost the input codec's bytes whatever the column."""
        table = self.tensor_elements[:, None] * self.bytes_per_element
        table[: self.inputs] = self.input_payload_bytes / max(self.inputs, 1)
        return np.vstack([table, np.zeros((1, len(self.bits)))])

    @cached_property
    def crossing_ids(self) -> np.ndarray:
        """(L+1, C) the tensors crossing each prefix cut, padded with the dummy tensor T."""
        T = len(self.tensor_elements)
        width = max(1, int(self.crossing.sum(1).max()))
        ids = np.full((self.layers + 1, width), T)
        for k, row in enumerate(self.crossing):
            found = np.flatnonzero(row)
            ids[k, : len(found)] = found
        return ids

    @cached_property
    def tensor_producer_padded(self) -> np.ndarray:
        """(T+1,) producer layer of each tensor (-1 for graph inputs and the dummy)."""
        return np.append(self.tensor_producer, -1)

    @cached_property
    def live_t(self) -> np.ndarray:
        """(T, L) float32: tensor t is alive while layer i runs."""
        return self.live.T.astype(np.float32)

    @classmethod
    def build(cls, s: Scenario) -> CostTables:
        graph = s.graph
        specs = graph.layer_specs()
        edge_bits = s.edge_bits
        assert edge_bits is not None  # Scenario.__post_init__ fills it in
        # the search draws from the edge's bits; 16 is always tabled too, for the float baselines
        bits = np.array(sorted(set(edge_bits) | {16}))
        L = len(specs)
        weight_elements = np.array([l.weight_elements for l in graph.layers], dtype=float)

        tensors, produced, last_use = tensor_lifetimes(graph)
        position = {t: k for k, t in enumerate(tensors)}
        elements = np.array([graph.tensors[t].elements for t in tensors], dtype=float)
        consumed = np.zeros((len(tensors), L), dtype=bool)
        for l, layer in enumerate(graph.layers):
            for t in layer.inputs:
                consumed[position[t], l] = True
        steps = np.arange(L)
        crossing = (produced[None, :] < np.arange(L + 1)[:, None]) & (np.arange(L + 1)[:, None] <= last_use[None, :])
        end = np.maximum(last_use, produced)  # an unread output is alive at its own step
        live = (produced[None, :] <= steps[:, None]) & (steps[:, None] <= end[None, :])

        per_element = bits[None, :] / 8.0 * np.ones((len(tensors), 1))
        if s.activation_codec == "entropy":
            nonnegative = [graph.layer(t).attrs.get("activation") in NONNEGATIVE_ACTIVATIONS
                           or graph.layer(t).op in NONNEGATIVE_ACTIVATIONS if t in graph.index else True
                           for t in tensors]
            per_element = np.array([[entropy_bits_per_element(int(b), relu) / 8.0 for b in bits]
                                    for relu in nonnegative])
        input_elements = graph.input_elements
        if s.input_codec == "jpeg":
            _, _, h, w = graph.input_shape
            input_payload = jpeg_bytes(h, w, s.jpeg_quality) * graph.input_shape[0]
        else:
            input_payload = input_elements * s.input_bits / 8.0

        received = crossing @ (elements * s.cloud_bits / 8.0)
        cloud = cached_arrays("cloud", {"layers": specs, "accelerator": s.cloud, "bits": s.cloud_bits,
                                        "batch": s.batch, "received_bytes": received},
                              {"layer_s": (L,), "suffix_s": (L + 1,)},
                              partial(_cloud_tables, s.cloud, specs, s.cloud_bits, s.batch, received))

        proxy = s.accuracy
        columns = bit_columns(bits)
        cloud_column = bit_columns(np.array([s.cloud_bits]))[0]
        other_ends = tuple(end for end in ENDS if end != s.accuracy_confidence)
        ends = [proxy.cost_tables(end) for end in other_ends]
        searched_w, searched_a = proxy.cost_tables(s.accuracy_confidence)
        weight_inside, activation_inside = proxy.inside_table(bits)
        price = 0.0 if s.extrapolate else OUTSIDE_COST
        return cls(
            scenario=s, bits=bits, edge_bit_index=np.flatnonzero(np.isin(bits, edge_bits)),
            names=[l.name for l in graph.layers],
            has_weights=weight_elements > 0,
            build_edge_tables=partial(_cached_edge_tables, s.edge, specs, bits, s.batch),
            weight_bytes=weight_elements[:, None] * bits[None, :] / 8.0,
            tensor_elements=elements, tensor_producer=produced, consumed_by=consumed, crossing=crossing, live=live,
            layer_output_tensor=np.array([position[l.name] for l in graph.layers]),
            bytes_per_element=per_element, input_payload_bytes=float(input_payload),
            cloud_suffix_s=cloud["suffix_s"], cloud_layer_s=cloud["layer_s"],
            weight_cost=np.where(weight_inside, searched_w[:, columns], price + searched_w[:, columns]),
            activation_cost=np.where(activation_inside, searched_a[:, columns], price + searched_a[:, columns]),
            weight_noise=searched_w[:, columns], activation_noise=searched_a[:, columns],
            weight_inside=weight_inside, activation_inside=activation_inside,
            cloud_cost=searched_w[:, cloud_column] + searched_a[:, cloud_column],
            other_ends=other_ends, end_costs=np.stack([w[:, columns][:, :, None] + a[:, columns][:, None, :] for w, a in ends]),
            end_cloud_costs=np.stack([w[:, cloud_column] + a[:, cloud_column] for w, a in ends]),
        )

    # --- cloud time of a non-prefix plan -----------------------------------------------------------------
    def cloud_latency_s(self, edge_mask: np.ndarray) -> float:
        """Cloud latency of the layers not in `edge_mask`, as a whole, plus the copy of what crosses to the
        device (cached per edge set)."""
        key = np.packbits(edge_mask).tobytes()
        if key not in self._cloud_cache:
            s = self.scenario
            cloud = np.flatnonzero(~np.asarray(edge_mask, bool))
            specs = [s.graph.layer_specs()[i] for i in cloud]
            produced_on_edge = np.concatenate([np.ones(self.inputs, bool), edge_mask])
            received = self.tensor_elements[produced_on_edge & self.consumed_by[:, cloud].any(1)].sum()
            self._cloud_cache[key] = (
                _network_latency(s.cloud, specs, s.cloud_bits, s.batch)
                + s.cloud.copy_to_device_s(received * s.cloud_bits / 8.0))
        return self._cloud_cache[key]


def _cached_edge_tables(edge: Accelerator, specs: Sequence[LayerSpec], bits: np.ndarray,
                        batch: int) -> dict[str, np.ndarray]:
    """`_edge_tables`, from the cost-table cache when it holds them."""
    L, B = len(specs), len(bits)
    return cached_arrays("edge", {"layers": specs, "accelerator": edge, "bits": bits, "batch": batch},
                         {"latency_s": (L, B, B), "energy_j": (L, B, B)},
                         partial(_edge_tables, edge, specs, bits, batch))


def _edge_tables(edge: Accelerator, specs: Sequence[LayerSpec], bits: np.ndarray, batch: int) -> dict[str, np.ndarray]:
    """(L, B, B) latency_s and energy_j of each layer on the edge at each (weight, activation) bit-width pair."""
    L, B = len(specs), len(bits)
    latency = np.zeros((L, B, B))
    energy = np.zeros((L, B, B))
    supported = set(edge.supported_bits)
    for i, w in enumerate(bits):
        for j, a in enumerate(bits):
            if w not in supported or a not in supported:  # e.g. 16-bit float on an int8-only NPU
                latency[:, i, j] = UNSUPPORTED_S
                energy[:, i, j] = UNSUPPORTED_J
                continue
            rows, _ = edge.network_cost(specs, int(w), int(a), batch)
            latency[:, i, j] = [r.latency_s for r in rows]
            energy[:, i, j] = [r.energy_j for r in rows]
    return {"latency_s": latency, "energy_j": energy}


def _cloud_tables(cloud: Accelerator, specs: Sequence[LayerSpec], bits: int, batch: int,
                  received_bytes: np.ndarray) -> dict[str, np.ndarray]:
    """(L,) layer_s: the cloud latency of each layer alone; (L+1,) suffix_s: of layers k.. as a whole plus the
    copy of what it received at cut k to the device (a GPU's h2d)."""
    L = len(specs)
    rows, _ = cloud.network_cost(specs, bits, bits, batch)
    suffix = [_network_latency(cloud, specs[k:], bits, batch)
              + cloud.copy_to_device_s(received_bytes[k] if k < L else 0.0) for k in range(L + 1)]
    return {"layer_s": np.array([r.latency_s for r in rows]), "suffix_s": np.array(suffix)}


def _network_latency(accelerator: Accelerator, specs: Sequence[LayerSpec], bits: int, batch: int) -> float:
    if not specs:
        return 0.0
    return accelerator.network_cost(specs, bits, bits, batch)[1].latency_s


@dataclass
class Evaluation:
    """Per-plan results of `evaluate`, arrays of shape (plans,). SI units; accuracy in percent.

    `accuracy` and `accuracy_drop` are the prediction at the scenario's `accuracy_confidence` end of the
    interval (what the bound and the searches use: pessimistic by default); `accuracy_expected` is the
    central prediction and `accuracy_low` .. `accuracy_high` the interval."""

    latency_s: np.ndarray
    edge_s: np.ndarray
    transfer_s: np.ndarray
    cloud_s: np.ndarray
    edge_energy_j: np.ndarray
    edge_memory_bytes: np.ndarray
    weight_memory_bytes: np.ndarray
    activation_memory_bytes: np.ndarray
    payload_bytes: np.ndarray
    wire_bytes: np.ndarray
    weighted_distortion: np.ndarray
    accuracy: np.ndarray
    accuracy_drop: np.ndarray
    feasible: np.ndarray
    accuracy_expected: np.ndarray
    accuracy_low: np.ndarray
    accuracy_high: np.ndarray
    inside_envelope: np.ndarray
    """Every edge tensor at or above the bits the accuracy proxy's calibration covers for it."""


def prefix_mask(cut: np.ndarray, layers: int) -> np.ndarray:
    """(plans, layers) bool: layer i is on the edge when i < cut."""
    return np.arange(layers)[None, :] < np.asarray(cut)[:, None]


def evaluate(tables: CostTables, weight_bits: np.ndarray, activation_bits: np.ndarray,
             cut: np.ndarray | None = None, edge_mask: np.ndarray | None = None) -> Evaluation:
    """Evaluate a batch of plans.

    weight_bits, activation_bits: (plans, layers) indices into `tables.bits`.
    cut: (plans,) prefix cut indices (0 = cloud-only, layers = edge-only), or
    edge_mask: (plans, layers) bool edge sets (closed under predecessors), for non-prefix plans.
    """
    s = tables.scenario
    L, B = tables.layers, len(tables.bits)
    w = np.asarray(weight_bits, dtype=np.intp)
    a = np.asarray(activation_bits, dtype=np.intp)
    plans = len(w)
    n_inputs = tables.inputs
    if edge_mask is None:
        cut = np.asarray(cut, dtype=np.intp)
        mask = prefix_mask(cut, L)
    else:
        mask = np.asarray(edge_mask, dtype=bool)
    on_edge = mask.astype(np.float64)

    if mask.any():
        # per-layer terms: one gather from a table flattened over (layer, weight bits, activation bits)
        combo = w * B
        combo += a
        combo += tables.layer_offset
        terms = tables.per_layer_terms
        edge_s, energy, distortion, weight_memory, outside, *end_sums = (
            np.einsum("pl,pl->p", np.take(terms[k], combo), on_edge) for k in (0, 1, 2, 3, 7, 5, 6))
        at_ends = np.stack(end_sums)
        output_bytes = np.take(terms[4], combo)                              # raw bytes of each layer's output
    else:  # every plan wholly in the cloud: each edge term is 0 (and the edge's tables need not exist)
        edge_s, energy, distortion, weight_memory, outside = np.zeros((5, plans))
        at_ends = np.zeros((2, plans))
        output_bytes = np.zeros((plans, L))

    if edge_mask is None:
        cloud_s = tables.cloud_suffix_s[cut]
        distortion += tables.cloud_cost_suffix[cut]
        at_ends += tables.end_cloud_cost_suffix[:, cut]
        # payload: the few tensors crossing each cut, padded with a zero-size dummy tensor
        ids = tables.crossing_ids[cut]                                      # (plans, C)
        producer = tables.tensor_producer_padded[ids]                       # -1: graph input or dummy
        bits_of = np.take_along_axis(a, np.maximum(producer, 0), axis=1)
        payload = np.where(producer >= 0, tables.payload_per_tensor[ids, bits_of],
                           tables.payload_per_tensor[ids, 0]).sum(1)
    else:
        prefix = mask.sum(1)
        is_prefix = (mask == prefix_mask(prefix, L)).all(1)
        cloud_s = np.array([tables.cloud_suffix_s[k] if p else tables.cloud_latency_s(m)
                            for k, p, m in zip(prefix, is_prefix, mask)])
        distortion += (1.0 - on_edge) @ tables.cloud_cost
        at_ends += tables.end_cloud_costs @ (1.0 - on_edge).T
        produced_on_edge = np.concatenate([np.ones((plans, n_inputs), bool), mask], axis=1)
        read_by_cloud = (~mask).astype(np.float32) @ tables.consumed_by.T.astype(np.float32) > 0
        crossing = produced_on_edge & read_by_cloud
        per_tensor = np.empty((plans, n_inputs + L))
        per_tensor[:, :n_inputs] = tables.payload_per_tensor[:n_inputs, 0]
        per_tensor[:, n_inputs:] = tables.payload_per_tensor[n_inputs + np.arange(L)[None, :], a]
        payload = (crossing * per_tensor).sum(1)
    payload = np.maximum(np.ceil(payload - 1e-9), 0.0)

    link = s.link
    sending = payload > 0
    transfer_s = np.zeros(plans)
    wire = np.zeros(plans)
    if sending.any():
        transfer_s[sending] = link.transfer_time_s(payload[sending])
        wire[sending] = link.wire_bytes(payload[sending])
        energy[sending] += link.radio_energy_j(payload[sending])

    # activation memory on the edge
    if s.memory_model == "max_layer":
        activation_memory = (output_bytes * on_edge).max(1)
    else:
        tensor_bytes = np.empty((plans, n_inputs + L), dtype=np.float32)
        tensor_bytes[:, :n_inputs] = tables.input_bytes
        tensor_bytes[:, n_inputs:] = output_bytes * on_edge
        live_bytes = tensor_bytes @ tables.live_t                            # (plans, L)
        activation_memory = (live_bytes * on_edge).max(1)
    memory = weight_memory + activation_memory

    accuracy = s.accuracy.predict_from_weighted_sum(distortion)
    sums = {s.accuracy_confidence: distortion, **dict(zip(tables.other_ends, at_ends))}
    expected = s.accuracy.predict_from_weighted_sum(sums["expected"])
    low, high = s.accuracy.interval_from_weighted_sums(sums["pessimistic"], sums["optimistic"])
    drop = s.accuracy.fp_accuracy - accuracy
    latency = edge_s + transfer_s + cloud_s
    inside = outside < 0.5
    feasible = (memory <= s.edge_memory_bytes) & (drop <= s.max_accuracy_drop + 1e-9) & (inside | s.extrapolate)
    return Evaluation(latency, edge_s, transfer_s, cloud_s, energy, memory, weight_memory, activation_memory,
                      payload, wire, distortion, accuracy, drop, feasible, expected, low, high, inside)
