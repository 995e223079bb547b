"""Costs of dilated convolutions and transformer ops on every preset (issue 21; docs/validation.md).

    .venv/bin/python benchmarks/op_costs.py snapshot OUT.json     # every zoo model on every preset, per layer
    .venv/bin/python benchmarks/op_costs.py compare A.json B.json # how many values differ between two snapshots
    .venv/bin/python benchmarks/op_costs.py dilated MODEL.onnx... # whole-model latency: dilation vs the old spec
    .venv/bin/python benchmarks/op_costs.py vit                    # ViT-B/16 built in the IR: latency by op

`snapshot` on two commits and `compare` show that a change leaves the zoo's numbers alone (per-layer latency,
energy and DRAM bytes at each preset's default bits, graph mode and, for GPUs, eager). `dilated` costs an
ONNX model (e.g. torchvision's deeplabv3_mobilenet_v3_large exported at 1x3x520x520) as it is and with each
dilated conv given its dilated window as a kernel, which is what the graph IR did before issue 21.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hardware_models.layer import LayerSpec  # noqa: E402
from hardware_models.registry import load_accelerator, preset_names  # noqa: E402
from simulator.graph import zoo  # noqa: E402
from simulator.graph.ir import Graph, Layer  # noqa: E402


def snapshot(out: str) -> None:
    rows = {}
    for preset in preset_names():
        accelerator = load_accelerator(preset)
        bits = accelerator.default_bits
        modes = [(preset, accelerator)]
        if accelerator.has_modes:
            modes.append((f"{preset}:eager", accelerator.with_mode("eager")))
        for label, model in modes:
            for name in zoo.names():
                layers, total = model.network_cost(zoo.build(name).layer_specs(), bits, bits)
                rows[f"{label}/{name}"] = [[c.latency_s, c.energy_j, c.dram_bytes] for c in [*layers, total]]
    Path(out).write_text(json.dumps(rows))
    print(f"{len(rows)} model/preset runs -> {out}")


def compare(first: str, second: str) -> None:
    a, b = json.loads(Path(first).read_text()), json.loads(Path(second).read_text())
    differing = [(key, i) for key in a for i, (x, y) in enumerate(zip(a[key], b[key])) if x != y]
    print(f"{len(a)} runs compared, {len(differing)} rows differ{': ' + str(differing[:10]) if differing else ''}")


def _as_before(spec: LayerSpec) -> LayerSpec:
    """The LayerSpec the IR gave a dilated conv before issue 21: its dilated window as the kernel."""
    if spec.kind != "conv" or spec.dilation == (1, 1):
        return spec
    return replace(spec, kernel_height=spec.dilated_kernel_height, kernel_width=spec.dilated_kernel_width,
                   dilation=(1, 1))


def dilated(paths: list[str]) -> None:
    from simulator.graph.onnx_import import import_onnx
    for path in paths:
        specs = import_onnx(path).layer_specs()
        count = sum(1 for s in specs if s.kind == "conv" and s.dilation != (1, 1))
        print(f"{path}: {len(specs)} layers, {count} dilated convs, {sum(s.macs for s in specs) / 1e9:.2f} GMACs")
        for preset in preset_names():
            accelerator = load_accelerator(preset)
            bits = accelerator.default_bits
            now = accelerator.network_cost(specs, bits, bits)[1].latency_s
            before = accelerator.network_cost([_as_before(s) for s in specs], bits, bits)[1].latency_s
            print(f"  {preset:18s} now {now * 1e3:10.3f} ms  before {before * 1e3:10.3f} ms  "
                  f"before/now {before / now:7.2f}")


def vit_b_16() -> Graph:
    """ViT-B/16 as an importer gives it: per block LN, qkv linear, head split (reshape, transpose, gather),
    QK^T and AV as batched matmuls over the 12 heads, softmax, head merge, projection, MLP with GELU."""
    tokens, width, heads, hidden = 197, 768, 12, 3072
    layers: list[Layer] = []

    def add(name: str, op: str, inputs: list[str], shape: tuple[int, ...], weights: int = 0, macs: int = 0,
            **attrs: object) -> str:
        layers.append(Layer(name, op, tuple(inputs), shape, params=weights, weight_elements=weights, macs=macs,
                            attrs=attrs))
        return name

    x = add("conv_proj", "conv", ["x"], (1, width, 14, 14), width * 3 * 256, 196 * width * 3 * 256,
            kernel=(16, 16), stride=(16, 16))
    x = add("flatten", "reshape", [x], (1, width, 196))
    x = add("tokens", "transpose", [x], (1, 196, width))
    x = add("class_token", "concat", [x], (1, tokens, width))
    x = add("pos_embedding", "add", [x], (1, tokens, width))
    for i in range(12):
        p = f"encoder.layers.{i}"
        h = add(f"{p}.ln_1", "layernorm", [x], (1, tokens, width))
        qkv = add(f"{p}.qkv", "linear", [h], (1, tokens, 3 * width), 3 * width * width, tokens * 3 * width * width)
        split = add(f"{p}.heads", "reshape", [qkv], (1, tokens, 3, heads, 64))
        split = add(f"{p}.heads_t", "transpose", [split], (3, 1, heads, tokens, 64))
        q, k, v = (add(f"{p}.{n}", "gather", [split], (1, heads, tokens, 64)) for n in "qkv")
        k = add(f"{p}.k_t", "transpose", [k], (1, heads, 64, tokens))
        s = add(f"{p}.qk", "matmul", [q, k], (1, heads, tokens, tokens), macs=heads * tokens * tokens * 64,
                batch_matrices=heads)
        s = add(f"{p}.softmax", "softmax", [s], (1, heads, tokens, tokens), axis=-1)
        a = add(f"{p}.av", "matmul", [s, v], (1, heads, tokens, 64), macs=heads * tokens * tokens * 64,
                batch_matrices=heads)
        a = add(f"{p}.merge_t", "transpose", [a], (1, tokens, heads, 64))
        a = add(f"{p}.merge", "reshape", [a], (1, tokens, width))
        a = add(f"{p}.out_proj", "linear", [a], (1, tokens, width), width * width, tokens * width * width)
        x = add(f"{p}.add_1", "add", [x, a], (1, tokens, width))
        h = add(f"{p}.ln_2", "layernorm", [x], (1, tokens, width))
        h = add(f"{p}.mlp.0", "linear", [h], (1, tokens, hidden), width * hidden, tokens * width * hidden)
        h = add(f"{p}.mlp.1", "gelu", [h], (1, tokens, hidden))
        h = add(f"{p}.mlp.3", "linear", [h], (1, tokens, width), width * hidden, tokens * width * hidden)
        x = add(f"{p}.add_2", "add", [x, h], (1, tokens, width))
    x = add("encoder.ln", "layernorm", [x], (1, tokens, width))
    x = add("class_token_out", "gather", [x], (1, width))
    add("heads.head", "linear", [x], (1, 1000), width * 1000, width * 1000)
    return Graph("vit_b_16", {"x": (1, 3, 224, 224)}, layers)


def vit() -> None:
    graph = vit_b_16()
    specs = graph.layer_specs()
    print(f"{graph}; LayerSpec MACs {sum(s.macs for s in specs) / 1e9:.3f} G (torchvision: 17.56 GFLOPS)")
    shown = ("linear", "matmul", "softmax", "layernorm", "gelu", "transpose", "gather")
    for preset in preset_names():
        accelerator = load_accelerator(preset)
        bits = accelerator.default_bits
        rows, total = accelerator.network_cost(specs, bits, bits)
        share: dict[str, float] = {}
        for spec, row in zip(specs, rows):
            key = spec.op if spec.op in shown else "other"
            share[key] = share.get(key, 0.0) + row.latency_s / total.latency_s
        print(f"  {preset:18s} {bits:2d}-bit {total.latency_s * 1e3:9.3f} ms  "
              + "  ".join(f"{key} {value:5.1%}" for key, value in sorted(share.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("snapshot").add_argument("out")
    compared = sub.add_parser("compare")
    compared.add_argument("first")
    compared.add_argument("second")
    sub.add_parser("dilated").add_argument("models", nargs="+")
    sub.add_parser("vit")
    args = parser.parse_args()
    if args.command == "snapshot":
        snapshot(args.out)
    elif args.command == "compare":
        compare(args.first, args.second)
    elif args.command == "dilated":
        dilated(args.models)
    else:
        vit()


if __name__ == "__main__":
    main()
