"""Run SCALE-Sim 3.0.0 on one topology and one config and write the per-layer reference CSV.

Runs in SCALE-Sim's own virtual environment (numpy<2, pandas<3), not the project's:
    nice /work/scalesim-venv/bin/python tests/scalesim_reference/generate.py MODEL CONFIG
e.g. `generate.py resnet18 eyeriss_ws` reads topologies/resnet18.csv, topologies/resnet18.groups.csv and
configs/eyeriss_ws.cfg, and writes references/resnet18__eyeriss_ws.csv with, per layer, SCALE-Sim's
COMPUTE_REPORT ("Total Cycles", "Stall Cycles", "Total Cycles (incl. prefetch)") and
DETAILED_ACCESS_REPORT (SRAM reads/writes and DRAM reads/writes, in words = bytes) for ONE group, plus
`compute_cycles` = groups x ("Total Cycles" - "Stall Cycles"), the number the tests compare.
"""
from __future__ import annotations

import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

import scalesim
from scalesim.scale_sim import scalesim as ScaleSim

HERE = Path(__file__).resolve().parent


def _report(path: Path) -> list[list[str]]:
    with open(path) as handle:
        return [[c.strip() for c in row] for row in csv.reader(handle)][1:]


def main(model: str, config: str) -> None:
    topology = HERE / "topologies" / f"{model}.csv"
    groups = [int(r["groups"]) for r in csv.DictReader(open(HERE / "topologies" / f"{model}.groups.csv"))]
    cfg = HERE / "configs" / f"{config}.cfg"
    layout = HERE / "configs" / "layout_empty.csv"
    work = Path(tempfile.mkdtemp(prefix=f"scalesim_{model}_{config}_"))
    header, *rows = topology.read_text().splitlines()
    compute, detail = [], []
    started, cpu_started = time.perf_counter(), time.process_time()
    # one layer per SCALE-Sim run (layers are independent in SCALE-Sim): same numbers, bounded memory,
    # since SCALE-Sim keeps every layer's demand and trace matrices until the end of a run
    for index, row in enumerate(rows):
        layer_topology = work / f"layer{index}.csv"
        layer_topology.write_text(header + "\n" + row + "\n")
        sim = ScaleSim(save_disk_space=True, verbose=False, config=str(cfg), topology=str(layer_topology),
                       layout=str(layout))
        sim.run_scale(top_path=str(work / f"run{index}"))
        run_dir = next(p for p in (work / f"run{index}").iterdir() if p.is_dir())
        compute += _report(run_dir / "COMPUTE_REPORT.csv")
        detail += _report(run_dir / "DETAILED_ACCESS_REPORT.csv")
        del sim
    wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started

    topo_rows = [[c.strip() for c in row] for row in csv.reader(open(topology))][1:]
    out = HERE / "references" / f"{model}__{config}.csv"
    out.parent.mkdir(exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["name", "ifmap_height", "ifmap_width", "filter_height", "filter_width", "channels",
                         "num_filter", "stride", "groups", "total_cycles_incl_prefetch", "total_cycles",
                         "stall_cycles", "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes",
                         "dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes", "compute_cycles"])
        for topo, g, comp, det in zip(topo_rows, groups, compute, detail):
            total_incl, total, stall = int(comp[1]), int(comp[2]), int(comp[3])
            writer.writerow([*topo[:8], g, total_incl, total, stall, det[3], det[6], det[9], det[12],
                             det[15], det[18], g * (total - stall)])
    shutil.rmtree(work, ignore_errors=True)
    print(f"{model} on {config}: {len(compute)} layers, SCALE-Sim {scalesim.__version__ if hasattr(scalesim, '__version__') else '3.0.0'}"
          f" wall {wall_s:.1f} s (cpu {cpu_s:.1f} s) -> {out.relative_to(HERE)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
