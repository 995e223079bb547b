"""The exact front: dynamic programming over the edge layers, every prefix cut in one pass.

Why a DP is exact here. For a prefix cut k and per-layer bits, a plan's edge latency, weight bytes and
sensitivity-weighted distortion are sums over the edge layers; accuracy is g(weighted distortion + the cloud
layers' term) with g decreasing (the proxy), so a front over the weighted distortion is a front over accuracy
(at the scenario's `accuracy_confidence` end of the interval: the pessimistic end scales each tensor's term by
its own factor, so it too is a sum over layers, and the front is exact for it);
activation memory is a maximum over the edge steps (`max_layer`: of one output; `peak_live`: of the tensors
alive at that step, which are the tensors crossing that step's cut plus its output); the payload is the bytes
of the tensors crossing the cut, each at its producer's activation bits, and the link's transfer time (tcp: a
monotone but non-linear function of the payload, with framing and slow start) is applied to that exact payload.
So, walking the layers in execution order, a state carries the bits of the tensors still open (those crossing
its cut) as its *key*: the key fixes the payload of every later cut, so each cut's plans are read off the same
pass (states at cut i + that key's transfer time + the cloud suffix), and the tcp link needs no approximation.
States that break the memory or the accuracy bound are dropped as soon as they do (both only grow along the
pass) and, when the cloud runs lossless bits, so are states whose edge latency alone reaches cloud-only's
latency (cloud-only dominates all their completions).

Two passes share that skeleton:
- `joint`: a state is (edge latency, distortion, weight bytes W, W + activation peak A) per key and every layer
  chooses (weight bits, activation bits) together. Two memory coordinates are needed because a completion's
  memory is W + w' + max(A, a'): state 1 is never worse than state 2 for every completion exactly when
  W1 <= W2 and W1 + A1 <= W2 + A2. Exact for any cost table, but the four-coordinate fronts grow quickly (the
  weight bits make a knapsack): fine for small graphs and the brute-force check, too slow for ResNet-50.
- `split` (default): distortion and memory are sums of a weights part and an activations part, and only
  latency couples them (an accelerator's layer time depends on both bit-widths). With each layer's latency
  replaced by its minimum over the weight bits (a relaxation: never more than the true latency), the weights
  part is a multiple-choice knapsack whose (weight bytes, weight distortion) front G_k is computed once per
  prefix, and the activations part keeps only (latency, activation distortion, A) per key: a cut-k state
  ends with distortion d_a + G_k(budget - A). This gives the relaxed problem's exact front, whose hypervolume
  bounds the true front's from above; its plans, evaluated with their true latencies, are real plans and
  bound it from below. `info` reports both hypervolumes and the gap; where the edge's latency does not depend
  on the weight bits the two coincide and the front is exact.

Bounding: a state is dropped when a known real feasible plan (Auto-Split's, or one this pass already
finished) is strictly faster than any completion of the state can be (its latency so far plus a lower bound
on the rest: fastest edge layers, smallest payload, cloud suffix) and strictly more accurate than its
distortion so far allows: every completion is dominated, so the front is unchanged.

Epsilon-pruning (budget {"epsilon": e}, or "auto", the default: the first of AUTO_EPSILONS, starting at 0,
whose pass stays under AUTO_LAYER_STATES states per layer): in `split` mode the states are thinned to one per
cell of a grid (e x the reference range of latency, distortion and activation memory, and
KEY_CELL_FACTOR x e x the raw input's bytes for the open tensors), keeping a real state for the inner bound and
the cell's componentwise minimum for the outer bound, so the bracket stays valid; `joint` mode keeps the
fastest state per cell (no bound). `info` reports the epsilon used, those abandoned, and the bracket.
"""
from __future__ import annotations

import time

import numpy as np
from pydantic import Field

from simulator.evaluate import CostTables, evaluate
from simulator.search.autosplit import AutoSplit
from simulator.search.base import Candidates, Proposal, SearchMethod
from simulator.search.pareto import front_2d, front_3d_levels, hypervolume_2d, nondominated
from simulator.search.registry import Budget

