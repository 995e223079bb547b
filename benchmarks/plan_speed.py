"""CPU seconds of a whole `autosplit plan resnet50` process per method, with the cost-table cache cold and warm.

Each method runs in a fresh process on the Auto-Split paper's setup (Eyeriss -> TPU v1, 3 Mbit/s, 4 MiB,
max_layer, 1 point): cold with an empty `$AUTOSPLIT_CACHE`, then warm (the same folder, filled by the cold
run). CPU seconds are the child's user + system time, the lowest of `--repeat` runs (other processes on the
machine inflate wall time, and CPU time less so). `--tree` times another checkout (e.g. an export of an
older commit) for a before/after table; `--bytecode` lets Python keep compiled modules (in a temporary
folder) as an installed package does; without it the environment decides (PYTHONDONTWRITEBYTECODE).
`--tables MODEL,...` times building the cost tables in this process instead (cold, then read from the cache):
less disturbed by start-up and by other processes than whole commands.

    python benchmarks/plan_speed.py [--methods cloud,edge-u8,...] [--repeat 3] [--tree PATH] [--bytecode]
    python benchmarks/plan_speed.py --tables resnet50,googlenet,vit_b_16
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETUP = ["resnet50", "--edge", "eyeriss", "--cloud", "tpu_v1", "--uplink", "3Mbps", "--rtt", "20ms",
         "--edge-memory", "4MiB", "--memory-model", "max_layer", "--max-accuracy-drop", "1"]
METHODS = "cloud,edge-u2,edge-u4,edge-u6,edge-u8,neurosurgeon,dads,qdmp,autosplit,exact"


def cpu_seconds(tree: Path, method: str, cache: Path, pycache: Path | None) -> float:
    """User + system CPU seconds of one `plan` process."""
    env = {**os.environ, "PYTHONPATH": str(tree), "AUTOSPLIT_CACHE": str(cache)}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    before = os.times()
    subprocess.run([sys.executable, "-m", "simulator.cli", "plan", *SETUP, "--method", method],
                   cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
    after = os.times()
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)


def table_seconds(models: list[str]) -> None:
    """CPU seconds of CostTables.build (edge tables included) per zoo model, cold and read from the cache."""
    import dataclasses
    import time

    from simulator.evaluate import CostTables, Scenario
    from simulator.network.link import Link

    print(f"{'model':14s} {'layers':>6s} {'cold CPU s':>10s} {'warm CPU s':>10s}")
    for model in models:
        scenario = Scenario.build(model, "eyeriss", "tpu_v1", Link(uplink_bps=3e6, rtt_s=0.02))
        seconds = []
        for _ in range(2):
            start = time.process_time()
            _ = CostTables.build(dataclasses.replace(scenario)).edge_latency_s  # the edge tables are built on use
            seconds.append(time.process_time() - start)
        print(f"{model:14s} {len(scenario.graph.layers):6d} {seconds[0]:10.3f} {seconds[1]:10.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=METHODS, help=f"comma-separated (default {METHODS})")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the lowest counts (default 3)")
    parser.add_argument("--tree", type=Path, default=REPO, help="the checkout to time (default this one)")
    parser.add_argument("--bytecode", action="store_true", help="keep compiled modules, as an installed package")
    parser.add_argument("--tables", help="comma-separated zoo models: time building their cost tables instead")
    args = parser.parse_args()
    if args.tables:
        with tempfile.TemporaryDirectory() as scratch:
            os.environ["AUTOSPLIT_CACHE"] = scratch
            print(f"CostTables.build, Eyeriss -> TPU v1 (load average {os.getloadavg()[0]:.2f})")
            table_seconds(args.tables.split(","))
        return

    print(f"plan {' '.join(SETUP)} --method M   ({args.tree}; load average {os.getloadavg()[0]:.2f}; "
          f"bytecode {'kept' if args.bytecode else 'as the environment says'})")
    print(f"{'method':14s} {'cold CPU s':>10s} {'warm CPU s':>10s}")
    with tempfile.TemporaryDirectory() as scratch:
        pycache = Path(scratch) / "pycache" if args.bytecode else None
        if pycache is not None:  # compile once, so that every timed run finds the bytecode
            cpu_seconds(args.tree, "cloud", Path(scratch) / "warmup", pycache)
        for method in args.methods.split(","):
            cold, warm = [], []
            for run in range(args.repeat):
                cache = Path(scratch) / f"{method}-{run}"
                cold.append(cpu_seconds(args.tree, method, cache, pycache))
                warm.append(cpu_seconds(args.tree, method, cache, pycache))
            print(f"{method:14s} {min(cold):10.2f} {min(warm):10.2f}", flush=True)


if __name__ == "__main__":
    main()
