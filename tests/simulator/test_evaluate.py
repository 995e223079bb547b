"""The vectorised evaluator against direct sums over the hardware models and the graph."""
import numpy as np
import pytest
from support import make_scenario

from simulator.evaluate import evaluate
from simulator.graph.cuts import crossing_tensors, enumerate_cuts


def random_plans(tables, count, seed=0):
    rng = np.random.default_rng(seed)
    L = tables.layers
    return (rng.choice(tables.edge_bit_index, (count, L)), rng.choice(tables.edge_bit_index, (count, L)),
            rng.integers(0, L + 1, count))


@pytest.mark.parametrize("memory_model", ["peak_live", "max_layer"])
def test_batch_evaluation_equals_direct_sums_per_plan(memory_model):
    s = make_scenario("resnet18", memory_model=memory_model)
    t = s.tables
    w, a, cut = random_plans(t, 25)
    ev = evaluate(t, w, a, cut=cut)
    specs = s.graph.layer_specs()
    cuts = enumerate_cuts(s.graph)
    for p in range(len(cut)):
        k = cut[p]
        wb, ab = t.bits[w[p]], t.bits[a[p]]
        edge = sum(s.edge.layer_cost(specs[i], int(wb[i]), int(ab[i])).latency_s for i in range(k))
        assert ev.edge_s[p] == pytest.approx(edge, rel=1e-9)
        payload = sum(np.ceil(x.elements * (8 if x.producer is None else ab[s.graph.index[x.producer]]) / 8)
                      for x in cuts[k].tensors)
        assert ev.payload_bytes[p] == pytest.approx(payload, abs=len(cuts[k].tensors))
        cloud = s.cloud.network_cost(specs[k:], 16, 16)[1].latency_s if k < t.layers else 0.0
        assert ev.cloud_s[p] == pytest.approx(cloud)
        weights = sum(s.graph.layers[i].weight_elements * wb[i] / 8 for i in range(k))
        assert ev.weight_memory_bytes[p] == pytest.approx(weights)
        assert ev.latency_s[p] == pytest.approx(ev.edge_s[p] + ev.transfer_s[p] + ev.cloud_s[p])


def test_peak_live_memory_counts_the_skip_tensor_held_across_a_block():
    s = make_scenario("resnet18", memory_model="peak_live")
    t = s.tables
    k = s.graph.index["layer1.0.conv2"] + 1  # inside the first residual block
    w = np.full((1, t.layers), int(np.flatnonzero(t.bits == 8)[0]))
    ev = evaluate(t, w, w.copy(), cut=np.array([k]))
    # while layer1.0.conv2 runs: the maxpool output (skip), conv1's output (its input) and its own output
    elements = 64 * 56 * 56
    assert ev.activation_memory_bytes[0] >= 3 * elements
    max_layer = make_scenario("resnet18", memory_model="max_layer")
    single = evaluate(max_layer.tables, w, w.copy(), cut=np.array([k]))
    assert single.activation_memory_bytes[0] == 64 * 112 * 112  # conv1's output, the largest single one


def test_fewer_bits_never_cost_more_memory_payload_or_accuracy():
    s = make_scenario("mobilenet_v2")
    t = s.tables
    w, a, cut = random_plans(t, 200, seed=1)
    lower_w = np.maximum(w - 1, t.edge_bit_index[0])
    lower_a = np.maximum(a - 1, t.edge_bit_index[0])
    base, fewer = evaluate(t, w, a, cut=cut), evaluate(t, lower_w, lower_a, cut=cut)
    assert np.all(fewer.edge_memory_bytes <= base.edge_memory_bytes + 1e-9)
    assert np.all(fewer.payload_bytes <= base.payload_bytes)
    assert np.all(fewer.accuracy <= base.accuracy + 1e-12)


def test_edge_mask_path_agrees_with_the_prefix_path():
    s = make_scenario("googlenet")
    t = s.tables
    w, a, cut = random_plans(t, 40, seed=2)
    by_cut, by_mask = evaluate(t, w, a, cut=cut), evaluate(t, w, a, edge_mask=np.arange(t.layers) < cut[:, None])
    for key in ("latency_s", "payload_bytes", "edge_memory_bytes", "accuracy", "edge_energy_j"):
        np.testing.assert_allclose(getattr(by_mask, key), getattr(by_cut, key), rtol=1e-9, err_msg=key)


def test_non_prefix_edge_set_sends_exactly_its_crossing_tensors():
    s = make_scenario("googlenet")
    t = s.tables
    g = s.graph
    # the stem and inception3a's first branch only: a closed set that is not a prefix
    stop = g.index["maxpool2"] + 1
    edge = [l.name for l in g.layers[:stop]] + ["inception3a.branch1.conv"]
    mask = np.isin(t.names, edge)[None, :]
    w = np.full((1, t.layers), int(np.flatnonzero(t.bits == 8)[0]))
    ev = evaluate(t, w, w.copy(), edge_mask=mask)
    expected = sum(x.elements for x in crossing_tensors(g, edge))  # 8-bit: one byte per element
    assert ev.payload_bytes[0] == expected
    specs = [spec for spec, on in zip(g.layer_specs(), mask[0]) if not on]
    assert ev.cloud_s[0] == pytest.approx(s.cloud.network_cost(specs, 16, 16)[1].latency_s)


def test_jpeg_input_and_entropy_activations_shrink_the_payload():
    raw = make_scenario("resnet50")
    coded = make_scenario("resnet50", input_codec="jpeg", activation_codec="entropy")
    w = np.full((2, raw.tables.layers), int(np.flatnonzero(raw.tables.bits == 8)[0]))
    cut = np.array([0, raw.graph.index["layer1.2.add"] + 1])
    r, c = evaluate(raw.tables, w, w.copy(), cut=cut), evaluate(coded.tables, w, w.copy(), cut=cut)
    assert r.payload_bytes[0] == 150_528 and 5_000 < c.payload_bytes[0] < 40_000
    assert c.payload_bytes[1] < r.payload_bytes[1] == 802_816


def test_an_int8_only_edge_never_runs_float_and_its_plans_stay_finite():
    from simulator.search import run_method

    s = make_scenario("resnet18", edge="edge_tpu", edge_memory_bytes=16 * 2**20)
    assert s.edge_bits == (8,)
    for method in ("cloud", "edge-u8", "neurosurgeon", "dads", "qdmp", "autosplit"):
        best = run_method(method, s).best
        assert np.isfinite(best["latency_s"]) and best["latency_s"] < 10, method
        assert 16 not in best["activation_bits"], method


def test_edge_bits_the_accelerator_does_not_support_are_a_user_error():
    from hardware_models.errors import UserError

    with pytest.raises(UserError, match=r"edge_bits: \[4\] not supported by"):
        make_scenario("resnet18", edge="edge_tpu", edge_bits=(4, 8))