MODES = ("split", "joint")
AUTO_EPSILONS = (0.0, 0.005, 0.01)
AUTO_LAYER_STATES = (100_000, 250_000, None)
KEY_CELL_FACTOR = 10.0
"""Open-tensor bytes are thinned on cells KEY_CELL_FACTOR x epsilon x the raw input's bytes: the bytes of
tensors open inside a block only matter for cuts inside it, which rarely pay; what the merge costs shows
in the reported bracket like the rest."""


def row_ids(rows: np.ndarray) -> np.ndarray:
    """An int64 per distinct row of `rows` (n, d): per-column ranks combined in mixed radix (1-D sorts
    only), re-ranked whenever the product of the radices would overflow."""
    n, d = rows.shape
    ids = np.zeros(n, dtype=np.int64)
    if d == 0 or n == 0:
        return ids
    span = 1
    for column in rows.T:
        values, rank = np.unique(column, return_inverse=True)
        if span * len(values) >= 2**62:
            _, ids = np.unique(ids, return_inverse=True)
            ids = ids.reshape(-1).astype(np.int64)
            span = int(ids.max()) + 1
        ids = ids * len(values) + rank.reshape(-1)
        span *= len(values)
    return ids


def cell_ids(cells: np.ndarray) -> np.ndarray:
    """`row_ids` of integer-valued rows (grid cells), in the same (lexicographic) order: the offsets from each
    column's minimum combined in mixed radix without sorting, unless the product of the spans would overflow."""
    low = cells.min(0)
    spans = cells.max(0) - low + 1
    if np.prod(spans) >= 2.0**60:
        return row_ids(cells)
    ids = np.zeros(len(cells), dtype=np.int64)
    for column, start, span in zip(cells.T, low, spans):
        ids = ids * int(span) + (column - start).astype(np.int64)
    return ids


class ExactFront(SearchMethod):
    """Every non-dominated prefix plan within the bounds over (latency, accuracy drop), by dynamic programming
    (see the module docstring). mode: "split" (default; exact where latency does not depend on the weight
    bits, else bracketed and the gap reported) or "joint" (exact for any tables; small graphs)."""

    name = "exact"

    def __init__(self, mode: str = "split", max_states: int = 5_000_000, bound: bool = True) -> None:
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.bound = bound
        self.max_states = max_states

    def propose(self, tables: CostTables, budget: dict, seed: int) -> Proposal:
        """budget {"epsilon": e} (a number >= 0, or "auto": the smallest of AUTO_EPSILONS whose pass keeps
        at most AUTO_LAYER_STATES states at every layer)."""
        start = time.perf_counter()
        epsilon = budget.get("epsilon", "auto")
        if epsilon == "auto":
            attempts = [(e, cap) for e, cap in zip(AUTO_EPSILONS, AUTO_LAYER_STATES)]
        else:
            epsilon = float(epsilon)
            if epsilon < 0:
                raise ValueError(f"epsilon: expected >= 0 or 'auto', got {epsilon}")
            attempts = [(epsilon, None)]
        cls = _SplitPass if self.mode == "split" else _JointPass
        incumbents = incumbent_points(tables, seed) if self.bound else np.empty((0, 2))
        tried = []
        for e, cap in attempts:
            dp = cls(tables, epsilon=e, max_states=self.max_states, layer_cap=cap)
            dp.add_incumbents(incumbents)
            try:
                candidates = dp.run()
                break
            except _TooManyStates:
                tried.append(e)
        else:
            raise MemoryError(f"exact front: too many states even with epsilon {tried[-1]}; pass a budget "
                              f"{{'epsilon': e}} with a larger e")
        info = {"mode": self.mode, "epsilon": dp.epsilon, "epsilons_abandoned": tried,
                "states_kept": dp.states_kept, "largest_layer_states": dp.largest,
                "front_points": len(candidates), "cloud_latency_s": dp.cloud_latency_s}
        elapsed_s = time.perf_counter() - start
        if isinstance(dp, _SplitPass):
            info["weight_front_largest"] = dp.weight_front_largest
            if len(candidates):  # the bracket: the real plans' hypervolume (inner) and the relaxation's (outer)
                ev = candidates.evaluate(tables)
                reference = (dp.cloud_latency_s, tables.scenario.max_accuracy_drop)
                inner = hypervolume_2d(np.column_stack([ev.latency_s, ev.accuracy_drop])[ev.feasible], reference)
                outer = dp.outer_hypervolume
                info.update(hypervolume_inner=inner, hypervolume_outer=outer,
                            relaxation_gap=(1.0 - inner / outer) if outer > 0 else 0.0)
        info["elapsed_s"] = elapsed_s
        return Proposal(candidates, info)


