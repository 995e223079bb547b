"""The ONNX import table (issue 21): every modern fixture (tests/fixtures/onnx/*.onnx.gz, both torch exporters)
imported, its MACs and parameters against torch's (reference.json), its layers and cuts and the import time;
then, for one exporter, `autosplit run` of a plan on an NPU edge and a GPU cloud (ethos_u55 + a100, 10 Mbit/s,
8 MB of edge memory, at most 1 point of accuracy drop, fp_accuracy 80 as the model's float accuracy), timed as
a user runs it (a fresh process), with the plan it chose.

    nice python benchmarks/onnx_import_table.py [--exporter dynamo] [--only vit_b_16 swin_t] [--no-plan]
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from simulator.graph import load_model
from simulator.graph.cuts import enumerate_cuts

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "onnx"


def plan_seconds(model: Path, folder: Path) -> tuple[float, str]:
    """Wall seconds of `autosplit run` on the NPU + GPU scenario, and the plan it chose (from summary.md)."""
    config = {"model": str(model), "edge": "ethos_u55", "cloud": "a100",
              "network": {"uplink": "10Mbps", "rtt": "20ms", "link": "tcp"},
              "constraints": {"edge_memory": "8MB", "max_accuracy_drop": 1.0},
              "accuracy": {"fp_accuracy": 80.0}, "search": {"methods": ["autosplit"]},
              "output": {"plot_formats": []}}
    path = folder / f"{model.stem}.yaml"
    path.write_text(yaml.safe_dump(config))
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "simulator.cli", "run", str(path), "--out", str(folder / model.stem),
                          "--force", "--no-progress"], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode:
        return seconds, "failed: " + (run.stderr.strip().splitlines() or ["?"])[-1]
    summary = (folder / model.stem / "summary.md").read_text()
    chosen = re.search(r"\*\*Fastest plan within the bounds: [\w-]+\*\*, ([^:]+): ([\d.]+) ms", summary)
    return seconds, f"{chosen.group(1)}, {chosen.group(2)} ms" if chosen else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exporter", default="dynamo", choices=["dynamo", "torchscript"],
                        help="the exporter whose fixtures are planned (default dynamo)")
    parser.add_argument("--only", nargs="*", help="model names (default: all of reference.json)")
    parser.add_argument("--no-plan", action="store_true", help="the import table only")
    args = parser.parse_args()
    reference = json.loads((FIXTURES / "reference.json").read_text())
    names = args.only or list(reference)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("| model | exporter | MACs ours | MACs torch | diff | params ours | params torch (in forward) | diff "
              "| layers | cuts | import s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name in names:
            torch_numbers = reference[name]
            for exporter in ("torchscript", "dynamo"):
                packed = FIXTURES / f"{name}.{exporter}.onnx.gz"
                if not packed.exists():
                    print(f"| {name} | {exporter} | no export | | | | | | | | |")
                    continue
                model = folder / packed.name.removesuffix(".gz")
                model.write_bytes(gzip.decompress(packed.read_bytes()))
                start = time.perf_counter()
                graph = load_model(str(model))
                seconds = time.perf_counter() - start
                macs, params = torch_numbers["macs"], torch_numbers["params_in_forward"]
                print(f"| {name} | {exporter} | {graph.macs:,} | {macs:,} | {(graph.macs / macs - 1) * 100:+.2f}% "
                      f"| {graph.params:,} | {params:,} | {(graph.params / params - 1) * 100:+.3f}% "
                      f"| {len(graph.layers)} | {len(enumerate_cuts(graph))} | {seconds:.1f} |", flush=True)
        if args.no_plan:
            return
        print(f"\n| model ({args.exporter}) | `autosplit run` s | chosen plan |\n|---|---:|---|")
        for name in names:
            model = folder / f"{name}.{args.exporter}.onnx"
            if model.exists():
                seconds, chosen = plan_seconds(model, folder)
                print(f"| {name} | {seconds:.1f} | {chosen} |", flush=True)


if __name__ == "__main__":
    main()
