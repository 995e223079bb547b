"""Regenerate tests/reference/torchvision_layers.json from torchvision itself (run once, not in CI).

    pip install torch==2.14.1 torchvision==0.29.1   # a separate environment; CI never installs torch
    python tests/reference/make_torchvision_reference.py

Every leaf module is hooked and the model run on a zero 1x3x224x224 input in eval mode: the hooks fire in
execution order, which is the order autosplit must list layers in. A module run twice gets `#2`. MACs are
computed here from each module's own attributes and the output shape (independently of autosplit).

The transformers' attention modules (nn.MultiheadAttention, Swin's ShiftedWindowAttention) call their
children's weights functionally, so their children never fire: each is hooked whole as one "composite" row
(its parameters recursively, its MACs from torch.utils.flop_counter, the attention matmuls included, with the
MHA fast path off). A parameter owned by neither a leaf nor a composite (ViT's class token and position
embedding, ConvNeXt's layer scale) gets a "Parameter" row named after it. Every model's total MACs must equal
the flop counter's count of the whole forward.
"""
from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import torch
import torchvision
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode
from torchvision import models

MODELS = {
    "resnet18": lambda: models.resnet18(),
    "resnet50": lambda: models.resnet50(),
    "resnext50_32x4d": lambda: models.resnext50_32x4d(),
    "mobilenet_v2": lambda: models.mobilenet_v2(),
    "mnasnet1_0": lambda: models.mnasnet1_0(),
    "googlenet": lambda: models.googlenet(aux_logits=False, init_weights=False),
    "vgg16": lambda: models.vgg16(),
    "efficientnet_b0": lambda: models.efficientnet_b0(),
    "vit_b_16": lambda: models.vit_b_16(),
    "swin_t": lambda: models.swin_t(),
    "convnext_tiny": lambda: models.convnext_tiny(),
}
COMPOSITE = (torch.nn.MultiheadAttention, models.swin_transformer.ShiftedWindowAttention)
# not in the zoo: references for the ONNX importer's fixtures (tests/simulator/graph/test_onnx_import.py),
# in their own file
ONNX_ONLY = {
    "shufflenet_v2_x1_0": lambda: models.shufflenet_v2_x1_0(),
}


def macs_of(module: torch.nn.Module, out: torch.Tensor) -> int:
    if isinstance(module, torch.nn.Conv2d):
        kh, kw = module.kernel_size
        return out.numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, torch.nn.Linear):
        return out.numel() * module.in_features
    return 0


def trace(model: torch.nn.Module) -> tuple[list[dict], int]:
    """The hooked modules' rows in execution order, and the flop counter's MACs of the whole forward."""
    rows: list[dict] = []
    uses: dict[str, int] = {}
    composites = [name for name, module in model.named_modules() if isinstance(module, COMPOSITE)]

    def hook(name: str, composite: bool):
        def record(module, inputs, out):
            out = out[0] if isinstance(out, tuple) else out
            uses[name] = uses.get(name, 0) + 1
            rows.append({
                "name": name if uses[name] == 1 else f"{name}#{uses[name]}",
                "type": type(module).__name__,
                "output_shape": list(out.shape),
                "params": sum(p.numel() for p in module.parameters(recurse=composite)) if uses[name] == 1 else 0,
                "macs": macs_of(module, out),
            } | ({"composite": True} if composite else {}))
        return record

    for name, module in model.named_modules():
        inside = any(name.startswith(f"{c}.") for c in composites)
        if name in composites or (name and not list(module.children()) and not inside):
            module.register_forward_hook(hook(name, name in composites))
    # the MHA fast path's fused kernel and the CPU's fused attention are invisible to the counter: plain matmuls
    torch.backends.mha.set_fastpath_enabled(False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, 3, 224, 224))
    counts = counter.get_flop_counts()
    root = type(model).__name__
    for row in rows:
        if row.get("composite"):  # flop counter: 2 FLOPs per MAC
            row["macs"] = sum(counts[f"{root}.{row['name']}"].values()) // 2
    hooked = {r["name"] for r in rows}
    for name, module in model.named_modules():
        if name not in hooked and not any(name.startswith(f"{c}.") for c in composites):
            for param_name, p in module.named_parameters(recurse=False):
                full = f"{name}.{param_name}" if name else param_name
                rows.append({"name": full, "type": "Parameter", "output_shape": list(p.shape), "params": p.numel(),
                             "macs": 0})
    return rows, counter.get_total_flops() // 2


def main() -> None:
    for models_, file_name in ((MODELS, "torchvision_layers.json"), (ONNX_ONLY, "torchvision_onnx_layers.json")):
        out = {"versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                            "python": platform.python_version()},
               "input_shape": [1, 3, 224, 224], "models": {}}
        for name, make in models_.items():
            model = make()
            rows, counted = trace(model)
            macs = sum(r["macs"] for r in rows)
            if macs != counted:
                raise SystemExit(f"{name}: the rows' MACs {macs:,} differ from the flop counter's {counted:,}")
            out["models"][name] = {"params": sum(p.numel() for p in model.parameters()), "macs": macs,
                                   "layers": rows}
            print(f"{name:18s} params {out['models'][name]['params']:>12,} macs {out['models'][name]['macs']:>15,} "
                  f"modules {len(rows)}")
        path = Path(__file__).with_name(file_name)
        path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
        print(f"wrote {path} ({math.ceil(path.stat().st_size / 1024)} KiB)")


if __name__ == "__main__":
    main()
