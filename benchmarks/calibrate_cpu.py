"""Fit the CPU model's shared constants on ncnn's published CPU benchmarks; print leave-one-board-out errors.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/calibrate_cpu.py           # held-out table + full fit
    PYTHONPATH=$PWD .venv/bin/python benchmarks/calibrate_cpu.py --write   # also stores the constants and
                                                                          # their evidence (cpu_calibration.yaml)

Rows: hardware_models/data/jetson_cpu_published.csv, ncnn benchncnn on CPUs (1 thread and all cores). Networks:
the zoo's resnet18, resnet50, mobilenet_v2, vgg16 and benchmarks/published_cnn_layers.py's mobilenet_v1 and
squeezenet1_1 (ncnn's mobilenet and squeezenet, float and int8); rows of ncnn's mobilenet_v3, shufflenet_v2,
mobilenet_ssd and yolov4-tiny are skipped (no layer list). Each board is held out in turn: the constants are
fitted on the other boards and the held-out board is predicted from its datasheet preset alone.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tools/
sys.path.insert(0, str(ROOT / "benchmarks"))

# the CSV's device -> preset; the two phones without a preset are fitted from inline datasheet figures
BOARDS = {
    "Raspberry Pi 3B+": "raspberry_pi_3b", "Raspberry Pi 4B": "raspberry_pi_4b", "Jetson Nano": "jetson_nano_cpu",
    "Jetson TX2 NX": "jetson_tx2_nx_cpu", "Jetson AGX Xavier": "jetson_agx_xavier_cpu",
    "Jetson Orin Nano": "jetson_orin_nano_cpu", "Jetson AGX Orin": "jetson_agx_orin_cpu",
    "Snapdragon 8 Gen 2 phone": "snapdragon_8gen2_cpu", "Dimensity 9300 (MT6989) phone": "dimensity_9300_cpu",
    "Snapdragon 855+ phone (OnePlus 7T)": {
        "name": "Snapdragon 855+ CPU", "clusters": [{"cores": 1, "clock": "2.96GHz", "fma_pipes": 2},
                                                   {"cores": 3, "clock": "2.42GHz", "fma_pipes": 2},
                                                   {"cores": 4, "clock": "1.8GHz", "fma_pipes": 1}],
        "fp16_arithmetic": True, "int8_dot": True, "last_level_cache": "2MiB", "dram_bandwidth": "34.1GB/s"},
    "Snapdragon 888 phone": {
        "name": "Snapdragon 888 CPU", "clusters": [{"cores": 1, "clock": "2.84GHz", "fma_pipes": 4},
                                                  {"cores": 3, "clock": "2.42GHz", "fma_pipes": 2},
                                                  {"cores": 4, "clock": "1.8GHz", "fma_pipes": 1}],
        "fp16_arithmetic": True, "int8_dot": True, "last_level_cache": "4MiB", "dram_bandwidth": "51.2GB/s"},
}
NETWORKS = {"resnet18": "resnet18", "resnet18_int8": "resnet18", "resnet50": "resnet50",
            "resnet50_int8": "resnet50", "mobilenet_v2": "mobilenet_v2", "vgg16": "vgg16",
            "mobilenet": "mobilenet_v1", "mobilenet_int8": "mobilenet_v1", "squeezenet": "squeezenet1_1",
            "squeezenet_int8": "squeezenet1_1"}


def load_layers(network: str):
    import published_cnn_layers

    from simulator.graph import load_model

    if hasattr(published_cnn_layers, network):
        return getattr(published_cnn_layers, network)()
    return load_model(network).layer_specs()


def board_cpu(board: str):
    from hardware_models.cpu import CPU
    from hardware_models.registry import load_accelerator

    spec = BOARDS[board]
    return load_accelerator(spec) if isinstance(spec, str) else CPU.from_config(spec, f"calibrate_cpu: {board}")


def build():
    """Rows with a layer list, their features, measured times and boards; the skipped rows' count."""
    from tools import cpu_fit

    rows = cpu_fit.read_rows()
    kept = [r for r in rows if r.network in NETWORKS and r.board in BOARDS]
    layers = {name: load_layers(name) for name in set(NETWORKS.values())}
    cpus = {board: board_cpu(board) for board in BOARDS}
    cases = [(cpus[r.board].with_threads(r.threads), layers[NETWORKS[r.network]], r.bits) for r in kept]
    measured = np.array([r.measured_s for r in kept])
    return kept, cpu_fit.features(cases), measured, np.array([r.board for r in kept]), len(rows) - len(kept)


