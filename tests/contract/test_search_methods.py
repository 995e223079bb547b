"""The contract every registered search method keeps (Optuna's habit of one suite against every sampler): the
same seed gives the same answer, an answer is within the bounds or there is none (a baseline's single plan is
reported as it is, its `feasible` telling the truth), and a budget is respected."""
from __future__ import annotations

import pytest
from support import make_scenario

from simulator.network import Link
from simulator.search import make_method, method_names, registered, run_method

# a small budget per budget key (a method's key not listed here is run with its defaults)
SMALL = {"trials": 40, "seconds": 1.0, "epsilon": 0.05}
CHECKS = {  # what a budget key promises, read from the result
    "trials": lambda result, n: result.info["trials"] <= n,
    "seconds": lambda result, s: result.elapsed_s <= s + 2.0,  # one batch may run past the deadline
    "epsilon": lambda result, e: result.info["epsilon"] <= e,
}
SLOW = {"exact", "optuna"}  # a second or more each on this scenario
METHODS = [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in method_names()]
MEMORY_BYTES, DROP = 4 * 2**20, 1.0


@pytest.fixture(scope="module")
def scenario():
    return make_scenario("resnet18", link=Link(3e6, rtt_s=0.02), edge_memory_bytes=MEMORY_BYTES,
                         max_accuracy_drop=DROP)


def _budget(name: str, *, reproducible: bool = True) -> dict:
    keys = registered(name).budget_keys
    return {k: SMALL[k] for k in keys if k in SMALL and not (reproducible and k == "seconds")}


@pytest.mark.parametrize("name", METHODS)
def test_the_same_seed_gives_the_same_answer(scenario, name):
    first, second = (run_method(name, scenario, _budget(name), seed=5) for _ in range(2))
    assert first.best == second.best
    assert first.plans.drop(columns="on_front").equals(second.plans.drop(columns="on_front"))


@pytest.mark.parametrize("name", METHODS)
def test_an_answer_is_within_the_bounds_or_there_is_none(scenario, name):
    result = run_method(name, scenario, _budget(name), seed=0)
    plans = result.plans
    within = (plans["edge_memory_bytes"] <= MEMORY_BYTES) & (plans["accuracy_drop"] <= DROP + 1e-9)
    assert not (plans["feasible"] & ~within).any()  # what a plan's `feasible` says is true
    best = result.best
    if make_method(name).single_answer:
        assert best is not None  # a baseline reports its plan, feasible or not
    elif best is not None:
        assert best["feasible"] and best["edge_memory_bytes"] <= MEMORY_BYTES
        assert best["accuracy_drop"] <= DROP + 1e-9
        assert best["latency_s"] == plans.loc[plans["feasible"], "latency_s"].min()


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in method_names() if registered(n).budget_keys])
def test_a_budget_is_respected(scenario, name):
    budget = _budget(name, reproducible=False)
    checked = [key for key in budget if key in CHECKS]
    assert checked, f"{name}: no budget key this suite knows how to check"
    for key in checked:
        result = run_method(name, scenario, {key: budget[key]}, seed=0)
        assert CHECKS[key](result, budget[key]), (name, key, result.info)


@pytest.mark.parametrize("name", [n for n in method_names() if registered(n).options is not None])
def test_its_options_model_s_defaults_build_it(name):
    options = registered(name).options
    assert options is not None
    assert make_method(name, **dict(options())).name == name
