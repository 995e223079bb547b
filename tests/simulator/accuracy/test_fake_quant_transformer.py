"""Fake quantization of a transformer (tests/fixtures/tiny_vit.onnx, made by tests/fixtures/make_tiny_vit.py):
both operands of the attention matmuls (QK^T, AV) at the layer's activation bits, LayerNorm and Softmax
outputs in float unless they cross the cut, and a ViT split exported, checked and measured like a CNN's."""
from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from support import FIXTURES

from simulator.accuracy.measure import AccuracyMeter  # noqa: E402
from simulator.accuracy.npz import load_npz  # noqa: E402
from simulator.cli import main  # noqa: E402
from simulator.deploy.export import run_onnx  # noqa: E402

MODEL = FIXTURES / "tiny_vit.onnx"
DATA = FIXTURES / "tiny_vit.npz"
QK, AV = "block.self_attn.matmul", "block.self_attn.matmul#2"


@pytest.fixture(scope="module")
def meter():
    x, y = load_npz(DATA)
    return AccuracyMeter(MODEL, x, y)


def test_the_meter_reads_the_vit_as_inspect_does(meter):
    from simulator.graph import load_model

    assert meter.layers == [layer.name for layer in load_model(str(MODEL)).layers]
    assert meter.fp_accuracy == 100.0  # the labels are the float model's own classes
    assert set(meter.quantizer.operand_tensors) == {QK, AV}


@pytest.mark.parametrize("layer", [QK, AV])
@pytest.mark.parametrize("bits", [2, 3])
def test_both_operands_of_an_attention_matmul_take_at_most_2_to_the_bits_values(meter, layer, bits):
    model = meter.quantizer.model(activation_bits={layer: bits})
    operands = [f"{layer}::operand{i}::q" for i in (0, 1)]
    node = next(n for n in model.graph.node if n.output[0] == meter.quantizer.output_tensor[layer] + "::float")
    assert list(node.input[:2]) == operands
    values = meter.quantizer.run_tensors(meter.x[:64], operands, model)
    for name in operands:
        assert 2 < len(np.unique(values[name])) <= 2 ** bits


def test_layernorm_and_softmax_outputs_stay_float_inside_the_edge_and_are_quantized_when_sent(meter):
    everything = {name: 4 for name in meter.layers}
    nodes = {n.name or n.output[0] for n in meter.quantizer.model(activation_bits=everything).graph.node}
    outputs = {o for n in meter.quantizer.model(activation_bits=everything).graph.node for o in n.output}
    for kept in ("block.norm1", "block.self_attn.softmax"):
        assert f"{kept}::aq::code" not in outputs
    assert "block.self_attn.linear::aq::code" in outputs and nodes
    # a cut right after the first LayerNorm sends its output: quantized at the plan's bits
    prefix = meter.layers[: meter.layers.index("block.norm1") + 1]
    sent = meter.quantizer.model(activation_bits={name: 4 for name in prefix})
    assert "block.norm1::aq::code" in {o for n in sent.graph.node for o in n.output}


def test_measured_accuracy_falls_as_the_attention_bits_fall(meter):
    accuracy = {b: meter.accuracy(activation_bits={QK: b, AV: b}) for b in (8, 4, 2)}
    assert accuracy[8] >= accuracy[4] >= accuracy[2]
    assert accuracy[2] < accuracy[8]


@pytest.mark.slow
def test_a_vit_split_sending_the_token_tensor_exports_with_no_difference_and_the_measured_accuracy(meter, tmp_path,
                                                                                                    capsys):
    edge = meter.layers[: meter.layers.index("block.add") + 1]  # the token tensor after the attention residual
    weights = {"patch": 6, "block.self_attn.linear": 5, "block.self_attn.linear#2": 4}
    plan = {"method": "hand", "edge_layers": edge, "weight_bits": [weights.get(n) for n in edge],
            "activation_bits": [6 if n in (QK, AV) else 5 for n in edge]}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    out = tmp_path / "split"
    assert main(["export", str(MODEL), "--plan", str(tmp_path / "plan.json"), "--out", str(out), "--data", str(DATA),
                 "--format", "json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["self_check"]["max_abs_difference"] == 0.0
    [crossing] = written["crossing"]
    assert (crossing["layer"], crossing["shape"], crossing["bits"]) == ("block.add", [1, 5, 32], 5)
    measured = meter.accuracy({n: b for n, b in weights.items()}, dict(zip(edge, plan["activation_bits"])))
    edge_model, cloud_model = onnx.load(str(out / "edge.onnx")), onnx.load(str(out / "cloud.onnx"))
    logits = np.concatenate([run_onnx(cloud_model, run_onnx(edge_model, {"input": s[None]}))["logits"]
                             for s in meter.x])
    assert np.mean(logits.argmax(1) == meter.y) * 100 == measured
    assert measured < meter.fp_accuracy
