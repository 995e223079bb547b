"""What the tests share besides fixtures: paths, scenario builders, the base experiment (importable as `support`:
pyproject puts tests/ on the path)."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import yaml

from hardware_models.registry import load_accelerator
from simulator.accuracy.proxy import AccuracyProxy, assumed_distortion_tables
from simulator.evaluate import Scenario
from simulator.graph import load_model
from simulator.network.link import Link

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"            # small ONNX models, data files, profiles
REFERENCE = TESTS / "reference"          # torchvision layer tables
SCALESIM_REFERENCE = TESTS / "scalesim_reference"
EXPERIMENTS = REPO / "experiments"

# the smallest complete experiment: ResNet-18 between eyeriss and tpu_v1 over 3 Mbit/s (tests add to it)
BASE_EXPERIMENT = {
    "model": "resnet18", "edge": "eyeriss", "cloud": "tpu_v1",
    "network": {"uplink": "3Mbps", "rtt": "20ms", "link": "tcp"},
    "constraints": {"edge_memory": "4MiB", "max_accuracy_drop": 1.0},
}


def an_experiment(**changes) -> dict:
    """A deep copy of BASE_EXPERIMENT with top-level keys replaced by `changes`."""
    return {**copy.deepcopy(BASE_EXPERIMENT), **changes}


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def assumed_proxy(graph, fp_accuracy=76.13):
    """A proxy with unit sensitivities over the assumed distortion tables (the tests' stand-in for a fit)."""
    weights, activations = assumed_distortion_tables(graph)
    ones = np.ones(len(graph.layers))
    return AccuracyProxy([l.name for l in graph.layers], weights, activations, ones, ones, fp_accuracy, 0.1)


def make_scenario(model="resnet50", edge="eyeriss", cloud="tpu_v1", link=None, **fields):
    graph = load_model(model)
    link = link or Link.ideal(3 * 2**20)
    return Scenario(graph, load_accelerator(edge), load_accelerator(cloud), link, assumed_proxy(graph), **fields)
