"""Searches under the calibrated proxy: the chosen plans stay where the accuracy model vouches for them."""
import numpy as np
import pytest

from simulator.evaluate import Scenario
from simulator.network.link import Link
from simulator.search import run_method


@pytest.fixture(scope="module")
def quickstart():
    """The quickstart's setup: resnet18, eyeriss -> tpu_v1, 3 Mbit/s TCP with 20 ms RTT, 4 MiB, 1 point."""
    return Scenario.build("resnet18", "eyeriss", "tpu_v1", Link(uplink_bps=3e6, rtt_s=0.02),
                          edge_memory_bytes=4 * 2**20, max_accuracy_drop=1.0, edge_bits=(1, 2, 4, 5, 6, 7, 8))


@pytest.mark.parametrize("method,budget", [("autosplit", None), ("exact", {"epsilon": 0.01}),
                                           ("optuna", {"trials": 300})])
@pytest.mark.slow
def test_chosen_plans_meet_the_bound_at_the_pessimistic_end_and_never_send_1_bit(quickstart, method, budget):
    best = run_method(method, quickstart, budget=budget).best
    fp = quickstart.accuracy.fp_accuracy
    assert best["feasible"]
    assert fp - best["accuracy_low"] <= 1.0 + 1e-9
    assert best["accuracy"] == pytest.approx(best["accuracy_low"])  # the bound's end is the pessimistic one
    assert best["accuracy_low"] <= best["accuracy_expected"] <= best["accuracy_high"]
    assert 1 not in best["activation_bits"]


def test_the_expected_end_admits_plans_the_pessimistic_end_refuses(quickstart):
    import dataclasses

    expected = dataclasses.replace(quickstart, accuracy_confidence="expected")
    fast = run_method("autosplit", expected).best
    careful = run_method("autosplit", quickstart).best
    assert fast["latency_s"] <= careful["latency_s"]
    assert fast["accuracy_drop"] == pytest.approx(expected.accuracy.fp_accuracy - fast["accuracy_expected"])
    tables = quickstart.tables
    assert np.all(tables.weight_cost >= expected.tables.weight_cost - 1e-15)
