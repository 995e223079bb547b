"""The space Optuna searches: a cut and a few knobs, decoded into per-layer bits by a Lagrangian allocation.

Per-layer bits for 50-300 layers are more than NSGA-II or TPE can search in a few thousand trials, so a trial
holds only what a plan's trade-off turns on:
- `cut`: a prefix cut, a categorical over the cuts where a plan can beat cloud-only (`searchable_cuts`);
- `crossing_bits`: the bit-width of the activations crossing the cut (what goes on the wire);
- `latency_weight`: how much a second of edge latency is worth in distortion (tiny .. large: accurate .. fast);
- `energy_weight`: the same for a joule of edge energy, only when energy is an objective.
`decode` turns a batch of trials into plans in one vectorised pass. Under each activation cap (the edge's
largest output at one of the edge's bit-widths), each edge layer's activation bits minimise sensitivity x
distortion + latency_weight x latency (its minimum over the weight bits) among the bit-widths whose output
fits the cap, the crossing tensors take `crossing_bits`, and the weight bits minimise distortion +
latency_weight x latency + lambda x weight bytes, lambda the smallest multiplier (bisected) that fits the
weights into what the activations leave of the edge memory: the Lagrangian (Shoham-Gersho) allocation
Auto-Split uses, with latency in the Lagrangian. Of the caps, the allocation with the least scalarised cost
that fits the memory is kept. The decoded plans are real plans, scored by the vectorised evaluator like
every other method's. What the space cannot reach (measured in benchmarks/optuna_vs_exact.py): plans that
trade activation memory against weight memory layer by layer under a tiny memory (trained_cnn's 16 KiB),
and fronts in a narrow band just below cloud-only's latency (the paper setup at 3 Mbps, pessimistic bound).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from simulator.evaluate import CostTables, evaluate
from simulator.search.base import Candidates

LATENCY_WEIGHTS = (1e-7, 1e3)
"""Range of `latency_weight` (log scale), in units of the scenario's distortion per second (`latency_scale`)."""
BISECTION_STEPS = 24
BISECTION_DECADES = (-6.0, 10.0)
"""The weight multiplier's bisection: steps and range (log10, around `KnobSpace.weight_byte_scale`)."""


