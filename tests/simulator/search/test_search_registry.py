"""Adding a search method is one class and one registration: the toy method below is run by name, accepted by
the experiment YAML and its JSON Schema, tabulated and drawn like the built-in methods, and forgotten again
when it is unregistered."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from support import make_scenario

from hardware_models.errors import UserError
from simulator.cli import main
from simulator.evaluate import CostTables
from simulator.experiment.loading import load_experiment
from simulator.experiment.schema import json_schema
from simulator.search import Candidates, Proposal, SearchMethod, method_names, register, run_method, unregister
from simulator.search.base import uniform

LABEL = "toy: every cut at 8 bits"


class EveryCutAtEightBits(SearchMethod):
    """Every prefix cut, every edge layer's weights and activations at 8 bits."""

    name = "toy"

    def propose(self, tables: CostTables, budget: dict, seed: int) -> Proposal:
        cuts = np.arange(tables.layers + 1)
        weight_bits, activation_bits = uniform(tables, 8, count=len(cuts))
        return Proposal(Candidates(weight_bits, activation_bits, cut=cuts), {"cuts": len(cuts)})


@pytest.fixture
def toy():
    """The toy method, registered for one test."""
    register("toy", EveryCutAtEightBits, colour="#123456", marker="d", label=LABEL,
             guarantee=lambda info: f"toy: {info['cuts']} cuts tried, all at 8 bits.")
    yield "toy"
    unregister("toy")


def test_a_registered_method_runs_by_name_and_returns_its_info_with_the_result(toy):
    scenario = make_scenario("resnet18", edge_memory_bytes=4 * 2**20, max_accuracy_drop=1.0)
    result = run_method(toy, scenario)
    layers = scenario.tables.layers
    assert result.method == "toy" and result.evaluations == layers + 1
    assert result.info == {"cuts": layers + 1}
    assert set(result.plans["method"]) == {"toy"}
    assert result.best is not None and result.best["feasible"]
    assert all(bits == 8 for bits in result.best["activation_bits"])


def test_the_yaml_and_its_schema_take_the_method_only_while_it_is_registered(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump({"model": "resnet18", "edge": "eyeriss", "network": {"uplink": "3Mbps"},
                                    "constraints": {"edge_memory": "4MiB", "max_accuracy_drop": 1.0},
                                    "search": {"methods": ["cloud", "toy"]}}))
    with pytest.raises(UserError, match="unknown method 'toy'"):
        load_experiment(path)
    register("toy", EveryCutAtEightBits, colour="#123456", marker="d")
    try:
        assert load_experiment(path).config.search.methods == ["cloud", "toy"]
        methods = json_schema()["$defs"]["Search"]["properties"]["methods"]
        assert "toy" in methods["items"]["enum"] and "toy" in methods["default"]
    finally:
        unregister("toy")
    assert "toy" not in method_names()
    with pytest.raises(UserError, match="unknown method 'toy'"):
        load_experiment(path)


def test_an_experiment_runs_tabulates_and_draws_a_registered_method(toy, tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump({"model": "resnet18", "edge": "eyeriss", "cloud": "tpu_v1",
                                    "network": {"uplink": "3Mbps", "rtt": "20ms"},
                                    "constraints": {"edge_memory": "4MiB", "max_accuracy_drop": 1.0},
                                    "search": {"methods": ["cloud", "autosplit", "toy"]},
                                    "output": {"plot_formats": ["svg"]}}))
    out = tmp_path / "results"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    baselines = pd.read_csv(out / "baselines.csv")
    assert list(baselines["method"]) == ["edge-u8", "cloud", "autosplit", "toy"]
    row = baselines.set_index("method").loc["toy"]
    assert bool(row["found"]) and row["guarantee"].startswith("toy: ") and row["speedup_vs_cloud"] > 0
    plans = pd.read_csv(out / "plans.csv")
    assert (plans["method"] == "toy").sum() > 1  # its front (drawn as one) and its chosen plan
    # the figures draw it with its registered label (SVG text is kept as text)
    assert f"{LABEL} front (fits memory)" in (out / "pareto.svg").read_text()
    assert "toy" in (out / "breakdown.svg").read_text()
    assert "toy" in Path(out / "summary.md").read_text()
