"""The kernels a GPU launches for a sequence of layers, and how much of the GPU each keeps busy.

Each layer becomes the kernels launched for it. A serving engine (`fuse`: TensorRT-like) launches one kernel
per layer, batchnorms, activations and residual adds riding in its epilogue. A framework (PyTorch, eager or
captured in a CUDA graph) launches one more kernel per op folded or fused into the layer (its `fused_ops`),
and cuDNN's NCHW<->NHWC transposes around half-precision and int8 convolutions. The layer's `op` tells
kernel classes apart where its kind cannot (a batchnorm, a view, a copy).

Transformer ops: a matmul of two activations is one batched GEMM kernel (cuBLAS strided-batched, TensorRT's
batched MatMul) over its `matrices` (groups x batch elements), at the fitted gemm efficiency, its second
operand read as an activation; an LSTM/GRU is one gate GEMM per step (`sequential_steps`, one after another).
Softmax and layernorm are memory-bound kernels writing once and reading their input twice in a framework
(PyTorch's statistics pass, then the output pass), once in a serving engine (TensorRT's kernels hold a row
on chip). A serving engine runs attention (QK^T, its scale/bias/mask, the softmax and AV) as one fused
kernel that reads Q, K and V from the packed qkv projection and writes the context once, heads merged
(`_fused_attention`: the head-splitting and merging copies around it move nothing), fuses a GELU into the
epilogue of the GEMM right before it (EPILOGUE_OPS), and runs a layernorm as a kernel of its own (a row
reduction does not fit the epilogue of a GEMM whose tiles hold part of a row). Copies (transpose, gather,
roll, ...) read what they write; views are free.

A kernel's arithmetic (`math_of`): fp32 convolutions run TF32 on GPUs that have it, as cuDNN does by
default; fp32 matmuls run strict fp32; depthwise convolutions and matrix-vector products run on CUDA cores.
Its utilisation (`_tile_utilisation`) is the share of the GPU its thread blocks keep busy: 128x128 output
tiles (the reduction split at most SPLIT_K_MAX ways when there are fewer tiles than SMs) quantised into
waves over the SMs, times the padding of a short reduction (few input channels) to the MMA step. A block
runs its reduction serially, so a batch-1 layer with few tiles and a long reduction is slow.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from hardware_models.layer import LayerSpec

PRECISIONS = ("fp32", "fp16", "int8")
BYTES_PER_ELEMENT = {"fp32": 4, "fp16": 2, "int8": 1}
# kernel classes: what a framework launches; host dispatch and fixed GPU time are per class
KERNEL_CLASSES = ("conv", "pwconv", "dwconv", "gemm", "batchnorm", "eltwise", "pool", "view", "copy", "transpose")
# launched by a library inside another op's call: no framework dispatch of their own
NO_DISPATCH_CLASSES = ("transpose",)
MAC_CLASSES = ("conv", "pwconv", "dwconv", "gemm")
VIEW_OPS = ("flatten", "reshape", "identity", "dropout")
COPY_OPS = ("concat", "transpose", "slice", "pad")
EPILOGUE_OPS = ("gelu",)  # fused by a serving engine into the epilogue of the GEMM right before
TILES = ((128, 128),)  # output tiles (rows x columns) a GEMM or convolution kernel may use
SPLIT_K_MIN = 256  # a split-K slice keeps at least this many reduction elements
SPLIT_K_MAX = 4  # and the reduction is split at most this many ways
# a serving engine (TensorRT) times several tactics per layer when it builds the engine and keeps the best:
# narrower tiles for layers with few output channels, deeper split-K for batch-1 layers with few tiles
SERVING_TILES = ((256, 128), (128, 128), (128, 64), (64, 64))
SERVING_SPLIT_K_MAX = 16
MMA_K_STEP = {"tf32": 8, "fp16": 16, "int8": 32, "fp32": 1}
GEMV_MAX_ROWS = 16  # a GEMM with fewer rows (or columns) than this runs as a matrix-vector kernel
EFFICIENCY_KEYS = ("none", "simt", "gemm", "tf32", "fp16", "int8", "gemv")


def precision_of(weight_bits: int, activation_bits: int) -> str:
    """32 bits -> fp32 (TF32 convolutions), 16 -> fp16, 8 or fewer -> int8 (the wider of the two decides)."""
    bits = max(int(weight_bits), int(activation_bits))
    if bits > 16:
        return "fp32"
    if bits > 8:
        return "fp16"
    return "int8"


@dataclass
class KernelTable:
    """The kernels of a layer sequence, as parallel arrays (one entry per kernel)."""

    layer: np.ndarray  # index of the layer the kernel belongs to
    kernel_class: list[str]
    precision: list[str]
    flops: np.ndarray
    bytes: np.ndarray
    rate_flops: np.ndarray  # achievable rate x utilisation (efficiency applied later), FLOP/s
    math: list[str]  # "tf32", "fp16", "int8", "fp32" (tensor-core or strict), "simt", "none"
    peak_flops: np.ndarray  # datasheet peak of the kernel's math, for energy
    count_layers: int = 0
    serving: bool = False  # built for a serving engine (fused epilogues): its calibration applies
    containers: np.ndarray | None = None  # module containers whose call starts at this kernel (eager)
    nested: np.ndarray | None = None  # 1 where the kernel's module sits inside a block, not a top-level stage

    def __post_init__(self) -> None:
        # integer codes, so that evaluating many calibrations (a fit) is a few numpy gathers
        self.class_code = np.array([KERNEL_CLASSES.index(c) for c in self.kernel_class], dtype=int)
        self.precision_code = np.array([PRECISIONS.index(p) for p in self.precision], dtype=int)
        self.efficiency_code = np.array([EFFICIENCY_KEYS.index(_efficiency_key(m, c))
                                         for m, c in zip(self.math, self.kernel_class)], dtype=int)


def kernel_table(layers: Sequence[LayerSpec], precisions: Sequence[str], *, fuse: bool, sm_count: int,
                 achievable_flops: Mapping[str, float], peak_flops: Mapping[str, float]) -> KernelTable:
    """The kernels launched for `layers` at `precisions` on a GPU of `sm_count` SMs whose arithmetic reaches
    `achievable_flops` (datasheet `peak_flops`), FLOP/s by math kind: with `fuse` (a serving engine) one per
    layer; without (a framework: eager PyTorch or a CUDA graph captured from it) one more per fused op, and
    NCHW<->NHWC transposes around half-precision and int8 convolutions."""
    index: list[int] = []
    classes: list[str] = []
    precs: list[str] = []
    flops: list[float] = []
    nbytes: list[float] = []
    rates: list[float] = []
    maths: list[str] = []
    peaks: list[float] = []
    attention = _fused_attention(layers, precisions) if fuse else {}
    for i, layer in enumerate(layers):
        precision = precisions[i]
        element = BYTES_PER_ELEMENT[precision]
        op = layer.op
        kernel_class = _kernel_class(layer, op)
        steps = layer.sequential_steps
        # a recurrent layer runs one GEMM per step, each waiting for the previous step's hidden state
        step = layer if steps == 1 else replace(layer, in_height=layer.in_height // steps,
                                                out_height=layer.out_height // steps, sequential_steps=1)
        math_kind = math_of(kernel_class, precision, step, achievable_flops)
        f, b, util = _work(step, kernel_class, element, sm_count, MMA_K_STEP.get(math_kind, 1), serving=fuse)
        rate, peak = _rate(math_kind, achievable_flops, peak_flops)
        entries = [(kernel_class, f, b, rate * util, math_kind, peak)] * steps
        if fuse and kernel_class == "eltwise" and op in ("add", "mul", "sub") and layer.num_inputs > 1:
            # a serving engine runs a residual add in the epilogue of the kernel that produces one of its
            # inputs: no kernel of its own, only the other inputs read by that epilogue
            other_bytes = (layer.num_inputs - 1) * layer.output_elements * element
            entries = [("view", 0.0, float(other_bytes), 1.0, "none", 1.0)]
        if fuse and op in EPILOGUE_OPS and i > 0 and layers[i - 1].is_mac_layer:
            # a serving engine applies a GELU to the GEMM's output tile before storing it (an assumption:
            # TensorRT's GEMM+GELU fusion; the layer must follow its producer in the sequence)
            entries = [("view", 0.0, 0.0, 1.0, "none", 1.0)]
        role, partner = attention.get(i, ("", i))
        if role == "scores":  # the fused attention kernel: both GEMMs' work, Q, K, V read and O written once
            context = layers[partner]
            f2, _, util2 = _work(context, "gemm", element, sm_count, MMA_K_STEP.get(math_kind, 1), serving=True)
            seconds = f / (rate * util) + f2 / (rate * util2)
            moved = (layer.input_elements + layer.operand_elements + context.operand_elements
                     + context.output_elements) * element
            entries = [(kernel_class, f + f2, float(moved), (f + f2) / seconds, math_kind, peak)]
        elif role == "context" or (role == "inner" and entries[0][0] != "view"):
            entries = [("view", 0.0, 0.0, 1.0, "none", 1.0)]  # inside the fused kernel: on chip
        extra_ops = [_fused_class(o) for o in layer.fused_ops]
        if not fuse:
            out_bytes = layer.output_elements * element
            if kernel_class in ("conv", "pwconv") and math_kind in ("fp16", "int8"):
                # framework tensors are NCHW, half-precision tensor-core kernels NHWC: cuDNN transposes
                # the input and the output around the convolution (a serving engine keeps NHWC)
                entries.insert(0, ("transpose", 0.0, 2.0 * layer.input_elements * element, 1.0, "none", 1.0))
                entries.insert(2, ("transpose", 0.0, 2.0 * out_bytes, 1.0, "none", 1.0))
            for extra_class in extra_ops:
                if extra_class == "view":
                    entries.append(("view", 0.0, 0.0, 1.0, "none", 1.0))
                else:
                    reads = 2 if extra_class == "add" else 1
                    entries.append(("eltwise" if extra_class == "add" else extra_class, 0.0,
                                    (reads + 1) * out_bytes, 1.0, "none", 1.0))
        for kernel_class_, f_, b_, r_, m_, p_ in entries:
            index.append(i)
            classes.append(kernel_class_)
            precs.append(precision)
            flops.append(f_)
            nbytes.append(b_)
            rates.append(r_)
            maths.append(m_)
            peaks.append(p_)
    return KernelTable(np.array(index, dtype=int), classes, precs, np.array(flops, dtype=float),
                       np.array(nbytes, dtype=float), np.array(rates, dtype=float), maths,
                       np.array(peaks, dtype=float), len(layers), bool(fuse),
                       _containers_opened([layer.name for layer in layers], index),
                       _nested([layer.name for layer in layers], index))


def _fused_attention(layers: Sequence[LayerSpec], precisions: Sequence[str]) -> dict[int, tuple[str, int]]:
    """Attention a serving engine runs as one fused kernel (TensorRT's fused multi-head attention, flash
    attention): a matmul of two activations (QK^T), element-wise layers and views (scale, bias, mask), a
    softmax, views, and a second matmul of two activations (AV), one after another in the sequence, at one
    precision, both large enough for tensor cores. The kernel reads the qkv projection's packed output and
    writes the heads merged, so the data layers right before QK^T (splitting heads: transposes, q/k/v
    gathers) and right after AV (merging them) move nothing either. Maps the scores' index to ("scores",
    context index), the layers absorbed to ("inner", scores index) and the context's to ("context", scores
    index)."""
    def activation_matmul(i: int) -> bool:
        layer = layers[i]
        return (layer.kind == "gemm" and not layer.has_weights and layer.sequential_steps == 1
                and min(layer.matrix_rows, layer.gemm_n) >= GEMV_MAX_ROWS)

    def view(i: int) -> bool:
        return layers[i].kind == "data" and _kernel_class(layers[i], layers[i].op) == "view"

    out: dict[int, tuple[str, int]] = {}
    n = len(layers)
    for i in range(n):
        if not activation_matmul(i) or i in out:
            continue
        j = i + 1
        while j < n and (view(j) or (layers[j].kind == "eltwise" and layers[j].op != "softmax")):
            j += 1
        if j == n or layers[j].op != "softmax":
            continue
        k = j + 1
        while k < n and view(k):
            k += 1
        if k < n and activation_matmul(k) and precisions[i] == precisions[k]:
            out[i] = ("scores", k)
            out.update({m: ("inner", i) for m in range(i + 1, k)})
            out[k] = ("context", i)
            before, after = i - 1, k + 1
            while before >= 0 and layers[before].kind == "data" and before not in out:
                out[before] = ("inner", i)
                before -= 1
            while after < n and layers[after].kind == "data":
                out[after] = ("inner", i)
                after += 1
    return out


def math_of(kernel_class: str, precision: str, layer: LayerSpec | None,
            achievable_flops: Mapping[str, float]) -> str:
    """Which arithmetic a kernel runs: cuDNN convs use TF32 for fp32 where the GPU has it, matmuls
    strict fp32; depthwise convolutions and matrix-vector products run on CUDA cores ("simt")."""
    if kernel_class not in MAC_CLASSES:
        return "none"
    if kernel_class == "dwconv" or (layer is not None and min(layer.matrix_rows, layer.gemm_n) < GEMV_MAX_ROWS):
        return "simt"
    if kernel_class in ("conv", "pwconv") and precision == "fp32":
        return "tf32" if "tf32" in achievable_flops else "fp32"
    return precision if precision in achievable_flops else "fp16"


def _rate(math_kind: str, achievable_flops: Mapping[str, float],
          peak_flops: Mapping[str, float]) -> tuple[float, float]:
    """(achievable, datasheet peak) FLOP/s of an arithmetic; SIMT runs at the fp32 rate."""
    if math_kind == "none":
        return 1.0, 1.0
    key = "fp32" if math_kind == "simt" else math_kind
    return achievable_flops[key], peak_flops[key]


def _efficiency_key(math_kind: str, kernel_class: str) -> str:
    """Which fitted efficiency applies. Matrix-vector products (batch 1 matmuls) are bound by memory and take
    the CUDA-core peak as it is; strict fp32 convolutions (no TF32) count as dense CUDA-core work like sgemm."""
    if math_kind == "simt" and kernel_class != "dwconv":
        return "gemv"
    if math_kind in ("none", "simt"):
        return math_kind
    if kernel_class == "gemm" or math_kind == "fp32":
        return "gemm"
    return math_kind


def _containers_opened(names: Sequence[str], kernel_layer: Sequence[int]) -> np.ndarray:
    """Per kernel, how many module containers open at it in eager mode: a layer named by its module path
    (`layer1.0.conv1`) runs inside the containers `layer1` and `layer1.0`; each is called once, at the
    first layer of the sequence that lies inside it. Only the first kernel of a layer counts them."""
    seen: set[str] = set()
    per_layer = []
    for name in names:
        parts = str(name).split("#")[0].split(".")
        opened = 0
        for depth in range(1, len(parts)):
            prefix = ".".join(parts[:depth])
            if prefix not in seen:
                seen.add(prefix)
                opened += 1
        per_layer.append(opened)
    out = np.zeros(len(kernel_layer))
    done: set[int] = set()
    for k, layer in enumerate(kernel_layer):
        if layer not in done:
            done.add(layer)
            out[k] = per_layer[layer]
    return out


def _nested(names: Sequence[str], kernel_layer: Sequence[int]) -> np.ndarray:
    """Per kernel, 1 when its layer's module path puts it inside a block (`layer1.0.conv1`,
    `features.2.conv.0.0`), 0 for a top-level stage or a direct child of a top-level Sequential (`fc`,
    `features.0`, `classifier.3`)."""
    depth = np.array([str(name).split("#")[0].count(".") for name in names])
    return (depth[np.asarray(kernel_layer, dtype=int)] >= 2).astype(float) if len(names) else np.zeros(0)


def _kernel_class(layer: LayerSpec, op: str | None) -> str:
    if layer.kind == "conv":
        if layer.groups > 1 and layer.gemm_n <= 4 and layer.in_channels // layer.groups <= 4:
            return "dwconv"
        return "pwconv" if layer.kernel_height == layer.kernel_width == 1 else "conv"
    if layer.kind == "gemm":
        return "gemm"
    if layer.kind == "pool":
        return "pool"
    if layer.kind == "data":
        if layer.copies or op in COPY_OPS or (op is None and layer.num_inputs > 1):
            return "copy"
        return "view"
    if op == "batchnorm":
        return "batchnorm"
    return "eltwise"


def _fused_class(op: str) -> str:
    op = str(op)
    if op == "batchnorm":
        return "batchnorm"
    if op in VIEW_OPS:
        return "view"
    if op in ("add", "mul", "sub"):
        return "add"
    return "eltwise"


def _work(layer: LayerSpec, kernel_class: str, element_bytes: int, sm_count: int,
          k_step: int, serving: bool = False) -> tuple[float, float, float]:
    """(flops, bytes moved to and from memory, utilisation of the GPU) of a layer's own kernel."""
    in_bytes = layer.input_elements * element_bytes
    out_bytes = layer.output_elements * element_bytes
    if kernel_class in MAC_CLASSES:
        flops = 2.0 * layer.macs
        nbytes = in_bytes + out_bytes + layer.operand_elements * element_bytes  # weights or a 2nd activation
        if kernel_class == "dwconv":
            # a direct depthwise kernel (PyTorch's NCHW one) loads every output's kh x kw window with no
            # on-chip reuse: those loads, not the tensors' sizes, bound it
            window_loads = layer.output_elements * layer.kernel_height * layer.kernel_width * element_bytes
            return flops, window_loads + out_bytes + layer.weight_elements * element_bytes, 1.0
        if min(layer.matrix_rows, layer.gemm_n) < GEMV_MAX_ROWS:
            return flops, nbytes, 1.0  # depthwise or matrix-vector: CUDA cores, bound by memory
        return flops, nbytes, _tile_utilisation(layer.matrix_rows, layer.gemm_n, layer.gemm_k, layer.matrices,
                                                sm_count, k_step, split_k=True, serving=serving)
    if kernel_class == "view":
        return 0.0, 0.0, 1.0
    if kernel_class == "batchnorm":
        return 0.0, in_bytes + out_bytes + 2 * layer.out_channels * element_bytes, 1.0
    if kernel_class == "copy":  # reads what it writes (a single-input copy), or all its inputs (a concat)
        return 0.0, layer.read_elements * element_bytes + out_bytes, 1.0
    # eltwise, pool: read the inputs, write the output; softmax and layernorm read theirs twice in a framework,
    # once in a serving engine (a row held on chip)
    return 0.0, in_bytes * (1 if serving else layer.input_reads) + out_bytes, 1.0