def incumbent_points(tables: CostTables, seed: int) -> np.ndarray:
    """Auto-Split's feasible plans as (latency, drop): real plans the pass may prune against (only states
    all of whose completions they dominate are dropped, so the front stays exact)."""
    ev = AutoSplit().listed(tables).evaluation   # computed once per cost table
    return np.column_stack([ev.latency_s, ev.accuracy_drop])[ev.feasible]


def guarantee(info: dict) -> str:
    """What the exact front's answer guarantees, from its run's `info` (a sentence of summary.md)."""
    epsilon = info.get("epsilon", 0.0)
    if info.get("mode") == "joint":
        what = "the exact front of the problem"
    else:
        gap = info.get("relaxation_gap")
        what = ("the exact front of a relaxation in which each edge layer's latency is its minimum over the "
                "weight bits; its plans are real plans evaluated at their true latencies, so it can miss a "
                "faster plan that another method finds" + (f" (hypervolume gap to the relaxation {gap:.1%})"
                                                           if gap is not None else ""))
    thinning = (" with no thinning (epsilon 0)" if not epsilon else
                f", thinned to one state per grid cell of epsilon {epsilon:g} of the reference ranges"
                + (f" (epsilon {', '.join(f'{e:g}' for e in info.get('epsilons_abandoned', []))} abandoned: "
                   f"too many states)" if info.get("epsilons_abandoned") else ""))
    return f"exact: {what}{thinning}."


class _TooManyStates(MemoryError):
    pass


