"""The small layer description every accelerator model takes (it knows nothing of autosplit's graph).

A conv is described by its output-stationary im2col view, as SCALE-Sim maps it: a GEMM of
`gemm_m` output pixels x `gemm_k` window elements times `gemm_k` x `gemm_n` filters, repeated once per group.
A linear/matmul layer is a conv with a 1x1 kernel on a 1x1 (or rows x 1) input. Layers without MACs
(pooling, element-wise, activation, data movement) carry only element counts. `op` and `fused_ops` name the
operation and the ops folded or fused into it, for a model that launches a kernel per op (a GPU framework).
"""
from __future__ import annotations

from dataclasses import dataclass

KINDS = ("conv", "gemm", "pool", "eltwise", "data")


@dataclass(frozen=True)
class LayerSpec:
    """One layer at batch `batch`; sizes in elements; `kernel_*` already include dilation."""

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

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"layer {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.groups < 1 or self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"layer {self.name!r}: groups={self.groups} must divide the channel counts")

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
    def weight_elements(self) -> int:
        """Weights of the layer (biases not counted: they are a few per filter and live with the outputs)."""
        return self.groups * self.gemm_n * self.gemm_k if self.is_mac_layer else 0

    @property
    def input_elements(self) -> int:
        return self.batch * self.in_channels * self.in_height * self.in_width * self.num_inputs

    @property
    def output_elements(self) -> int:
        return self.batch * self.out_channels * self.out_height * self.out_width

    @property
    def padded_in_height(self) -> int:
        """Input height a padding-free conv would need for this output (SCALE-Sim's IFMAP Height)."""
        return (self.out_height - 1) * self.stride + self.kernel_height

    @property
    def padded_in_width(self) -> int:
        return (self.out_width - 1) * self.stride + self.kernel_width
