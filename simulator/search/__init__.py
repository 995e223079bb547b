"""Search methods: the paper's baselines, Auto-Split, the exact front and Optuna, behind one interface.

`run_method(name, scenario, budget, seed)` returns a `SearchResult` (plans DataFrame, the method's answer,
its front). Method names are those of `autosplit plan --method`.
"""
from __future__ import annotations

from simulator.search.base import Candidates, SearchMethod, SearchResult
from simulator.search.pareto import hypervolume_2d, hypervolume_3d, pareto_mask

__all__ = ["METHODS", "Candidates", "SearchMethod", "SearchResult", "describe", "hypervolume_2d", "hypervolume_3d",
           "make_method", "pareto_mask", "run_method"]

METHODS = ("cloud", "edge-u2", "edge-u4", "edge-u6", "edge-u8", "neurosurgeon", "dads", "qdmp", "autosplit", "exact",
           "optuna")
BASELINES = METHODS[:8]


def make_method(name: str) -> SearchMethod:
    """The search method called `name` (one of METHODS)."""
    from hardware_models.errors import UserError, suggest
    from simulator.search import baselines

    if name == "cloud":
        return baselines.CloudOnly()
    if name.startswith("edge-u") and name in METHODS:
        return baselines.EdgeUniform(int(name[len("edge-u"):]))
    if name in ("neurosurgeon", "dads", "qdmp"):
        return {"neurosurgeon": baselines.Neurosurgeon, "dads": baselines.DADS, "qdmp": baselines.QDMP}[name]()
    if name == "autosplit":
        from simulator.search.autosplit import AutoSplit

        return AutoSplit()
    if name == "exact":
        from simulator.search.exact import ExactFront

        return ExactFront()
    if name == "optuna":
        from simulator.search.optuna_search import OptunaSearch

        return OptunaSearch()
    raise UserError(f"unknown method {name!r}{suggest(name, METHODS)}; expected one of {', '.join(METHODS)}")


def describe(name: str, info: dict) -> str:
    """One sentence on what a method's answer guarantees, from its run's `info` (for summary.md)."""
    if name == "exact":
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
    if name == "optuna" and info.get("warm_start_plans"):
        fastest, seeded = info.get("fastest_feasible_s"), info.get("fastest_feasible_warm_start_s")
        improved = fastest is not None and (seeded is None or fastest < seeded * (1 - 1e-9))
        return (f"optuna: warm-started from {info['warm_start_plans']} plans of the baselines and Auto-Split's front; "
                f"{info.get('front_points_beyond_warm_start', 0)} front points beyond them, hypervolume "
                f"{info.get('hypervolume_warm_start', 0.0):.4g} from the seeds and {info.get('hypervolume', 0.0):.4g} "
                f"in all; its fastest plan within the bounds "
                + ("is a new one." if improved else "is one of the seeds (found nothing faster)."))
    if name == "autosplit":
        return (f"autosplit: the paper's Algorithm 1, {info.get('activation_allocation', 'lagrangian')} activation "
                f"allocation, {info.get('solutions', 0):,} feasible solutions listed.")
    return ""


def run_method(name: str, scenario, budget: dict | None = None, seed: int = 0, **options) -> SearchResult:
    """Run method `name` on `scenario` (budget: {"trials": N} or {"seconds": T} for optuna, {"epsilon": e}
    for exact)."""
    method = make_method(name)
    return method.run(scenario, budget=budget, seed=seed, **options)
