"""Optuna search: seeded and reproducible, constrained, warm-started, resumable through a journal file."""
import numpy as np
import optuna
import pytest

from simulator.search.optuna_search import OptunaSearch
from simulator.search.pareto import hypervolume_2d

from support import make_scenario


@pytest.fixture(scope="module")
def scenario():
    # resnet18 with memory and accuracy bounds that both bind
    return make_scenario("resnet18", edge_memory_bytes=2 * 2**20, memory_model="max_layer", max_accuracy_drop=0.5,
                         edge_bits=(2, 4, 8))


def plans(result):
    return result.plans.drop(columns=["on_front"]).to_dict("records")


def test_same_seed_and_trial_budget_give_identical_results(scenario):
    first = OptunaSearch(population=40).run(scenario, budget={"trials": 120}, seed=3)
    second = OptunaSearch(population=40).run(scenario, budget={"trials": 120}, seed=3)
    assert first.evaluations == second.evaluations == 120
    assert plans(first) == plans(second)
    assert first.best == second.best
    other = OptunaSearch(population=40).run(scenario, budget={"trials": 120}, seed=4)
    assert plans(other) != plans(first)


def test_answer_meets_both_bounds_and_no_baseline_it_was_seeded_with_is_faster(scenario):
    result = OptunaSearch(population=40).run(scenario, budget={"trials": 200}, seed=0)
    best = result.best
    assert best["feasible"]
    assert best["edge_memory_bytes"] <= scenario.edge_memory_bytes
    assert best["accuracy_drop"] <= scenario.max_accuracy_drop + 1e-9
    feasible = result.plans[result.plans["feasible"]]
    assert best["latency_s"] == pytest.approx(feasible["latency_s"].min())
    from simulator.search import run_method

    cloud = run_method("cloud", scenario).best
    assert best["latency_s"] <= cloud["latency_s"]


def test_constraints_are_recorded_on_every_trial_and_a_journal_study_resumes(scenario, tmp_path):
    journal = tmp_path / "study.log"
    # (a journal file writes every trial operation: a small study, no warm start, keeps this fast)
    OptunaSearch(population=5, warm_start=False).run(scenario, budget={"trials": 10}, seed=1, storage=str(journal),
                                                     study_name="s")
    # a shared study's trial budget is the study's: resuming to 15 adds 5
    resumed = OptunaSearch(population=5, warm_start=False).run(scenario, budget={"trials": 15}, seed=1,
                                                               storage=str(journal), study_name="s")
    from simulator.search.optuna_search import open_storage

    study = optuna.load_study(study_name="s", storage=open_storage(str(journal)))
    trials = study.get_trials()
    assert len(trials) == 15 and resumed.evaluations == 15
    assert all(set(t.constraints) == {"memory", "accuracy"} for t in trials)
    ev = OptunaSearch.decode(scenario.tables, [t.params for t in trials]).evaluate(scenario.tables)
    memory_excess = [t.constraints["memory"] for t in trials]
    drop_excess = [t.constraints["accuracy"] for t in trials]
    np.testing.assert_allclose(memory_excess, ev.edge_memory_bytes / scenario.edge_memory_bytes - 1, atol=1e-12)
    np.testing.assert_allclose(drop_excess, ev.accuracy_drop - scenario.max_accuracy_drop, atol=1e-12)
    np.testing.assert_allclose([t.values for t in trials], np.column_stack([ev.latency_s, ev.accuracy_drop]))


def test_warm_start_alone_already_contains_the_baselines_best_feasible_plan(scenario):
    from simulator.search import BASELINES, run_method

    result = OptunaSearch(population=10).run(scenario, budget={"trials": 10}, seed=0)
    offered = [n for n in BASELINES if not n.startswith("edge-u") or int(n[len("edge-u"):]) in (2, 4, 8)]
    baselines = [run_method(n, scenario).best for n in offered]
    baseline_best = min(b["latency_s"] for b in baselines if b["feasible"])
    assert (result.plans["cut_index"] == 0).any()  # cloud-only, the first plan enqueued
    assert result.best["latency_s"] <= baseline_best + 1e-12


def test_tpe_is_selectable_and_seeded(scenario):
    a = OptunaSearch(sampler="tpe", population=10).run(scenario, budget={"trials": 30}, seed=2)
    b = OptunaSearch(sampler="tpe", population=10).run(scenario, budget={"trials": 30}, seed=2)
    assert a.info["sampler"] == "tpe" and plans(a) == plans(b)


@pytest.mark.slow
def test_seconds_budget_stops_and_hypervolume_never_falls(scenario):
    result = OptunaSearch(population=20).run(scenario, budget={"seconds": 1.0}, seed=0)
    trace = result.info["hypervolume_trace"]
    assert trace and result.elapsed_s < 10
    hv = [h for _, _, h in trace]
    assert all(b >= a for a, b in zip(hv, hv[1:]))
    front = result.plans[result.plans["feasible"]][["latency_s", "accuracy_drop"]].to_numpy()
    assert hv[-1] == pytest.approx(hypervolume_2d(front, result.info["hypervolume_reference"]))


def test_energy_as_a_third_objective_is_told_to_optuna_and_scored_in_3d(scenario, tmp_path):
    from simulator.search.optuna_search import open_storage

    journal = tmp_path / "energy.log"
    result = OptunaSearch(population=5, warm_start=False, objectives=("latency", "accuracy_drop", "energy")).run(
        scenario, budget={"trials": 10}, seed=0, storage=str(journal), study_name="e")
    study = optuna.load_study(study_name="e", storage=open_storage(str(journal)))
    assert all(len(t.values) == 3 for t in study.get_trials())
    assert len(study.directions) == 3
    assert result.info["hypervolume_3d"] >= 0.0 and len(result.info["hypervolume_3d_reference"]) == 3


def test_what_the_sampler_found_beyond_its_warm_start_is_reported(scenario):
    from simulator.search import describe

    result = OptunaSearch().run(scenario, budget={"trials": 200}, seed=0)
    info = result.info
    assert info["warm_start_plans"] > 0
    assert info["hypervolume_warm_start"] <= info["hypervolume"] + 1e-12
    assert info["fastest_feasible_s"] <= info["fastest_feasible_warm_start_s"] + 1e-12
    assert result.best["latency_s"] == pytest.approx(info["fastest_feasible_s"])
    text = describe("optuna", info)
    assert f"warm-started from {info['warm_start_plans']} plans" in text
    new = info["fastest_feasible_s"] < info["fastest_feasible_warm_start_s"] * (1 - 1e-9)
    assert ("is a new one" in text) == new
