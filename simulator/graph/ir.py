"""Graph IR: a DAG of layers, each producing one tensor named after it.

Layers are kept in execution order (the order PyTorch's forward or the ONNX graph runs them), which is a
topological order. Shapes include the batch dimension. `params` follows torchvision's convention
(learnable parameters, before folding; a conv that absorbed a batchnorm carries both), `macs` counts the
multiply-accumulates of conv and linear/matmul layers only.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from hardware_models.layer import LayerSpec

# The op vocabulary. MAC ops: "conv" (attrs kernel, stride, dilation, groups), "linear" (a weight operand; on a
# 3-D input [N, tokens, features] its rows are the tokens, its bias folded in), "matmul" (two activation
# operands, e.g. attention's QK^T and AV: output [N, *batch_dims, M, N'], attrs["batch_matrices"] = the product
# of batch_dims, weight_elements 0), "lstm"/"gru" (costed as their gate matmuls over attrs["steps"]).
# "layernorm" normalises over the last axis (params: gamma and beta), "softmax" over attrs["axis"],
# "reducemean" over attrs["axes"]; "split"/"gather"/"expand"/"roll" move data.
MAC_OPS = ("conv", "linear", "matmul", "lstm", "gru")
POOL_OPS = ("maxpool", "avgpool", "globalavgpool")
DATA_OPS = ("concat", "flatten", "reshape", "identity", "dropout", "transpose", "slice", "pad", "split", "gather",
            "expand", "roll")
ACTIVATION_OPS = ("relu", "relu6", "leakyrelu", "sigmoid", "silu", "hardswish", "hardsigmoid", "tanh", "gelu", "clip",
                  "elu", "softplus")
ELTWISE_OPS = ("add", "mul", "batchnorm", "upsample", "softmax", "layernorm", "reducemean", *ACTIVATION_OPS)
OPS = (*MAC_OPS, *POOL_OPS, *DATA_OPS, *ELTWISE_OPS)


@dataclass(frozen=True)
class Tensor:
    """A tensor produced by `producer` (None for a graph input); shape with the batch dimension."""

    name: str
    shape: tuple[int, ...]
    producer: str | None

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclass
class Layer:
    """One operation. Its output tensor has the layer's name."""

    name: str
    op: str
    inputs: tuple[str, ...]
    output_shape: tuple[int, ...]
    params: int = 0
    weight_elements: int = 0
    macs: int = 0
    attrs: dict = field(default_factory=dict)
    fused: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"layer {self.name!r}: unknown op {self.op!r}")
        self.inputs = tuple(self.inputs)
        self.output_shape = tuple(int(d) for d in self.output_shape)

    @property
    def output(self) -> str:
        return self.name

    @property
    def output_elements(self) -> int:
        return math.prod(self.output_shape)

    @property
    def has_weights(self) -> bool:
        return self.weight_elements > 0


