"""Build a Graph the way a PyTorch forward runs: one call per op, shapes inferred as we go.

Names are module paths (`layer1.0.conv1`); calling a name again (a module used twice, like ResNet's
`relu`) gets `#2`, `#3`, ... Params follow torchvision (conv weight + bias, batchnorm weight + bias,
linear weight + bias); MACs are counted for conv, linear and matmul.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from simulator.graph.ir import ACTIVATION_OPS, Graph, Layer


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                     ceil_mode: bool = False) -> int:
    """PyTorch's output size of a conv or pooling window along one axis."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window must start inside the input or its left padding
    return out


class GraphBuilder:
    """Accumulates layers in call order; `build()` returns the Graph."""

    def __init__(self, name: str, input_shape: Sequence[int] = (1, 3, 224, 224), input_name: str = "input") -> None:
        self.name = name
        self.input = input_name
        self.inputs = {input_name: tuple(input_shape)}
        self.shapes: dict[str, tuple[int, ...]] = dict(self.inputs)
        self.layers: list[Layer] = []
        self._uses: dict[str, int] = {}

    # --- plumbing -----------------------------------------------------------------------------------
    def _name(self, name: str) -> str:
        uses = self._uses.get(name, 0) + 1
        self._uses[name] = uses
        return name if uses == 1 else f"{name}#{uses}"

    def add(self, name: str, op: str, inputs: Sequence[str], shape: Sequence[int], **fields) -> str:
        layer = Layer(self._name(name), op, tuple(inputs), tuple(shape), **fields)
        self.layers.append(layer)
        self.shapes[layer.name] = layer.output_shape
        return layer.name

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.shapes[tensor]

    def build(self) -> Graph:
        return Graph(self.name, self.inputs, self.layers)

    # --- ops ----------------------------------------------------------------------------------------
    def conv(self, name: str, x: str, out_channels: int, kernel: int | Sequence[int], stride: int | Sequence[int] = 1,
             padding: int | Sequence[int] = 0, groups: int = 1, dilation: int | Sequence[int] = 1,
             bias: bool = False) -> str:
        n, c, h, w = self.shape(x)
        kh, kw = _pair(kernel)
        sh, sw = _pair(stride)
        ph, pw = _pair(padding)
        dh, dw = _pair(dilation)
        if c % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide {c} and {out_channels}")
        oh, ow = conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw)
        weights = out_channels * (c // groups) * kh * kw
        return self.add(name, "conv", [x], (n, out_channels, oh, ow),
                        params=weights + (out_channels if bias else 0), weight_elements=weights,
                        macs=n * oh * ow * weights,
                        attrs={"kernel": (kh, kw), "stride": (sh, sw), "padding": (ph, pw), "groups": groups,
                               "dilation": (dh, dw), "bias": bias})

    def linear(self, name: str, x: str, out_features: int, bias: bool = True) -> str:
        shape = self.shape(x)
        in_features = shape[-1]
        rows = math.prod(shape[:-1])
        weights = in_features * out_features
        return self.add(name, "linear", [x], (*shape[:-1], out_features),
                        params=weights + (out_features if bias else 0), weight_elements=weights,
                        macs=rows * weights, attrs={"in_features": in_features, "bias": bias})

    def batchnorm(self, name: str, x: str, eps: float = 1e-5) -> str:
        shape = self.shape(x)
        return self.add(name, "batchnorm", [x], shape, params=2 * shape[1], attrs={"eps": eps})

    def activation(self, name: str, x: str, kind: str = "relu") -> str:
        if kind not in ACTIVATION_OPS:
            raise ValueError(f"{name}: unknown activation {kind!r}")
        return self.add(name, kind, [x], self.shape(x))

    def pool(self, name: str, x: str, kind: str, kernel: int | Sequence[int], stride: int | Sequence[int] | None = None,
             padding: int | Sequence[int] = 0, ceil_mode: bool = False) -> str:
        n, c, h, w = self.shape(x)
        kh, kw = _pair(kernel)
        sh, sw = _pair(stride if stride is not None else kernel)
        ph, pw = _pair(padding)
        oh = conv_output_size(h, kh, sh, ph, ceil_mode=ceil_mode)
        ow = conv_output_size(w, kw, sw, pw, ceil_mode=ceil_mode)
        return self.add(name, kind, [x], (n, c, oh, ow),
                        attrs={"kernel": (kh, kw), "stride": (sh, sw), "padding": (ph, pw), "ceil_mode": ceil_mode})

    def maxpool(self, name: str, x: str, kernel, stride=None, padding=0, ceil_mode: bool = False) -> str:
        return self.pool(name, x, "maxpool", kernel, stride, padding, ceil_mode)

    def global_avgpool(self, name: str, x: str) -> str:
        n, c, h, w = self.shape(x)
        return self.add(name, "globalavgpool", [x], (n, c, 1, 1), attrs={"kernel": (h, w), "stride": (1, 1)})

    def adaptive_avgpool(self, name: str, x: str, size: int) -> str:
        """AdaptiveAvgPool2d to size x size (an exact pooling window when the input divides evenly)."""
        n, c, h, w = self.shape(x)
        if size == 1:
            return self.global_avgpool(name, x)
        if h % size or w % size:
            raise ValueError(f"{name}: adaptive pooling {h}x{w} -> {size}x{size} is not a plain window")
        return self.add(name, "avgpool", [x], (n, c, size, size),
                        attrs={"kernel": (h // size, w // size), "stride": (h // size, w // size)})

    def elementwise(self, name: str, op: str, inputs: Sequence[str], params: int = 0) -> str:
        """add / mul with numpy broadcasting (a squeeze-excitation scale times its feature map); `params`: a
        learned operand that is not a tensor of the graph (ViT's position embedding, ConvNeXt's layer scale)."""
        shapes = [self.shape(t) for t in inputs]
        out = tuple(max(dims) for dims in zip(*shapes))
        return self.add(name, op, inputs, out, params=params)

    def layernorm(self, name: str, x: str, axis: int = -1, eps: float = 1e-5) -> str:
        """LayerNorm over `axis` (-1: nn.LayerNorm; 1: torchvision's LayerNorm2d on NCHW); gamma and beta."""
        shape = self.shape(x)
        return self.add(name, "layernorm", [x], shape, params=2 * shape[axis], attrs={"axis": axis, "eps": eps})

    def matmul(self, name: str, a: str, b: str, transpose_b: bool = False, **attrs) -> str:
        """a @ b (b transposed on its last two axes when `transpose_b`: attention's QK^T) over shared leading
        dimensions; two activation operands, so no weights."""
        sa, sb = self.shape(a), self.shape(b)
        k, n = (sb[-1], sb[-2]) if transpose_b else (sb[-2], sb[-1])
        if sa[:-2] != sb[:-2] or sa[-1] != k:
            raise ValueError(f"{name}: cannot multiply {sa} by {sb}{' transposed' if transpose_b else ''}")
        matrices = math.prod(sa[1:-2])
        return self.add(name, "matmul", [a, b], (*sa[:-1], n), macs=sa[0] * matrices * sa[-2] * k * n,
                        attrs={"batch_matrices": matrices, "in_features": k, "transpose_b": transpose_b, **attrs})

    def data(self, name: str, op: str, inputs: Sequence[str], shape: Sequence[int], params: int = 0, **attrs) -> str:
        """A data-movement op (reshape, transpose, gather, slice, roll, concat) with its output shape given;
        `params`: a learned tensor it inserts (ViT's class token)."""
        if op in ("reshape", "transpose", "roll") and math.prod(shape) != math.prod(self.shape(inputs[0])):
            raise ValueError(f"{name}: {op} cannot make {tuple(shape)} from {self.shape(inputs[0])}")
        return self.add(name, op, inputs, shape, params=params, attrs=attrs)

    def concat(self, name: str, inputs: Sequence[str], axis: int = 1) -> str:
        shapes = [self.shape(t) for t in inputs]
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return self.add(name, "concat", inputs, out, attrs={"axis": axis})

    def flatten(self, name: str, x: str) -> str:
        shape = self.shape(x)
        return self.add(name, "flatten", [x], (shape[0], math.prod(shape[1:])))

    def upsample(self, name: str, x: str, scale: int = 2) -> str:
        n, c, h, w = self.shape(x)
        return self.add(name, "upsample", [x], (n, c, h * scale, w * scale), attrs={"scale": scale})

    def identity(self, name: str, x: str, op: str = "dropout") -> str:
        """A no-op at inference (dropout, stochastic depth): kept in the raw graph, removed by simplify."""
        return self.add(name, op, [x], self.shape(x))
