"""Issue 26's done-when for hardware kinds: a kind is two files, its module (an `Accelerator` with its pydantic
preset model) and one `register_kind` call (written below as a plug-in package outside autosplit); a preset
YAML with its `kind:` then works wherever a preset file does: `autosplit layer-cost`, `autosplit plan`, an
experiment's `edge:`."""
from __future__ import annotations

import json
import sys
import textwrap

import pandas as pd
import pytest
import yaml

from hardware_models.errors import UserError
from hardware_models.registry import kinds, load_accelerator, register_kind, unregister_kind
from simulator.cli import main

KIND_MODULE = '''
"""A roofline: each layer takes the longer of its MACs at `macs_per_cycle` and its bytes at `bandwidth`."""
from hardware_models.base import Accelerator, LayerCost
from hardware_models.preset import Bandwidth, BitList, Frequency, PositiveInteger, PresetModel, validate_preset


class RooflinePreset(PresetModel):
    clock: Frequency
    macs_per_cycle: PositiveInteger
    bandwidth: Bandwidth
    supported_bits: BitList = (4, 8)


class Roofline(Accelerator):
    kind = "roofline"

    def __init__(self, name, clock_hz, macs_per_cycle, bandwidth_bytes_per_s, supported_bits):
        self.name, self.clock_hz, self.supported_bits = name, clock_hz, supported_bits
        self.macs_per_cycle, self.bandwidth_bytes_per_s = macs_per_cycle, bandwidth_bytes_per_s

    @classmethod
    def from_config(cls, config, source):
        preset = validate_preset(RooflinePreset, config, source)
        return cls(preset.name or "roofline", preset.clock, preset.macs_per_cycle, preset.bandwidth,
                   preset.supported_bits)

    def layer_cost(self, layer, weight_bits=8, activation_bits=8, batch=1):
        moved = (layer.weight_elements * weight_bits + batch * activation_bits
                 * (layer.input_elements * layer.input_reads + layer.output_elements)) / 8.0
        compute = layer.macs * batch / self.macs_per_cycle
        memory = moved / self.bandwidth_bytes_per_s * self.clock_hz
        total = max(compute, memory)
        return LayerCost(layer.name, compute, total - compute, total / self.clock_hz, layer.macs * batch * 1e-12,
                         moved)
'''

REGISTER_MODULE = '''
from hardware_models.registry import register_kind
from roofline_plugin.model import Roofline

register_kind(Roofline)
'''

PRESET = "kind: roofline\nname: toy roofline\nclock: 500MHz\nmacs_per_cycle: 256\nbandwidth: 4GB/s\n"


@pytest.fixture
def roofline(tmp_path, monkeypatch):
    """The plug-in package on the path and imported (so registered), and a preset of its kind."""
    package = tmp_path / "plugins" / "roofline_plugin"
    package.mkdir(parents=True)
    (package / "model.py").write_text(textwrap.dedent(KIND_MODULE))
    (package / "__init__.py").write_text(textwrap.dedent(REGISTER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    __import__("roofline_plugin")
    preset = tmp_path / "roofline.yaml"
    preset.write_text(PRESET)
    yield str(preset)
    unregister_kind("roofline")
    for name in ("roofline_plugin", "roofline_plugin.model"):
        sys.modules.pop(name, None)


def test_a_plugged_in_kind_costs_a_model_in_layer_cost(roofline, capsys):
    assert main(["layer-cost", "resnet18", "--hardware", roofline, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["hardware"] == "toy roofline"
    rows = data["layers"]
    # by hand: ResNet-18's first conv is 112 x 112 outputs x 64 filters x (7 x 7 x 3) window = 118,013,952 MACs
    assert rows[0]["compute_cycles"] == pytest.approx(112 * 112 * 64 * 7 * 7 * 3 / 256)
    assert data["total"]["latency_s"] == pytest.approx(sum(r["latency_s"] for r in rows))


def test_precision_flags_follow_the_kind_s_own_answer_not_its_name(roofline, capsys):
    assert main(["layer-cost", "resnet18", "--hardware", roofline, "--precision", "fp16"]) == 2
    assert "toy roofline computes at any of its bit-widths" in capsys.readouterr().err
    assert main(["layer-cost", "resnet18", "--hardware", "jetson_orin_nano", "--bits", "4/4"]) == 2
    assert "computes at" in capsys.readouterr().err


@pytest.mark.slow
def test_a_plugged_in_kind_is_an_edge_for_plan(roofline, capsys):
    assert main(["plan", "resnet18", "--edge", roofline, "--cloud", "tpu_v1", "--uplink", "3Mbps",
                 "--edge-memory", "8MiB", "--max-accuracy-drop", "2", "--method", "autosplit",
                 "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["feasible"] and set(plan["weight_bits"]) <= {4, 8, None}


def test_a_preset_of_an_unregistered_kind_is_refused_naming_the_kinds(roofline, tmp_path):
    unregister_kind("roofline")
    try:
        with pytest.raises(UserError, match="kind: unknown accelerator kind 'roofline'; expected one of systolic"):
            load_accelerator(roofline)
    finally:
        register_kind(sys.modules["roofline_plugin.model"].Roofline)


def test_a_kind_is_registered_once(roofline):
    with pytest.raises(ValueError, match="registered already"):
        register_kind(kinds()["roofline"])


@pytest.mark.slow
def test_a_plugged_in_kind_is_an_edge_in_an_experiment(roofline, tmp_path):
    path = tmp_path / "roofline_experiment.yaml"
    path.write_text(yaml.safe_dump({"model": "resnet18", "edge": roofline, "network": {"uplink": "3Mbps"},
                                    "constraints": {"edge_memory": "8MiB", "max_accuracy_drop": 2.0},
                                    "search": {"methods": ["autosplit"]}, "output": {"plot_formats": []}}))
    out = tmp_path / "results"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    chosen = pd.read_csv(out / "baselines.csv").set_index("method")
    assert bool(chosen.loc["autosplit", "found"]) and chosen.loc["edge-u8", "edge_s"] > 0
