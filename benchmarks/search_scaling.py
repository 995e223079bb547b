"""How Auto-Split and the exact front scale with the network: CPU seconds and peak memory against layers, cuts
and crossing tensors, on big ONNX networks (issue 27).

Each (network, setup, method) runs in a fresh process (`plan`'s own path: flags -> scenario -> cost tables ->
search), which reports the CPU seconds of the ONNX import and cost tables and of the search
(`time.process_time`) and the process's peak resident memory (all of it: import, tables and search). Two setups:
- `brief`: the issue's command, `--edge ethos_u55 --cloud a100 --uplink 10Mbps --edge-memory 8MB
  --max-accuracy-drop 1 --fp-accuracy 80` (the edge offers 8 and 16 bits: two bit-widths per layer);
- `eyeriss`: the paper's edge (seven bit-widths per layer, `--edge eyeriss --cloud tpu_v1 --uplink 3Mbps
  --rtt 20ms --edge-memory 4MiB`), the harder search.
The networks are the gzipped torchvision exports under tests/fixtures/onnx (DenseNet-121, EfficientNet-V2-S,
ViT-B/16, Swin-T) plus ResNet-152 when given (`--resnet152 FILE.onnx`; export one with torchvision:
`torch.onnx.export(torchvision.models.resnet152().eval(), torch.randn(1, 3, 224, 224), FILE, dynamo=False)`).
Last, the exponent of a power law fitted to search CPU seconds against layers and against cuts x crossing
tensors (least squares on logs, over the networks of each setup and method).

    python benchmarks/search_scaling.py [--resnet152 FILE.onnx] [--setups brief,eyeriss] [--methods autosplit,exact]
"""
from __future__ import annotations

import argparse
import gzip
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "onnx"
NETWORKS = {"densenet121": "densenet121.dynamo.onnx.gz", "efficientnet_v2_s": "efficientnet_v2_s.dynamo.onnx.gz",
            "vit_b_16": "vit_b_16.torchscript.onnx.gz", "swin_t": "swin_t.torchscript.onnx.gz"}
SETUPS = {
    "brief": ["--edge", "ethos_u55", "--cloud", "a100", "--uplink", "10Mbps", "--edge-memory", "8MB",
              "--max-accuracy-drop", "1", "--fp-accuracy", "80"],
    "eyeriss": ["--edge", "eyeriss", "--cloud", "tpu_v1", "--uplink", "3Mbps", "--rtt", "20ms", "--edge-memory",
                "4MiB", "--max-accuracy-drop", "1", "--fp-accuracy", "80"],
}


def measure(model: str, method: str, flags: list[str]) -> dict:
    """In this process: the scenario of `plan MODEL --method METHOD FLAGS`, its cost tables and the search."""
    from simulator.cli import build_parser
    from simulator.cli._plan import _CORE_FLAGS, experiment_from_flags
    from simulator.experiment.scenario import build_scenario
    from simulator.search import run_method

    args = build_parser().parse_args(["plan", model, "--method", method, *flags])
    start = time.process_time()
    config = experiment_from_flags(args)
    scenario = build_scenario(config, names=_CORE_FLAGS)
    tables = scenario.tables
    built = time.process_time()
    result = run_method(method, scenario, seed=config.seed)
    crossing = tables.crossing.sum(1)
    return {"layers": tables.layers, "cuts": tables.layers + 1, "crossing_total": int(crossing.sum()),
            "crossing_max": int(crossing.max()), "tables_cpu_s": built - start,
            "search_cpu_s": time.process_time() - built,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "latency_ms": None if result.best is None else result.best["latency_s"] * 1e3,
            "plans": result.evaluations, "states": result.info.get("states_kept"),
            "epsilon": result.info.get("epsilon")}


def fit_exponent(x: list[float], y: list[float]) -> float:
    """The exponent k of y ~ c x^k, least squares on logs."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resnet152", help="a ResNet-152 .onnx export to include")
    parser.add_argument("--setups", default="brief,eyeriss")
    parser.add_argument("--methods", default="autosplit,exact")
    parser.add_argument("--networks", default=",".join(NETWORKS))
    if sys.argv[1:2] == ["--child"]:  # one measurement, in a process of its own: MODEL METHOD PLAN-FLAGS...
        model, method, *flags = sys.argv[2:]
        print(json.dumps(measure(model, method, flags)))
        return
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        models = {}
        for name in args.networks.split(","):
            path = Path(folder) / NETWORKS[name].removesuffix(".gz")
            with gzip.open(FIXTURES / NETWORKS[name]) as source, open(path, "wb") as target:
                shutil.copyfileobj(source, target)
            models[name] = str(path)
        if args.resnet152:
            models["resnet152"] = args.resnet152
        print(f"{'setup':8} {'network':18} {'method':9} {'layers':>6} {'cuts':>5} {'crossing':>8} {'max cross':>9} "
              f"{'tables s':>8} {'search s':>8} {'peak MB':>8} {'plans':>8} {'states':>9} {'eps':>5} "
              f"{'latency ms':>10}", flush=True)
        rows = []
        for setup in args.setups.split(","):
            for name, model in models.items():
                for method in args.methods.split(","):
                    out = subprocess.run([sys.executable, __file__, "--child", model, method, *SETUPS[setup]],
                                         capture_output=True, text=True, check=True).stdout
                    r = json.loads(out.strip().splitlines()[-1])
                    rows.append((setup, name, method, r))
                    latency = "-" if r["latency_ms"] is None else f"{r['latency_ms']:.1f}"
                    print(f"{setup:8} {name:18} {method:9} {r['layers']:6d} {r['cuts']:5d} {r['crossing_total']:8d} "
                          f"{r['crossing_max']:9d} {r['tables_cpu_s']:8.2f} {r['search_cpu_s']:8.2f} "
                          f"{r['peak_mb']:8.0f} {r['plans']:8d} "
                          f"{r['states'] if r['states'] is not None else '-':>9} "
                          f"{r['epsilon'] if r['epsilon'] is not None else '-':>5} {latency:>10}", flush=True)
    print("\nPower-law exponent of the search's CPU seconds against")
    for setup in args.setups.split(","):
        for method in args.methods.split(","):
            mine = [r for s, _, m, r in rows if s == setup and m == method]
            if len(mine) < 3:
                continue
            cpu = [r["search_cpu_s"] for r in mine]
            work = ([r["states"] for r in mine] if mine[0]["states"] is not None
                    else [r["plans"] * r["layers"] for r in mine])
            print(f"  {setup:8} {method:9} layers: {fit_exponent([r['layers'] for r in mine], cpu):.2f}   "
                  f"cuts x max crossing: {fit_exponent([r['cuts'] * r['crossing_max'] for r in mine], cpu):.2f}   "
                  f"crossing total: {fit_exponent([r['crossing_total'] for r in mine], cpu):.2f}   "
                  f"{'states' if mine[0]['states'] is not None else 'plans x layers'}: {fit_exponent(work, cpu):.2f}")


if __name__ == "__main__":
    main()
