"""The cloud GPU's modes (issue 14), a leaf module so that the CLI's choices do not load the GPU model.

execution: graph (one captured CUDA graph or TensorRT engine) or eager (PyTorch op by op, each kernel
launched by the host); fusion: serving (a TensorRT engine's fused kernels) or framework (PyTorch's kernels).
"""
from __future__ import annotations

from typing import Literal, get_args

Execution = Literal["graph", "eager"]
Fusion = Literal["serving", "framework"]
EXECUTION_MODES: tuple[Execution, ...] = get_args(Execution)
FUSION_MODES: tuple[Fusion, ...] = get_args(Fusion)
