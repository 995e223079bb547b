"""Shared fixtures: scenarios built from real presets, with an accuracy proxy from the stated assumptions."""
import numpy as np
import pytest

from hardware_models.registry import load_accelerator
from simulator.accuracy.proxy import AccuracyProxy, assumed_distortion_tables
from simulator.evaluate import Scenario
from simulator.graph import load_model
from simulator.network.link import Link
from simulator.runtime import keep_freed_memory

keep_freed_memory()  # as the CLI does: numpy temporaries reuse freed memory instead of fresh mappings


def assumed_proxy(graph, fp_accuracy=76.13):
    """A proxy with unit sensitivities over the assumed distortion tables (the tests' stand-in for a fit)."""
    weights, activations = assumed_distortion_tables(graph)
    ones = np.ones(len(graph.layers))
    return AccuracyProxy([l.name for l in graph.layers], weights, activations, ones, ones, fp_accuracy, 0.1)


def make_scenario(model="resnet50", edge="eyeriss", cloud="tpu_v1", link=None, **fields):
    graph = load_model(model)
    link = link or Link.ideal(3 * 2**20)
    return Scenario(graph, load_accelerator(edge), load_accelerator(cloud), link, assumed_proxy(graph), **fields)


@pytest.fixture(scope="session")
def paper_scenario():
    """The Auto-Split paper's setup: resnet50, eyeriss, tpu_v1, 3 Mibps ideal link, 4 MiB, max_layer."""
    return make_scenario(edge_memory_bytes=4 * 2**20, memory_model="max_layer", max_accuracy_drop=1.0,
                         edge_bits=(1, 2, 4, 5, 6, 7, 8))
