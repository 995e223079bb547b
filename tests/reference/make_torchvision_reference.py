"""Regenerate tests/reference/torchvision_layers.json from torchvision itself (run once, not in CI).

    pip install torch==2.14.1 torchvision==0.29.1   # a separate environment; CI never installs torch
    python tests/reference/make_torchvision_reference.py

Every leaf module is hooked and the model run on a zero 1x3x224x224 input in eval mode: the hooks fire in
execution order, which is the order autosplit must list layers in. A module run twice gets `#2`. MACs are
computed here from each module's own attributes and the output shape (independently of autosplit).
"""
from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import torch
import torchvision
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
}
# not in the zoo: references for the ONNX importer's fixtures (tests/test_onnx_import.py), in their own file
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


def trace(model: torch.nn.Module) -> list[dict]:
    rows: list[dict] = []
    uses: dict[str, int] = {}

    def hook(name: str):
        def record(module, inputs, out):
            uses[name] = uses.get(name, 0) + 1
            rows.append({
                "name": name if uses[name] == 1 else f"{name}#{uses[name]}",
                "type": type(module).__name__,
                "output_shape": list(out.shape),
                "params": sum(p.numel() for p in module.parameters(recurse=False)) if uses[name] == 1 else 0,
                "macs": macs_of(module, out),
            })
        return record

    for name, module in model.named_modules():
        if name and not list(module.children()):
            module.register_forward_hook(hook(name))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 224, 224))
    return rows


def main() -> None:
    for models_, file_name in ((MODELS, "torchvision_layers.json"), (ONNX_ONLY, "torchvision_onnx_layers.json")):
        out = {"versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                            "python": platform.python_version()},
               "input_shape": [1, 3, 224, 224], "models": {}}
        for name, make in models_.items():
            model = make()
            rows = trace(model)
            out["models"][name] = {"params": sum(p.numel() for p in model.parameters()),
                                   "macs": sum(r["macs"] for r in rows), "layers": rows}
            print(f"{name:18s} params {out['models'][name]['params']:>12,} macs {out['models'][name]['macs']:>15,} "
                  f"modules {len(rows)}")
        path = Path(__file__).with_name(file_name)
        path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
        print(f"wrote {path} ({math.ceil(path.stat().st_size / 1024)} KiB)")


if __name__ == "__main__":
    main()
