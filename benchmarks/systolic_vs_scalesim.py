"""Wall time of the closed-form systolic model against SCALE-Sim 3.0.0 on the same network and array.

    .venv/bin/python benchmarks/systolic_vs_scalesim.py [--model resnet18] [--scalesim-python PY]

For every committed reference of the model (tests/scalesim_reference/references/MODEL__CONFIG.csv) it times
the model on the same topology and config (best of --repeats runs of `network_cost`, compute cycles and
the whole memory/energy model included) and prints it beside SCALE-Sim's wall time for that run: the time
recorded when the reference was generated (references/wall_times.txt; SCALE-Sim in its stall-free CALC
mode, no traces written, on this project's shared 2-core machine), or, with --scalesim-python, a fresh
run of tests/scalesim_reference/generate.py with that interpreter (minutes per network).
It also checks that the compute cycles agree on every layer.
"""
from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hardware_models.registry import load_accelerator  # noqa: E402
from hardware_models.scalesim_io import read_topology  # noqa: E402

REFERENCE_DIR = ROOT / "tests" / "scalesim_reference"


def recorded_times_s() -> dict[tuple[str, str], tuple[float, float]]:
    """(wall, cpu) seconds of each recorded SCALE-Sim run (cpu is nan where it was not recorded)."""
    times = {}
    path = REFERENCE_DIR / "references" / "wall_times.txt"
    for line in path.read_text().splitlines() if path.exists() else []:
        match = re.match(r"(\S+) on (\S+): .* wall ([\d.]+) s(?: \(cpu ([\d.]+) s\))?", line)
        if match:
            cpu = float(match.group(4)) if match.group(4) else float("nan")
            times[(match.group(1), match.group(2))] = (float(match.group(3)), cpu)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--scalesim-python", help="re-run SCALE-Sim with this interpreter instead of the recorded times")
    args = parser.parse_args()
    recorded = recorded_times_s()
    print(f"{'model':14s} {'config':12s} {'layers':>6s} {'model ms':>9s} {'SCALE-Sim wall s':>16s} "
          f"{'cpu s':>8s} {'wall ratio':>11s} {'cpu ratio':>10s} {'cycles':>8s}")
    for reference in sorted((REFERENCE_DIR / "references").glob(f"{args.model}__*.csv")):
        config = reference.stem.split("__")[1]
        rows = list(csv.DictReader(open(reference)))
        groups = [int(r["groups"]) for r in rows]
        array = load_accelerator(str(REFERENCE_DIR / "configs" / f"{config}.cfg"))
        best = best_cpu = float("inf")
        for _ in range(args.repeats):
            started, cpu_started = time.perf_counter(), time.process_time()
            layers = read_topology(REFERENCE_DIR / "topologies" / f"{args.model}.csv", groups=groups)
            costs, _ = array.network_cost(layers, 8, 8)
            best = min(best, time.perf_counter() - started)
            best_cpu = min(best_cpu, time.process_time() - cpu_started)
        same = all(c.compute_cycles == int(r["compute_cycles"]) for c, r in zip(costs, rows))
        if args.scalesim_python:
            started = time.perf_counter()
            subprocess.run([args.scalesim_python, str(REFERENCE_DIR / "generate.py"), args.model, config], check=True,
                           capture_output=True)
            scalesim_s, scalesim_cpu_s = time.perf_counter() - started, float("nan")
        else:
            scalesim_s, scalesim_cpu_s = recorded.get((args.model, config), (float("nan"), float("nan")))
        print(f"{args.model:14s} {config:12s} {len(rows):6d} {best * 1e3:9.3f} {scalesim_s:16.1f} "
              f"{scalesim_cpu_s:8.1f} {scalesim_s / best:10.0f}x {scalesim_cpu_s / max(best_cpu, 1e-9):9.0f}x "
              f"{'equal' if same else 'DIFFER'}")


if __name__ == "__main__":
    main()
