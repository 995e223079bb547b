"""The small layer description every accelerator model takes (it knows nothing of autosplit's graph).

A conv is described by its output-stationary im2col view, as SCALE-Sim maps it: a GEMM of
`gemm_m` output pixels x `gemm_k` window elements times `gemm_k` x `gemm_n` filters, repeated once per group.
`kernel_*` are the real kernel (MACs and weights); a dilated conv reads a window spread over
`(kernel - 1) x dilation + 1` input rows and columns, which only its input footprint sees.
A linear layer is a conv with a 1x1 kernel on a 1x1 (or rows x 1) input. A batched activation-activation
matmul (attention's QK^T and AV) is a "gemm" with `groups` = its matrices per batch element and
`has_weights=False`: each group and batch element is its own M x K by K x N product (`matrices`,
`matrix_rows`), its second operand an activation, read at activation bits through activation memory, never
weight storage (`operand_elements` counts it, `weight_elements` does not). An LSTM/GRU is its gate GEMM over steps x batch rows, computed in `sequential_steps` GEMMs one
after another. Layers without MACs (pooling, element-wise, activation, data movement) carry only element
counts; `input_reads` says how often a memory-bound kernel reads its input (softmax, layernorm: twice),
`copies` whether a data layer moves data (a transpose) or is a view (a reshape of contiguous data). `op` and
`fused_ops` name the operation and the ops folded or fused into it, for a model that launches a kernel per
op (a GPU framework).
"""
from __future__ import annotations

from dataclasses import dataclass

KINDS = ("conv", "gemm", "pool", "eltwise", "data")
# a concatenation costs nothing on an accelerator that runs layer by layer: its producers write their outputs
# into the concatenated buffer at an offset (a GPU framework's torch.cat copies: gpu_kernels.py)
IN_PLACE_OPS = ("concat",)


@dataclass(frozen=True)
class LayerSpec:
    """One layer at batch `batch`; sizes in elements; `kernel_*` the real kernel, `dilation` its spacing."""

    name: str
    kind: str
    in_channels: int = 1
    in_height: int = 1
    in_width: int = 1
    out_channels: int = 1
    out_height: int = 1
    out_width: int = 1
    kernel_height: int = 1
    kernel_width: int = 1
    stride: int = 1
    groups: int = 1
    batch: int = 1
    has_weights: bool = False
    # element operations of a layer without MACs (one per output element for eltwise, window size for pool)
    ops_per_output: int = 1
    num_inputs: int = 1
    # the graph's op ("conv", "batchnorm", "relu", "flatten", "add", ...; None when unknown, e.g. a SCALE-Sim
    # topology row), which tells kernels apart where `kind` cannot, and the ops folded or fused into the layer
    # (a batchnorm and an activation in a conv), which a framework launches as kernels of their own
    op: str | None = None
    fused_ops: tuple[str, ...] = ()
    dilation: tuple[int, int] = (1, 1)  # (rows, columns)
    # times a layer without MACs reads its input (softmax and layernorm: a statistics pass, then the output pass)
    input_reads: int = 1
    # a data layer that moves data (transpose, gather, roll, ...) rather than relabelling it (a view)
    copies: bool = False
    # a recurrent layer's steps: its rows (gemm_m) are computed in this many GEMMs one after another, each
    # waiting for the previous step's hidden state (out_height and in_height are the steps)
    sequential_steps: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"layer {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.groups < 1 or self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"layer {self.name!r}: groups={self.groups} must divide the channel counts")
        if min(*self.dilation, self.input_reads, self.sequential_steps) < 1 or self.gemm_m % self.sequential_steps:
            raise ValueError(f"layer {self.name!r}: dilation, input_reads and sequential_steps must be >= 1, the "
                             f"steps dividing the rows")

    # --- the im2col GEMM of one group -------------------------------------------------------------
    @property
    def gemm_m(self) -> int:
        """Output pixels (rows of the ifmap operand matrix), over the whole batch."""
        return self.batch * self.out_height * self.out_width

    @property
    def gemm_k(self) -> int:
        """Window elements per output (kernel area x input channels of one group)."""
        return self.kernel_height * self.kernel_width * (self.in_channels // self.groups)

    @property
    def gemm_n(self) -> int:
        """Filters of one group."""
        return self.out_channels // self.groups

    @property
    def is_mac_layer(self) -> bool:
        return self.kind in ("conv", "gemm")

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the whole layer over the batch (0 for layers without MACs)."""
        return self.groups * self.gemm_m * self.gemm_n * self.gemm_k if self.is_mac_layer else 0

    @property
    def matrices(self) -> int:
        """Independent GEMMs: one per group; a matmul of two activations has one per group and batch element
        (each its own second operand), where weights are shared by the whole batch."""
        return self.groups if self.has_weights else self.groups * self.batch

    @property
    def matrix_rows(self) -> int:
        """Rows of one of the `matrices` GEMMs (`gemm_m` over the batch when the weights are shared)."""
        return self.gemm_m * self.groups // self.matrices

    @property
    def operand_elements(self) -> int:
        """Elements of the second GEMM operand (the weights, or a batched matmul's second activation)."""
        return self.matrices * self.gemm_n * self.gemm_k if self.is_mac_layer else 0

    @property
    def weight_elements(self) -> int:
        """Weights of the layer (biases not counted: they are a few per filter and live with the outputs);
        0 for an activation-activation matmul."""
        return self.operand_elements if self.has_weights else 0

    def operand_bits(self, weight_bits: int, activation_bits: int) -> int:
        """Bit-width of the second GEMM operand: the weights', or the activations' for a matmul of two
        activations."""
        return weight_bits if self.has_weights else activation_bits

    @property
    def moves_data(self) -> bool:
        """A data layer that moves data on a layer-by-layer accelerator: a copy (transpose, gather, roll, a
        reshape of non-contiguous data), not a view and not a concatenation written in place."""
        return self.kind == "data" and self.copies and self.op not in IN_PLACE_OPS

    @property
    def read_elements(self) -> int:
        """Input elements a layer without MACs reads in one pass: a single-input copy reads what it writes
        (a gather or slice reads only its part, an expand its smaller input); otherwise every input."""
        if self.kind == "data" and self.num_inputs == 1:
            return min(self.input_elements, self.output_elements)
        return self.input_elements

    @property
    def input_elements(self) -> int:
        return self.batch * self.in_channels * self.in_height * self.in_width * self.num_inputs

    @property
    def output_elements(self) -> int:
        return self.batch * self.out_channels * self.out_height * self.out_width

    @property
    def dilated_kernel_height(self) -> int:
        """Input rows one output's window spans: `(kernel_height - 1) x dilation[0] + 1`."""
        return (self.kernel_height - 1) * self.dilation[0] + 1

    @property
    def dilated_kernel_width(self) -> int:
        return (self.kernel_width - 1) * self.dilation[1] + 1

    @property
    def padded_in_height(self) -> int:
        """Input height a padding-free conv would need for this output (SCALE-Sim's IFMAP Height for an
        undilated conv), from the dilated window."""
        return (self.out_height - 1) * self.stride + self.dilated_kernel_height

    @property
    def padded_in_width(self) -> int:
        return (self.out_width - 1) * self.stride + self.dilated_kernel_width