class _Pass:
    """What both passes share: open tensors and keys, payload per key, pruning bounds, back-pointers."""

    def __init__(self, tables: CostTables, epsilon: float, max_states: int, layer_cap: int | None = None):
        self.layer_cap = layer_cap
        self.t = tables
        self.s = tables.scenario
        self.epsilon = epsilon
        self.max_states = max_states
        self.allowed = tables.edge_bit_index
        L = tables.layers
        producer = tables.tensor_producer
        # the open tensors of cut i made by edge layers (graph inputs cost the same in every plan)
        self.open = [np.flatnonzero(tables.crossing[i] & (producer >= 0)) for i in range(L + 1)]
        self.open_inputs = [np.flatnonzero(tables.crossing[i] & (producer < 0)) for i in range(L + 1)]
        readers = tables.consumed_by
        self.last_use = np.where(readers.any(1), L - 1 - np.argmax(readers[:, ::-1], axis=1), -1)
        self.input_live_bytes = (tables.live[:, : tables.inputs] * tables.input_bytes[None, :]).sum(1)
        self.states_kept = 0
        self.largest = 0
        self.incumbent = np.empty((0, 2))  # known real feasible plans (latency, drop): `add_incumbents`
        zeros = np.zeros((1, L), np.intp)
        self.cloud_latency_s = float(evaluate(tables, zeros, zeros, cut=np.array([0])).latency_s[0])
        allowed = self.allowed
        min_edge_cost = tables.weight_cost[:, allowed].min(1) + tables.activation_cost[:, allowed].min(1)
        # cloud-only dominates every completion of a state at least as slow, if edge bits never beat cloud bits
        self.prune_latency = bool(np.all(min_edge_cost >= tables.cloud_cost - 1e-15))
        budget = self.s.edge_memory_bytes
        if not np.isfinite(budget):
            top = np.full((1, L), allowed[-1])
            budget = 2 * float(evaluate(tables, top, top, cut=np.array([L])).edge_memory_bytes[0])
        self.ranges = np.array([self.cloud_latency_s, self._distortion_bound(), budget])

    def _distortion_bound(self) -> float:
        proxy = self.s.accuracy
        x = float(proxy.weighted_sum_for_accuracy(proxy.fp_accuracy - self.s.max_accuracy_drop))
        return x if np.isfinite(x) and x > 0 else 1.0

    def drop(self, distortion: np.ndarray) -> np.ndarray:
        proxy = self.s.accuracy
        return proxy.fp_accuracy - proxy.predict_from_weighted_sum(distortion)

    def within_accuracy(self, distortion: np.ndarray) -> np.ndarray:
        return self.drop(distortion) <= self.s.max_accuracy_drop + 1e-9

    # --- open tensors ------------------------------------------------------------------------------------
    # Open tensors that are last read by the same layer cross exactly the same later cuts, so a state only
    # needs the sum of their bytes: `open` holds, per group (by last reader), the payload bytes and then the
    # raw bytes (peak_live memory) of its tensors at their producers' activation bits.
    def open_groups(self, i: int) -> np.ndarray:
        return np.unique(self.last_use[self.open[i]])

    def next_open(self, i: int, old: np.ndarray, a: np.ndarray) -> np.ndarray:
        """`open` after layer i ran with activation bit index `a`."""
        old_groups, new_groups = self.open_groups(i), self.open_groups(i + 1)
        g_old, g_new = len(old_groups), len(new_groups)
        new = np.zeros((len(a), 2 * g_new))
        own = self.t.layer_output_tensor[i]
        for j, last in enumerate(new_groups):
            k = np.flatnonzero(old_groups == last)
            if len(k):
                new[:, j] = old[:, k[0]]
                new[:, g_new + j] = old[:, g_old + k[0]]
            if own in self.open[i + 1] and self.last_use[own] == last:
                new[:, j] += self.t.payload_per_tensor[own, a]
                new[:, g_new + j] += self.t.output_bytes[i, a]
        return new

    @staticmethod
    def key_ids(open_bytes: np.ndarray) -> np.ndarray:
        """An integer per distinct `open` row (states compared for dominance must share it)."""
        return row_ids(open_bytes)

    def activation_peak(self, i: int, previous: np.ndarray, old: np.ndarray, parent: np.ndarray,
                        out: np.ndarray) -> np.ndarray:
        """Activation memory after layer i of each state `parent` (of the states whose `open` is `old`): the
        running maximum of one output (max_layer) or of the bytes alive while layer i runs (peak_live: inputs
        still needed, the open tensors and the new output)."""
        if self.s.memory_model != "peak_live":
            return np.maximum(previous, out)
        groups = old.shape[1] // 2
        return np.maximum(previous, self.input_live_bytes[i] + out + old[:, groups:].sum(1)[parent])

    def transfer(self, cut: int, open_bytes: np.ndarray) -> np.ndarray:
        """Transfer time of cut `cut` for each state (payload rounded up like the evaluator)."""
        groups = open_bytes.shape[1] // 2
        payload = self.t.payload_per_tensor[self.open_inputs[cut], 0].sum() + open_bytes[:, :groups].sum(1)
        payload = np.ceil(payload - 1e-9)
        sizes, inverse = np.unique(payload, return_inverse=True)
        time_s = np.zeros(len(sizes))
        sending = sizes > 0
        if sending.any():
            time_s[sending] = self.s.link.transfer_time_s(sizes[sending])
        return time_s[inverse.reshape(-1)]

    # --- bounding: states whose every completion a known real plan beats --------------------------------
    def latency_to_finish(self) -> np.ndarray:
        """(L+1,) a lower bound on the latency any plan adds after its first i layers: the least over the
        cuts j >= i of the fastest edge time of layers i..j-1, the transfer of cut j with every tensor at
        its smallest size (transfer time does not fall as the payload grows) and the cloud suffix."""
        t = self.t
        E = self.allowed
        fastest = t.edge_latency_s[:, E][:, :, E].min(axis=(1, 2))
        table = t.payload_per_tensor[:-1]                    # (the last row is a zero-size dummy)
        smallest = np.where(t.tensor_producer < 0, table[:, 0], table[:, E].min(1))
        payload = np.ceil(t.crossing.astype(float) @ smallest - 1e-9)
        transfer = np.zeros(len(payload))
        sending = payload > 0
        transfer[sending] = self.s.link.transfer_time_s(payload[sending])
        done = np.concatenate([[0.0], np.cumsum(fastest)])
        total = done + transfer + t.cloud_suffix_s           # cut j: edge 0..j-1 fastest + transfer + cloud
        return np.minimum.accumulate(total[::-1])[::-1] - done

    def add_incumbents(self, points: np.ndarray) -> None:
        """Real feasible plans (latency, drop) to bound with: kept as a front sorted by latency."""
        merged = np.vstack([self.incumbent, points]) if len(points) else self.incumbent
        if len(merged):
            merged = merged[front_2d(merged[:, 0], merged[:, 1])]
            merged = merged[np.argsort(merged[:, 0])]
        self.incumbent = merged

    def beaten(self, latency_bound: np.ndarray, distortion_bound: np.ndarray) -> np.ndarray:
        """True where a known real plan is faster than `latency_bound` and loses less accuracy than
        `distortion_bound` implies: every completion of such a state is strictly dominated (strictly, so that
        a front point equal to a known plan is still found by the pass itself)."""
        front = self.incumbent
        if len(front) == 0 or len(latency_bound) == 0:
            return np.zeros(len(latency_bound), dtype=bool)
        pos = np.searchsorted(front[:, 0], latency_bound, side="left") - 1
        best_drop = np.where(pos >= 0, front[np.maximum(pos, 0), 1], np.inf)   # drops fall along the front
        return best_drop < self.drop(distortion_bound)

    def count(self, kept: int) -> None:
        self.states_kept += kept
        self.largest = max(self.largest, kept)
        if self.layer_cap is not None and kept > self.layer_cap:
            raise _TooManyStates(f"more than {self.layer_cap} states at one layer")
        if self.states_kept > self.max_states:
            raise _TooManyStates(f"exact front: more than {self.max_states} states; pass a budget {{'epsilon': e}} "
                              f"(e.g. 1e-3) to thin them")

    def thin(self, values: np.ndarray, keys: np.ndarray, ranges: np.ndarray) -> np.ndarray:
        """Indices of one state per key and epsilon-cell (the fastest), all when epsilon is 0."""
        if self.epsilon <= 0:
            return np.arange(len(keys))
        cells = np.floor(values / (self.epsilon * ranges)).astype(np.int64)
        order = np.lexsort((values[:, 0],) + tuple(cells.T[::-1]) + (keys,))
        sorted_cells = np.column_stack([keys[order], cells[order]])
        first = np.r_[True, np.any(sorted_cells[1:] != sorted_cells[:-1], axis=1)]
        return np.sort(order[first])

    @staticmethod
    def walk_back(history: list, cut: int, state: int, columns: tuple[int, ...], out: list[np.ndarray], p: int):
        """Follow back-pointers from `state` at step `cut`, writing each step's recorded choices."""
        for step in range(cut - 1, -1, -1):
            record = history[step]
            for column, target in zip(columns, out):
                target[p, step] = record[column][state]
            state = record[0][state]


