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

import time
import weakref
from dataclasses import dataclass

import numpy as np

from simulator.evaluate import CostTables, Evaluation, Scenario, evaluate
from simulator.search.base import Candidates, Proposal, SearchMethod, SearchResult, result_from
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
        """The paper's feasible solutions, computed once per cost table and allocation (Auto-Split's own run,
        the exact front's incumbents and Optuna's warm start read the same; deterministic: `seed` unused)."""
        proposal = self.listed(tables).proposal
        return Proposal(proposal.candidates, dict(proposal.info))

    def run(self, scenario: Scenario, budget: dict | None = None, seed: int = 0) -> SearchResult:
        """As `SearchMethod.run`, with the list's evaluation computed once per cost table too."""
        tables = scenario.tables
        start = time.perf_counter()
        listed = self.listed(tables)
        elapsed_s = time.perf_counter() - start
        return result_from(self.name, tables, listed.proposal.candidates, listed.evaluation, elapsed_s,
                           info=dict(listed.proposal.info), seed=seed)

    def listed(self, tables: CostTables) -> Listed:
        """The feasible list on `tables` and its evaluation, cached with the tables."""
        key = (id(tables), self.activation_allocation)
        cached = _LISTED.get(key)
        if cached is not None and cached[0]() is tables:
            return cached[1]
        proposal = self._propose(tables)
        listed = Listed(proposal, proposal.candidates.evaluate(tables))
        _LISTED[key] = (weakref.ref(tables, lambda _: _LISTED.pop(key, None)), listed)
        return listed

    def _propose(self, tables: CostTables) -> Proposal:
        cuts = candidate_splits(tables)
        weights = lagrangian_allocations(tables)
        budgets = tables.bits[tables.edge_bit_index].astype(float)
        memory = tables.scenario.edge_memory_bytes
        # a plan's edge memory is its weights' bytes plus its activations' memory (which does not depend on
        # the weights), so which (activation, weight) pairs fit is an outer sum per cut: only the pairs on the
        # feasible list are ever built. Weight bytes are multiples of 1/8, so their prefix sums are exact and
        # equal to the evaluator's; the activation memory is the evaluator's own (one call for every cut).
        path = ActivationPath.of(tables) if self.activation_allocation == "lagrangian" else None
        weight_prefix = np.cumsum(tables.weight_bytes[np.arange(tables.layers)[None, :], weights], axis=1)
        weight_first_change = _first_change(weights)
        activations = []
        for cut in cuts:
            if self.activation_allocation == "uniform":
                rows = np.repeat(tables.edge_bit_index[:, None], tables.layers, axis=1)
            else:
                rows = activation_allocations(tables, int(cut), budgets, path)
            activations.append(np.unique(rows, axis=0))
        sizes = [len(rows) for rows in activations]
        stacked = np.concatenate(activations)
        memory_of = evaluate(tables, stacked, stacked, cut=np.repeat(cuts, sizes)).activation_memory_bytes
        activation_memory = np.split(memory_of, np.cumsum(sizes)[:-1])
        parts = []
        for cut, rows, activation_bytes in zip(cuts, activations, activation_memory):
            if cut == 0:
                chosen, weight_bytes = np.zeros(1, np.intp), np.zeros(1)
            else:
                # the weights' rows are sorted, so allocations sharing their first `cut` layers (the same plan)
                # are adjacent: the first of each, of those whose edge weights alone fit the memory
                chosen = np.flatnonzero((weight_first_change < cut) & (weight_prefix[:, cut - 1] <= memory))
                weight_bytes = weight_prefix[chosen, cut - 1]
            a, w = np.nonzero(weight_bytes[None, :] + activation_bytes[:, None] <= memory)
            parts.append(Candidates(weights[chosen[w]].astype(np.int8), rows[a].astype(np.int8),
                                    cut=np.full(len(a), cut)))
        candidates = Candidates.concat(parts, tables.layers)
        info = {"candidate_splits": [int(c) for c in cuts], "weight_allocations": len(weights),
                "activation_allocation": self.activation_allocation, "solutions": len(candidates)}
        return Proposal(candidates, info)


@dataclass(frozen=True)
class Listed:
    """Auto-Split's feasible list on one cost table (the proposal) and its evaluation."""

    proposal: Proposal
    evaluation: Evaluation


_LISTED: dict[tuple[int, str], tuple[weakref.ref, Listed]] = {}
"""Auto-Split's lists by (id of the cost tables, allocation), dropped with their tables."""


def _first_change(rows: np.ndarray) -> np.ndarray:
    """(n,) the first column in which each row differs from the row before (0 for the first row; the
    number of columns where they are equal)."""
    changed = np.vstack([np.ones((1, rows.shape[1]), bool), rows[1:] != rows[:-1]])
    return np.where(changed.any(1), np.argmax(changed, axis=1), rows.shape[1])


def autosplit_front(tables: CostTables) -> Candidates:
    """Auto-Split's feasible plans on the front over (latency, accuracy drop), as prefix plans."""
    listed = AutoSplit().listed(tables)
    c, ev = listed.proposal.candidates, listed.evaluation
    if not len(c):
        return c
    feasible = np.flatnonzero(ev.feasible)
    front = feasible[nondominated(np.column_stack([ev.latency_s, ev.accuracy_drop])[feasible])]
    return c.subset(front)


def guarantee(info: dict) -> str:
    """What Auto-Split's answer is, from its run's `info` (a sentence of summary.md)."""
    return (f"autosplit: the paper's Algorithm 1, {info.get('activation_allocation', 'lagrangian')} activation "
            f"allocation, {info.get('solutions', 0):,} feasible solutions listed. Its Lagrangian prices every edge "
            "activation's bits by the tensor's size under one average-bits budget, while the latency depends only "
            "on the bits of the tensors crossing the cut: it cannot give the sent tensor few bits and the others "
            "many, so where only that pays the exact search finds faster plans.")
