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

import weakref

import numpy as np

from simulator.evaluate import CostTables, evaluate
from simulator.search.base import Candidates, Proposal, SearchMethod
from simulator.search.pareto import nondominated


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


def activation_allocations(tables: CostTables, cut: int, budgets: np.ndarray) -> np.ndarray:
    """(len(budgets), L) activation bit indices for prefix cut `cut`: per budget (average edge activation
    bits, weighted by size), the least distorted breakpoint allocation of the edge layers' outputs within it
    (the lowest bits everywhere if none is). Layers past the cut get the highest edge bits (unused)."""
    allowed = tables.edge_bit_index
    L = tables.layers
    out = np.full((len(budgets), L), allowed[-1])
    if cut == 0:
        return out
    elements = tables.tensor_elements[tables.inputs:][:cut]
    bits = tables.bits[allowed].astype(float)
    choices = _lagrangian(tables.activation_cost[:cut][:, allowed], elements[:, None] * bits[None, :], allowed)
    average = (tables.bits[choices] * elements[None, :]).sum(1) / elements.sum()
    distortion = tables.activation_cost[np.arange(cut)[None, :], choices].sum(1)
    for k, budget in enumerate(budgets):
        within = np.flatnonzero(average <= budget + 1e-9)
        out[k, :cut] = choices[within[np.argmin(distortion[within])]] if within.size else allowed[0]
    return out


def _lagrangian(cost: np.ndarray, size: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """(allocations, layers) indices into `allowed`-mapped bits: each layer's argmin of cost + lambda x size
    at every breakpoint lambda, from all-highest (lambda = 0) to all-lowest."""
    # breakpoints: multipliers at which some layer's best choice can change
    d_cost = cost[:, :, None] - cost[:, None, :]
    d_size = size[:, None, :] - size[:, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        slopes = d_cost / d_size
    slopes = slopes[np.isfinite(slopes) & (slopes > 0)]
    multipliers = np.unique(np.concatenate([[0.0], slopes * (1 + 1e-9), slopes * (1 - 1e-9), [np.inf]]))
    finite = np.where(np.isinf(multipliers), 1e300, multipliers)
    objective = cost[None, :, :] + finite[:, None, None] * size[None, :, :]
    # ties go to more bits (higher index), so lambda = 0 is all-highest
    choice = objective.shape[2] - 1 - np.argmin(objective[:, :, ::-1], axis=2)
    return np.unique(allowed[choice], axis=0)


class AutoSplit(SearchMethod):
    name = "autosplit"

    def __init__(self, activation_allocation: str = "lagrangian") -> None:
        if activation_allocation not in ("lagrangian", "uniform"):
            raise ValueError(f"activation_allocation: expected lagrangian or uniform, got {activation_allocation!r}")
        self.activation_allocation = activation_allocation

    def propose(self, tables: CostTables, budget: dict, seed: int) -> Proposal:
        """The paper's feasible solutions, computed once per cost table and allocation (Auto-Split's own run,
        the exact front's incumbents and Optuna's warm start read the same; deterministic: `seed` unused)."""
        key = (id(tables), self.activation_allocation)
        cached = _PROPOSALS.get(key)
        if cached is None or cached[0]() is not tables:
            proposal = self._propose(tables)
            _PROPOSALS[key] = (weakref.ref(tables, lambda _: _PROPOSALS.pop(key, None)), proposal)
        else:
            proposal = cached[1]
        return Proposal(proposal.candidates, dict(proposal.info))

    def _propose(self, tables: CostTables) -> Proposal:
        cuts = candidate_splits(tables)
        weights = lagrangian_allocations(tables)
        budgets = tables.bits[tables.edge_bit_index].astype(float)
        parts = []
        for cut in cuts:
            if self.activation_allocation == "uniform":
                activations = np.repeat(tables.edge_bit_index[:, None], tables.layers, axis=1)
            else:
                activations = activation_allocations(tables, int(cut), budgets)
            activations = np.unique(activations, axis=0)
            w = np.tile(weights, (len(activations), 1))
            a = np.repeat(activations, len(weights), axis=0)
            parts.append(Candidates(w, a, cut=np.full(len(w), cut)))
        candidates = Candidates.concat(parts, tables.layers)
        # the paper's list of feasible solutions: within the memory budget
        ev = candidates.evaluate(tables)
        fits = ev.edge_memory_bytes <= tables.scenario.edge_memory_bytes
        info = {"candidate_splits": [int(c) for c in cuts], "weight_allocations": len(weights),
                "activation_allocation": self.activation_allocation, "solutions": int(fits.sum())}
        return Proposal(candidates.subset(fits), info)


_PROPOSALS: dict[tuple[int, str], tuple[weakref.ref, Proposal]] = {}
"""AutoSplit proposals by (id of the cost tables, allocation), dropped with their tables."""


def autosplit_front(tables: CostTables) -> Candidates:
    """Auto-Split's feasible plans on the front over (latency, accuracy drop), as prefix plans."""
    c = AutoSplit().propose(tables, {}, 0).candidates
    if not len(c):
        return c
    ev = c.evaluate(tables)
    feasible = np.flatnonzero(ev.feasible)
    front = feasible[nondominated(np.column_stack([ev.latency_s, ev.accuracy_drop])[feasible])]
    return c.subset(front)


def guarantee(info: dict) -> str:
    """What Auto-Split's answer is, from its run's `info` (a sentence of summary.md)."""
    return (f"autosplit: the paper's Algorithm 1, {info.get('activation_allocation', 'lagrangian')} activation "
            f"allocation, {info.get('solutions', 0):,} feasible solutions listed.")
