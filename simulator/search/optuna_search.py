"""Optuna multi-objective search over prefix plans, in a space its samplers can search (`optuna_space`).

A trial is a cut and a few knobs (the crossing tensors' bits, a latency weight, an activation cap; an energy
weight when energy is an objective), decoded into per-layer bits by the Lagrangian allocation Auto-Split uses;
the decoded plans are real plans, scored by the vectorised evaluator. Objectives (all minimised): latency and
accuracy drop, optionally edge energy. The memory budget and the accuracy bound (at the scenario's confidence)
are constraints (`trial.set_constraint` in Optuna 5; the sampler's `constraints_func` over user attributes in
older versions), so the samplers' constrained domination prefers feasible plans without discarding what
infeasible ones teach. Trials are asked a population at a time, decoded and evaluated in one vectorised call
and told back (ask/tell), which leaves Optuna's own bookkeeping the main per-trial cost.

Samplers (`SAMPLERS`, always built here, explicitly and seeded): `nsga2` (the default and `auto`'s choice for
a budget of several populations: cheap per trial, its constrained crossover keeps improving the front over
thousands of trials), `tpe` (multi-objective TPE: models the good and bad trials, strongest on small budgets
of a few hundred trials, but costs more per trial as the study grows), `gp` (Optuna's GPSampler: the most
sample-efficient, for budgets of tens of trials, each costing tens of milliseconds; it needs torch and scipy,
which autosplit does not install). `auto` takes `tpe` for budgets under AUTO_TPE_TRIALS trials, else `nsga2`.

Warm start (default on): the registered baselines' plans and Auto-Split's feasible front are evaluated as
they are and lead the results (the `seeds`), and their cuts and crossing bits are enqueued as the first trials;
`info` reports what the sampler found beyond them. Never seeded with the exact front.

Storage: in memory by default (an RDB such as SQLite costs more per trial than the evaluation); `storage` may
be an Optuna storage URL (`sqlite:///...`, `postgresql://...`) or a journal file path (JournalFileBackend),
with `study_name`, so that another process can resume or join the study.
"""
from __future__ import annotations

import importlib.util
import time
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, field_validator

from hardware_models.errors import UserError
from hardware_models.units import parse_time
from simulator.evaluate import CostTables, Evaluation, Scenario, evaluate
from simulator.search.autosplit import autosplit_front
from simulator.search.base import Candidates, Proposal, SearchMethod, SearchResult, result_from
from simulator.search.baselines import EdgeUniform
from simulator.search.optuna_space import KnobSpace
from simulator.search.optuna_storage import open_storage
from simulator.search.pareto import hypervolume_2d, hypervolume_3d, nondominated
from simulator.search.registry import Budget, Duration, MethodSettings, registered_methods

if TYPE_CHECKING:  # Optuna is imported lazily: it takes a while
    from optuna import Study
    from optuna.storages import BaseStorage

SAMPLERS = ("nsga2", "tpe", "gp", "auto")
OBJECTIVES = ("latency", "accuracy_drop", "energy")
DEFAULT_TRIALS = 2000
"""The default budget: a few seconds of CPU per cell (benchmarks/optuna_vs_exact.py measures it)."""
AUTO_TPE_TRIALS = 300
"""`auto` takes TPE below this many trials (NSGA-II needs several populations to pay off), else NSGA-II."""


class OptunaOptions(MethodSettings):
    """How the optuna method searches (the YAML's `search.optuna`)."""

    sampler: Literal["nsga2", "tpe", "gp", "auto"] = Field(
        default="auto", description="auto (default: TPE below 300 trials, else NSGA-II), NSGA-II, multi-objective "
        "TPE or Optuna's GPSampler (needs torch and scipy), seeded")
    objectives: list[Literal["latency", "accuracy_drop", "energy"]] = Field(
        default=["latency", "accuracy_drop"], description="objectives, all minimised: latency and accuracy_drop, "
        "optionally energy (the edge's energy per inference) as a third")

    @field_validator("objectives")
    @classmethod
    def _latency_and_drop_first(cls, value: list[str]) -> list[str]:
        if value[:2] != ["latency", "accuracy_drop"] or len(set(value)) != len(value):
            raise ValueError(f"expected [latency, accuracy_drop] or [latency, accuracy_drop, energy], got {value}")
        return value