class _JointPass(_Pass):
    """Each layer chooses (weight bits, activation bits) together; states (latency, distortion, W, W + A)."""

    def options(self, i: int) -> dict[str, np.ndarray]:
        """Layer i's (weight, activation) choices that some plan may need: per activation bits, the weight
        bits whose (latency, distortion, weight bytes) increments no other weight bits dominate."""
        t = self.t
        w, a = np.meshgrid(self.allowed, self.allowed, indexing="ij")
        w, a = w.ravel(), a.ravel()
        latency = t.edge_latency_s[i, w, a]
        distortion = t.weight_cost[i, w] + t.activation_cost[i, a]
        weight = t.weight_bytes[i, w]
        keep = nondominated(np.column_stack([latency, distortion, weight]), groups=a)
        return {"w": w[keep], "a": a[keep], "lat": latency[keep], "dist": distortion[keep], "weight": weight[keep],
                "out": t.output_bytes[i, a[keep]]}

    def run(self) -> Candidates:
        t, s = self.t, self.s
        L = t.layers
        state = {k: np.zeros(1) for k in ("lat", "dist", "weight", "act")}
        state["open"] = np.zeros((1, 0))
        history, finals = [], []
        for i in range(L + 1):
            finals.append(self.finish(i, state))
            if i == L:
                break
            opt = self.options(i)
            n, m = len(state["open"]), len(opt["a"])
            parent, choice = np.repeat(np.arange(n), m), np.tile(np.arange(m), n)
            lat = state["lat"][parent] + opt["lat"][choice]
            dist = state["dist"][parent] + opt["dist"][choice]
            weight = state["weight"][parent] + opt["weight"][choice]
            old_open = state["open"][parent]
            act = self.activation_peak(i, state["act"][parent], state["open"], parent, opt["out"][choice])
            ok = (weight + act <= s.edge_memory_bytes) & self.within_accuracy(dist)
            if self.prune_latency:
                ok &= lat < self.cloud_latency_s
            idx = np.flatnonzero(ok)
            new_open = self.next_open(i, old_open[idx], opt["a"][choice[idx]])
            key = self.key_ids(new_open)
            values = np.column_stack([lat[idx], dist[idx], weight[idx], weight[idx] + act[idx]])
            chosen = self.thin(values, key, self.ranges[[0, 1, 2, 2]])
            idx, key, values, new_open = idx[chosen], key[chosen], values[chosen], new_open[chosen]
            keep = nondominated(values, groups=key)
            idx, new_open = idx[keep], new_open[keep]
            self.count(len(idx))
            history.append((parent[idx], opt["w"][choice[idx]], opt["a"][choice[idx]]))
            state = {"open": new_open, "lat": lat[idx], "dist": dist[idx], "weight": weight[idx], "act": act[idx]}
        return self.rebuild(finals, history)

    def finish(self, cut: int, state: dict) -> tuple:
        """Plans with cut `cut`: the feasible states that no other of this cut dominates."""
        t, s = self.t, self.s
        latency = state["lat"] + self.transfer(cut, state["open"]) + t.cloud_suffix_s[cut]
        drop = self.drop(state["dist"] + t.cloud_cost_suffix[cut])
        idx = np.flatnonzero((state["weight"] + state["act"] <= s.edge_memory_bytes)
                             & (drop <= s.max_accuracy_drop + 1e-9))
        keep = front_2d(latency[idx], drop[idx])
        return cut, idx[keep], np.column_stack([latency[idx][keep], drop[idx][keep]])

    def rebuild(self, finals: list, history: list) -> Candidates:
        cuts = np.concatenate([np.full(len(idx), cut) for cut, idx, _ in finals])
        states = np.concatenate([idx for _, idx, _ in finals])
        points = np.vstack([p for _, _, p in finals])
        on_front = front_2d(points[:, 0], points[:, 1])
        cuts, states = cuts[on_front], states[on_front]
        top = int(self.allowed[-1])
        w = np.full((len(cuts), self.t.layers), top, dtype=np.intp)
        a = w.copy()
        for p, (cut, state) in enumerate(zip(cuts, states)):
            self.walk_back(history, int(cut), int(state), (1, 2), [w, a], p)
        return Candidates(w, a, cut=cuts.astype(np.intp))


