"""The answers the example experiments' headers state (issue 25: a header must say what its example answers)."""
from __future__ import annotations

import pytest
from support import EXPERIMENTS

from simulator.experiment.loading import load_experiment
from simulator.experiment.scenario import build_scenario
from simulator.experiment.sweep import expand
from simulator.search import run_method


def _scenarios(name: str, overrides: list[str] | None = None) -> dict[str, object]:
    loaded = load_experiment(EXPERIMENTS / name, overrides)
    return {cell.config.model if "model" in cell.values else cell.label: build_scenario(cell.config, name)
            for cell in expand(loaded)}


@pytest.mark.slow
def test_coral_usb_l4_splits_mobilenet_v2_and_sends_vgg16_to_the_l4():
    cells = _scenarios("coral_usb_l4.yaml")
    mobilenet, vgg = cells["mobilenet_v2"], cells["vgg16"]
    u8 = run_method("edge-u8", mobilenet).best
    assert u8 is not None and not u8["feasible"] and u8["latency_s"] < 0.005  # ~2.5 ms, over the bound
    best = run_method("autosplit", mobilenet).best
    assert best is not None and 0 < best["cut_index"] < len(mobilenet.graph.layers) and best["latency_s"] < 0.02
    cloud = run_method("cloud", mobilenet).best
    assert best["latency_s"] < cloud["latency_s"]
    assert run_method("autosplit", vgg).best["cut_index"] == 0


@pytest.mark.slow
def test_paper_resnet50_is_cloud_only_inside_the_evidence_and_splits_outside_it():
    inside = _scenarios("paper_resnet50.yaml", ["sweep.network.uplink=[1Mbps]"])
    scenario = next(iter(inside.values()))
    assert run_method("exact", scenario).best["cut_index"] == 0
    outside = next(iter(_scenarios("paper_resnet50.yaml", ["sweep.network.uplink=[1Mbps]",
                                                           "accuracy.extrapolate=true"]).values()))
    best = run_method("exact", outside).best
    cloud = run_method("cloud", outside).best
    assert best["cut_index"] > 0 and best["latency_s"] < 0.85 * cloud["latency_s"]