class OptunaBudget(Budget):
    """Trials (reproducible with a seed) or seconds (not reproducible)."""

    trials: int | None = Field(default=None, ge=1, le=10_000_000, description="number of trials (optuna); reproducible "
                               "with a seed")
    seconds: Duration | None = Field(default=None, description="wall-clock budget, e.g. '20s' (makes the run not "
                                     "reproducible)")

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        if self.seconds is not None:
            out["seconds"] = parse_time(self.seconds)
        return out


def resolve_sampler(name: str, trials: int | None) -> str:
    """The sampler `auto` stands for with a budget of `trials` (None: a wall-clock budget); others as given."""
    if name != "auto":
        return name
    return "tpe" if trials is not None and trials < AUTO_TPE_TRIALS else "nsga2"


def make_sampler(name: str, seed: int, population: int, constraints_func=None):
    """The Optuna sampler called `name` (not `auto`: see `resolve_sampler`), seeded."""
    import optuna

    kwargs = {"constraints_func": constraints_func} if constraints_func is not None else {}
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed, **kwargs)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=population,
                                          constant_liar=True, **kwargs)
    if name == "gp":
        missing = [m for m in ("torch", "scipy") if importlib.util.find_spec(m) is None]
        if missing:
            raise UserError(f"search.optuna.sampler: gp needs {' and '.join(missing)} (pip install "
                            f"{' '.join(missing)}); nsga2, tpe and auto need nothing more")
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=min(population, 10),
                                         deterministic_objective=True, **kwargs)
    raise ValueError(f"sampler: expected one of {', '.join(SAMPLERS)}, got {name!r}")


def _has_set_constraint() -> bool:
    import optuna

    return hasattr(optuna.trial.Trial, "set_constraint")


def _old_style_constraints(frozen_trial) -> list[float]:
    return list(frozen_trial.user_attrs.get("constraints", [0.0, 0.0, 0.0]))


def constraint_values(ev: Evaluation, scenario: Scenario) -> dict[str, np.ndarray]:
    """Per plan, what Optuna's constrained domination reads (feasible when every value is <= 0): the memory's
    and the accuracy drop's excess over their bounds, and `other`: 1 where the evaluator finds a plan
    infeasible for a reason besides those two (0 otherwise), so the sampler's feasibility is the evaluator's."""
    with np.errstate(invalid="ignore"):  # no memory bound: inf / inf
        memory = (ev.edge_memory_bytes - scenario.edge_memory_bytes) / scenario.edge_memory_bytes
    memory = np.where(np.isfinite(memory), memory, -1.0)
    drop = ev.accuracy_drop - scenario.max_accuracy_drop
    other = (~ev.feasible & (memory <= 0) & (drop <= 1e-9)).astype(float)
    return {"memory": memory, "accuracy": drop, "other": other}


def hypervolume_reference(tables: CostTables) -> tuple[float, float]:
    """The (latency, accuracy drop) reference point every method's hypervolume uses: cloud-only's latency
    and the accuracy-drop bound (the exact front's too)."""
    zeros = np.zeros((1, tables.layers), np.intp)
    return (float(evaluate(tables, zeros, zeros, cut=np.array([0])).latency_s[0]),
            float(tables.scenario.max_accuracy_drop))