def _tile_utilisation(m: int, n: int, k: int, groups: int, sm_count: int, k_step: int,
                      split_k: bool = False, serving: bool = False) -> float:
    """Share of the GPU's MMA throughput a GEMM of m x n x k (per group) keeps busy.

    One thread block per output tile per SM at a time, the tile being the one of TILES that serves this
    shape best. A block runs the reduction of its tile serially, so a layer with fewer tiles than SMs (small
    spatial size, batch 1) takes as long as its longest block: time = waves x tile work / per-SM rate. With
    `split_k` the reduction may be split over idle SMs, at most SPLIT_K_MAX ways and in slices of at least
    SPLIT_K_MIN elements (the H200 profile's deep batch-1 convolutions show that cuDNN splits little).
    Utilisation = useful work / (waves x SMs x tile work), times the padding of k to the MMA step.
    A serving engine (`serving`) chooses among SERVING_TILES and splits up to SERVING_SPLIT_K_MAX ways.
    """
    best = 0.0
    split_max = SERVING_SPLIT_K_MAX if serving else SPLIT_K_MAX
    for tile_m, tile_n in (SERVING_TILES if serving else TILES):
        tiles = math.ceil(m / tile_m) * math.ceil(n / tile_n) * groups
        split = 1
        if split_k and tiles < sm_count:
            split = max(1, min(sm_count // tiles, k // SPLIT_K_MIN, split_max))
        waves = math.ceil(tiles * split / sm_count)
        best = max(best, m * n * groups * split / (waves * sm_count * tile_m * tile_n))
    k_fill = k / (math.ceil(k / k_step) * k_step)
    return best * k_fill
