"""The baselines the Auto-Split paper compares against, each as its paper describes it.

- `cloud` (CLOUD16): everything in the cloud at 16 bits; the input image is sent (raw 8-bit, or JPEG).
- `edge-uN` (U2/U4/U6/U8): everything on the edge, every weight and activation at N bits.
- `neurosurgeon`: Kang et al., "Neurosurgeon: Collaborative Intelligence Between the Cloud and Mobile Edge",
  ASPLOS 2017. The network is treated as a chain in execution order; each layer boundary is scored with the
  output of the layer before it as the only payload; float (16-bit, or 32 on an fp32-only edge) on both
  sides. The chosen cut is then re-scored with every tensor that really crosses it.
- `dads`: Hu et al., "Dynamic Adaptive DNN Surgery for Inference Acceleration on the Edge", INFOCOM 2019.
  The DAG is split by an s-t minimum cut whose capacities are each layer's edge time, each layer's cloud
  time and each tensor's transfer time (float), so the edge part may be any closed set, not only a prefix.
- `qdmp`: Zhang et al., "Towards Real-time Cooperative Deep Inference over the Cloud and Edge End Devices",
  IMWUT 2020 (Quick Deep Model Partition). The optimal closed set lies between two consecutive cut vertices
  (layers every path passes through), so only the segment between them needs a min-cut: same optimum as
  DADS, on smaller graphs.
Layer times in the min-cut models are the cost tables' per-layer times (for the cloud, each layer alone);
every plan is then evaluated with the full model like all others.
"""
from __future__ import annotations

import numpy as np

from simulator.evaluate import UNSUPPORTED_S, CostTables, Scenario
from simulator.search.base import Candidates, Proposal, SearchMethod, uniform


class CloudOnly(SearchMethod):
    name = "cloud"
    single_answer = True

    def propose(self, tables: CostTables, budget: dict, seed: int) -> Proposal:
        w, a = uniform(tables, 16)
        return Proposal(Candidates(w, a, cut=np.array([0])))


class EdgeUniform(SearchMethod):
    single_answer = True

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.name = f"edge-u{bits}"

    def propose(self, tables: CostTables, budget: dict, seed: int) -> Proposal:
        w, a = uniform(tables, self.bits)
        return Proposal(Candidates(w, a, cut=np.array([tables.layers])))


def uniform_bits_missing(bits: int, scenario: Scenario) -> str | None:
    """Why the edge cannot run edge-u`bits` (`bits` is not among the scenario's edge bit-widths), or None. Such a
    baseline is skipped with this note rather than evaluated at another width."""
    edge_bits = tuple(scenario.edge_bits or ())
    if bits in edge_bits:
        return None
    return (f"{scenario.edge.name} runs {', '.join(map(str, edge_bits))}-bit here, not {bits}-bit "
            "(the preset's supported_bits, or bits.edge)")


def float_bits(tables: CostTables) -> int:
    """The float width of the float baselines' edge layers: 16, or 32 on an edge that computes 32-bit floats but
    not 16 (a device profiled in fp32 by `autosplit profile`)."""
    edge = set(tables.scenario.edge.supported_bits)
    return 32 if 16 not in edge and 32 in edge and 32 in tables.bits else 16