class OptunaSearch(SearchMethod):
    """Optuna (NSGA-II, TPE or GP) over a cut and a few allocation knobs (`optuna_space`); budget
    {"trials": N} (default DEFAULT_TRIALS) or {"seconds": T}."""

    name = "optuna"

    def __init__(self, sampler: str = "auto", population: int = 50,
                 objectives: tuple[str, ...] = ("latency", "accuracy_drop"), warm_start: bool = True):
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler: expected one of {', '.join(SAMPLERS)}, got {sampler!r}")
        if tuple(objectives[:2]) != ("latency", "accuracy_drop") or set(objectives) - set(OBJECTIVES):
            raise ValueError(f"objectives: expected latency, accuracy_drop [, energy], got {objectives}")
        self.sampler = sampler
        self.population = population
        self.objectives = tuple(objectives)
        self.warm_start = warm_start

    def space(self, tables: CostTables) -> KnobSpace:
        """The knobs this search's trials hold on `tables`."""
        return KnobSpace(tables, energy="energy" in self.objectives)

    def warm_start_plans(self, tables: CostTables, seed: int) -> Candidates:
        """The registered baselines' plans (their largest prefix, for a min-cut that is not one) and Auto-Split's
        feasible front, as prefix plans."""
        parts = []
        for entry in registered_methods():
            if not entry.baseline:
                continue
            method = entry.factory()
            if isinstance(method, EdgeUniform) and method.bits not in tables.bits:
                continue  # a uniform bit-width this edge does not offer
            c = method.propose(tables, {}, seed).candidates
            if c.edge_mask is not None:  # a min-cut that is not a prefix: its largest prefix inside
                prefix = np.argmin(np.r_[c.edge_mask[0], False])
                c = Candidates(c.weight_bits, c.activation_bits, cut=np.array([prefix]))
            parts.append(c)
        parts.append(autosplit_front(tables))
        return Candidates.concat(parts, tables.layers)

    # --- the loop ----------------------------------------------------------------------------------------
    def propose(self, tables: CostTables, budget: dict, seed: int) -> Proposal:
        """A study in memory; budget {"trials": N} (default DEFAULT_TRIALS) or {"seconds": T}."""
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

    def create_study(self, seed: int, storage: str | BaseStorage | None = None, study_name: str | None = None,
                     sampler: str | None = None) -> Study:
        """The Optuna study this search asks and tells: its seeded sampler (`sampler`, default this search's;
        `auto` as for the default budget), one direction per objective, and where it lives (a new study in
        memory, or `study_name` in `storage`, loaded if it exists)."""
        import optuna  # lazily: importing Optuna takes a while and most commands never search with it

        constraints = None if _has_set_constraint() else _old_style_constraints
        name = resolve_sampler(sampler or self.sampler, DEFAULT_TRIALS)
        return optuna.create_study(directions=["minimize"] * len(self.objectives),
                                   sampler=make_sampler(name, seed, self.population, constraints),
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
            trials_budget = DEFAULT_TRIALS
        if trials_budget is not None and int(trials_budget) < 1:
            raise ValueError(f"trials: expected >= 1, got {trials_budget}")
        sampler = resolve_sampler(self.sampler, None if trials_budget is None else int(trials_budget))
        new_api = _has_set_constraint()
        opened = open_storage(storage)
        study = self.create_study(seed, opened, study_name, sampler)
        space = self.space(tables)
        distributions = space.distributions()
        shared = storage is not None  # other processes may add trials: the budget is the study's
        start = time.perf_counter()
        cpu_start = time.process_time()
        reference = hypervolume_reference(tables)
        found: list[Candidates] = []
        front = np.empty((0, 2))
        seeds = 0
        if self.warm_start:
            seeded = self.warm_start_plans(tables, seed)
            found.append(seeded)
            seeds = len(seeded)
            ev = seeded.evaluate(tables)
            front = _merge_front(front, np.column_stack([ev.latency_s, ev.accuracy_drop])[ev.feasible])
            # a new study only: a resumed or joined one has its plans queued or told already
            if not study.get_trials(deepcopy=False):
                for params in {tuple(sorted(p.items())): p for p in space.encode(seeded)}.values():
                    study.enqueue_trial(params, skip_if_exists=False)
        trace = [(time.perf_counter() - start, time.process_time() - cpu_start, 0, hypervolume_2d(front, reference))]
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
            candidates = space.decode([t.params for t in trials])
            ev = candidates.evaluate(tables)
            constraints = constraint_values(ev, scenario)
            values = np.column_stack([ev.latency_s, ev.accuracy_drop]
                                     + ([ev.edge_energy_j] if "energy" in self.objectives else []))
            for k, trial in enumerate(trials):
                if new_api:
                    for key, value in constraints.items():
                        trial.set_constraint(key, float(value[k]))
                else:
                    trial.set_user_attr("constraints", [float(value[k]) for value in constraints.values()])
                study.tell(trial, values[k].tolist())
            told += batch
            own += batch
            found.append(candidates)
            front = _merge_front(front, np.column_stack([ev.latency_s, ev.accuracy_drop])[ev.feasible])
            trace.append((time.perf_counter() - start, time.process_time() - cpu_start, told,
                          hypervolume_2d(front, reference)))
        if shared:  # every completed trial of the study, whoever told it (the run's results include workers')
            completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            found = found[:1 if seeds else 0] + ([space.decode([t.params for t in completed])] if completed else [])
        # at least one batch ran, the seeds were evaluated, or the shared study already held the budget's trials
        candidates = Candidates.concat(found, tables.layers)
        ev = candidates.evaluate(tables)
        info = {"sampler": sampler, "seed": seed, "trials": told, "trials_run": own,
                "population": self.population, "cuts_searched": len(space.cuts),
                "objectives": list(self.objectives), "study_name": study.study_name,
                "storage": "memory" if storage is None else type(opened).__name__,
                "warm_start": self.warm_start, "hypervolume_reference": reference,
                "hypervolume_trace": trace, "cpu_s": time.process_time() - cpu_start,
                "hypervolume": trace[-1][3]}
        if seeds:
            info.update(_beyond_seeds(ev, seeds, reference))
        if "energy" in self.objectives:
            points = np.column_stack([ev.latency_s, ev.accuracy_drop, ev.edge_energy_j])[ev.feasible]
            # reference energy: edge-only at the highest edge bits plus cloud-only's radio energy (stated)
            zeros = np.zeros((1, tables.layers), np.intp)
            top = np.full((1, tables.layers), tables.edge_bit_index[-1])
            energy_reference = float(evaluate(tables, top, top, cut=np.array([tables.layers])).edge_energy_j[0]
                                     + evaluate(tables, zeros, zeros, cut=np.array([0])).edge_energy_j[0])
            info["hypervolume_3d_reference"] = (*reference, energy_reference)
            info["hypervolume_3d"] = hypervolume_3d(points, (*reference, max(energy_reference, 1e-30)))
        return candidates, ev, info


def _merge_front(front: np.ndarray, points: np.ndarray) -> np.ndarray:
    merged = np.vstack([front, points])
    return merged[nondominated(merged)] if len(merged) else merged


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
    """What the sampler found beyond its warm start (the first `seeds` plans: the baselines' and Auto-Split's):
    the seeds' hypervolume and fastest feasible latency, and how many points of the whole run's feasible front
    are new (a tie with a seed counts as the seed's)."""
    points = np.column_stack([ev.latency_s, ev.accuracy_drop])
    feasible = np.flatnonzero(ev.feasible)
    seed_front = points[feasible[feasible < seeds]]
    on_front = feasible[nondominated(points[feasible])]  # of identical points the first (a seed) is kept
    return {"warm_start_plans": seeds,
            "hypervolume_warm_start": hypervolume_2d(seed_front, reference) if len(seed_front) else 0.0,
            "front_points_beyond_warm_start": int((on_front >= seeds).sum()),
            "fastest_feasible_warm_start_s": float(seed_front[:, 0].min()) if len(seed_front) else None,
            "fastest_feasible_s": float(points[feasible, 0].min()) if len(feasible) else None}
