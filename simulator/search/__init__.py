"""Search methods: the paper's baselines, Auto-Split, the exact front and Optuna, behind one interface.

`run_method(name, scenario, budget, seed)` returns a `SearchResult` (plans DataFrame, the method's answer,
its front). Method names are those of `autosplit plan --method`.
"""
from __future__ import annotations

from simulator.search.base import Candidates, SearchMethod, SearchResult
from simulator.search.pareto import hypervolume_2d, hypervolume_3d, pareto_mask

__all__ = ["METHODS", "Candidates", "SearchMethod", "SearchResult", "hypervolume_2d", "hypervolume_3d", "make_method",
           "pareto_mask", "run_method"]

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


def run_method(name: str, scenario, budget: dict | None = None, seed: int = 0, **options) -> SearchResult:
    """Run method `name` on `scenario` (budget: {"trials": N} or {"seconds": T} for optuna, {"epsilon": e}
    for exact)."""
    method = make_method(name)
    return method.run(scenario, budget=budget, seed=seed, **options)
