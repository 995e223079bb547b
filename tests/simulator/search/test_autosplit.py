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


def test_the_activation_path_gives_each_cut_the_allocations_of_its_own_lagrangian(paper_scenario):
    """Issue 27: the Lagrangian runs once over the whole network; a cut's allocations are the path's rows
    restricted to its prefix. Checked against the per-cut Lagrangian the paper describes, at every cut."""
    from simulator.search.autosplit import ActivationPath, _lagrangian, activation_allocations

    t = paper_scenario.tables
    allowed = t.edge_bit_index
    budgets = t.bits[allowed].astype(float)
    path = ActivationPath.of(t)
    elements = t.tensor_elements[t.inputs:].astype(float)
    bits = t.bits[allowed].astype(float)
    for cut in range(1, t.layers + 1, 7):
        own = _lagrangian(t.activation_cost[:cut][:, allowed], elements[:cut, None] * bits[None, :], allowed)
        mine = np.unique(path.rows[path.first_change < cut][:, :cut], axis=0)
        assert np.array_equal(own, mine), cut
        allocations = activation_allocations(t, cut, budgets, path)
        for k, budget in enumerate(budgets):  # within the budget, and no own allocation within it is less distorted
            average = (t.bits[allocations[k, :cut]] * elements[:cut]).sum() / elements[:cut].sum()
            distortion = t.activation_cost[np.arange(cut), allocations[k, :cut]].sum()
            inside = (t.bits[own] * elements[None, :cut]).sum(1) / elements[:cut].sum() <= budget + 1e-9
            if inside.any():
                assert average <= budget + 1e-9
                best = t.activation_cost[np.arange(cut)[None, :], own[inside]].sum(1).min()
                assert distortion == pytest.approx(best, rel=1e-12, abs=1e-15)


def test_pruning_weight_allocations_by_memory_loses_no_feasible_solution():
    """Auto-Split pairs only the weight allocations whose edge weights fit the memory with the activations;
    the feasible list equals that of pairing every allocation and filtering afterwards (the paper's way)."""
    from support import make_scenario

    from simulator.search.autosplit import AutoSplit, activation_allocations, candidate_splits, lagrangian_allocations
    from simulator.search.base import Candidates

    t = make_scenario("resnet18", edge_memory_bytes=2e6).tables
    weights, budgets = lagrangian_allocations(t), t.bits[t.edge_bit_index].astype(float)
    every = set()
    for cut in candidate_splits(t):
        activations = np.unique(activation_allocations(t, int(cut), budgets), axis=0)
        c = Candidates(np.tile(weights, (len(activations), 1)), np.repeat(activations, len(weights), axis=0),
                       cut=np.full(len(weights) * len(activations), cut))
        fits = c.evaluate(t).edge_memory_bytes <= 2e6
        every |= {(int(cut), w[:cut].tobytes(), a[:cut].tobytes()) for w, a in
                  zip(c.weight_bits[fits].astype(np.int8), c.activation_bits[fits].astype(np.int8))}
    listed = AutoSplit().propose(t, {}, 0).candidates
    assert listed.weight_bits.dtype == np.int8  # plans x layers kept small
    mine = {(int(k), w[:k].tobytes(), a[:k].tobytes())
            for k, w, a in zip(listed.cut, listed.weight_bits, listed.activation_bits)}
    assert mine == every and len(mine) == len(listed)


def test_weight_allocations_are_sorted_so_plans_sharing_a_prefix_are_adjacent(paper_scenario):
    """Auto-Split drops weight allocations that repeat an earlier one's first `cut` layers by looking at the
    row before only: that needs the rows in lexicographic order."""
    from simulator.search.autosplit import _first_change

    weights = lagrangian_allocations(paper_scenario.tables)
    order = np.lexsort(weights.T[::-1])
    assert np.array_equal(order, np.arange(len(weights)))
    for cut in (1, 10, 40):
        _, first = np.unique(weights[:, :cut], axis=0, return_index=True)
        assert np.array_equal(np.sort(first), np.flatnonzero(_first_change(weights) < cut))


def test_evaluation_in_chunks_equals_one_call(paper_scenario, monkeypatch):
    """Candidates.evaluate bounds memory by evaluating a few plans x layers at a time; nothing changes."""
    import dataclasses

    from simulator.search import base
    from simulator.search.autosplit import AutoSplit

    t = paper_scenario.tables
    c = AutoSplit().propose(t, {}, 0).candidates
    c = c.subset(np.arange(0, len(c), max(1, len(c) // 3000)))
    whole = evaluate(t, c.weight_bits, c.activation_bits, cut=c.cut)
    monkeypatch.setattr(base, "EVALUATE_CELLS", 37 * t.layers)
    chunked = c.evaluate(t)
    for field in dataclasses.fields(whole):
        assert np.array_equal(getattr(whole, field.name), getattr(chunked, field.name)), field.name
