"""Run SCALE-Sim 3.0.0 in its GEMM mode (`-i gemm`: rows `name, M, N, K,`) on topologies/gemm.csv.

Runs in SCALE-Sim's own virtual environment (see README.md):
    nice /work/scalesim-venv/bin/python tests/scalesim_reference/generate_gemm.py CONFIG
and writes references/gemm__CONFIG.csv with, per GEMM, SCALE-Sim's COMPUTE_REPORT cycles and
`compute_cycles` = "Total Cycles" - "Stall Cycles", the number tests/hardware_models/test_systolic_scalesim.py
compares (one GEMM per SCALE-Sim run, as generate.py does for convolutions).
"""
from __future__ import annotations

import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

from scalesim.scale_sim import scalesim as ScaleSim

HERE = Path(__file__).resolve().parent


def _report(path: Path) -> list[list[str]]:
    with open(path) as handle:
        return [[c.strip() for c in row] for row in csv.reader(handle)][1:]


def main(config: str) -> None:
    topology = HERE / "topologies" / "gemm.csv"
    cfg = HERE / "configs" / f"{config}.cfg"
    layout = HERE / "configs" / "layout_empty.csv"
    work = Path(tempfile.mkdtemp(prefix=f"scalesim_gemm_{config}_"))
    header, *rows = topology.read_text().splitlines()
    compute = []
    started = time.perf_counter()
    for index, row in enumerate(rows):
        layer_topology = work / f"gemm{index}.csv"
        layer_topology.write_text(header + "\n" + row + "\n")
        sim = ScaleSim(save_disk_space=True, verbose=False, config=str(cfg), topology=str(layer_topology),
                       layout=str(layout), input_type_gemm=True)
        sim.run_scale(top_path=str(work / f"run{index}"))
        run_dir = next(p for p in (work / f"run{index}").iterdir() if p.is_dir())
        compute += _report(run_dir / "COMPUTE_REPORT.csv")
        del sim
    wall_s = time.perf_counter() - started
    out = HERE / "references" / f"gemm__{config}.csv"
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["name", "m", "n", "k", "total_cycles_incl_prefetch", "total_cycles", "stall_cycles",
                         "compute_cycles"])
        for row, comp in zip(rows, compute):
            name, m, n, k = [c.strip() for c in row.split(",")[:4]]
            total_incl, total, stall = int(comp[1]), int(comp[2]), int(comp[3])
            writer.writerow([name, m, n, k, total_incl, total, stall, total - stall])
    shutil.rmtree(work, ignore_errors=True)
    print(f"gemm on {config}: {len(compute)} GEMMs, SCALE-Sim 3.0.0 wall {wall_s:.1f} s -> {out.relative_to(HERE)}")


if __name__ == "__main__":
    main(sys.argv[1])