class Graph:
    """A model as a DAG of `Layer`s in execution order, with named input tensors.

    `weights` maps a layer name to its arrays ({"weight": ..., "bias": ...}) when real weights are known
    (an ONNX file); zoo models have none.
    """

    def __init__(self, name: str, inputs: dict[str, tuple[int, ...]], layers: list[Layer],
                 simplified: bool = False, weights: dict[str, dict[str, np.ndarray]] | None = None,
                 source: str | None = None) -> None:
        self.name = name
        self.inputs = {k: tuple(v) for k, v in inputs.items()}
        self.layers = list(layers)
        self.simplified = simplified
        self.weights = weights or {}
        self.source = source
        self._check()

    def _check(self) -> None:
        seen = set(self.inputs)
        for layer in self.layers:
            if layer.name in seen:
                raise ValueError(f"{self.name}: duplicate tensor name {layer.name!r}")
            missing = [t for t in layer.inputs if t not in seen]
            if missing:
                raise ValueError(f"{self.name}: layer {layer.name!r} reads {missing[0]!r} before it is produced")
            seen.add(layer.name)

    # --- lookups ------------------------------------------------------------------------------------
    @cached_property
    def tensors(self) -> dict[str, Tensor]:
        out = {n: Tensor(n, s, None) for n, s in self.inputs.items()}
        out.update({l.name: Tensor(l.name, l.output_shape, l.name) for l in self.layers})
        return out

    @cached_property
    def index(self) -> dict[str, int]:
        """Layer name -> position in execution order."""
        return {l.name: i for i, l in enumerate(self.layers)}

    @cached_property
    def consumers(self) -> dict[str, list[str]]:
        """Tensor name -> names of the layers reading it, in execution order."""
        out: dict[str, list[str]] = {t: [] for t in self.tensors}
        for layer in self.layers:
            for t in dict.fromkeys(layer.inputs):
                out[t].append(layer.name)
        return out

    @cached_property
    def outputs(self) -> list[str]:
        """Tensors nobody consumes: the model's outputs."""
        return [l.name for l in self.layers if not self.consumers[l.name]]

    def layer(self, name: str) -> Layer:
        return self.layers[self.index[name]]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    # --- totals -------------------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        return next(iter(self.inputs.values()))

    @property
    def input_elements(self) -> int:
        return sum(math.prod(s) for s in self.inputs.values())

    @property
    def params(self) -> int:
        return sum(l.params for l in self.layers)

    @property
    def macs(self) -> int:
        return sum(l.macs for l in self.layers)

    def layer_specs(self) -> list[LayerSpec]:
        """The layers as hardware_models sees them, in execution order."""
        return [layer_spec(self, l) for l in self.layers]

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self.layers)} layers, {self.params:,} params, {self.macs:,} MACs)"


# Element operations per output of the ops that do more than one (assumptions, stated here; issue 21):
# softmax = max, subtract, exp, sum, scale; layernorm = mean, subtract, square,
# variance sum, rsqrt-scale, gamma, beta, ~8; GELU's erf by a polynomial, ~8. Softmax and layernorm read
# their input twice (a statistics pass, then the output pass).
OPS_PER_OUTPUT = {"softmax": 5, "layernorm": 8, "gelu": 8}
INPUT_READS = {"softmax": 2, "layernorm": 2}
# data layers that relabel contiguous data (free everywhere); every other data op moves data, and a reshape
# moves data when its layer says so (attrs["copies"]: a reshape of non-contiguous data)
VIEW_OPS = ("flatten", "reshape", "identity", "dropout")
RECURRENT_GATES = {"lstm": 4, "gru": 3}


