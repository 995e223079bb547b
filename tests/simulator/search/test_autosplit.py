"""Auto-Split (the paper's Algorithm 1): candidate splits, Lagrangian allocations, feasible answer."""
import numpy as np
import pytest

from simulator.evaluate import evaluate
from simulator.search import run_method
from simulator.search.autosplit import candidate_splits, lagrangian_allocations


def test_candidate_splits_send_no_more_than_the_raw_input_and_fit_at_the_lowest_bits(paper_scenario):
    t = paper_scenario.tables
    cuts = candidate_splits(t)
    low = np.full((len(cuts), t.layers), t.edge_bit_index[0])
    ev = evaluate(t, low, low, cut=cuts)
    assert cuts[0] == 0
    assert np.all(ev.payload_bytes[1:] <= 150_528)
    assert np.all(ev.edge_memory_bytes <= 4 * 2**20)
    rejected = np.setdiff1d(np.arange(t.layers + 1), cuts)
    everything_low = np.full((len(rejected), t.layers), t.edge_bit_index[0])
    ev_rejected = evaluate(t, everything_low, everything_low, cut=rejected)
    assert np.all((ev_rejected.payload_bytes > 150_528) | (ev_rejected.edge_memory_bytes > 4 * 2**20))


def test_lagrangian_allocations_walk_from_all_highest_to_all_lowest_bits(paper_scenario):
    t = paper_scenario.tables
    allocations = lagrangian_allocations(t)
    weighted = t.has_weights
    memory = (t.weight_bytes[np.arange(t.layers), allocations] * weighted).sum(1)
    cost = (t.weight_cost[np.arange(t.layers), allocations] * weighted).sum(1)
    order = np.argsort(memory)
    # along the walk, less memory never buys lower distortion: a convex trade-off, no dominated allocation
    assert np.all(np.diff(cost[order]) <= 1e-12)
    assert allocations[:, weighted].max() == t.edge_bit_index[-1] and allocations[:, weighted].min() == t.edge_bit_index[0]
    assert memory.min() == (t.weight_bytes[:, t.edge_bit_index[0]] * weighted).sum()


@pytest.mark.slow
def test_answer_meets_the_bounds_and_is_no_slower_than_cloud_only(paper_scenario):
    result = run_method("autosplit", paper_scenario)
    cloud = run_method("cloud", paper_scenario).best
    best = result.best
    assert best["feasible"] and best["edge_memory_bytes"] <= 4 * 2**20 and best["accuracy_drop"] <= 1.0
    assert best["latency_s"] <= cloud["latency_s"]
    assert result.info["solutions"] == result.evaluations
    assert (result.plans["edge_memory_bytes"] <= 4 * 2**20).all()


def test_activation_allocations_meet_each_average_bit_budget_per_layer(paper_scenario):
    from simulator.search.autosplit import activation_allocations

    t = paper_scenario.tables
    budgets = t.bits[t.edge_bit_index].astype(float)
    cut = 20
    allocations = activation_allocations(t, cut, budgets)
    elements = t.tensor_elements[t.inputs:][:cut]
    average = (t.bits[allocations[:, :cut]] * elements).sum(1) / elements.sum()
    assert np.all(average[1:] <= budgets[1:] + 1e-9)  # the lowest budget falls back to the lowest bits
    assert np.all(allocations[-1, :cut] == t.edge_bit_index[-1])  # the top budget keeps every output at 8 bits
    # per-layer: some budget mixes bit-widths across the edge outputs (not one bit-width per plan)
    assert any(len(set(row[:cut])) > 1 for row in allocations)
    distortion = t.activation_cost[np.arange(cut), allocations[:, :cut]].sum(1)
    assert np.all(np.diff(distortion) <= 1e-12)  # a larger budget never allocates a more distorted plan


def test_per_layer_activation_allocation_is_the_default_and_uniform_stays_an_option(paper_scenario):
    from simulator.search.autosplit import AutoSplit

    assert AutoSplit().activation_allocation == "lagrangian"
    uniform = AutoSplit("uniform").run(paper_scenario)
    assert uniform.info["activation_allocation"] == "uniform"
    for _, row in uniform.plans.iterrows():
        assert len(set(row["activation_bits"])) <= 1