@dataclass
class KnobSpace:
    """The knobs of `tables`' plans (see the module docstring); `energy` adds `energy_weight`."""

    tables: CostTables
    energy: bool = False

    @cached_property
    def cuts(self) -> np.ndarray:
        return searchable_cuts(self.tables)

    @cached_property
    def edge_bits(self) -> np.ndarray:
        """Indices into tables.bits a plan may use."""
        return self.tables.edge_bit_index

    @cached_property
    def _layer_terms(self) -> dict[str, np.ndarray]:
        """Per-layer tables over the edge bits: latency and energy (L, Bw, Ba); distortion of weights and
        activations, weight bytes and output bytes (L, B)."""
        t, E = self.tables, self.edge_bits
        # the scales are set by the noise itself: the evidence envelope's price (OUTSIDE_COST, in the costs
        # the decoding minimises) would make every latency weight look negligible
        return {"latency": t.edge_latency_s[:, E][:, :, E], "energy": t.edge_energy_j[:, E][:, :, E],
                "weight_cost": t.weight_cost[:, E], "activation_cost": t.activation_cost[:, E],
                "weight_noise": t.weight_noise[:, E], "activation_noise": t.activation_noise[:, E],
                "weight_bytes": t.weight_bytes[:, E], "output_bytes": t.output_bytes[:, E]}

    @cached_property
    def latency_scale(self) -> float:
        """Distortion per second that makes `latency_weight` 1 a balanced trade: the spread of the layers'
        distortion over their bits against the spread of their latency."""
        terms = self._layer_terms
        distortion = np.ptp(terms["weight_noise"], 1).sum() + np.ptp(terms["activation_noise"], 1).sum()
        latency = np.ptp(terms["latency"].reshape(self.tables.layers, -1), 1).sum()
        return _ratio(distortion, latency)

    @cached_property
    def energy_scale(self) -> float:
        terms = self._layer_terms
        distortion = np.ptp(terms["weight_noise"], 1).sum() + np.ptp(terms["activation_noise"], 1).sum()
        return _ratio(distortion, np.ptp(terms["energy"].reshape(self.tables.layers, -1), 1).sum())

    def distributions(self) -> dict:
        """Optuna distributions of the knobs."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        out = {"cut": CategoricalDistribution([int(c) for c in self.cuts]),
               "crossing_bits": IntDistribution(0, len(self.edge_bits) - 1),
               "latency_weight": FloatDistribution(*LATENCY_WEIGHTS, log=True)}
        if self.energy:
            out["energy_weight"] = FloatDistribution(*LATENCY_WEIGHTS, log=True)
        return out

    @cached_property
    def largest_output(self) -> np.ndarray:
        """(L+1,) elements of the largest layer output on the edge at each prefix cut."""
        elements = self.tables.tensor_elements[self.tables.inputs:]
        return np.concatenate([[0.0], np.maximum.accumulate(elements)])

    def decode(self, params: list[dict]) -> Candidates:
        """Plans (prefix cuts, bit indices into tables.bits) of trials' parameters, all at once. Each trial is
        allocated under every activation cap that lets the edge's largest output take one of the edge's
        bit-widths, and keeps the allocation with the least distortion + weighted latency (and energy) among
        those that fit the memory (the lowest cap's where none does)."""
        tables, E = self.tables, self.edge_bits
        n, K = len(params), len(E)
        cut = np.array([p["cut"] for p in params], dtype=np.intp)
        crossing = np.array([p["crossing_bits"] for p in params], dtype=np.intp)
        mu = np.array([p["latency_weight"] for p in params]) * self.latency_scale
        eta = (np.array([p["energy_weight"] for p in params]) * self.energy_scale if self.energy
               else np.zeros(n))
        caps = self.largest_output[cut][:, None] * tables.bits[E][None, :] / 8.0 * (1 + 1e-9)   # (n, K)
        w, a, cost, fits = self._allocate(np.repeat(cut, K), np.repeat(crossing, K), np.repeat(mu, K),
                                          np.repeat(eta, K), caps.reshape(-1))
        choice = np.where(fits, cost, np.inf).reshape(n, K).argmin(1)   # all inf: the lowest cap (index 0)
        rows = np.arange(n) * K + choice
        return Candidates(E[w[rows]], E[a[rows]], cut=cut)

    def _allocate(self, cut: np.ndarray, crossing: np.ndarray, mu: np.ndarray, eta: np.ndarray,
                  cap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per plan: weight and activation bits (indices into the edge bits), the scalarised cost of its edge
        layers (distortion + mu x latency + eta x energy) and whether it fits the edge memory."""
        tables, E = self.tables, self.edge_bits
        terms = self._layer_terms
        L = tables.layers
        n = len(cut)
        # activations: distortion + weighted latency and energy (their minimum over the weight bits), within the cap
        latency, energy = terms["latency"], terms["energy"]
        cost = (terms["activation_cost"][None] + mu[:, None, None] * latency.min(1)[None]
                + eta[:, None, None] * energy.min(1)[None])                              # (n, L, Ba)
        too_big = terms["output_bytes"][None] > cap[:, None, None]
        too_big[:, :, 0] = False  # the lowest bits always remain
        a = np.where(too_big, np.inf, cost).argmin(2)                                   # (n, L) into E
        crosses = tables.crossing[cut][:, tables.inputs:]                               # (n, L) outputs on the wire
        a = np.where(crosses, crossing[:, None], a)

        # weights: distortion + weighted latency and energy at those activation bits + lambda x weight bytes
        rows = np.arange(L)[None, :]
        base = (terms["weight_cost"][None] + mu[:, None, None] * latency[rows, :, a]
                + eta[:, None, None] * energy[rows, :, a])                               # (n, L, Bw)
        on_edge = rows < cut[:, None]
        memory = tables.scenario.edge_memory_bytes
        room = memory - evaluate(tables, E[np.zeros((n, L), np.intp)], E[a], cut=cut).activation_memory_bytes
        w, used = _fit_weights(base, terms["weight_bytes"], on_edge, room, self.weight_byte_scale(mu))
        total = ((base[np.arange(n)[:, None], rows, w] + terms["activation_cost"][rows, a]) * on_edge).sum(1)
        return w, a, total, used <= room

    def weight_byte_scale(self, mu: np.ndarray) -> np.ndarray:
        """(n,) a multiplier of weight bytes on the scale of the other terms (where the bisection starts)."""
        terms = self._layer_terms
        spread = (np.ptp(terms["weight_noise"], 1).sum()
                  + mu * np.ptp(terms["latency"].reshape(self.tables.layers, -1), 1).sum())
        return spread / max(float(terms["weight_bytes"].max(1).sum()), 1.0)

    def encode(self, candidates: Candidates) -> list[dict]:
        """Partial trial parameters of prefix plans (their cut and crossing bits, the nearest the space
        holds), for warm-starting a study with plans found elsewhere; the sampler draws the other knobs."""
        tables, E = self.tables, self.edge_bits
        cuts = candidates.cut if candidates.cut is not None else candidates.mask(tables.layers).sum(1)
        allowed = tables.bits[E]
        searchable = self.cuts
        out = []
        for p in range(len(candidates)):
            cut = int(searchable[np.abs(searchable - cuts[p]).argmin()])
            crossing = np.flatnonzero(tables.crossing[cut][tables.inputs:])
            bits = tables.bits[candidates.activation_bits[p, crossing]].max() if len(crossing) else allowed[-1]
            out.append({"cut": cut, "crossing_bits": int(np.abs(allowed - bits).argmin())})
        return out


def searchable_cuts(tables: CostTables) -> np.ndarray:
    """Cloud-only and the prefix cuts where some plan of this space can beat it: at some crossing bit-width,
    the edge part fits the memory at the lowest bits, the least distortion it allows (every other layer at
    its least distorted bits) meets the accuracy bound, and its fastest conceivable latency (every edge layer
    at its fastest bits, the crossing tensors at that bit-width, the cloud suffix) is below cloud-only's.
    Cloud-only loses no accuracy (the cloud's bits), so every plan at another cut is dominated by it."""
    E = tables.edge_bit_index
    s = tables.scenario
    L, K = tables.layers, len(E)
    cuts = np.repeat(np.arange(L + 1), K)
    bits = np.broadcast_to(E[np.tile(np.arange(K), L + 1)][:, None], (len(cuts), L))
    lowest = np.full((len(cuts), L), E[0])
    ev = evaluate(tables, lowest, bits, cut=cuts)
    memory = evaluate(tables, lowest, lowest, cut=cuts).edge_memory_bytes
    fastest = np.concatenate([[0.0], np.cumsum(tables.edge_latency_s[:, E][:, :, E].reshape(L, -1).min(1))])
    least = tables.weight_cost[:, E].min(1) + tables.activation_cost[:, E].min(1)           # (L,)
    crosses = tables.crossing[cuts][:, tables.inputs:]                                     # (n, L)
    on_edge = np.arange(L)[None, :] < cuts[:, None]
    per_layer = np.where(crosses, tables.weight_cost[:, E].min(1)[None, :]
                         + tables.activation_cost[np.arange(L)[None, :], bits], least[None, :])
    distortion = (per_layer * on_edge).sum(1) + tables.cloud_cost_suffix[cuts]
    drop = s.accuracy.fp_accuracy - s.accuracy.predict_from_weighted_sum(distortion)
    bound = fastest[cuts] + ev.transfer_s + ev.cloud_s
    can_win = ((memory <= s.edge_memory_bytes) & (drop <= s.max_accuracy_drop + 1e-9)
               & (bound < ev.latency_s[0])).reshape(L + 1, K).any(1)
    can_win[0] = True
    return np.flatnonzero(can_win)


def _fit_weights(base: np.ndarray, weight_bytes: np.ndarray, on_edge: np.ndarray, room: np.ndarray,
                 scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, L) weight bit choices (indices into the edge bits): per plan, argmin base + lambda x bytes with the
    smallest lambda whose edge weights fit `room` bytes (bisected on a log scale around `scale`; the lowest
    bits where nothing fits), and the bytes they use."""
    def choose(rows: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # ties go to fewer bits (index 0 first): equal cost, less memory
        w = (base[rows] + lam[:, None, None] * weight_bytes[None]).argmin(2)
        return w, (weight_bytes[layers, w] * on_edge[rows]).sum(1)

    layers = np.arange(base.shape[1])[None, :]
    everyone = np.arange(len(base))
    w, used = choose(everyone, np.zeros(len(base)))
    over = np.flatnonzero(used > room)
    if not len(over):
        return w, used
    low = np.full(len(over), BISECTION_DECADES[0])
    high = np.full(len(over), BISECTION_DECADES[1])
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        _, used_middle = choose(over, 10.0 ** middle * scale[over])
        fits = used_middle <= room[over]
        high = np.where(fits, middle, high)
        low = np.where(fits, low, middle)
    w[over], used[over] = choose(over, 10.0 ** high * scale[over])
    return w, used


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 and numerator > 0 else 1.0
