"""Fit the TI DSP presets' MAC efficiency on TI's published TIDL latencies; print leave-one-network-out errors.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/calibrate_ti_dsp.py

Rows: hardware_models/data/dsp_published.csv (a copy of ../shared/data/edge/), TI AM57x C66x DSP (750 MHz) and
EVE (650 MHz) under TIDL: single-core MobileNet-v1 and SqueezeNet 1.1 latencies (dense models) and the TIDL API
mcbench rows that run one frame per core on two cores (per-frame latency = 2 / throughput). Networks from
benchmarks/published_cnn_layers.py. JacintoNet11, JSegNet21 and JDetNet rows are skipped (TI's own networks, no
published layer list here), as are sparse models, the low-trust test_tidl rows and the C7x+MMA rows (a matrix
engine, not this DSP kind). Each preset's `mac_efficiency` (the share of the datasheet MAC rate TIDL reaches) is
the geometric-mean fit over its rows; held out, it is fitted on one network and the other network's rows are
predicted. The presets' other figures are TI's datasheet clocks, MACs per cycle and on-chip memories.
"""
from __future__ import annotations

import csv
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DATA = ROOT / "hardware_models" / "data" / "dsp_published.csv"
PRESETS = {"TI C66x": "ti_c66x", "TI EVE": "ti_eve"}
NETWORKS = {"MobileNetV1": "mobilenet_v1", "SqueezeNet1.1": "squeezenet1_1"}


def read_rows() -> tuple[list[dict], int]:
    """(preset, network, latency_s, row_id) of the usable TIDL rows; the count of TI rows skipped."""
    rows, skipped = [], 0
    with open(DATA, newline="") as handle:
        for row in csv.DictReader(handle):
            if not row["device_soc"].startswith("TI AM57"):
                continue
            preset = next((p for k, p in PRESETS.items() if row["dsp_name_generation"].startswith(k)), None)
            network = next((n for k, n in NETWORKS.items() if row["model"].startswith(k)), None)
            usable = (preset and network and "sparse" not in row["model"] and row["trust"] != "low")
            if usable and row["latency_ms"]:
                rows.append({"id": row["row_id"], "preset": preset, "network": network,
                             "measured_s": float(row["latency_ms"]) / 1e3, "what": "1 core"})
            elif usable and "mcbench" in row["runtime"] and row["throughput_ips"]:
                rows.append({"id": row["row_id"], "preset": preset, "network": network,
                             "measured_s": 2.0 / float(row["throughput_ips"]), "what": "2 cores, a frame each"})
            else:
                skipped += 1
    return rows, skipped


def efficiency_for(dsp, layers_by_row, measured) -> float:
    """The mac_efficiency whose predictions have a geometric-mean ratio of 1 to `measured` (bisection)."""
    def log_ratio(efficiency: float) -> float:
        trial = replace(dsp, mac_efficiency=efficiency)
        predicted = [trial.network_cost(layers, 8, 8)[1].latency_s for layers in layers_by_row]
        return float(np.mean(np.log(np.array(predicted) / measured)))

    low, high = 1e-4, 1.0
    if log_ratio(high) > 0:
        return high
    for _ in range(60):
        middle = np.sqrt(low * high)
        low, high = (middle, high) if log_ratio(middle) > 0 else (low, middle)
    return float(np.sqrt(low * high))


def main() -> int:
    from published_cnn_layers import mobilenet_v1, squeezenet1_1

    from hardware_models.registry import load_accelerator

    layers = {"mobilenet_v1": mobilenet_v1(224), "squeezenet1_1": squeezenet1_1(227)}
    rows, skipped = read_rows()
    print(f"{len(rows)} TIDL rows used, {skipped} TI AM57x rows skipped (TI's own networks, sparse, low trust)\n")
    print(f"{'preset':8s} {'row':>4s} {'network':14s} {'timed':22s} {'measured_ms':>11s} {'held_out_ms':>11s} "
          f"{'ratio':>6s} {'fitted_ms':>9s}")
    for preset in PRESETS.values():
        dsp = load_accelerator(preset)
        mine = [r for r in rows if r["preset"] == preset]
        measured = np.array([r["measured_s"] for r in mine])
        every = efficiency_for(dsp, [layers[r["network"]] for r in mine], measured)
        ratios = []
        for r in mine:
            train = [t for t in mine if t["network"] != r["network"]]
            efficiency = efficiency_for(dsp, [layers[t["network"]] for t in train],
                                        np.array([t["measured_s"] for t in train]))
            held = replace(dsp, mac_efficiency=efficiency).network_cost(layers[r["network"]], 8, 8)[1].latency_s
            fitted = replace(dsp, mac_efficiency=every).network_cost(layers[r["network"]], 8, 8)[1].latency_s
            ratio = max(held / r["measured_s"], r["measured_s"] / held)
            ratios.append(ratio)
            print(f"{preset:8s} {r['id']:>4s} {r['network']:14s} {r['what']:22s} {r['measured_s'] * 1e3:11.1f} "
                  f"{held * 1e3:11.1f} {ratio:6.2f} {fitted * 1e3:9.1f}")
        print(f"{preset}: mac_efficiency fitted on every row {every:.4f} (preset: {dsp.mac_efficiency:.4f}); "
              f"leave-one-network-out worst ratio {max(ratios):.2f}, median {np.median(ratios):.2f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
