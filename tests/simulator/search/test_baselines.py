"""Baselines: each does what its paper says, and the min-cut ones agree with brute force."""
import numpy as np
from support import make_scenario

from simulator.graph.cuts import is_closed
from simulator.search.baselines import DADS, QDMP, CloudOnly, EdgeUniform, Neurosurgeon, _float_costs, _min_cut


def test_cloud_only_sends_the_raw_image_and_runs_everything_in_the_cloud(paper_scenario):
    best = CloudOnly().run(paper_scenario).best
    assert best["cut_index"] == 0 and best["edge_layers"] == [] and best["payload_bytes"] == 150_528
    assert best["breakdown"]["edge_s"] == 0 and best["accuracy_drop"] == 0
    assert best["breakdown"]["transfer_s"] == 150_528 * 8 / (3 * 2**20)


def test_edge_only_uniform_breaks_the_memory_bound_and_is_still_reported(paper_scenario):
    for bits in (2, 4, 6, 8):
        best = EdgeUniform(bits).run(paper_scenario).best
        assert best["cut_index"] == paper_scenario.tables.layers and not best["feasible"]
        assert set(best["activation_bits"]) == {bits}
        assert best["edge_memory_bytes"] > 4 * 2**20 and best["payload_bytes"] == 0


def test_neurosurgeon_picks_the_best_chain_cut_then_pays_every_crossing_tensor():
    s = make_scenario("resnet50", link=None, edge_memory_bytes=64 * 2**20)
    result = Neurosurgeon().run(s)
    t = s.tables
    edge, _, transfer = _float_costs(t)
    chain = [sum(edge[:k]) + (transfer[0] if k == 0 else transfer[k] if k < t.layers else 0) + t.cloud_suffix_s[k]
             for k in range(t.layers + 1)]
    assert result.best["cut_index"] == int(np.argmin(chain))
    assert set(result.best["activation_bits"]) <= {16}


def brute_force_closed_sets(scenario, limit):
    """Every closed edge set of the first `limit` layers (the rest in the cloud), with its min-cut cost."""
    t = scenario.tables
    g = scenario.graph
    edge, cloud, transfer = _float_costs(t)
    best = (np.inf, None)
    for bits in range(2 ** limit):
        chosen = [i for i in range(limit) if bits >> i & 1]
        names = [t.names[i] for i in chosen]
        if not is_closed(g, names):
            continue
        on = np.zeros(t.layers, bool)
        on[chosen] = True
        produced_on_edge = np.concatenate([[True] * t.inputs, on])
        read_in_cloud = (t.consumed_by & ~on[None, :]).any(1)
        cost = edge[on].sum() + cloud[~on].sum() + transfer[produced_on_edge & read_in_cloud].sum()
        best = min(best, (cost, tuple(chosen)), key=lambda x: x[0])
    return best


def test_dads_min_cut_equals_brute_force_over_closed_sets():
    # a fast uplink makes the early inception branches worth splitting
    from simulator.network.link import Link
    s = make_scenario("googlenet", link=Link.ideal(200e6))
    t = s.tables
    limit = 12
    cost, edge = _min_cut(t, list(range(limit)), list(range(t.inputs)))
    edge_cost, cloud, _ = _float_costs(t)
    brute_cost, brute_set = brute_force_closed_sets(s, limit)
    assert cost + cloud[limit:].sum() == np.float64(brute_cost) or abs(cost + cloud[limit:].sum() - brute_cost) < 1e-12


def test_qdmp_finds_the_same_optimum_as_dads():
    for model in ("googlenet", "resnet50"):
        s = make_scenario(model)
        dads, qdmp = DADS().run(s), QDMP().run(s)
        assert abs(dads.info["min_cut_s"] - qdmp.info["min_cut_s"]) < 1e-12
        assert qdmp.info["segments"] > 1


def test_min_cut_plans_are_closed_and_reported_with_their_layers():
    from simulator.network.link import Link
    s = make_scenario("googlenet", link=Link.ideal(50e6))
    best = DADS().run(s).best
    assert is_closed(s.graph, best["edge_layers"])
    if best["cut_index"] is None:
        assert best["edge_layers"] != [l.name for l in s.graph.layers[: len(best["edge_layers"])]]
