"""Costs of the transformer and data-movement ops, and of dilated convolutions, on every preset of every kind.

The layers are built as the graph IR describes them (simulator.graph.ir.layer_spec), so these tests specify
both the LayerSpec each op becomes and what every hardware model makes of it.
"""
from __future__ import annotations

import math
from dataclasses import replace

import pytest

from hardware_models.base import Accelerator
from hardware_models.layer import LayerSpec
from hardware_models.registry import load_accelerator, preset_names
from hardware_models.scalesim_io import topology_row
from hardware_models.systolic import scalesim_compute_cycles
from simulator.graph.ir import Graph, Layer, layer_spec

PRESETS = preset_names()
# the kinds whose cost paths this file specifies; a kind added later gets the checks every kind must pass
# (dilation, every op costed, views free, weight bits of an activation matmul) until its own are written
SPECIFIED_KINDS = ("systolic", "dsp", "npu", "gpu")
SPECIFIED = [p for p in PRESETS if load_accelerator(p).kind in SPECIFIED_KINDS]
TOKENS, WIDTH, HEADS = 197, 384, 6


def _one_layer(layer: Layer, inputs: dict[str, tuple[int, ...]]) -> LayerSpec:
    return layer_spec(Graph("g", inputs, [layer]), layer)


def _conv(dilation: int, size: int = 65, channels: int = 256) -> LayerSpec:
    """A 3x3 'same' conv of `channels` on a size x size map (DeepLab's ASPP branch when dilated)."""
    shape = (1, channels, size, size)
    return _one_layer(Layer("aspp", "conv", ("x",), shape, weight_elements=channels * channels * 9,
                            macs=size * size * channels * channels * 9,
                            attrs={"kernel": (3, 3), "dilation": (dilation, dilation), "padding": (dilation,) * 2}),
                      {"x": shape})


def _matmul(groups: int = HEADS, m: int = TOKENS, k: int = 64, n: int = TOKENS) -> LayerSpec:
    """Attention's QK^T: [1, heads, M, K] x [1, heads, K, N]."""
    return _one_layer(Layer("attn.qk", "matmul", ("q", "kt"), (1, groups, m, n), macs=groups * m * k * n,
                            attrs={"batch_matrices": groups}),
                      {"q": (1, groups, m, k), "kt": (1, groups, k, n)})


def _tokens_op(op: str, attrs: dict | None = None, out: tuple[int, ...] = (1, TOKENS, WIDTH)) -> LayerSpec:
    return _one_layer(Layer(f"x.{op}", op, ("x",), out, attrs=attrs or {}), {"x": (1, TOKENS, WIDTH)})


