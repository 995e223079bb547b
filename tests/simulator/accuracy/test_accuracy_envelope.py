"""The evidence envelope (issue 22): the lowest bits two sources' published rows reach per tier, granularity
and kind of tensor; searches never leave it unless `accuracy.extrapolate` says so."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simulator.accuracy.calibration import UNCOVERED_BITS, coverage, envelope_floors, zoo_proxy
from simulator.accuracy.published import CalibrationRow, PlanBuilder
from simulator.evaluate import Scenario, evaluate
from simulator.network.link import Link
from simulator.search import run_method


def _row(source: str, w: int, a: int) -> CalibrationRow:
    wb, ab = PlanBuilder("resnet18").uniform(w, a)
    return CalibrationRow(f"X{w}{a}{source}", "resnet18", source, "m", "reconstruction", "per-channel", 71.0, 60.0,
                          tuple(map(int, wb)), tuple(map(int, ab)), "")


def test_a_floor_is_the_lowest_bits_two_sources_reach():
    rows = (_row("A", 2, 8), _row("B", 4, 8), _row("C", 3, 6))
    key = ("reconstruction", "per-channel", "weight", "middle")
    assert coverage(rows)[key] == 3                     # A reaches 2, C 3: two sources at 3 or below
    assert coverage(rows[:2])[key] == 4
    assert key not in coverage(rows[:1])                # one paper alone is no envelope
    assert coverage(rows[:1], sources=1)[key] == 2
    # the first conv's weights and the classifier stay at 8 in these plans: their floor is 8
    assert coverage(rows)[("reconstruction", "per-channel", "weight", "first")] == 8
    activations = ("reconstruction", "per-channel", "activation", "middle")
    assert coverage(rows)[activations] == 8             # A and B at A8, only C at A6


def test_kinds_no_two_sources_quantize_have_the_uncovered_floor():
    floors = envelope_floors("calibrated", "per-tensor")
    assert all(bits <= UNCOVERED_BITS for kind in floors.values() for bits in kind.values())
    assert envelope_floors("reconstruction", "per-channel")["weight"]["middle"] == 2  # MQBench and QDrop at W2


@pytest.fixture(scope="module")
def quickstart():
    return Scenario.build("resnet18", "eyeriss", "tpu_v1", Link(uplink_bps=3e6, rtt_s=0.02),
                          edge_memory_bytes=2**30, max_accuracy_drop=100.0, accuracy_confidence="expected")


@pytest.mark.slow
def test_a_plan_outside_the_envelope_is_infeasible_unless_the_scenario_extrapolates(quickstart):
    proxy = zoo_proxy("resnet18")
    tables = quickstart.tables
    L = tables.layers
    index = {int(b): i for i, b in enumerate(tables.bits)}
    wb, ab = PlanBuilder("resnet18").uniform(8, 4)      # 4-bit activations: below the calibrated floor
    assert not proxy.inside(wb, ab) and proxy.inside(*PlanBuilder("resnet18").uniform(8, 8))
    w = np.array([[index[int(b)] for b in wb], [index[8]] * L])
    a = np.array([[index[int(b)] for b in ab], [index[8]] * L])
    cut = np.array([L, L])
    ev = evaluate(tables, w, a, cut=cut)
    assert ev.inside_envelope.tolist() == [False, True]
    assert ev.feasible.tolist() == [False, True]        # a 100-point bound admits both but for the envelope
    loose = dataclasses.replace(quickstart, extrapolate=True)
    ev_loose = evaluate(loose.tables, w, a, cut=cut)
    assert ev_loose.feasible.tolist() == [True, True]
    np.testing.assert_allclose(ev_loose.accuracy, ev.accuracy)  # the envelope prices only what searches bound
    assert np.all(tables.weight_cost >= loose.tables.weight_cost)
    assert tables.activation_cost.max() >= 1e6 > loose.tables.activation_cost.max()


@pytest.mark.slow
@pytest.mark.parametrize("method,budget", [("autosplit", None), ("exact", {"epsilon": 0.01})])
def test_searches_at_the_expected_end_choose_plans_inside_the_envelope(quickstart, method, budget):
    scenario = dataclasses.replace(quickstart, max_accuracy_drop=1.0, edge_memory_bytes=4 * 2**20,
                                   edge_bits=(1, 2, 4, 5, 6, 7, 8))
    result = run_method(method, scenario, budget=budget)
    best = result.best
    assert best is not None and best["feasible"]
    proxy = scenario.accuracy
    names = list(proxy.layers)
    edge = [names.index(n) for n in best["edge_layers"]]
    wb = np.full(len(names), 16)
    ab = np.full(len(names), 16)
    wb[edge] = [16 if b is None else b for b in best["weight_bits"]]
    ab[edge] = best["activation_bits"]
    assert proxy.inside(wb, ab)


def test_plan_flag_extrapolate_sets_the_yaml_key():
    import argparse

    from simulator.cli._arguments import add_model_argument
    from simulator.cli._plan import add_scenario_arguments, experiment_from_flags

    parser = argparse.ArgumentParser()
    add_model_argument(parser)
    add_scenario_arguments(parser)
    base = ["resnet18", "--edge", "eyeriss", "--cloud", "tpu_v1", "--uplink", "3Mbps", "--edge-memory", "4MiB",
            "--max-accuracy-drop", "1", "--method", "exact"]
    assert experiment_from_flags(parser.parse_args(base + ["--extrapolate"])).accuracy.extrapolate is True
    assert experiment_from_flags(parser.parse_args(base)).accuracy.extrapolate is False
