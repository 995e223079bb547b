"""Capacity's plans are the run's: the same method with the YAML's options, budget and seed gives the same plan
(issue 26: capacity used to search again without `search.optuna`, so an NSGA-II run met a TPE capacity plan)."""
from __future__ import annotations

import pandas as pd
import pytest
from support import write_yaml

from simulator.experiment.capacity_run import build_fleet
from simulator.experiment.loading import load_experiment
from simulator.experiment.runner import run_experiment
from simulator.experiment.scenario import build_scenario
from simulator.search import make_method

EXPERIMENT = {
    "model": "resnet18", "edge": "eyeriss", "cloud": "h100",
    "network": {"uplink": "3Mbps", "rtt": "10ms", "link": "tcp"},
    "constraints": {"edge_memory": "4MiB", "max_accuracy_drop": 1.0},
    "search": {"methods": ["optuna"], "optuna": {"sampler": "nsga2"}, "budgets": {"optuna": {"trials": 150}}},
    "seed": 3,
    "output": {"plot_formats": ["png"]},
    "capacity": {
        "groups": [{"name": "cams", "plan": {"method": "optuna"}, "arrivals": {"kind": "periodic", "rate": 10},
                    "devices": 20}],
        "gpus": [1], "batching": {"max_batch": 4, "max_wait": "1ms"}, "slo_p99": "200ms",
        "duration": "2s", "warmup": "0.5s", "seeds": 1, "plot_points": 0,
    },
}


def plan_of(fleet) -> dict:
    (group,) = fleet.groups
    return group.plan


@pytest.mark.slow
def test_capacity_plan_is_the_runs_chosen_plan_with_a_non_default_sampler(tmp_path):
    loaded = load_experiment(write_yaml(tmp_path / "tpe.yaml", EXPERIMENT))
    out = tmp_path / "results"
    run_experiment(loaded, out, show_progress=False)
    chosen = pd.read_csv(out / "baselines.csv").set_index("method").loc["optuna"]
    capacity = pd.read_csv(out / "capacity" / "plans.csv").iloc[0]
    assert capacity["source"].startswith("optuna (input ")
    assert capacity["cut_index"] == chosen["cut_index"]
    assert capacity["edge_layers"] == chosen["edge_layer_count"]
    assert capacity["single_device_latency_s"] == chosen["latency_s"]
    assert capacity["accuracy_drop"] == chosen["accuracy_drop"]
    # without the run's results, capacity searches as the run does (TPE, the budget, the seed): the same plan
    fleet, _ = build_fleet(loaded)
    assert plan_of(fleet)["single_device_latency_s"] == chosen["latency_s"]
    assert plan_of(fleet)["cut_index"] == chosen["cut_index"]
    # and the option matters here: the default sampler (what capacity used before) finds another plan
    default = make_method("optuna").run(build_scenario(loaded.config), budget={"trials": 150}, seed=3).best
    assert default["latency_s"] != chosen["latency_s"]