def _new_ops() -> dict[str, LayerSpec]:
    """Every new op that computes or moves data, as a transformer or recurrent network has it."""
    linear = _one_layer(Layer("mlp.fc1", "linear", ("x",), (1, TOKENS, 4 * WIDTH), weight_elements=4 * WIDTH * WIDTH,
                              macs=TOKENS * 4 * WIDTH * WIDTH), {"x": (1, TOKENS, WIDTH)})
    lstm = _one_layer(Layer("lstm", "lstm", ("x",), (1, 35, 256), weight_elements=4 * 256 * (128 + 256),
                            attrs={"steps": 35, "hidden_size": 256}), {"x": (1, 35, 128)})
    gru = _one_layer(Layer("gru", "gru", ("x",), (1, 35, 256), weight_elements=3 * 256 * (128 + 256),
                           attrs={"steps": 35, "hidden_size": 256}), {"x": (1, 35, 128)})
    return {
        "matmul": _matmul(), "linear_3d": linear, "lstm": lstm, "gru": gru,
        "softmax": _tokens_op("softmax", {"axis": -1}), "layernorm": _tokens_op("layernorm"),
        "gelu": _tokens_op("gelu"), "reducemean": _tokens_op("reducemean", {"axes": (1,)}, (1, 1, WIDTH)),
        "transpose": _tokens_op("transpose", out=(1, WIDTH, TOKENS)), "roll": _tokens_op("roll"),
        "gather": _tokens_op("gather", out=(1, WIDTH)), "expand": _tokens_op("expand", out=(1, 4, TOKENS, WIDTH)),
        "reshape_copy": _tokens_op("reshape", {"copies": True}, out=(1, TOKENS, HEADS, WIDTH // HEADS)),
    }


def _cost(accelerator: Accelerator, layer: LayerSpec, bits: int | None = None):
    """`layer` alone at `bits` for weights and activations (the accelerator's default bits by default)."""
    bits = accelerator.default_bits if bits is None else bits
    return accelerator.layer_cost(layer, bits, bits)


# --- the LayerSpecs -------------------------------------------------------------------------------------
def test_a_dilated_conv_keeps_its_real_kernel_for_macs_and_weights_and_its_spread_for_the_footprint():
    plain, dilated = _conv(1), _conv(12)
    assert (dilated.kernel_height, dilated.kernel_width, dilated.dilation) == (3, 3, (12, 12))
    assert dilated.macs == plain.macs == 65 * 65 * 256 * 256 * 9
    assert dilated.weight_elements == plain.weight_elements == 256 * 256 * 9
    assert dilated.padded_in_height == 64 + 2 * 12 + 1 and plain.padded_in_height == 64 + 3


def test_a_batched_matmul_is_one_gemm_per_matrix_whose_second_operand_is_no_weight():
    spec = _matmul(groups=6, m=197, k=64, n=197)
    assert (spec.kind, spec.groups, spec.gemm_m, spec.gemm_k, spec.gemm_n) == ("gemm", 6, 197, 64, 197)
    assert spec.macs == 6 * 197 * 64 * 197
    assert spec.weight_elements == 0 and spec.operand_elements == 6 * 64 * 197
    assert spec.input_elements == 6 * 197 * 64 and spec.output_elements == 6 * 197 * 197


def test_a_bmm_with_the_batch_folded_into_the_heads_is_still_one_gemm_per_head():
    """TorchScript's nn.MultiheadAttention multiplies [batch x heads, tokens, head_dim] tensors."""
    for batch in (1, 2):
        layer = Layer("attn.bmm", "matmul", ("q", "kt"), (batch * HEADS, TOKENS, TOKENS))
        graph = Graph("g", {"x": (batch, 3, 224, 224), "q": (batch * HEADS, TOKENS, 64),
                            "kt": (batch * HEADS, 64, TOKENS)}, [layer])
        spec = layer_spec(graph, layer)
        assert (spec.batch, spec.groups, spec.gemm_k, spec.gemm_n) == (batch, HEADS, 64, TOKENS)
        assert (spec.matrices, spec.matrix_rows) == (batch * HEADS, TOKENS)
        assert spec.macs == batch * HEADS * TOKENS * 64 * TOKENS
        assert spec.operand_elements == batch * HEADS * 64 * TOKENS  # each batch element its own K^T


@pytest.mark.parametrize("preset", SPECIFIED)
def test_a_batch_of_attention_matmuls_costs_the_batch_times_one_where_costs_add_up(preset: str):
    """Every batch element multiplies its own two activations: nothing is shared, as weights are."""
    accelerator = load_accelerator(preset)
    one, four = _matmul(), replace(_matmul(), batch=4)
    assert four.operand_elements == 4 * one.operand_elements
    if accelerator.kind in ("systolic", "dsp"):
        assert _cost(accelerator, four).compute_cycles == pytest.approx(4 * _cost(accelerator, one).compute_cycles)
    if accelerator.kind == "systolic":  # the DSP's on-chip memory holds one element's operands, not four
        assert _cost(accelerator, four).dram_bytes == pytest.approx(4 * _cost(accelerator, one).dram_bytes)
    assert _cost(accelerator, four).latency_s > _cost(accelerator, one).latency_s


def test_a_linear_on_tokens_has_the_tokens_as_rows_and_recurrent_layers_their_gate_gemm():
    ops = _new_ops()
    linear = ops["linear_3d"]
    assert (linear.gemm_m, linear.gemm_k, linear.gemm_n, linear.groups) == (TOKENS, WIDTH, 4 * WIDTH, 1)
    assert linear.weight_elements == 4 * WIDTH * WIDTH
    for op, gates in (("lstm", 4), ("gru", 3)):
        spec = ops[op]
        assert (spec.gemm_m, spec.gemm_k, spec.gemm_n) == (35, 128 + 256, gates * 256), op
        assert spec.macs == 35 * gates * 256 * (128 + 256) and spec.weight_elements == gates * 256 * 384


@pytest.mark.parametrize("layout", [0, 1])
def test_a_recurrent_layer_from_onnx_shapes_finds_its_batch_in_either_layout(layout: int):
    """ONNX's LSTM reads X [steps, batch, inputs] (layout 0) or [batch, steps, inputs] (layout 1) and writes
    Y [steps, directions, batch, hidden] (or [batch, steps, directions, hidden])."""
    steps, batch, inputs, hidden = 35, 4, 128, 256
    x = (steps, batch, inputs) if layout == 0 else (batch, steps, inputs)
    y = (steps, 2, batch, hidden) if layout == 0 else (batch, steps, 2, hidden)
    spec = _one_layer(Layer("lstm", "lstm", ("x",), y, weight_elements=2 * 4 * hidden * (inputs + hidden),
                            attrs={"steps": steps, "hidden_size": hidden, "gates": 4, "directions": 2}), {"x": x})
    assert (spec.batch, spec.groups, spec.gemm_m, spec.gemm_k, spec.gemm_n) == (batch, 2, steps * batch,
                                                                               inputs + hidden, 4 * hidden)
    assert spec.macs == steps * batch * 2 * 4 * hidden * (inputs + hidden)  # the importer's count


def test_views_are_views_and_everything_else_in_the_data_ops_copies():
    assert not _tokens_op("reshape", out=(1, TOKENS, HEADS, WIDTH // HEADS)).moves_data
    assert not _tokens_op("flatten", out=(1, TOKENS * WIDTH)).moves_data
    for op in ("transpose", "roll", "gather", "expand", "reshape_copy"):
        assert _new_ops()[op].moves_data, op


# --- every preset ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("dilation", [12, 36])
def test_a_dilated_conv_costs_what_the_undilated_conv_costs_within_20_percent(preset: str, dilation: int):
    accelerator = load_accelerator(preset)
    size = 65 if dilation == 12 else 33
    plain, dilated = _cost(accelerator, _conv(1, size)), _cost(accelerator, _conv(dilation, size))
    assert dilated.latency_s == pytest.approx(plain.latency_s, rel=0.2)
    assert dilated.energy_j == pytest.approx(plain.energy_j, rel=0.2)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("op", list(_new_ops()))
def test_every_new_op_takes_time_and_energy(preset: str, op: str):
    cost = _cost(load_accelerator(preset), _new_ops()[op])
    assert cost.latency_s > 0 and cost.energy_j > 0, cost


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("op", ["reshape", "flatten", "concat"])
def test_views_and_concatenations_written_in_place_move_no_bytes(preset: str, op: str):
    accelerator = load_accelerator(preset)
    spec = _tokens_op(op, out=(1, TOKENS * WIDTH) if op == "flatten" else (1, TOKENS, WIDTH))
    cost = _cost(accelerator, spec)
    if accelerator.kind == "gpu" and op == "concat":  # a GPU framework's torch.cat copies (gpu_kernels.COPY_OPS)
        return
    assert cost.dram_bytes == 0
    # at most the runtime's fixed per-op overhead (the DSP dispatches every op, a view too), nothing more
    assert cost.latency_s == cost.overhead_s
    if accelerator.kind in ("systolic", "npu", "gpu"):
        assert cost.latency_s == 0


@pytest.mark.parametrize("preset", SPECIFIED)
@pytest.mark.parametrize("op", list(_new_ops()))
def test_costs_are_monotone_in_bits(preset: str, op: str):
    accelerator = load_accelerator(preset)
    spec = _new_ops()[op]
    bits = sorted(accelerator.supported_bits)
    if accelerator.kind == "dsp":  # operands narrower than a lane are unpacked first, by design (dsp.py)
        bits = [b for b in bits if b in accelerator.lane_bits]
    costs = [_cost(accelerator, spec, b) for b in bits]
    for low, high in zip(costs, costs[1:]):
        assert high.latency_s >= low.latency_s * (1 - 1e-12)
        assert high.energy_j >= low.energy_j * (1 - 1e-12)
        assert high.dram_bytes >= low.dram_bytes


@pytest.mark.parametrize("preset", SPECIFIED)
def test_a_batched_matmul_is_its_groups_times_one_gemm(preset: str):
    accelerator = load_accelerator(preset)
    batched, single = _cost(accelerator, _matmul(groups=HEADS)), _cost(accelerator, _matmul(groups=1))
    if accelerator.kind in ("systolic", "dsp"):
        assert batched.compute_cycles == pytest.approx(HEADS * single.compute_cycles)
    if accelerator.kind == "systolic":  # a DSP's on-chip memory may hold one matrix's operands, not six
        assert batched.dram_bytes == pytest.approx(HEADS * single.dram_bytes)
    elif accelerator.kind == "npu":
        assert batched.parts["compute_s"] == pytest.approx(HEADS * single.parts["compute_s"])
    elif accelerator.kind == "gpu":  # one batched kernel keeps more of the GPU busy: never slower than one each
        table = accelerator.kernel_table([_matmul(groups=HEADS)], ["fp16"])
        assert table.flops.sum() == 2 * HEADS * TOKENS * 64 * TOKENS
        assert batched.dram_bytes == pytest.approx(HEADS * single.dram_bytes)
        assert batched.latency_s <= HEADS * single.latency_s
    assert batched.latency_s > single.latency_s


@pytest.mark.parametrize("preset", [p for p in PRESETS if len(load_accelerator(p).supported_bits) > 1])
def test_a_matmul_of_two_activations_does_not_depend_on_the_weight_bits(preset: str):
    accelerator = load_accelerator(preset)
    bits = sorted(accelerator.supported_bits)
    spec = _matmul()
    low = accelerator.layer_cost(spec, bits[0], bits[-1])
    high = accelerator.layer_cost(spec, bits[-1], bits[-1])
    assert (low.latency_s, low.energy_j, low.dram_bytes) == (high.latency_s, high.energy_j, high.dram_bytes)


# --- traffic, kind by kind ------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["softmax", "layernorm"])
def test_softmax_and_layernorm_read_their_input_twice_in_a_framework_and_once_in_a_serving_engine(op: str):
    gpu = load_accelerator("h100")
    spec = _new_ops()[op]
    framework = gpu.with_mode(fusion="framework")
    assert framework.layer_cost(spec, 16, 16).dram_bytes == 2 * (2 * spec.input_elements + spec.output_elements)
    assert gpu.layer_cost(spec, 16, 16).dram_bytes == 2 * (spec.input_elements + spec.output_elements)


@pytest.mark.parametrize("preset", [p for p in PRESETS if load_accelerator(p).kind in ("systolic", "dsp")])
def test_softmax_fetches_its_input_twice_only_when_it_does_not_stay_on_chip(preset: str):
    accelerator = load_accelerator(preset)
    for tokens in (4, 65536):
        spec = _one_layer(Layer("sm", "softmax", ("x",), (1, tokens, WIDTH), attrs={"axis": -1}),
                          {"x": (1, tokens, WIDTH)})
        once = spec.input_elements + spec.output_elements  # bytes at 8 bits
        if accelerator.kind == "systolic":  # stays in half the (double-buffered) ifmap SRAM
            stays = spec.input_elements <= accelerator.ifmap_sram_bytes / 2
        else:  # input and output stay in the DSP's on-chip memory
            stays = once <= accelerator.onchip_memory_bytes
        assert stays == (tokens == 4)
        expected = once + (0 if stays else spec.input_elements)
        assert accelerator.layer_cost(spec, 8, 8).dram_bytes == expected, tokens


# an NPU keeps activations that fit on chip (test_the_npu_now_costs_a_transpose_and_still_not_a_reshape)
@pytest.mark.parametrize("preset", [p for p in SPECIFIED if load_accelerator(p).kind != "npu"])
def test_a_copy_reads_what_it_writes_and_writes_it_once(preset: str):
    accelerator = load_accelerator(preset)
    bits = accelerator.default_bits
    gather = _new_ops()["gather"]  # reads one token of 197
    transpose = _new_ops()["transpose"]
    for spec in (gather, transpose):
        assert _cost(accelerator, spec).dram_bytes == 2 * spec.output_elements * bits / 8, spec.op


def test_the_npu_now_costs_a_transpose_and_still_not_a_reshape():
    npu = load_accelerator("snapdragon_8gen3")
    ops = _new_ops()
    transpose, reshape = ops["transpose"], replace(ops["reshape_copy"], copies=False)
    cost = npu.layer_cost(transpose, 8, 8)
    assert cost.parts["compute_s"] == pytest.approx(
        transpose.output_elements / (npu.vector_elements_per_cycle * npu.clock_hz))
    assert cost.latency_s > cost.parts["compute_s"] and npu.layer_cost(reshape, 8, 8).latency_s == 0


def test_an_npu_streams_a_matmuls_second_operand_with_the_activations_not_through_the_weight_cache():
    npu = load_accelerator("coral_usb")
    rows, _ = npu.network_cost([_matmul()], 8, 8)
    assert rows[0].parts["streamed_bytes"] == 0


def test_a_serving_engine_fuses_a_gelu_into_the_gemm_before_it_and_a_framework_does_not():
    gpu = load_accelerator("h100")
    ops = _new_ops()
    layers = [ops["linear_3d"], replace(ops["gelu"], in_channels=4 * WIDTH, out_channels=4 * WIDTH)]
    serving, _ = gpu.network_cost(layers, 16, 16)
    framework, _ = gpu.with_mode(fusion="framework").network_cost(layers, 16, 16)
    assert serving[1].latency_s == 0 and serving[1].dram_bytes == 0
    assert framework[1].dram_bytes == 2 * 2 * TOKENS * 4 * WIDTH
    alone, _ = gpu.network_cost(layers[1:], 16, 16)  # no GEMM before it: a kernel of its own
    assert alone[0].dram_bytes > 0


def test_layernorm_and_softmax_cost_more_than_one_elementwise_op_on_the_same_tensor():
    ops = _new_ops()
    relu = _tokens_op("relu")
    for preset in SPECIFIED:
        accelerator = load_accelerator(preset)
        if accelerator.kind == "gpu":  # a serving engine's one-pass kernel is as bound by memory as a ReLU
            accelerator = accelerator.with_mode(fusion="framework")
        for op in ("softmax", "layernorm"):
            cost, one_op = _cost(accelerator, ops[op]), _cost(accelerator, relu)
            # more element work, and (except where a DRAM-bound layer hides it) more time
            assert cost.latency_s >= one_op.latency_s and cost.energy_j > one_op.energy_j, (preset, op)
            if accelerator.kind in ("gpu", "npu"):
                assert cost.latency_s > one_op.latency_s, (preset, op)


def test_a_dilated_conv_no_longer_costs_its_spread_window_as_macs():
    """The bug of issue 21: a 3x3 conv with dilation 12 was costed as a 25x25 kernel (68x on the systolic array)."""
    eyeriss = load_accelerator("eyeriss")
    plain, dilated = _conv(1), _conv(12)
    assert eyeriss.layer_cost(dilated).compute_cycles == eyeriss.layer_cost(plain).compute_cycles
    old = replace(plain, kernel_height=25, kernel_width=25)  # what the footprint-as-kernel spec was
    assert eyeriss.layer_cost(old).compute_cycles > 60 * eyeriss.layer_cost(dilated).compute_cycles
    assert math.isclose(eyeriss.layer_cost(dilated).energy_j, eyeriss.layer_cost(plain).energy_j, rel_tol=0.2)


def test_a_recurrent_layer_runs_its_steps_one_after_another_where_the_shape_of_a_gemm_matters():
    lstm = _new_ops()["lstm"]
    assert lstm.sequential_steps == 35
    eyeriss = load_accelerator("eyeriss")
    one_step = scalesim_compute_cycles(1, 4 * 256, 128 + 256, eyeriss.rows, eyeriss.cols,
                                       eyeriss.dataflow)
    assert eyeriss.layer_cost(lstm).compute_cycles == 35 * one_step
    batched = replace(lstm, sequential_steps=1)  # what the steps would take if they did not wait for each other
    assert eyeriss.layer_cost(lstm).compute_cycles > eyeriss.layer_cost(batched).compute_cycles
    gpu = load_accelerator("h100")
    rows, _ = gpu.network_cost([lstm], 16, 16)
    assert rows[0].parts["kernels"] == 35
    assert rows[0].latency_s > gpu.network_cost([batched], 16, 16)[0][0].latency_s


@pytest.mark.parametrize("preset", [p for p in PRESETS if load_accelerator(p).kind in ("systolic", "dsp")])
@pytest.mark.parametrize("op", ["matmul", "softmax", "layernorm", "transpose", "gather"])
def test_energy_follows_the_traffic(preset: str, op: str):
    accelerator = load_accelerator(preset)
    cost = _cost(accelerator, _new_ops()[op])
    assert cost.energy_parts_j["dram"] == pytest.approx(cost.dram_bytes * accelerator.energy.dram_j_per_byte())
    assert cost.energy_parts_j["sram"] > 0


def test_scalesim_sees_a_dilated_conv_as_the_undilated_conv_of_the_same_output():
    """SCALE-Sim has no dilation; the im2col GEMM it would run is the undilated conv's."""
    assert topology_row(_conv(12)) == topology_row(_conv(1)) == ["aspp", 67, 67, 3, 3, 256, 256, 1]


def _attention(bias: bool = False) -> list[LayerSpec]:
    """QK^T, (a relative position bias,) softmax, AV of 6 heads over 197 tokens, as a sequence."""
    scores_shape = (1, HEADS, TOKENS, TOKENS)
    layers = [_matmul()]
    if bias:  # Swin's bias: an add of a second input, which the fused kernel reads
        layers.append(_one_layer(Layer("attn.bias", "add", ("s", "b"), scores_shape),
                                 {"s": scores_shape, "b": scores_shape}))
    layers.append(_one_layer(Layer("attn.softmax", "softmax", ("s",), scores_shape), {"s": scores_shape}))
    layers.append(_one_layer(Layer("attn.av", "matmul", ("p", "v"), (1, HEADS, TOKENS, 64)),
                             {"p": scores_shape, "v": (1, HEADS, TOKENS, 64)}))
    return layers


@pytest.mark.parametrize("bias", [False, True])
def test_a_serving_engine_runs_attention_as_one_fused_kernel_reading_q_k_v_and_writing_the_context(bias: bool):
    gpu = load_accelerator("h100")
    layers = _attention(bias)
    scores, context = layers[0], layers[-1]
    table = gpu.kernel_table(layers, ["fp16"] * len(layers))
    working = [k for k, c in enumerate(table.kernel_class) if c != "view"]
    assert [table.kernel_class[k] for k in working] == ["gemm"]  # one kernel
    assert table.flops.sum() == 2 * (scores.macs + context.macs)
    qkv_and_context = 2 * (scores.input_elements + scores.operand_elements + context.operand_elements
                           + context.output_elements)
    bias_bytes = 2 * HEADS * TOKENS * TOKENS if bias else 0  # the other input of the add: read once, as before
    assert table.bytes.sum() == qkv_and_context + bias_bytes  # the scores never reach memory
    fused = sum(row.latency_s for row in gpu.network_cost(layers, 16, 16)[0])
    one_by_one = sum(gpu.layer_cost(layer, 16, 16).latency_s for layer in layers)  # a layer alone is not fused
    assert fused < one_by_one


def test_the_fused_attention_reads_packed_qkv_and_writes_merged_heads_so_the_copies_around_it_move_nothing():
    gpu = load_accelerator("h100")
    ops = _new_ops()
    split = _tokens_op("transpose", out=(1, HEADS, TOKENS, WIDTH // HEADS))
    merge = _tokens_op("transpose", out=(1, TOKENS, WIDTH))
    window = _tokens_op("roll")
    layers = [ops["linear_3d"], split, *_attention(), merge, ops["linear_3d"], window]
    table = gpu.kernel_table(layers, ["fp16"] * len(layers))
    by_layer = {j: [table.kernel_class[k] for k in range(len(table.layer)) if table.layer[k] == j]
                for j in range(len(layers))}
    assert by_layer[1] == by_layer[len(layers) - 3] == ["view"]  # split and merge: inside the fused kernel
    assert by_layer[len(layers) - 1] == ["copy"]  # a copy after the next GEMM still moves its data
    framework = gpu.kernel_table(layers, ["fp16"] * len(layers), fuse=False)
    assert framework.kernel_class.count("copy") == 3


def test_attention_is_not_fused_when_something_else_runs_between_its_matmuls():
    gpu = load_accelerator("h100")
    scores, softmax, context = _attention()
    layers = [scores, softmax, _new_ops()["linear_3d"], context]
    table = gpu.kernel_table(layers, ["fp16"] * 4)
    assert table.kernel_class.count("gemm") == 3 and "eltwise" in table.kernel_class
