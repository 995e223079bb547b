"""The exact front against brute-force enumeration of every plan on a tiny DAG, and its bounds."""
import itertools

import numpy as np
import pytest
from support import assumed_proxy

from hardware_models.registry import load_accelerator
from simulator.evaluate import Scenario, evaluate
from simulator.graph.builder import GraphBuilder
from simulator.network.link import Link
from simulator.search.exact import ExactFront
from simulator.search.pareto import front_2d, front_3d_levels, hypervolume_2d, nondominated


def tiny_dag():
    """conv -> two branches -> concat -> add with the skip -> pool -> fc: every kind of crossing set."""
    b = GraphBuilder("tiny", input_shape=(1, 3, 32, 32))
    c1 = b.conv("c1", b.input, 8, 3, stride=2, padding=1)
    b1 = b.conv("b1", c1, 4, 1)
    b2 = b.conv("b2", c1, 4, 3, padding=1)
    cat = b.concat("cat", [b1, b2])
    s = b.elementwise("add", "add", [cat, c1])
    p = b.global_avgpool("gap", s)
    f = b.flatten("flatten", p)
    b.linear("fc", f, 10)
    return b.build()


def tiny_scenario(memory_model, link, w_independent_latency=False, **fields):
    graph = tiny_dag()
    proxy = assumed_proxy(graph)
    proxy.weight_sensitivity = proxy.weight_sensitivity * 50.0
    proxy.activation_sensitivity = proxy.activation_sensitivity * 50.0
    s = Scenario(graph, load_accelerator("eyeriss"), load_accelerator("tpu_v1"), link, proxy,
                 memory_model=memory_model, edge_bits=(2, 8), **fields)
    if w_independent_latency:
        t = s.tables
        t.edge_latency_s[:] = t.edge_latency_s.min(axis=1, keepdims=True)
    return s


def every_plan(tables):
    """All prefix plans: each edge layer's (weight, activation) bits from the edge's bits."""
    E = tables.edge_bit_index
    L = tables.layers
    top = E[-1]
    rows_w, rows_a, cuts = [], [], []
    choices = [list(itertools.product(E if tables.has_weights[i] else [top], E)) for i in range(L)]
    for cut in range(L + 1):
        for combo in itertools.product(*choices[:cut]):
            w = np.full(L, top)
            a = np.full(L, top)
            for i, (wb, ab) in enumerate(combo):
                w[i], a[i] = wb, ab
            rows_w.append(w)
            rows_a.append(a)
            cuts.append(cut)
    return np.array(rows_w), np.array(rows_a), np.array(cuts)


def brute_front(s):
    t = s.tables
    w, a, cut = every_plan(t)
    ev = evaluate(t, w, a, cut=cut)
    points = np.column_stack([ev.latency_s, ev.accuracy_drop])[ev.feasible]
    return np.unique(points[front_2d(points[:, 0], points[:, 1])], axis=0), ev


def bounds_that_bind(s):
    """Memory and accuracy bounds at the median of all plans, so that both cut the plan set."""
    _, ev = brute_front(s)
    return float(np.median(ev.edge_memory_bytes)), float(np.median(ev.accuracy_drop))


LINKS = {"ideal": Link.ideal(3 * 2**20), "tcp": Link(uplink_bps=3e6, rtt_s=0.02)}


@pytest.mark.parametrize("memory_model", ["max_layer", "peak_live"])
@pytest.mark.parametrize("link", ["ideal", "tcp"])
def test_joint_dp_finds_exactly_the_brute_force_front(memory_model, link):
    memory, drop = bounds_that_bind(tiny_scenario(memory_model, LINKS[link]))
    s = tiny_scenario(memory_model, LINKS[link], edge_memory_bytes=memory, max_accuracy_drop=drop)
    expected, _ = brute_front(s)
    assert len(expected) >= 3  # a real front, not just cloud-only
    result = ExactFront(mode="joint").run(s)
    got = np.unique(result.front[result.front["feasible"]][["latency_s", "accuracy_drop"]].to_numpy(), axis=0)
    assert result.front["feasible"].all()
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("memory_model", ["max_layer", "peak_live"])
def test_split_dp_is_exact_when_latency_does_not_depend_on_weight_bits(memory_model):
    link = LINKS["tcp"]
    memory, drop = bounds_that_bind(tiny_scenario(memory_model, link, w_independent_latency=True))
    s = tiny_scenario(memory_model, link, w_independent_latency=True, edge_memory_bytes=memory,
                      max_accuracy_drop=drop)
    expected, _ = brute_front(s)
    result = ExactFront().run(s)
    got = np.unique(result.front[["latency_s", "accuracy_drop"]].to_numpy(), axis=0)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert result.info["relaxation_gap"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("epsilon", [0.0, 0.05])
def test_split_dp_brackets_the_true_hypervolume(epsilon):
    memory, drop = bounds_that_bind(tiny_scenario("max_layer", LINKS["tcp"]))
    s = tiny_scenario("max_layer", LINKS["tcp"], edge_memory_bytes=memory, max_accuracy_drop=drop)
    expected, _ = brute_front(s)
    result = ExactFront().run(s, budget={"epsilon": epsilon})
    reference = (result.info["cloud_latency_s"], drop)
    true_hv = hypervolume_2d(expected, reference)
    assert result.info["hypervolume_inner"] <= true_hv * (1 + 1e-12)
    assert result.info["hypervolume_outer"] >= true_hv * (1 - 1e-12)
    assert result.info["epsilon"] == epsilon
    assert result.front["feasible"].all()


def test_front_filters_agree_with_pairwise_dominance():
    rng = np.random.default_rng(0)
    for _ in range(30):
        points = rng.integers(0, 4, (40, 3)).astype(float)
        groups = rng.integers(0, 2, 40)
        strict = [not any((points[j] <= points[i]).all() and (points[j] < points[i]).any()
                          for j in range(40) if groups[j] == groups[i]) for i in range(40)]
        expected = {(groups[i], *points[i]) for i in range(40) if strict[i]}
        for mask in (nondominated(points, groups), front_3d_levels(*points.T, groups)):
            got = [(groups[i], *points[i]) for i in range(40) if mask[i]]
            assert set(got) == expected and len(got) == len(expected)
        mask2 = front_2d(points[:, 0], points[:, 1], groups)
        strict2 = {(groups[i], *points[i, :2]) for i in range(40)
                   if not any((points[j, :2] <= points[i, :2]).all() and (points[j, :2] < points[i, :2]).any()
                              for j in range(40) if groups[j] == groups[i])}
        got2 = [(groups[i], *points[i, :2]) for i in range(40) if mask2[i]]
        assert set(got2) == strict2 and len(got2) == len(strict2)


def test_bounding_by_known_plans_leaves_the_front_unchanged():
    memory, drop = bounds_that_bind(tiny_scenario("max_layer", LINKS["ideal"]))
    s = tiny_scenario("max_layer", LINKS["ideal"], edge_memory_bytes=memory, max_accuracy_drop=drop)
    bounded = ExactFront(bound=True).run(s, budget={"epsilon": 0})
    unbounded = ExactFront(bound=False).run(s, budget={"epsilon": 0})
    columns = ["latency_s", "accuracy_drop"]
    np.testing.assert_allclose(np.unique(bounded.front[columns].to_numpy(), axis=0),
                               np.unique(unbounded.front[columns].to_numpy(), axis=0))
    assert bounded.info["states_kept"] <= unbounded.info["states_kept"]
