"""The experiment YAML: validation with one-line errors naming the key, overrides, sweeps, the JSON Schema."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from support import REPO, an_experiment

from simulator.cli import main
from simulator.experiment.loading import load_experiment
from simulator.experiment.sweep import expand

VALID = an_experiment(
    search={"methods": ["cloud", "edge-u8", "autosplit", "optuna"], "budgets": {"optuna": {"trials": 50}}},
)


def _write(tmp_path: Path, data: object, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def _with(change: dict, base: dict = VALID) -> dict:
    """A deep copy of `base` with `change` merged in (a value of None removes the key)."""
    out = json.loads(json.dumps(base))
    for key, value in change.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    return out


BROKEN = [  # (id, file content or change to VALID, words the one-line message must contain)
    ("empty file", "", ["empty file"]),
    ("only a comment", "# nothing here\n", ["empty file"]),
    ("yaml syntax error", "model: resnet18\nnetwork: {uplink: 3Mbps\n", ["not valid YAML", "line"]),
    ("top level is a list", "- model\n- edge\n", ["top level", "a list"]),
    ("typo at top level", {"modle": "resnet18"}, ["modle", "did you mean 'model'"]),
    ("typo in a section", {"network.uplnk": "3Mbps"}, ["network.uplnk", "did you mean 'uplink'"]),
    ("missing section", {"constraints": None}, ["constraints", "missing"]),
    ("missing key", {"constraints.max_accuracy_drop": None}, ["constraints.max_accuracy_drop", "missing"]),
    ("bad rate unit", {"network.uplink": "3Mbs"}, ["network.uplink", "unit"]),
    ("rate is not a rate", {"network.uplink": "fast"}, ["network.uplink", "3Mbps"]),
    ("time with a size unit", {"network.rtt": "5MiB"}, ["network.rtt", "unit"]),
    ("zero rate", {"network.uplink": "0Mbps"}, ["network.uplink", ">= 1 bit/s"]),
    ("negative size", {"constraints.edge_memory": "-4MiB"}, ["constraints.edge_memory", "> 0"]),
    ("wrong type for a number", {"constraints.max_accuracy_drop": "lots"}, ["constraints.max_accuracy_drop", "number"]),
    ("negative accuracy bound", {"constraints.max_accuracy_drop": -1}, ["constraints.max_accuracy_drop", "0"]),
    ("unknown edge preset", {"edge": "eyeris"}, ["edge", "did you mean 'eyeriss'"]),
    ("unknown cloud preset", {"cloud": "tpu_v2"}, ["cloud", "tpu_v1"]),
    ("missing hardware file", {"edge": "no/such/edge.yaml"}, ["edge", "no such hardware file"]),
    ("unknown model", {"model": "resnet5"}, ["model", "did you mean 'resnet50'"]),
    ("unknown link protocol", {"network.link": "udp"}, ["network.link", "tcp", "ideal"]),
    ("loss probability too large", {"network.loss": 1.5}, ["network.loss", "less than or equal to 0.1"]),
    ("unknown network preset", {"network": {"preset": "lt"}}, ["network.preset", "did you mean 'lte'"]),
    ("missing trace file", {"network.trace": "no_such_trace.csv"}, ["network.trace", "no such trace file"]),
    ("unknown memory model", {"constraints.memory_model": "peak"}, ["constraints.memory_model", "peak_live"]),
    ("unknown method", {"search.methods": ["cloud", "optuma"]}, ["search.methods[1]", "did you mean 'optuna'"]),
    ("typo in a budget", {"search.budgets": {"optuna": {"trails": 10}}},
     ["search.budgets.optuna.trails", "did you mean 'trials'"]),
    ("budget for an unknown method", {"search.budgets": {"optun": {"trials": 10}}},
     ["search.budgets.optun", "did you mean 'optuna'"]),
    ("optuna objectives out of order", {"search.optuna": {"objectives": ["energy", "latency"]}},
     ["search.optuna.objectives", "latency, accuracy_drop"]),
    ("zero trials", {"search.budgets": {"optuna": {"trials": 0}}}, ["search.budgets.optuna.trials"]),
    ("negative seed", {"seed": -1}, ["seed"]),
    ("section given as a scalar", {"network": "3Mbps"}, ["network", "mapping"]),
    ("cloud bits not offered", {"bits": {"cloud": 8}}, ["bits.cloud", "16"]),
    ("plan cap above the maximum", {"output": {"max_plan_rows": 200000}}, ["output.max_plan_rows", "100000"]),
    ("scheduler without a protocol", {"executor": "dask", "scheduler": "localhost:8786"},
     ["scheduler", "tcp://host:8786"]),
    ("unknown executor", {"executor": "ray"}, ["executor", "serial", "dask"]),
    ("unknown sweep key", {"sweep": {"network.uplnk": ["1Mbps"]}}, ["sweep", "did you mean 'network.uplink'"]),
    ("bad value inside a sweep", {"sweep": {"network.uplink": ["1Mbps", "fast"]}}, ["sweep.network.uplink[1]"]),
    ("empty sweep list", {"sweep": {"model": []}}, ["sweep", "model", "non-empty"]),
]


@pytest.mark.parametrize("case, content, words", BROKEN, ids=[c[0] for c in BROKEN])
def test_broken_experiment_exits_2_with_one_line_naming_the_key(tmp_path, capsys, case, content, words):
    path = _write(tmp_path, content if isinstance(content, str) else _with(content))
    code = main(["run", str(path), "--dry-run", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    message = captured.err.strip()
    assert code == 2
    assert "\n" not in message and message.startswith("error: ")
    assert "Traceback" not in captured.err + captured.out
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert str(path) in message or "--set" in message
    assert not (tmp_path / "out").exists()


def test_there_are_at_least_twenty_broken_experiments():
    assert len(BROKEN) >= 20


def test_bad_override_and_missing_file_are_one_line_errors(tmp_path, capsys):
    path = _write(tmp_path, VALID)
    assert main(["run", str(path), "--dry-run", "--set", "network.uplink"]) == 2
    assert "--set" in capsys.readouterr().err
    assert main(["run", str(path), "--dry-run", "--set", "network.uplnk=3Mbps"]) == 2
    assert "network.uplnk" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "nope.yaml"), "--dry-run"]) == 2
    assert "no such experiment file" in capsys.readouterr().err


def test_console_script_prints_no_traceback_for_a_broken_file(tmp_path):
    path = _write(tmp_path, _with({"network.uplink": "-3Mbps"}))
    done = subprocess.run([sys.executable, "-m", "simulator.cli", "run", str(path), "--dry-run"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "network.uplink" in done.stderr
    assert "Traceback" not in done.stderr


def test_units_are_kept_as_written_and_read_in_si_units(tmp_path):
    loaded = load_experiment(_write(tmp_path, _with({"network.uplink": "3Mibps", "network.rtt": "40ms",
                                                     "constraints.edge_memory": "4MiB"})))
    config = loaded.config
    assert config.network.uplink == "3Mibps"
    assert config.network.uplink_bps == 3 * 2**20
    assert config.network.rtt_s == pytest.approx(0.040)
    assert config.constraints.edge_memory_bytes == 4 * 2**20


def test_overrides_replace_values_and_sweeps(tmp_path):
    path = _write(tmp_path, VALID)
    loaded = load_experiment(path, ["network.uplink=10Mbps", "seed=7", "sweep.network.uplink=[1Mbps, 20Mbps]"])
    assert loaded.config.seed == 7
    assert loaded.config.network.uplink_bps == 10e6
    assert [c.config.network.uplink_bps for c in expand(loaded)] == [1e6, 20e6]


def test_sweep_is_the_cartesian_product_in_key_order(tmp_path):
    loaded = load_experiment(_write(tmp_path, _with({"sweep": {"network.uplink": ["1Mbps", "3Mbps", "10Mbps"],
                                                               "model": ["resnet18", "mobilenet_v2"]}})))
    cells = expand(loaded)
    assert len(cells) == 6
    assert [c.index for c in cells] == list(range(6))
    pairs = [(c.config.network.uplink, c.config.model) for c in cells]
    assert pairs == [(u, m) for u in ("1Mbps", "3Mbps", "10Mbps") for m in ("resnet18", "mobilenet_v2")]
    assert all(c.config.sweep == {} or c.config.sweep for c in cells)
    assert cells[1].values == {"network.uplink": "1Mbps", "model": "mobilenet_v2"}


def test_dry_run_prints_the_work_plan_and_writes_nothing(tmp_path, capsys):
    path = _write(tmp_path, _with({"sweep": {"network.uplink": ["1Mbps", "3Mbps"]},
                                   "search.budgets": {"optuna": {"seconds": "5s"}}}))
    out = tmp_path / "results"
    assert main(["run", str(path), "--dry-run", "--out", str(out), "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [c["uplink_bps"] for c in plan["cells"]] == [1e6, 3e6]
    assert [m["method"] for m in plan["methods"]] == ["cloud", "edge-u8", "autosplit", "optuna"]
    assert plan["methods"][-1]["budget"] == {"seconds": 5.0}
    assert plan["reproducible"] is False
    assert plan["runs"] == 8
    assert not out.exists()


def test_reference_methods_are_added_for_the_speedups(tmp_path, capsys):
    path = _write(tmp_path, _with({"search.methods": ["autosplit"]}))
    assert main(["run", str(path), "--dry-run", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [m["method"] for m in plan["methods"]] == ["cloud", "edge-u8", "autosplit"]
    assert plan["reproducible"] is True


def test_schema_command_prints_a_json_schema_that_forbids_unknown_keys(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False
    assert {"model", "edge", "network", "constraints"} <= set(schema["required"])
    network = schema["$defs"]["Network"]
    assert network["additionalProperties"] is False
    assert set(network["properties"]) == {"preset", "uplink", "rtt", "link", "trace", "loss"}
    assert main(["schema", "--format", "csv"]) == 0
    assert "network.uplink" in capsys.readouterr().out


def test_every_example_experiment_validates():
    examples = sorted((REPO / "experiments").glob("*.yaml"))
    assert {p.stem for p in examples} >= {"quickstart", "paper_resnet50"}
    for path in examples:
        cells = expand(load_experiment(path))
        assert cells, path


def test_paper_experiment_is_the_papers_setup():
    loaded = load_experiment(REPO / "experiments" / "paper_resnet50.yaml")
    config = loaded.config
    assert (config.model, config.edge, config.cloud) == ("resnet50", "eyeriss", "tpu_v1")
    assert config.constraints.edge_memory_bytes == 4 * 2**20
    assert config.constraints.memory_model == "max_layer"
    assert config.constraints.max_accuracy_drop <= 1.0
    assert (config.codecs.input, config.codecs.activation) == ("raw", "raw")
    assert [c.config.network.uplink_bps / 1e6 for c in expand(loaded)] == [1, 3, 10, 20]


def test_yaml_example_in_the_readme_style_is_accepted(tmp_path):
    text = textwrap.dedent("""\
        model: googlenet
        edge: hexagon_dsp
        network: {uplink: 20Mbps, rtt: 30ms}
        constraints: {edge_memory: 8MiB, max_accuracy_drop: 2}
        """)
    config = load_experiment(_write(tmp_path, text)).config
    assert config.cloud == "tpu_v1" and config.search.methods[-1] == "optuna"


def test_network_preset_fields_apply_and_explicit_keys_override_them(tmp_path):
    from simulator.experiment.scenario import cell_record

    loaded = load_experiment(_write(tmp_path, _with({"network": {"preset": "lte"},
                                                     "sweep": {"network.uplink": ["2Mbps", "20Mbps"]}})))
    records = [cell_record(c) for c in expand(loaded)]
    preset = load_experiment(_write(tmp_path, _with({"network": {"preset": "lte"}}), "plain.yaml"))
    lte = cell_record(expand(preset)[0])
    assert [r["uplink_bps"] for r in records] == [2e6, 20e6]
    assert all(r["rtt_s"] == lte["rtt_s"] > 0 and r["loss_rate"] == lte["loss_rate"] > 0 for r in records)