def summary(kept, predicted, measured) -> list[dict]:
    """Median and worst ratio (max(p/m, m/p)) per board."""
    ratio = np.maximum(predicted / measured, measured / predicted)
    out = []
    for board in BOARDS:
        mask = np.array([r.board == board for r in kept])
        if mask.any():
            worst = int(np.argmax(np.where(mask, ratio, 0)))
            out.append({"board": board, "preset": BOARDS[board] if isinstance(BOARDS[board], str) else "-",
                        "rows": int(mask.sum()), "median": float(np.median(ratio[mask])),
                        "worst": float(ratio[worst]), "worst_row": f"{kept[worst].network}/{kept[worst].threads}t"})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store the fit in hardware_models/cpu_calibration.yaml")
    parser.add_argument("--iterations", type=int, default=3000, help="Nelder-Mead iterations per round")
    args = parser.parse_args()

    from hardware_models.cpu import CALIBRATION_PATH, default_calibration
    from tools import cpu_fit

    kept, feats, measured, boards, skipped = build()
    base = default_calibration()
    fit = lambda f, m, b: cpu_fit.fit(f, m, b, iterations=args.iterations)  # noqa: E731
    held_out = cpu_fit.leave_one_group_out(feats, measured, boards, base, fit)
    print(f"{len(kept)} ncnn CPU rows on {len(set(boards))} boards; {skipped} rows skipped (networks without a "
          f"layer list: mobilenet_v3, shufflenet_v2, mobilenet_ssd, yolov4-tiny)\n")
    print("leave-one-board-out, ratio = max(predicted/measured, measured/predicted):")
    print(f"{'board':36s} {'preset':22s} {'rows':>4s} {'median':>7s} {'worst':>6s}  worst row")
    table = summary(kept, held_out, measured)
    for s in table:
        print(f"{s['board']:36s} {s['preset']:22s} {s['rows']:4d} {s['median']:7.2f} {s['worst']:6.2f}  "
              f"{s['worst_row']}")
    ratio = np.maximum(held_out / measured, measured / held_out)
    print(f"{'all':36s} {'':22s} {len(kept):4d} {np.median(ratio):7.2f} {ratio.max():6.2f}")
    calibration = cpu_fit.fit(feats, measured, base, iterations=args.iterations)
    fitted = cpu_fit.predict_s(feats, calibration)
    in_sample = np.maximum(fitted / measured, measured / fitted)
    print(f"\nfit on every row: median ratio {np.median(in_sample):.2f}, worst {in_sample.max():.2f}")
    values = calibration.model_dump(exclude={"source", "evidence"})
    print(yaml.safe_dump(values, sort_keys=False, width=120))
    if args.write:
        boards_text = "; ".join(f"{s['board']} {s['median']:.2f}x/{s['worst']:.2f}x" for s in table)
        values["source"] = ("hardware_models/data/jetson_cpu_published.csv, ncnn benchncnn CPU rows; written by "
                            "benchmarks/calibrate_cpu.py --write")
        values["evidence"] = {"fit": (
            f"Shared CPU constants fitted on {len(kept)} ncnn benchncnn CPU rows ({len(set(boards))} boards, 1 thread "
            f"to all cores, float and int8; benchmarks/calibrate_cpu.py); leave-one-board-out median/worst ratio: "
            f"{boards_text}; all boards {np.median(ratio):.2f}x/{ratio.max():.2f}x.")}
        for s in table:
            if s["preset"] != "-":
                values["evidence"][s["preset"]] = (
                    f"ncnn rows of this board held out of the fit: median ratio {s['median']:.2f}x, worst "
                    f"{s['worst']:.2f}x ({s['worst_row']}) over {s['rows']} rows.")
        header = "".join(line for line in CALIBRATION_PATH.read_text().splitlines(keepends=True)
                         if line.startswith("#"))
        CALIBRATION_PATH.write_text(header + yaml.safe_dump(values, sort_keys=False, width=120))
        print(f"wrote {CALIBRATION_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
