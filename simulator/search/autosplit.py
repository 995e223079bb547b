"""Auto-Split (Banitalebi-Dehkordi et al., KDD 2021, arXiv 2108.13041), its Algorithm 1.

1. Candidate splits (the paper's Eq. 6): with every activation at the lowest bit-width, keep a cut when it
   sends no more than the raw input and the edge part fits the memory at the lowest bit-widths.
2. For each candidate split and each activation budget b (every edge bit-width: the average bits of the edge
   activations, weighted by their sizes, the "4" of the paper's label "8.0_12_4"), the edge activations are
   allocated by a Lagrangian (Shoham-Gersho) method, as the paper does: for a multiplier lambda each edge
   layer's output takes argmin_b sensitivity x distortion(b) + lambda x bits x elements; of the breakpoint
   allocations, the least distorted one within the budget is kept. The weights are allocated the same way
   (lambda x weight bytes); every weight allocation that fits what the activations leave of the memory
   budget is on the paper's list of feasible solutions.
3. The answer is the lowest-latency solution within the accuracy bound.
`AutoSplit(activation_allocation="uniform")` gives every edge activation the budget's bits instead (one
bit-width per plan, a simplification kept for comparison: `benchmarks/autosplit_activations.py`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.evaluate import CostTables, evaluate
from simulator.search.base import Candidates, Proposal, SearchMethod


def candidate_splits(tables: CostTables) -> np.ndarray:
    """Prefix cuts that pass Eq. 6 at the lowest edge bit-widths (cloud-only always kept)."""
    low = int(tables.edge_bit_index[0])
    L = tables.layers
    cuts = np.arange(L + 1)
    lowest = np.full((L + 1, L), low)
    ev = evaluate(tables, lowest, lowest, cut=cuts)
    raw_input = tables.input_bytes.sum()
    keep = (ev.payload_bytes <= raw_input) & (ev.edge_memory_bytes <= tables.scenario.edge_memory_bytes)
    keep[0] = True
    return cuts[keep]


def lagrangian_allocations(tables: CostTables) -> np.ndarray:
    """(allocations, L) weight bit indices: for every breakpoint multiplier, each layer's
    argmin over the edge bits of weight cost + lambda x weight bytes (the lower convex hull, walked)."""
    allowed = tables.edge_bit_index
    return _lagrangian(tables.weight_cost[:, allowed], tables.weight_bytes[:, allowed], allowed)


@dataclass(frozen=True)
class ActivationPath:
    """The Lagrangian activation allocations of the whole network, computed once: each edge layer's output
    takes argmin_b cost + lambda x bits x elements, for lambda along every breakpoint (bits only fall as lambda
    grows). A layer's choice at a given lambda does not depend on the cut, so the allocations of the prefix
    [0, cut) are this path's rows restricted to it, and prefix sums give every cut's average bits and
    distortion without running the Lagrangian again per cut."""

    rows: np.ndarray          # (allocations, L) bit indices, lambda ascending, consecutive rows distinct
    first_change: np.ndarray  # (allocations,) first layer in which a row differs from the one before (0 first)
    bit_elements: np.ndarray  # (allocations, L) cumulative bits x elements over the layers
    distortion: np.ndarray    # (allocations, L) cumulative distortion over the layers
    elements: np.ndarray      # (L,) cumulative elements of the layers' outputs

    @staticmethod
    def of(tables: CostTables) -> ActivationPath:
        allowed = tables.edge_bit_index
        elements = tables.tensor_elements[tables.inputs:].astype(float)
        bits = tables.bits[allowed].astype(float)
        rows = _lagrangian_path(tables.activation_cost[:, allowed], elements[:, None] * bits[None, :], allowed)
        changed = rows[1:] != rows[:-1]
        first_change = np.concatenate([[0], np.argmax(changed, axis=1)])
        layer = np.arange(tables.layers)[None, :]
        return ActivationPath(rows, first_change, np.cumsum(tables.bits[rows] * elements[None, :], axis=1),
                              np.cumsum(tables.activation_cost[layer, rows], axis=1), np.cumsum(elements))


def activation_allocations(tables: CostTables, cut: int, budgets: np.ndarray,
                           path: ActivationPath | None = None) -> np.ndarray:
    """(len(budgets), L) activation bit indices for prefix cut `cut`: per budget (average edge activation
    bits, weighted by size), the least distorted breakpoint allocation of the edge layers' outputs within it
    (the lowest bits everywhere if none is). Layers past the cut get the highest edge bits (unused)."""
    allowed = tables.edge_bit_index
    out = np.full((len(budgets), tables.layers), allowed[-1])
    if cut == 0:
        return out
    path = path or ActivationPath.of(tables)
    rows = np.flatnonzero(path.first_change < cut)  # the distinct allocations of layers [0, cut)
    average = path.bit_elements[rows, cut - 1] / path.elements[cut - 1]
    for k, budget in enumerate(budgets):
        within = rows[average <= budget + 1e-9]
        if within.size:
            # ties go to the later row (fewer bits), as lexicographic order among the allocations would
            best = within[::-1][np.argmin(path.distortion[within[::-1], cut - 1])]
            out[k, :cut] = path.rows[best, :cut]
        else:
            out[k, :cut] = allowed[0]
    return out


def _lagrangian(cost: np.ndarray, size: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """(allocations, layers) indices into `allowed`-mapped bits: each layer's argmin of cost + lambda x size
    at every breakpoint lambda, from all-highest (lambda = 0) to all-lowest (distinct rows, sorted)."""
    return np.unique(_lagrangian_path(cost, size, allowed), axis=0)


def _lagrangian_path(cost: np.ndarray, size: np.ndarray, allowed: np.ndarray, chunk: int = 256) -> np.ndarray:
    """The allocations of `_lagrangian` in order of the multiplier (consecutive duplicates dropped),
    computed `chunk` multipliers at a time so that memory stays small on networks of hundreds of layers."""
    # breakpoints: multipliers at which some layer's best choice can change
    d_cost = cost[:, :, None] - cost[:, None, :]
    d_size = size[:, None, :] - size[:, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        slopes = d_cost / d_size
    slopes = slopes[np.isfinite(slopes) & (slopes > 0)]
    multipliers = np.unique(np.concatenate([[0.0], slopes * (1 + 1e-9), slopes * (1 - 1e-9), [np.inf]]))
    finite = np.where(np.isinf(multipliers), 1e300, multipliers)
    choices = []
    for start in range(0, len(finite), chunk):
        objective = cost[None, :, :] + finite[start:start + chunk, None, None] * size[None, :, :]
        # ties go to more bits (higher index), so lambda = 0 is all-highest
        choices.append(objective.shape[2] - 1 - np.argmin(objective[:, :, ::-1], axis=2))
    choice = np.concatenate(choices)
    keep = np.concatenate([[True], (choice[1:] != choice[:-1]).any(axis=1)])
    return allowed[choice[keep]]


class AutoSplit(SearchMethod):
    name = "autosplit"

    def __init__(self, activation_allocation: str = "lagrangian") -> None:
        if activation_allocation not in ("lagrangian", "uniform"):
            raise ValueError(f"activation_allocation: expected lagrangian or uniform, got {activation_allocation!r}")
        self.activation_allocation = activation_allocation

    def propose(self, tables: CostTables, budget: dict, seed: int) -> Proposal:
        cuts = candidate_splits(tables)
        weights = lagrangian_allocations(tables)
        budgets = tables.bits[tables.edge_bit_index].astype(float)
        # weight bytes of each allocation's first k layers: an allocation whose edge weights alone exceed the
        # memory cannot be on the feasible list, so it is never paired with activations (the evaluator's own
        # weight memory, so nothing feasible is dropped); without this, a 270-layer network lists ~10^6 plans
        path = ActivationPath.of(tables) if self.activation_allocation == "lagrangian" else None
        weight_prefix = np.cumsum(tables.weight_bytes[np.arange(tables.layers)[None, :], weights], axis=1)
        parts = []
        for cut in cuts:
            if self.activation_allocation == "uniform":
                activations = np.repeat(tables.edge_bit_index[:, None], tables.layers, axis=1)
            else:
                activations = activation_allocations(tables, int(cut), budgets, path)
            activations = np.unique(activations, axis=0)
            edge_weights = weights[:1] if cut == 0 else weights[weight_prefix[:, cut - 1]
                                                                <= tables.scenario.edge_memory_bytes]
            if cut > 0:  # allocations that differ only past the cut are the same plan
                _, first = np.unique(edge_weights[:, :cut], axis=0, return_index=True)
                edge_weights = edge_weights[np.sort(first)]
            w = np.tile(edge_weights, (len(activations), 1)).astype(np.int8)
            a = np.repeat(activations, len(edge_weights), axis=0).astype(np.int8)
            parts.append(Candidates(w, a, cut=np.full(len(w), cut)))
        candidates = Candidates.concat(parts, tables.layers)
        # the paper's list of feasible solutions: within the memory budget (evaluated in chunks: bounded memory)
        chunk = 20_000
        fits = np.concatenate([np.zeros(0, bool)] + [
            candidates.subset(np.arange(start, min(start + chunk, len(candidates)))).evaluate(tables)
            .edge_memory_bytes <= tables.scenario.edge_memory_bytes for start in range(0, len(candidates), chunk)])
        info = {"candidate_splits": [int(c) for c in cuts], "weight_allocations": len(weights),
                "activation_allocation": self.activation_allocation, "solutions": int(fits.sum())}
        return Proposal(candidates.subset(fits), info)


def guarantee(info: dict) -> str:
    """What Auto-Split's answer is, from its run's `info` (a sentence of summary.md)."""
    return (f"autosplit: the paper's Algorithm 1, {info.get('activation_allocation', 'lagrangian')} activation "
            f"allocation, {info.get('solutions', 0):,} feasible solutions listed. Its Lagrangian prices every edge "
            "activation's bits by the tensor's size under one average-bits budget, while the latency depends only "
            "on the bits of the tensors crossing the cut: it cannot give the sent tensor few bits and the others "
            "many, so where only that pays the exact search finds faster plans.")