class _SplitPass(_Pass):
    """Weights part as a knapsack front per prefix; activations part (latency, distortion, A) per key.

    With epsilon > 0 each state carries its real values (those of one real plan prefix: the inner bound)
    and optimistic ones (the componentwise minimum over every state thinned into it: the outer bound);
    dominance and pruning use the optimistic values, so the outer bound stays valid."""

    def run(self) -> Candidates:
        t, s = self.t, self.s
        L, E = t.layers, self.allowed
        budget = s.edge_memory_bytes
        latency = t.edge_latency_s[:, E][:, :, E]                     # (L, w, a)
        self.lat_min = latency.min(1)                                 # relaxed: the best weight bits' latency
        self.w_fastest = E[latency.argmin(1)]                         # (L, a) those weight bits
        act_cost = t.activation_cost[:, E]
        out = t.output_bytes[:, E]
        floor = np.maximum.accumulate(out.min(1))                     # least activation memory of prefix i+1
        self.weight_fronts, self.weight_history = self.weight_pass(floor)
        # real: one real plan prefix (inner bound); opt: lower bounds of every state merged into it (outer bound);
        # with epsilon 0 nothing is merged, and they are the same arrays (computed once)
        shared = self.epsilon == 0
        state = {"open": np.zeros((1, 0)), "real": np.zeros((1, 3))}
        state["open_opt"], state["opt"] = ((state["open"], state["real"]) if shared
                                           else (np.zeros((1, 0)), np.zeros((1, 3))))
        history, finals = [], []
        self.future_latency = self.latency_to_finish()
        for i in range(L + 1):
            finals.append(self.finish(i, state))
            self.add_incumbents(finals[-1][3])
            if i == L:
                break
            n, m = len(state["open"]), len(E)
            parent, choice = np.repeat(np.arange(n), m), np.tile(np.arange(m), n)
            step = np.column_stack([self.lat_min[i, choice], act_cost[i, choice]])
            real = self.extend(i, state["real"], state["open"], parent, step, out[i, choice])
            opt = real if shared else self.extend(i, state["opt"], state["open_opt"], parent, step, out[i, choice])
            weight_distortion, _ = self.cheapest_weights(i + 1, budget - opt[:, 2])
            ok = np.isfinite(weight_distortion)
            ok[ok] = self.within_accuracy(opt[ok, 1] + weight_distortion[ok])
            if self.prune_latency:
                ok &= opt[:, 0] < self.cloud_latency_s
            ok[ok] &= ~self.beaten(opt[ok, 0] + self.future_latency[i + 1], opt[ok, 1] + weight_distortion[ok])
            idx = np.flatnonzero(ok)
            bits = E[choice[idx]]
            new_open = self.next_open(i, state["open"][parent[idx]], bits)
            new_open_opt = new_open if shared else self.next_open(i, state["open_opt"][parent[idx]], bits)
            real = real[idx]
            opt = real if shared else opt[idx]
            if self.epsilon > 0:
                chosen, opt, new_open_opt = self.thin_bounds(real, opt, new_open_opt)
                idx, real, new_open = idx[chosen], real[chosen], new_open[chosen]
            key = self.key_ids(new_open_opt)
            keep = front_3d_levels(opt[:, 0], opt[:, 1], opt[:, 2], key)
            idx, real, new_open = idx[keep], real[keep], new_open[keep]
            opt, new_open_opt = (real, new_open) if shared else (opt[keep], new_open_opt[keep])
            self.count(len(idx))
            history.append((parent[idx], E[choice[idx]]))
            state = {"open": new_open, "open_opt": new_open_opt, "real": real, "opt": opt}
        return self.rebuild(finals, history)

    def extend(self, i: int, previous: np.ndarray, open_bytes: np.ndarray, parent: np.ndarray, step: np.ndarray,
               output_bytes: np.ndarray) -> np.ndarray:
        """(latency, distortion, activation peak) of each state `parent` extended by layer i's `step`."""
        values = np.empty((len(parent), 3))
        values[:, :2] = previous[parent, :2] + step
        values[:, 2] = self.activation_peak(i, previous[parent, 2], open_bytes, parent, output_bytes)
        return values

    def thin_bounds(self, real: np.ndarray, opt: np.ndarray, open_opt: np.ndarray):
        """One state per epsilon-cell of the optimistic values and open bytes: the real state with the least
        latency, with the cell's componentwise minima as its optimistic values and open bytes."""
        if len(real) == 0:
            return np.zeros(0, dtype=np.intp), opt, open_opt
        byte_cell = KEY_CELL_FACTOR * self.epsilon * max(float(self.t.input_payload_bytes), 1.0)
        cells = cell_ids(np.column_stack([np.floor(opt / (self.epsilon * self.ranges)),
                                          np.floor(open_opt / byte_cell)]))
        order = np.lexsort((real[:, 0], cells))
        sorted_cells = cells[order]
        first = np.flatnonzero(np.r_[True, sorted_cells[1:] != sorted_cells[:-1]])
        merged_open = (np.minimum.reduceat(open_opt[order], first, axis=0) if open_opt.shape[1]
                       else open_opt[order[first]])
        return order[first], np.minimum.reduceat(opt[order], first, axis=0), merged_open

    def weight_pass(self, floor: np.ndarray) -> tuple[list, list]:
        """Per prefix k: the (weight bytes, weight distortion) front of its layers' weight bits, sorted by
        bytes (so distortion falls along it), and back-pointers (parent, weight bits) per layer."""
        t, s = self.t, self.s
        E = self.allowed
        fronts = [(np.zeros(1), np.zeros(1))]
        history = []
        self.weight_front_largest = 1
        for i in range(t.layers):
            size, distortion = fronts[-1]
            if not t.has_weights[i]:
                fronts.append((size, distortion))
                history.append((np.arange(len(size)), None))
                continue
            n, m = len(size), len(E)
            parent, choice = np.repeat(np.arange(n), m), np.tile(np.arange(m), n)
            new_size = size[parent] + t.weight_bytes[i, E][choice]
            new_distortion = distortion[parent] + t.weight_cost[i, E][choice]
            ok = np.flatnonzero((new_size + floor[i] <= s.edge_memory_bytes) & self.within_accuracy(new_distortion))
            keep = ok[front_2d(new_size[ok], new_distortion[ok])]
            keep = keep[np.argsort(new_size[keep], kind="stable")]
            fronts.append((new_size[keep], new_distortion[keep]))
            history.append((parent[keep], E[choice[keep]]))
            self.weight_front_largest = max(self.weight_front_largest, len(keep))
        return fronts, history

    def cheapest_weights(self, prefix: int, room: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Least weight distortion of the first `prefix` layers within `room` bytes (inf where none fits),
        and the index of that point on the prefix's weight front."""
        size, distortion = self.weight_fronts[prefix]
        index = np.searchsorted(size, room, side="right") - 1
        if len(size) == 0:
            return np.full(len(room), np.inf), index
        return np.where(index >= 0, distortion[np.maximum(index, 0)], np.inf), index

    def finish(self, cut: int, state: dict) -> tuple:
        """Plans with cut `cut`: the real states' feasible non-dominated points (with their weight front
        indices) and the optimistic states' points (for the outer bound)."""
        t, s = self.t, self.s
        out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for values, open_bytes in ((state["real"], state["open"]), (state["opt"], state["open_opt"])):
            if out and values is state["real"]:   # epsilon 0: the optimistic states are the real ones
                out.append(out[0])
                break
            latency = values[:, 0] + self.transfer(cut, open_bytes) + t.cloud_suffix_s[cut]
            weight_distortion, weights = self.cheapest_weights(cut, s.edge_memory_bytes - values[:, 2])
            fits = np.isfinite(weight_distortion)
            drop = np.full(len(latency), np.inf)
            drop[fits] = self.drop(values[fits, 1] + weight_distortion[fits] + t.cloud_cost_suffix[cut])
            idx = np.flatnonzero(fits & (drop <= s.max_accuracy_drop + 1e-9))
            idx = idx[front_2d(latency[idx], drop[idx])]
            out.append((idx, weights[idx], np.column_stack([latency[idx], drop[idx]])))
        (idx, weights, points), (_, _, optimistic) = out
        return cut, idx, weights, points, optimistic

    def rebuild(self, finals: list, history: list) -> Candidates:
        t = self.t
        cuts = np.concatenate([np.full(len(f[1]), f[0]) for f in finals])
        states = np.concatenate([f[1] for f in finals])
        weights = np.concatenate([f[2] for f in finals])
        points = np.vstack([f[3] for f in finals])
        optimistic = np.vstack([f[4] for f in finals])
        self.outer_hypervolume = hypervolume_2d(optimistic, (self.cloud_latency_s, self.s.max_accuracy_drop))
        on_front = front_2d(points[:, 0], points[:, 1])
        cuts, states, weights = cuts[on_front], states[on_front], weights[on_front]
        top = int(self.allowed[-1])
        w = np.full((len(cuts), t.layers), top, dtype=np.intp)
        a = w.copy()
        for p, (cut, state, point) in enumerate(zip(cuts, states, weights)):
            cut = int(cut)
            self.walk_back(history, cut, int(state), (1,), [a], p)
            for step in range(cut - 1, -1, -1):
                parent, bits = self.weight_history[step]
                if bits is None:   # no weights: the weight bits that make this layer fastest
                    w[p, step] = self.w_fastest[step, int(np.flatnonzero(self.allowed == a[p, step])[0])]
                else:
                    w[p, step] = bits[point]
                point = parent[point]
        return Candidates(w, a, cut=cuts.astype(np.intp))


class ExactBudget(Budget):
    """How far the exact front may prune (the YAML's `search.budgets.exact`)."""

    epsilon: float | None = Field(default=None, ge=0.0, le=1.0, description="exact front: relative epsilon-pruning "
                                  "(0 = exact)")
