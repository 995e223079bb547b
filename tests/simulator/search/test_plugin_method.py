"""Issue 26's done-when for search methods: a method with its own option and its own budget key is two files,
its module and one `register` call (written below as a plug-in package outside autosplit), and then runs from
the experiment YAML (`autosplit run`) and from the command line (`autosplit plan --method`), its option and
budget checked by its own models with the messages every key gets."""
from __future__ import annotations

import json
import sys
import textwrap

import pandas as pd
import pytest
import yaml

from simulator.cli import main
from simulator.experiment.schema import json_schema
from simulator.search import method_names, unregister

METHOD_MODULE = '''
"""Every `stride`-th prefix cut at 8 bits, at most `cuts` of them."""
import numpy as np
from pydantic import Field

from simulator.search import Budget, Candidates, MethodSettings, Proposal, SearchMethod
from simulator.search.base import uniform


class StrideOptions(MethodSettings):
    stride: int = Field(default=1, ge=1, description="every stride-th cut")


class StrideBudget(Budget):
    cuts: int | None = Field(default=None, ge=1, description="at most this many cuts")


class StrideCuts(SearchMethod):
    name = "stride"

    def __init__(self, stride: int = 1) -> None:
        self.stride = stride

    def propose(self, tables, budget, seed):
        cuts = np.arange(0, tables.layers + 1, self.stride)[:budget.get("cuts")]
        weight_bits, activation_bits = uniform(tables, 8, count=len(cuts))
        return Proposal(Candidates(weight_bits, activation_bits, cut=cuts), {"cuts": len(cuts)})
'''

REGISTER_MODULE = '''
from simulator.search import register
from stride_plugin.method import StrideBudget, StrideCuts, StrideOptions

register("stride", StrideCuts, colour="#654321", marker="d", options=StrideOptions, budget=StrideBudget)
'''

SCENARIO_FLAGS = ["resnet18", "--edge", "eyeriss", "--cloud", "tpu_v1", "--uplink", "3Mbps", "--rtt", "20ms",
                  "--edge-memory", "4MiB", "--max-accuracy-drop", "1"]


@pytest.fixture
def stride(tmp_path, monkeypatch):
    """The plug-in package on the path and imported (so registered), for one test."""
    package = tmp_path / "plugins" / "stride_plugin"
    package.mkdir(parents=True)
    (package / "method.py").write_text(textwrap.dedent(METHOD_MODULE))
    (package / "__init__.py").write_text(textwrap.dedent(REGISTER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    __import__("stride_plugin")
    yield "stride"
    unregister("stride")
    for name in ("stride_plugin", "stride_plugin.method"):
        sys.modules.pop(name, None)


@pytest.mark.slow
def test_a_plugged_in_method_runs_from_the_yaml_with_its_option_and_budget(stride, tmp_path):
    path = tmp_path / "stride.yaml"
    path.write_text(yaml.safe_dump({"model": "resnet18", "edge": "eyeriss", "network": {"uplink": "3Mbps"},
                                    "constraints": {"edge_memory": "4MiB", "max_accuracy_drop": 1.0},
                                    "search": {"methods": ["stride"], "budgets": {"stride": {"cuts": 3}},
                                               "stride": {"stride": 2}},
                                    "output": {"plot_formats": []}}))
    out = tmp_path / "results"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    plans = pd.read_csv(out / "plans.csv")
    assert sorted(set(plans.loc[plans["method"] == "stride", "cut_index"])) == [0, 2, 4]
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert resolved["experiment"]["search"]["stride"] == {"stride": 2}
    assert resolved["methods"][-1] == {"method": "stride", "budget": {"cuts": 3}}


def test_a_plugged_in_method_runs_from_plan_with_its_option_and_budget_flags(stride, capsys):
    assert main(["plan", *SCENARIO_FLAGS, "--method", "stride", "--stride-stride", "3", "--cuts", "2",
                 "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["method"] == "stride" and plan["evaluations"] == 2 and plan["cut_index"] in (0, 3)


@pytest.mark.parametrize("flags, message", [
    (["--stride-stride", "0"], "plan --stride-stride: expected greater than or equal to 1, got 0"),
    (["--cuts", "many"], "plan --cuts: expected a valid integer"),
    (["--trials", "5"], "plan --trials: unknown key for stride; expected one of cuts"),
])
def test_the_plugged_in_method_s_flags_are_checked_by_its_models(stride, capsys, flags, message):
    assert main(["plan", *SCENARIO_FLAGS, "--method", "stride", *flags]) == 2
    assert message in capsys.readouterr().err


def test_the_yaml_checks_the_plugged_in_method_s_keys_and_the_schema_lists_them(stride, tmp_path, capsys):
    path = tmp_path / "stride.yaml"
    path.write_text(yaml.safe_dump({"model": "resnet18", "edge": "eyeriss", "network": {"uplink": "3Mbps"},
                                    "constraints": {"edge_memory": "4MiB", "max_accuracy_drop": 1.0},
                                    "search": {"methods": ["stride"], "budgets": {"stride": {"cut": 3}},
                                               "stride": {"strides": 2}}}))
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "search.budgets.stride.cut: unknown key for stride (did you mean 'cuts'?)" in err
    assert "search.stride.strides: unknown key for stride (did you mean 'stride'?)" in err
    search = json_schema()["$defs"]["Search"]
    assert search["properties"]["stride"]["properties"]["stride"]["default"] == 1
    assert "cuts" in search["properties"]["budgets"]["properties"]["stride"]["properties"]


def test_unregistered_the_method_and_its_keys_are_unknown_again(tmp_path):
    assert "stride" not in method_names()
    search = json_schema()["$defs"]["Search"]
    assert "stride" not in search["properties"] and "stride" not in search["properties"]["budgets"]["properties"]