def _spatial(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(channels, height, width) of an NCHW, NC or NLC shape."""
    if len(shape) == 4:
        return shape[1], shape[2], shape[3]
    if len(shape) == 2:
        return shape[1], 1, 1
    if len(shape) == 3:
        return shape[2], shape[1], 1
    return math.prod(shape[1:]) if len(shape) > 1 else 1, 1, 1


def layer_spec(graph: Graph, layer: Layer) -> LayerSpec:
    """`layer` as a hardware_models.LayerSpec (batch from the graph's shapes).

    A conv keeps its real kernel and its dilation apart. A linear layer is one GEMM whose rows are all
    output dims but the batch and the last (a token sequence's tokens); a matmul of two activations is
    one GEMM of M x K by K x N per matrix of its leading dims but the batch (groups), with no weights; an LSTM/GRU is its gate GEMM over
    steps x batch rows, K = input + hidden, N = 4 (LSTM) or 3 (GRU) x hidden, per direction (groups), from
    attrs steps (required), hidden_size, gates, directions and input_size (default: the input's last dim).
    """
    shapes = [graph.tensors[t].shape for t in layer.inputs]
    in_shape = shapes[0] if shapes else layer.output_shape
    batch = layer.output_shape[0] if layer.output_shape else 1
    out_c, out_h, out_w = _spatial(layer.output_shape)
    in_c, in_h, in_w = _spatial(in_shape)
    fused_ops = tuple(layer.attrs.get("fused_ops", ()))
    common: dict[str, Any] = dict(name=layer.name, batch=batch, in_channels=in_c, in_height=in_h, in_width=in_w,
                  out_channels=out_c, out_height=out_h, out_width=out_w, op=layer.op, fused_ops=fused_ops)
    if layer.op == "conv":
        kh, kw = layer.attrs["kernel"]
        dh, dw = layer.attrs.get("dilation", (1, 1))
        return LayerSpec(kind="conv", kernel_height=kh, kernel_width=kw, dilation=(int(dh), int(dw)),
                         stride=layer.attrs.get("stride", (1, 1))[0], groups=layer.attrs.get("groups", 1),
                         has_weights=True, **common)
    if layer.op in ("linear", "matmul"):
        shape = layer.output_shape
        groups = 1
        if layer.op == "matmul" and len(shape) > 2:
            # the matrices are every leading dim; the model's batch is among them, unless the exporter folded it
            # into the heads ([batch x heads, M, N] from a bmm), where the graph's batch tells them apart
            matrices = math.prod(shape[:-2])
            graph_batch = graph.input_shape[0] if graph.input_shape else 1
            batch = graph_batch if matrices % graph_batch == 0 else shape[0]
            groups = matrices // batch
        # rows of one GEMM = the output dims between the batch and the matrices' columns, over the groups
        rows = math.prod(shape[:-1]) // (batch * groups) if len(shape) > 2 else 1
        k = layer.attrs.get("in_features") or in_shape[-1]
        return LayerSpec(kind="gemm", name=layer.name, batch=batch, in_channels=groups * k, in_height=rows,
                         in_width=1, out_channels=groups * shape[-1], out_height=rows, out_width=1, groups=groups,
                         has_weights=layer.weight_elements > 0, op=layer.op, fused_ops=fused_ops)
    if layer.op in RECURRENT_GATES:
        # the input is [steps, batch, inputs] or [batch, steps, inputs] (ONNX's layout 0 or 1): the batch is
        # what is left of it once the steps and the inputs are taken out
        hidden = int(layer.attrs.get("hidden_size", layer.output_shape[-1]))
        inputs = int(layer.attrs.get("input_size", in_shape[-1]))
        gates = int(layer.attrs.get("gates", RECURRENT_GATES[layer.op]))
        directions = int(layer.attrs.get("directions", 1))
        steps = int(layer.attrs["steps"])
        return LayerSpec(kind="gemm", name=layer.name, batch=max(1, math.prod(in_shape) // (steps * inputs)),
                         in_channels=directions * (inputs + hidden), in_height=steps,
                         out_channels=directions * gates * hidden, out_height=steps, groups=directions,
                         sequential_steps=steps, has_weights=True, op=layer.op, fused_ops=fused_ops)
    if layer.op in POOL_OPS:
        kh, kw = layer.attrs.get("kernel", (in_h, in_w))
        return LayerSpec(kind="pool", kernel_height=kh, kernel_width=kw, stride=layer.attrs.get("stride", (1, 1))[0],
                         ops_per_output=kh * kw, **common)
    if layer.op in DATA_OPS:
        copies = layer.op not in VIEW_OPS or bool(layer.attrs.get("copies", False))
        return LayerSpec(kind="data", num_inputs=max(1, len(shapes)), ops_per_output=0, copies=copies, **common)
    ops_per_output = OPS_PER_OUTPUT.get(layer.op, 1)
    if layer.op == "reducemean":  # each output sums the inputs it averages
        ops_per_output = max(1, math.prod(in_shape) // max(1, layer.output_elements))
    return LayerSpec(kind="eltwise", num_inputs=max(1, len(shapes)), ops_per_output=ops_per_output,
                     input_reads=INPUT_READS.get(layer.op, 1), **common)
