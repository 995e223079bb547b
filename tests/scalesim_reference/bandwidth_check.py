"""SCALE-Sim 3.0.0 in its bandwidth-limited (USER) mode on a few layers, to compare stall accounting.

Runs in SCALE-Sim's virtual environment:
    nice /work/scalesim-venv/bin/python tests/scalesim_reference/bandwidth_check.py CONFIG WORDS_PER_CYCLE
e.g. `bandwidth_check.py array32_ws 4`: configs/CONFIG.cfg switched to InterfaceBandwidth USER with
Bandwidth = WORDS_PER_CYCLE (SCALE-Sim applies `Bandwidth` to the ofmap only and the layout section's
IfmapSRAMBankBandwidth / FilterSRAMBankBandwidth to the ifmap and filter reads, so all three are set,
with one SRAM bank so that the bandwidth divides evenly over the banks),
on topologies/bandwidth_layers.csv; writes references/bandwidth__CONFIG__bwN.csv. Not a test oracle:
the systolic model's memory model is its own (see hardware_models/systolic.py and the note of issue 3).
"""
from __future__ import annotations

import csv
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from scalesim.scale_sim import scalesim as ScaleSim

HERE = Path(__file__).resolve().parent


def main(config: str, words_per_cycle: int) -> None:
    text = (HERE / "configs" / f"{config}.cfg").read_text()
    text = text.replace("InterfaceBandwidth: CALC", "InterfaceBandwidth: USER")
    text = re.sub(r"Bandwidth : \d+", f"Bandwidth : {words_per_cycle}", text)
    text = re.sub(r"(Ifmap|Filter)SRAMBankBandwidth: \d+", rf"\1SRAMBankBandwidth: {words_per_cycle}", text)
    # the read buffers split their bandwidth evenly over the banks: one bank, so any bandwidth divides
    text = re.sub(r"(Ifmap|Filter)SRAMBankNum: \d+", r"\1SRAMBankNum: 1", text)
    work = Path(tempfile.mkdtemp(prefix="scalesim_bw_"))
    cfg = work / f"{config}_bw{words_per_cycle}.cfg"
    cfg.write_text(text)
    topology = HERE / "topologies" / "bandwidth_layers.csv"
    started = time.perf_counter()
    sim = ScaleSim(save_disk_space=True, verbose=False, config=str(cfg), topology=str(topology),
                   layout=str(HERE / "configs" / "layout_empty.csv"))
    sim.run_scale(top_path=str(work))
    wall_s = time.perf_counter() - started
    run_dir = next(p for p in work.iterdir() if p.is_dir())

    def report(name: str) -> list[list[str]]:
        with open(run_dir / name) as handle:
            return [[c.strip() for c in row] for row in csv.reader(handle)][1:]

    compute, detail = report("COMPUTE_REPORT.csv"), report("DETAILED_ACCESS_REPORT.csv")
    names = [row.split(",")[0] for row in topology.read_text().splitlines()[1:]]
    out = HERE / "references" / f"bandwidth__{config}__bw{words_per_cycle}.csv"
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["name", "total_cycles_incl_prefetch", "total_cycles", "stall_cycles",
                         "dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes"])
        for name, comp, det in zip(names, compute, detail):
            writer.writerow([name, comp[1], comp[2], comp[3], det[12], det[15], det[18]])
    shutil.rmtree(work, ignore_errors=True)
    print(f"bandwidth check {config} at {words_per_cycle} words/cycle: wall {wall_s:.1f} s -> {out.name}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
