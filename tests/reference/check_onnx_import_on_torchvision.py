"""Check the ONNX importer on more torchvision architectures than the committed fixtures (run by hand, not in CI).

    # 1. in an environment with torch + torchvision (see make_torchvision_reference.py):
    python tests/reference/check_onnx_import_on_torchvision.py export /tmp/archs resnet50 densenet121 ...
    # 2. in the project's environment:
    python tests/reference/check_onnx_import_on_torchvision.py compare /tmp/archs

Each model is exported with a dynamic batch dimension (TorchScript exporter, opset 17, weights kept) and its
conv/linear modules' names, output shapes and MACs are recorded from torchvision's forward hooks; `compare`
imports every exported file and prints whether autosplit's conv/linear layers agree, layer by layer.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def export(folder: Path, names: list[str]) -> None:
    import torch
    from torchvision import models

    sys.path.insert(0, str(Path(__file__).parent))
    from make_torchvision_reference import trace

    folder.mkdir(parents=True, exist_ok=True)
    reference = {}
    for name in names:
        model = getattr(models, name)().eval()
        rows = trace(model)
        torch.onnx.export(model, torch.zeros(1, 3, 224, 224), folder / f"{name}.onnx", dynamo=False,
                          opset_version=17, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        reference[name] = [(r["name"], list(r["output_shape"]), int(r["macs"]))
                           for r in rows if r["type"] in ("Conv2d", "Linear")]
    (folder / "reference.json").write_text(json.dumps(reference))


def compare(folder: Path) -> int:
    from simulator.graph import load_model

    reference = json.loads((folder / "reference.json").read_text())
    failures = 0
    for name, rows in reference.items():
        graph = load_model(str(folder / f"{name}.onnx"))
        ours = [[l.name, list(l.output_shape), l.macs] for l in graph.layers if l.op in ("conv", "linear")]
        same = ours == [list(r) for r in rows]
        failures += not same
        print(f"{name:20s} MACs {sum(r[2] for r in ours):>14,} torchvision {sum(r[2] for r in rows):>14,} "
              f"conv/linear layers {len(ours)}/{len(rows)}: {'equal' if same else 'DIFFERENT'}")
    return 1 if failures else 0


if __name__ == "__main__":
    if sys.argv[1] == "export":
        export(Path(sys.argv[2]), sys.argv[3:])
    else:
        sys.exit(compare(Path(sys.argv[2])))
