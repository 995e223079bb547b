"""Split candidates: every crossing tensor, on real DAGs and on random ones."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.graph import zoo
from simulator.graph.cuts import (
    crossing_elements,
    crossing_tensors,
    enumerate_cuts,
    is_closed,
    prefix_index,
    viable_cuts,
)
from simulator.graph.ir import Graph, Layer


def cut_after(graph, name):
    return next(c for c in enumerate_cuts(graph) if c.after == name)


def test_cut_after_layer1_of_resnet50_sends_one_tensor():
    cut = cut_after(zoo.build("resnet50"), "layer1.2.add")
    assert [(t.name, t.elements) for t in cut.tensors] == [("layer1.2.add", 802_816)]


def test_cut_inside_bottleneck_sends_the_skip_tensor():
    cut = cut_after(zoo.build("resnet50"), "layer2.1.conv2")
    assert {t.name for t in cut.tensors} == {"layer2.0.add", "layer2.1.conv2"}
    assert cut.elements == 512 * 28 * 28 + 128 * 28 * 28


def test_cut_inside_inception_sends_every_open_branch():
    cut = cut_after(zoo.build("googlenet"), "inception3a.branch3.1.conv")
    assert {t.name for t in cut.tensors} == {"maxpool2", "inception3a.branch1.conv", "inception3a.branch2.1.conv",
                                             "inception3a.branch3.1.conv"}


def test_cloud_only_sends_the_input_and_edge_only_sends_nothing():
    graph = zoo.build("resnet18")
    cuts = enumerate_cuts(graph)
    assert cuts[0].index == 0 and cuts[0].after is None and cuts[0].elements == 3 * 224 * 224
    assert cuts[-1].index == len(graph.layers) and cuts[-1].tensors == ()
    assert [c.index for c in cuts] == list(range(len(graph.layers) + 1))


def test_viable_filter_drops_cuts_that_send_more_than_the_raw_input():
    graph = zoo.build("resnet50")
    kept = {c.index for c in viable_cuts(graph, activation_bits=8)}
    assert 1 not in kept  # conv1's 802,816 8-bit values are more than the 150,528-byte image
    assert {c.index for c in enumerate_cuts(graph) if c.elements <= graph.input_elements} == kept


def test_viable_filter_with_a_memory_budget_keeps_only_cuts_that_fit():
    graph = zoo.build("resnet50")
    kept = viable_cuts(graph, activation_bits=2, weight_bits=2, edge_memory_bytes=4 * 2**20)
    for cut in kept[1:]:
        weights = sum(l.weight_elements for l in graph.layers[: cut.index]) * 2 / 8
        assert weights <= 4 * 2**20
    assert len(kept) < len(viable_cuts(graph, activation_bits=2, weight_bits=2))


# --- random DAGs -----------------------------------------------------------------------------------------
@st.composite
def random_dags(draw):
    n = draw(st.integers(1, 25))
    layers = []
    for i in range(n):
        available = ["input"] + [f"l{j}" for j in range(i)]
        picks = draw(st.lists(st.sampled_from(available), min_size=1, max_size=3, unique=True))
        size = draw(st.integers(1, 100))
        layers.append(Layer(f"l{i}", "add" if len(picks) > 1 else "relu", tuple(picks), (1, size)))
    return Graph("random", {"input": (1, 7)}, layers)


@settings(max_examples=200, deadline=None)
@given(random_dags())
@pytest.mark.slow
def test_crossing_set_is_exactly_edge_produced_cloud_consumed(graph):
    cuts = enumerate_cuts(graph)
    assert [c.elements for c in cuts] == list(crossing_elements(graph))
    for cut in cuts:
        edge = {l.name for l in graph.layers[: cut.index]}
        assert is_closed(graph, edge) and prefix_index(graph, edge) == cut.index
        produced_on_edge = set(graph.inputs) | edge
        expected = {t for t in produced_on_edge
                    if any(c not in edge for c in graph.consumers[t])}
        assert {t.name for t in cut.tensors} == expected
        assert {t.name for t in crossing_tensors(graph, edge)} == expected


@settings(max_examples=100, deadline=None)
@given(random_dags(), st.data())
def test_any_closed_edge_set_is_recognised_and_non_prefixes_have_no_index(graph, data):
    chosen = set(data.draw(st.lists(st.sampled_from([l.name for l in graph.layers]), unique=True)))
    closed = set()
    for layer in graph.layers:  # the largest closed subset of `chosen`
        if layer.name in chosen and all(t in graph.inputs or t in closed for t in layer.inputs):
            closed.add(layer.name)
    assert is_closed(graph, closed)
    if closed != {l.name for l in graph.layers[: len(closed)]}:
        assert prefix_index(graph, closed) is None
