"""Auto-Split (Banitalebi-Dehkordi et al., KDD 2021, arXiv 2108.13041), its Algorithm 1.

1. Candidate splits (the paper's Eq. 6): with every activation at the lowest bit-width, keep a cut when it
   sends no more than the raw input and the edge part fits the memory at the lowest bit-widths.
2. For each candidate split and each activation bit budget b (every edge bit-width), the edge layers'
   activations get b bits and their weights are allocated by a Lagrangian (Shoham-Gersho) method: for a
   multiplier lambda each layer takes argmin_b sensitivity x distortion(b) + lambda x weight bytes(b); every
   breakpoint lambda gives one allocation, from all-highest to all-lowest bits. Those that fit what the
   activations leave of the memory budget are the paper's list of feasible solutions.
3. The answer is the lowest-latency solution within the accuracy bound.
The paper allocates activations with a Lagrangian too; here one budget per plan sets them all (its plots'
labels, e.g. "8.0_12_4", name exactly that budget), which keeps the list small and the payload explicit.
"""
from __future__ import annotations

import numpy as np

from simulator.evaluate import CostTables, evaluate
from simulator.search.base import Candidates, SearchMethod


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
    cost = tables.weight_cost[:, allowed]
    size = tables.weight_bytes[:, allowed]
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

    def propose(self, tables: CostTables, budget: dict, seed: int) -> Candidates:
        cuts = candidate_splits(tables)
        weights = lagrangian_allocations(tables)
        parts = []
        for b in tables.edge_bit_index:
            count = len(cuts) * len(weights)
            w = np.tile(weights, (len(cuts), 1))
            a = np.full((count, tables.layers), b)
            parts.append(Candidates(w, a, cut=np.repeat(cuts, len(weights))))
        candidates = Candidates.concat(parts, tables.layers)
        # the paper's list of feasible solutions: within the memory budget
        ev = candidates.evaluate(tables)
        fits = ev.edge_memory_bytes <= tables.scenario.edge_memory_bytes
        self.info = {"candidate_splits": [int(c) for c in cuts], "weight_allocations": len(weights),
                     "solutions": int(fits.sum())}
        return Candidates(candidates.weight_bits[fits], candidates.activation_bits[fits], cut=candidates.cut[fits])