def _float_costs(tables: CostTables) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per layer: edge time and cloud time; per tensor: transfer time, all in float (`float_bits`)."""
    bits = float_bits(tables)
    f = int(np.flatnonzero(tables.bits == bits)[0])
    rows = np.arange(tables.layers)
    edge = tables.edge_latency_s[rows, f, f]
    link = tables.scenario.link
    n_inputs = int((tables.tensor_producer < 0).sum())
    sizes = tables.tensor_elements * bits / 8.0
    sizes[:n_inputs] = tables.input_payload_bytes / max(n_inputs, 1)
    transfer = np.asarray(link.transfer_time_s(np.maximum(sizes, 1.0)), dtype=np.float64)
    return edge, tables.cloud_layer_s, transfer


class Neurosurgeon(SearchMethod):
    name = "neurosurgeon"
    single_answer = True

    def propose(self, tables: CostTables, budget: dict, seed: int) -> Proposal:
        edge, _, transfer = _float_costs(tables)
        n_inputs = int((tables.tensor_producer < 0).sum())
        # the chain view: after layer k-1 only its own output is sent (before layer 0: the input)
        chain_transfer = np.concatenate([[transfer[:n_inputs].sum()], transfer[n_inputs:]])
        chain_transfer[-1] = 0.0  # edge-only sends nothing
        estimate = np.concatenate([[0.0], np.cumsum(edge)]) + chain_transfer + tables.cloud_suffix_s
        cut = int(np.argmin(estimate))
        w, a = uniform(tables, float_bits(tables))
        return Proposal(Candidates(w, a, cut=np.array([cut])), {"chain_estimate_s": float(estimate[cut])})


def _min_cut(tables: CostTables, layers: list[int], sources: list[int]) -> tuple[float, set[int]]:
    """Minimum-cost closed edge set among `layers` (given that tensors `sources` are already on the edge).

    Returns (cost of the cut, edge layers). s-t graph: s->v (cloud time, paid when v is in the cloud),
    v->t (edge time, paid on the edge), producer->tensor node (transfer, paid when a consumer is in the
    cloud), tensor node->consumer and consumer->producer (infinite: consumers of a cloud tensor are in the
    cloud, and the edge set is closed under predecessors).
    """
    import networkx as nx  # lazily: only DADS and QDMP cut a DAG, and networkx takes a tenth of a second to load

    edge, cloud, transfer = _float_costs(tables)
    inside = set(layers)
    last = max(layers, default=-1)
    n_inputs = int((tables.tensor_producer < 0).sum())
    g = nx.DiGraph()
    for v in layers:  # an op the edge cannot run (no float on an int8 NPU) costs "forever", not infinity
        g.add_edge("s", ("layer", v), capacity=float(min(cloud[v], UNSUPPORTED_S)))
        g.add_edge(("layer", v), "t", capacity=float(min(edge[v], UNSUPPORTED_S)))
    tensors = set(sources) | {n_inputs + v for v in layers}
    for t in tensors:
        all_readers = np.flatnonzero(tables.consumed_by[t])
        readers = [v for v in all_readers if v in inside]
        read_later = any(v > last for v in all_readers)  # past the segment: in the cloud
        if not readers and not read_later:
            continue
        producer = int(tables.tensor_producer[t])
        node = ("layer", producer) if producer in inside else "s"
        g.add_edge(node, ("tensor", t), capacity=float(transfer[t]))
        if read_later:
            g.add_edge(("tensor", t), "t")
        for reader in readers:
            g.add_edge(("tensor", t), ("layer", reader))  # no capacity attribute: infinite
            if producer in inside:
                g.add_edge(("layer", reader), ("layer", producer))
    if "t" not in g:
        return 0.0, set()
    cost, (source_side, _) = nx.minimum_cut(g, "s", "t")
    return cost, {node[1] for node in source_side if isinstance(node, tuple) and node[0] == "layer"}


def _float_plan(tables: CostTables, edge_layers: set[int]) -> Candidates:
    w, a = uniform(tables, float_bits(tables))
    mask = np.zeros((1, tables.layers), dtype=bool)
    mask[0, sorted(edge_layers)] = True
    return Candidates(w, a, edge_mask=mask)


class DADS(SearchMethod):
    name = "dads"
    single_answer = True

    def propose(self, tables: CostTables, budget: dict, seed: int) -> Proposal:
        n_inputs = int((tables.tensor_producer < 0).sum())
        cost, edge_layers = _min_cut(tables, list(range(tables.layers)), list(range(n_inputs)))
        return Proposal(_float_plan(tables, edge_layers), {"min_cut_s": cost})


def cut_vertices(tables: CostTables) -> list[int]:
    """Prefix cuts crossed by exactly one tensor: the boundaries no path can bypass (0 and L included)."""
    single = tables.crossing.sum(1) == 1
    return sorted({0, tables.layers} | set(np.flatnonzero(single).tolist()))


class QDMP(SearchMethod):
    name = "qdmp"
    single_answer = True

    def propose(self, tables: CostTables, budget: dict, seed: int) -> Proposal:
        edge, cloud, _ = _float_costs(tables)
        best: tuple[float, set[int]] = (np.inf, set())
        boundaries = cut_vertices(tables)
        for start, stop in zip(boundaries[:-1], boundaries[1:]):
            sources = np.flatnonzero(tables.crossing[start]).tolist()
            cost, inner = _min_cut(tables, list(range(start, stop)), sources)
            total = edge[:start].sum() + cost + cloud[stop:].sum()
            if total < best[0] - 1e-15:
                best = (total, set(range(start)) | inner)
        return Proposal(_float_plan(tables, best[1]), {"min_cut_s": best[0], "segments": len(boundaries) - 1})
