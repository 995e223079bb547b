"""Search methods: the paper's baselines, Auto-Split, the exact front and Optuna, behind one interface and
one registry.

`run_method(name, scenario, budget, seed)` returns a `SearchResult` (plans DataFrame, the method's answer,
its front, its `info`). The methods below are registered in the order tables and figures list them; a new
method is a `SearchMethod` subclass plus one `register` call (see `registry.py`).
"""
from __future__ import annotations

from functools import partial

from simulator.search import autosplit, exact, optuna_search
from simulator.search.autosplit import AutoSplit
from simulator.search.base import Candidates, Proposal, SearchMethod, SearchResult
from simulator.search.baselines import DADS, QDMP, CloudOnly, EdgeUniform, Neurosurgeon, uniform_bits_missing
from simulator.search.exact import ExactBudget, ExactFront
from simulator.search.optuna_search import OptunaBudget, OptunaOptions, OptunaSearch
from simulator.search.pareto import hypervolume_2d, hypervolume_3d, nondominated
from simulator.search.registry import (
    Budget,
    Duration,
    MethodSettings,
    PlotStyle,
    RegisteredMethod,
    describe,
    make_method,
    method_names,
    plot_style,
    register,
    registered,
    registered_methods,
    run_method,
    skip_note,
    unregister,
)

__all__ = ["BASELINES", "METHODS", "Budget", "Candidates", "Duration", "MethodSettings", "PlotStyle", "Proposal",
           "RegisteredMethod", "SearchMethod", "SearchResult", "describe", "hypervolume_2d", "hypervolume_3d",
           "make_method", "method_names", "nondominated", "plot_style", "register", "registered",
           "registered_methods", "run_method", "skip_note", "unregister"]

register("cloud", CloudOnly, colour="#1f77b4", marker="s", baseline=True)
register("edge-u2", partial(EdgeUniform, 2), colour="#8c564b", marker="v", baseline=True, default=False,
         applies=partial(uniform_bits_missing, 2))
register("edge-u4", partial(EdgeUniform, 4), colour="#bcbd22", marker="<", baseline=True, default=False,
         applies=partial(uniform_bits_missing, 4))
register("edge-u6", partial(EdgeUniform, 6), colour="#17becf", marker=">", baseline=True, default=False,
         applies=partial(uniform_bits_missing, 6))
register("edge-u8", partial(EdgeUniform, 8), colour="#7f7f7f", marker="^", baseline=True,
         applies=partial(uniform_bits_missing, 8))
register("neurosurgeon", Neurosurgeon, colour="#9467bd", marker="D", baseline=True)
register("dads", DADS, colour="#e377c2", marker="P", baseline=True)
register("qdmp", QDMP, colour="#ff7f0e", marker="X", baseline=True)
register("autosplit", AutoSplit, colour="#d62728", marker="*", on_top=0.3, guarantee=autosplit.guarantee)
register("exact", ExactFront, colour="#000000", marker="o", size=1.7, on_top=0.1, budget=ExactBudget,
         guarantee=exact.guarantee)
register("optuna", OptunaSearch, colour="#2ca02c", marker="h", size=1.35, on_top=0.2, options=OptunaOptions,
         budget=OptunaBudget, resumes=True, guarantee=optuna_search.guarantee)


def __getattr__(name: str) -> tuple[str, ...]:
    """`METHODS` and `BASELINES`: the registered method names (and those of the baselines) at the time they
    are read, so that they include a method registered after this package was imported."""
    if name == "METHODS":
        return method_names()
    if name == "BASELINES":
        return method_names(baseline=True)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
