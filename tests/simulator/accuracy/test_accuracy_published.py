"""Published PTQ rows as per-layer bit assignments on the zoo's layers (simulator.accuracy.published)."""
import csv

import numpy as np

from simulator.accuracy.calibration import fp32_reference
from simulator.accuracy.published import (
    LAYERWISE_CSV,
    TRANSFORMER_CSV,
    UNIFORM_CSV,
    PlanBuilder,
    calibration_rows,
    transformer_rows,
    unrepresentable_rows,
)
from simulator.graph import zoo


def _row(row_id):
    (row,) = [r for r in calibration_rows() if r.row_id == row_id]
    return row


def _names(row):
    return [l.name for l in PlanBuilder(row.model).graph.layers]


def test_every_row_of_both_tables_is_translated_or_listed_with_a_reason():
    with open(UNIFORM_CSV) as f:
        uniform = sum(1 for _ in csv.DictReader(f))
    with open(LAYERWISE_CSV) as f:
        layerwise = sum(1 for _ in csv.DictReader(f))
    kept, skipped = calibration_rows(), unrepresentable_rows()
    assert len(kept) + len(skipped) == uniform + layerwise == 38 + 95
    assert all(s.reason for s in skipped)
    assert len({r.row_id for r in kept} | {s.row_id for s in skipped}) == uniform + layerwise


def test_conv1_alone_quantizes_only_the_first_conv_weights():
    row = _row("R001")
    assert (row.model, row.tier, row.granularity) == ("resnet18", "calibrated", "per-tensor")
    quantized = [i for i, (w, a) in enumerate(zip(row.weight_bits, row.activation_bits)) if w < 16 or a < 16]
    assert quantized == [0] and row.weight_bits[0] == 4 and row.activation_bits[0] == 16
    assert _row("R008").tier == "reconstruction"


def test_autosplit_split_plan_sends_the_cut_tensors_at_its_bits_and_keeps_the_cloud_float():
    row = _row("R045")  # "8.0_2_4": conv1 and maxpool on the edge at W8, their outputs at the 4-bit average
    names = _names(row)
    assert names[:2] == ["conv1", "maxpool"]
    assert row.weight_bits[0] == 8 and row.activation_bits[:2] == (4, 4)
    assert set(row.weight_bits[2:]) == {16} and set(row.activation_bits[2:]) == {16}
    deep = _row("R046")  # 12 layers on the edge
    assert set(deep.activation_bits[:12]) == {4} and set(deep.activation_bits[12:]) == {16}
    assert {names[i] for i, w in enumerate(deep.weight_bits) if w == 8} == {
        n for n, l in zip(names[:12], PlanBuilder("resnet50").graph.layers[:12]) if l.weight_elements}


def test_first_last_convention_keeps_stem_weights_classifier_and_its_input_at_8_bits():
    row = _row("R145")  # MQBench W4A4
    plan = PlanBuilder(row.model)
    wb, ab = np.array(row.weight_bits), np.array(row.activation_bits)
    assert wb[plan.first] == 8 and wb[plan.last] == 8
    assert ab[plan.first] == 4  # the stem's output is the next layer's (4-bit) input
    assert all(ab[i] == 8 for i in plan.classifier_input) and ab[plan.logits] == 16
    middle = [i for i in plan.weight_layers if i not in (plan.first, plan.last)]
    assert set(wb[middle]) == {4}


def test_ompq_named_weight_bits_set_the_downsample_with_its_block():
    row = _row("R086")
    bits = dict(zip(_names(row), row.weight_bits))
    assert bits["conv1"] == 4 and bits["fc"] == 3
    assert bits["layer4.0.conv2"] == bits["layer4.0.downsample.0"] == 2
    assert set(row.activation_bits[:-1]) == {8} and row.activation_bits[-1] == 16


def test_edge_only_rows_quantize_every_layer_and_the_logits():
    row = _row("R050")  # Auto-Split U4
    assert set(row.weight_bits[i] for i in PlanBuilder(row.model).weight_layers) == {4}
    assert set(row.activation_bits) == {4}


def test_every_transformer_row_has_provenance_and_is_translated_or_listed_with_a_reason():
    with open(TRANSFORMER_CSV) as f:
        table = list(csv.DictReader(f))
    kept, skipped = transformer_rows()
    assert sorted(r.row_id for r in kept) + sorted(s.row_id for s in skipped) == sorted(r["row_id"] for r in table)
    assert {r.model for r in kept} == {"vit_b_16", "swin_t"} and all("LayerNorm" in s.reason for s in skipped)
    for r in table:
        assert r["model"] in zoo.names() and "github.com/" in r["source"] and "@" in r["source"], r["row_id"]
        assert 0 < float(r["top1"]) <= float(r["fp32_top1"]), r["row_id"]
    assert not {r.row_id for r in kept} & {r.row_id for r in calibration_rows()}  # the CNN fit does not see them


def test_transformer_plan_quantizes_what_linear_and_matmul_layers_read_and_keeps_norms_and_adds_float():
    (row,) = [r for r in transformer_rows()[0] if r.row_id == "T04"]  # PTQ4ViT W6A6 on DeiT-B
    layers = PlanBuilder("vit_b_16").graph.layers
    bits = {l.name: (w, a) for l, w, a in zip(layers, row.weight_bits, row.activation_bits)}
    block = "encoder.layers.encoder_layer_3"
    for name in ("ln_1", "self_attention.q", "self_attention.k", "self_attention.v", "self_attention.softmax",
                 "self_attention.merge_heads", "ln_2", "mlp.0"):  # mlp.0 carries the GELU that mlp.3 reads
        assert bits[f"{block}.{name}"][1] == 6, name
    for name in ("self_attention.split_heads", "self_attention.scores", "add", "add#2", "mlp.3"):
        assert bits[f"{block}.{name}"][1] == 16, name
    assert {w for l, (w, _) in zip(layers, bits.values()) if l.weight_elements} == {6}
    assert {w for l, (w, _) in zip(layers, bits.values()) if not l.weight_elements} == {16}
    assert bits["class_token_output"][1] == 6 and bits["heads.head"][1] == 16  # the head's input; logits float


def test_transformers_float_accuracy_is_torchvisions():
    assert {m: fp32_reference()[m][0] for m in ("vit_b_16", "swin_t", "convnext_tiny")} == {
        "vit_b_16": 81.072, "swin_t": 81.474, "convnext_tiny": 82.520}
