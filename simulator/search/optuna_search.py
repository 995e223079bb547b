"""Optuna multi-objective search over prefix plans: a cut and per-layer weight and activation bit-widths.

Objectives (all minimised): latency and accuracy drop, optionally edge energy. The memory budget and the
accuracy bound are constraints (`trial.set_constraint` in Optuna 5; the sampler's `constraints_func` over
user attributes in older versions), so the samplers' constrained domination prefers feasible plans without
discarding what infeasible ones teach. The sampler is always built here, explicitly and seeded: NSGA-II by
default, TPE on request. Trials are asked a population at a time, evaluated in one vectorised `evaluate`
call and told back (ask/tell), which keeps Optuna's own bookkeeping the only per-trial cost.

Encoding: `cut` (0..layers) and, per layer, the index of its activation bits `a<i>` and (for a layer with
weights) of its weight bits `w<i>` among the edge's bits; every per-layer plan is reachable. Layers without
weights take the weight bits that make them fastest. The study is warm-started with the baselines' plans
(float bits mapped to the edge's highest) and Auto-Split's feasible front, never with the exact front.

Storage: in memory by default (an RDB such as SQLite costs more per trial than the evaluation); `storage` may
be an Optuna storage URL (`sqlite:///...`, `postgresql://...`) or a journal file path (JournalFileBackend),
with `study_name`, so that another process can resume or join the study.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from simulator.evaluate import CostTables, Evaluation, Scenario, evaluate
from simulator.search.autosplit import AutoSplit
from simulator.search.base import Candidates, Proposal, SearchMethod, SearchResult, result_from
from simulator.search.baselines import EdgeUniform
from simulator.search.pareto import hypervolume_2d, hypervolume_3d, nondominated
from simulator.search.registry import registered_methods

if TYPE_CHECKING:  # Optuna is imported lazily: it takes a while
    from optuna import Study
    from optuna.storages import BaseStorage

SAMPLERS = ("nsga2", "tpe")
OBJECTIVES = ("latency", "accuracy_drop", "energy")


def make_sampler(name: str, seed: int, population: int, constraints_func=None):
    """The Optuna sampler called `name`, seeded."""
    import optuna

    if name == "nsga2":
        kwargs = {"constraints_func": constraints_func} if constraints_func is not None else {}
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed, **kwargs)
    if name == "tpe":
        kwargs = {"constraints_func": constraints_func} if constraints_func is not None else {}
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=population,
                                          constant_liar=True, **kwargs)
    raise ValueError(f"sampler: expected one of {', '.join(SAMPLERS)}, got {name!r}")


def open_storage(storage: str | BaseStorage | None) -> str | BaseStorage | None:
    """None (in memory), an Optuna storage object (as simulator.experiment.storage.open_storage makes them,
    passed through), an Optuna storage URL, or a journal file path."""
    if storage is None or not isinstance(storage, str):
        return storage
    if "://" in str(storage):
        return str(storage)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(storage)))


def _has_set_constraint() -> bool:
    import optuna

    return hasattr(optuna.trial.Trial, "set_constraint")


def _old_style_constraints(frozen_trial) -> list[float]:
    return list(frozen_trial.user_attrs.get("constraints", [0.0, 0.0]))


class OptunaSearch(SearchMethod):
    """Optuna NSGA-II (or TPE) over the cut and per-layer bits; budget {"trials": N} or {"seconds": T}."""

    name = "optuna"

    def __init__(self, sampler: str = "nsga2", population: int = 100,
                 objectives: tuple[str, ...] = ("latency", "accuracy_drop"), warm_start: bool = True):
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler: expected one of {', '.join(SAMPLERS)}, got {sampler!r}")
        if tuple(objectives[:2]) != ("latency", "accuracy_drop") or set(objectives) - set(OBJECTIVES):
            raise ValueError(f"objectives: expected latency, accuracy_drop [, energy], got {objectives}")
        self.sampler = sampler
        self.population = population
        self.objectives = tuple(objectives)
        self.warm_start = warm_start

    # --- encoding ----------------------------------------------------------------------------------------
    @staticmethod
    def distributions(tables: CostTables) -> dict:
        from optuna.distributions import IntDistribution

        top = len(tables.edge_bit_index) - 1
        dists = {"cut": IntDistribution(0, tables.layers)}
        for i in range(tables.layers):
            if tables.has_weights[i]:
                dists[f"w{i}"] = IntDistribution(0, top)
            dists[f"a{i}"] = IntDistribution(0, top)
        return dists

    @staticmethod
    def decode(tables: CostTables, params: list[dict]) -> Candidates:
        """Candidates from trial parameters (indices into the edge's bits)."""
        E = tables.edge_bit_index
        L = tables.layers
        n = len(params)
        cut = np.array([p["cut"] for p in params], dtype=np.intp)
        a_idx = np.array([[p[f"a{i}"] for i in range(L)] for p in params], dtype=np.intp).reshape(n, L)
        a = E[a_idx]
        w = np.empty((n, L), dtype=np.intp)
        fastest = _fastest_weight_bits(tables)
        for i in range(L):
            if tables.has_weights[i]:
                w[:, i] = E[[p[f"w{i}"] for p in params]]
            else:
                w[:, i] = fastest[i, a_idx[:, i]]
        return Candidates(w, a, cut=cut)

    @staticmethod
    def encode(tables: CostTables, candidates: Candidates) -> list[dict]:
        """Trial parameters of prefix plans (bits outside the edge's set map to the nearest allowed one,
        e.g. a float baseline's 16 bits to the edge's highest)."""
        E = tables.edge_bit_index
        allowed_bits = tables.bits[E]
        L = tables.layers

        def nearest(index: np.ndarray) -> np.ndarray:
            bits = tables.bits[index]
            return np.abs(bits[..., None] - allowed_bits).argmin(-1)

        w, a = nearest(candidates.weight_bits), nearest(candidates.activation_bits)
        cuts = candidates.cut if candidates.cut is not None else candidates.mask(L).sum(1)
        out = []
        for p in range(len(candidates)):
            params = {"cut": int(cuts[p])}
            for i in range(L):
                if tables.has_weights[i]:
                    params[f"w{i}"] = int(w[p, i])
                params[f"a{i}"] = int(a[p, i])
            out.append(params)
        return out

    def warm_start_plans(self, scenario: Scenario, seed: int) -> list[dict]:
        """The registered baselines' plans and Auto-Split's feasible front, as trial parameters."""
        tables = scenario.tables
        parts = []
        for entry in registered_methods():
            if not entry.baseline:
                continue
            method = entry.factory()
            if isinstance(method, EdgeUniform) and method.bits not in tables.bits:
                continue  # a uniform bit-width this edge does not offer
            c = method.propose(tables, {}, seed).candidates
            if c.edge_mask is not None:  # a min-cut that is not a prefix: its largest prefix inside
                mask = c.edge_mask
                prefix = np.argmin(np.r_[mask[0], False])
                c = Candidates(c.weight_bits, c.activation_bits, cut=np.array([prefix]))
            parts.append(c)
        c = AutoSplit().propose(tables, {}, seed).candidates
        if len(c):
            ev = c.evaluate(tables)
            feasible = np.flatnonzero(ev.feasible)
            front = feasible[nondominated(np.column_stack([ev.latency_s, ev.accuracy_drop])[feasible])]
            if c.cut is None:
                c = Candidates(c.weight_bits, c.activation_bits, cut=c.mask(tables.layers).sum(1))
            parts.append(c.subset(front))
        params = []
        for part in parts:
            params.extend(self.encode(tables, part))
        unique = {tuple(sorted(p.items())): p for p in params}
        return list(unique.values())

    # --- the loop ----------------------------------------------------------------------------------------
    def propose(self, tables: CostTables, budget: dict, seed: int) -> Proposal:
        """A study in memory; budget {"trials": N} (default 2000) or {"seconds": T}."""
        candidates, _, info = self._search(tables.scenario, budget, seed, None, None)
        return Proposal(candidates, info)

    def run(self, scenario: Scenario, budget: dict | None = None, seed: int = 0, *,
            storage: str | BaseStorage | None = None, study_name: str | None = None) -> SearchResult:
        """As `SearchMethod.run`, the trials recorded in the study `study_name` of `storage` (see
        `open_storage`; in memory when None), which another process may resume or join: a shared study's
        trial budget is the whole study's, and the result holds every trial completed in it."""
        start = time.perf_counter()
        candidates, ev, info = self._search(scenario, dict(budget or {}), seed, storage, study_name)
        elapsed = time.perf_counter() - start
        return result_from(self.name, scenario.tables, candidates, ev, elapsed, info=info, seed=seed)

    def create_study(self, seed: int, storage: str | BaseStorage | None = None,
                     study_name: str | None = None) -> Study:
        """The Optuna study this search asks and tells: its seeded sampler, one direction per objective, and
        where it lives (a new study in memory, or `study_name` in `storage`, loaded if it exists)."""
        import optuna  # lazily: importing Optuna takes a while and most commands never search with it

        constraints = None if _has_set_constraint() else _old_style_constraints
        return optuna.create_study(directions=["minimize"] * len(self.objectives),
                                   sampler=make_sampler(self.sampler, seed, self.population, constraints),
                                   storage=open_storage(storage), study_name=study_name,
                                   load_if_exists=storage is not None)

    def _search(self, scenario: Scenario, budget: dict, seed: int, storage: str | BaseStorage | None,
                study_name: str | None) -> tuple[Candidates, Evaluation, dict]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        tables = scenario.tables
        trials_budget = budget.get("trials")
        seconds_budget = budget.get("seconds")
        if trials_budget is None and seconds_budget is None:
            trials_budget = 2000
        if trials_budget is not None and int(trials_budget) < 1:
            raise ValueError(f"trials: expected >= 1, got {trials_budget}")
        new_api = _has_set_constraint()
        opened = open_storage(storage)
        study = self.create_study(seed, opened, study_name)
        distributions = self.distributions(tables)
        shared = storage is not None  # other processes may add trials: the budget is the study's
        start = time.perf_counter()
        # warm-start a new study only: a resumed or joined one has its plans queued or told already
        seeds = 0
        if self.warm_start and not study.get_trials(deepcopy=False):
            for params in self.warm_start_plans(scenario, seed):
                study.enqueue_trial(params, skip_if_exists=False)
                seeds += 1
        zeros = np.zeros((1, tables.layers), np.intp)
        reference = (float(evaluate(tables, zeros, zeros, cut=np.array([0])).latency_s[0]),
                     float(scenario.max_accuracy_drop))
        found: list[Candidates] = []
        front = np.empty((0, 2))
        trace = []
        told = 0
        own = 0  # trials this process told
        while True:
            elapsed = time.perf_counter() - start
            if shared:  # a resumed study, or workers joining it: count what is complete in the storage
                told = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
            if trials_budget is not None and told >= int(trials_budget):
                break
            if seconds_budget is not None and elapsed >= float(seconds_budget) and own:  # one batch at least
                break
            batch = self.population if trials_budget is None else min(self.population, int(trials_budget) - told)
            trials = [study.ask(distributions) for _ in range(batch)]
            candidates = self.decode(tables, [t.params for t in trials])
            ev = candidates.evaluate(tables)
            memory_excess = (ev.edge_memory_bytes - scenario.edge_memory_bytes) / scenario.edge_memory_bytes
            drop_excess = ev.accuracy_drop - scenario.max_accuracy_drop
            values = np.column_stack([ev.latency_s, ev.accuracy_drop]
                                     + ([ev.edge_energy_j] if "energy" in self.objectives else []))
            for k, trial in enumerate(trials):
                memory_c = float(memory_excess[k]) if np.isfinite(memory_excess[k]) else -1.0
                if new_api:
                    trial.set_constraint("memory", memory_c)
                    trial.set_constraint("accuracy", float(drop_excess[k]))
                else:
                    trial.set_user_attr("constraints", [memory_c, float(drop_excess[k])])
                study.tell(trial, values[k].tolist())
            told += batch
            own += batch
            found.append(candidates)
            feasible = np.column_stack([ev.latency_s, ev.accuracy_drop])[ev.feasible]
            merged = np.vstack([front, feasible])
            front = merged[nondominated(merged)] if len(merged) else merged
            trace.append((time.perf_counter() - start, told, hypervolume_2d(front, reference)))
        if shared:  # every completed trial of the study, whoever told it (the run's results include workers')
            completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            found = [self.decode(tables, [t.params for t in completed])] if completed else []
        # at least one batch ran, or the shared study already held the budget's trials: never empty
        candidates = Candidates.concat(found, tables.layers)
        ev = candidates.evaluate(tables)
        info = {"sampler": self.sampler, "seed": seed, "trials": told, "trials_run": own,
                "population": self.population,
                "objectives": list(self.objectives), "study_name": study.study_name,
                "storage": "memory" if storage is None else type(opened).__name__,
                "warm_start": self.warm_start, "hypervolume_reference": reference,
                "hypervolume_trace": trace,
                "hypervolume": trace[-1][2] if trace else 0.0}
        if seeds and not shared:
            info.update(_beyond_seeds(ev, seeds, reference))
        if "energy" in self.objectives:
            points = np.column_stack([ev.latency_s, ev.accuracy_drop, ev.edge_energy_j])[ev.feasible]
            # reference energy: edge-only at the highest edge bits plus cloud-only's radio energy (stated)
            top = np.full((1, tables.layers), tables.edge_bit_index[-1])
            energy_reference = float(evaluate(tables, top, top, cut=np.array([tables.layers])).edge_energy_j[0]
                                     + evaluate(tables, zeros, zeros, cut=np.array([0])).edge_energy_j[0])
            info["hypervolume_3d_reference"] = (*reference, energy_reference)
            info["hypervolume_3d"] = hypervolume_3d(points, (*reference, max(energy_reference, 1e-30)))
        return candidates, ev, info


def guarantee(info: dict) -> str:
    """What Optuna's search found beyond its warm start, from its run's `info` (a sentence of summary.md;
    empty without a warm start)."""
    if not info.get("warm_start_plans"):
        return ""
    fastest, seeded = info.get("fastest_feasible_s"), info.get("fastest_feasible_warm_start_s")
    improved = fastest is not None and (seeded is None or fastest < seeded * (1 - 1e-9))
    return (f"optuna: warm-started from {info['warm_start_plans']} plans of the baselines and Auto-Split's front; "
            f"{info.get('front_points_beyond_warm_start', 0)} front points beyond them, hypervolume "
            f"{info.get('hypervolume_warm_start', 0.0):.4g} from the seeds and {info.get('hypervolume', 0.0):.4g} "
            f"in all; its fastest plan within the bounds "
            + ("is a new one." if improved else "is one of the seeds (found nothing faster)."))


def _beyond_seeds(ev: Evaluation, seeds: int, reference: tuple[float, float]) -> dict:
    """What the sampler found beyond its warm start (the first `seeds` trials: the baselines' and Auto-Split's
    plans): their front's hypervolume and fastest feasible latency against the whole run's."""
    points = np.column_stack([ev.latency_s, ev.accuracy_drop])
    seeded = np.zeros(len(points), bool)
    seeded[:seeds] = True
    feasible = ev.feasible
    seed_front = points[seeded & feasible]
    seed_front = seed_front[nondominated(seed_front)] if len(seed_front) else seed_front
    new = points[~seeded & feasible]
    beyond = [p for p in new if not len(seed_front) or not np.any(np.all(seed_front <= p, axis=1))]
    return {"warm_start_plans": seeds,
            "hypervolume_warm_start": hypervolume_2d(seed_front, reference) if len(seed_front) else 0.0,
            "front_points_beyond_warm_start": int(len(beyond) and nondominated(np.array(beyond)).sum()),
            "fastest_feasible_warm_start_s": float(seed_front[:, 0].min()) if len(seed_front) else None,
            "fastest_feasible_s": float(points[feasible, 0].min()) if feasible.any() else None}


def _fastest_weight_bits(tables: CostTables) -> np.ndarray:
    """(layers, edge activation bits) index into tables.bits of the weight bits with the least latency."""
    E = tables.edge_bit_index
    latency = tables.edge_latency_s[:, E][:, :, E]
    return E[latency.argmin(1)]
