"""Print the systolic model's stalls and DRAM bytes beside SCALE-Sim's bandwidth-limited (USER) run.

    .venv/bin/python tests/scalesim_reference/compare_bandwidth.py array32_ws 4
reads references/bandwidth__CONFIG__bwN.csv (made by bandwidth_check.py) and runs the model on the same
layers and array with an off-chip bandwidth of 3 x N bytes per cycle (SCALE-Sim's words are bytes, and
each of its three buffers has its own N-word port; a fourth argument changes the 3). Also
prints the stall-free compute cycles of both, which must agree.
"""
from __future__ import annotations

import csv
import sys
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from hardware_models.scalesim_io import read_scalesim_cfg, read_topology  # noqa: E402
from hardware_models.systolic import SystolicArray  # noqa: E402


def main(config: str, words_per_cycle: int, ports: int = 3) -> None:
    """SCALE-Sim gives each of its three buffers (ifmap, filter, ofmap) its own port of `words_per_cycle`;
    the model has one shared off-chip bus: compared at `ports` x words_per_cycle bytes per cycle."""
    array: SystolicArray = read_scalesim_cfg(HERE / "configs" / f"{config}.cfg")
    array = replace(array, offchip_bandwidth_bytes_per_s=ports * words_per_cycle * array.clock_hz)
    layers = read_topology(HERE / "topologies" / "bandwidth_layers.csv")
    rows = list(csv.DictReader(open(HERE / "references" / f"bandwidth__{config}__bw{words_per_cycle}.csv")))
    print(f"{config}: SCALE-Sim {words_per_cycle} bytes/cycle per buffer port; model {ports * words_per_cycle} "
          f"bytes/cycle shared")
    print(f"{'layer':24s} {'compute':>9s} {'SS compute':>10s} {'stall':>9s} {'SS stall':>9s} "
          f"{'DRAM B':>9s} {'SS DRAM B':>9s} {'SS incl.prefetch':>16s}")
    for layer, row in zip(layers, rows):
        cost = array.layer_cost(layer, 8, 8)
        ss_compute = int(row["total_cycles"]) - int(row["stall_cycles"])
        ss_dram = int(row["dram_ifmap_reads"]) + int(row["dram_filter_reads"]) + int(row["dram_ofmap_writes"])
        print(f"{layer.name:24s} {cost.compute_cycles:9.0f} {ss_compute:10d} {cost.stall_cycles:9.0f} "
              f"{int(row['stall_cycles']):9d} {cost.dram_bytes:9.0f} {ss_dram:9d} {int(row['total_cycles_incl_prefetch']):16d}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), *(int(a) for a in sys.argv[3:4]))
