"""Check the Jetson GPU presets on published TensorRT rows, fit the boards that have several; print held-out errors.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/calibrate_jetson.py

Rows (hardware_models/data/jetson_cpu_published.csv, a copy of ../shared/data/edge/): torch2trt's fp16 TensorRT
latencies on the Jetson Nano and (AGX) Xavier (batch 1, GPU-resident input, mean of 50 synchronous calls: what a
request sees) for ResNet-18, ResNet-50, VGG-16 (the zoo's) and SqueezeNet 1.1 (benchmarks/published_cnn_layers.py
at 224x224), and MLPerf Inference v3.1's AGX Orin ResNet-50 SingleStream (int8; NVIDIA's engine fuses more than
stock TensorRT: the prediction is scaled by the serving fit's `mlperf_time_factor`, as for the datacenter GPUs).
Skipped: SqueezeNet 1.0, DenseNet-121, ShuffleNet-v2, MobileNet-v2 (no layer list or no TensorRT row), the demo
FPS rows (pre/post-processing included), MultiStream/Offline (batching, DLAs).

Every board is first predicted from its datasheet alone (the datacenter GPUs' serving constants): that is the
error of a Jetson without rows. Where a board has several rows, two constants are then fitted on them, the
tensor/fp16 efficiency and the fixed time of a MAC kernel (other kernels keep the datacenter fit's ratio to it),
each network held out in turn. `--write` stores each fit in that board's preset and in the preset of the board of
the same GPU architecture without rows (Nano -> TX2 NX: no tensor cores; AGX Xavier -> Xavier NX: Volta); the
Orin presets keep the datasheet path, checked against the one MLPerf row.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
PRESETS = ["jetson_nano", "jetson_tx2_nx", "jetson_agx_xavier", "jetson_xavier_nx", "jetson_orin_nano",
           "jetson_orin_nx", "jetson_agx_orin"]
# (row id, preset, network, bits, measured seconds)
ROWS = [("23", "jetson_nano", "resnet18", 16), ("27", "jetson_nano", "resnet50", 16),
        ("35", "jetson_nano", "vgg16", 16), ("19", "jetson_nano", "squeezenet1_1", 16),
        ("47", "jetson_agx_xavier", "resnet18", 16), ("59", "jetson_agx_xavier", "vgg16", 16),
        ("43", "jetson_agx_xavier", "squeezenet1_1", 16), ("1", "jetson_agx_orin", "resnet50", 8)]
MAC_CLASSES = ("conv", "pwconv", "dwconv", "gemm")
OTHER_CLASSES = ("batchnorm", "eltwise", "pool", "copy", "transpose")


def overrides(efficiency: float, mac_fixed_s: float) -> dict:
    """The `calibration:` section of a Jetson preset for these two constants."""
    from hardware_models.gpu_calibration import serving_overrides

    ratio = serving_overrides()["fixed_s"]["eltwise"] / serving_overrides()["fixed_s"]["conv"]
    fixed = {c: mac_fixed_s for c in MAC_CLASSES} | {c: mac_fixed_s * ratio for c in OTHER_CLASSES}
    return {"tensor_efficiency": {"fp16": efficiency, "int8": efficiency}, "fixed_s": fixed}


def measured_s() -> dict[str, float]:
    import csv

    with open(ROOT / "hardware_models" / "data" / "jetson_cpu_published.csv", newline="") as handle:
        return {r["row_id"]: float(r["value"]) / 1e3 for r in csv.DictReader(handle)}


def predictor():
    """predict(row, efficiency, mac_fixed_s): the row's predicted seconds (kernel tables built once)."""
    from published_cnn_layers import squeezenet1_1

    from hardware_models.gpu import GPU
    from hardware_models.gpu_calibration import _stored, merge_calibration
    from hardware_models.gpu_kernels import precision_of
    from hardware_models.registry import PRESET_DIR
    from hardware_models.yaml_io import read_yaml
    from simulator.graph import load_model

    layers = {n: load_model(n).layer_specs() for n in ("resnet18", "resnet50", "vgg16")}
    layers["squeezenet1_1"] = squeezenet1_1(224)
    mlperf = float(_stored()["serving"]["mlperf_time_factor"])
    gpus = {}
    for preset in PRESETS:  # the datasheet path: the preset without its Jetson constants
        config = read_yaml(PRESET_DIR / f"{preset}.yaml", "preset")
        gpus[preset] = GPU.from_config({k: v for k, v in config.items() if k not in ("kind", "calibration")}, preset)
    tables = {row: gpus[row[1]].kernel_table(layers[row[2]], [precision_of(row[3], row[3])] * len(layers[row[2]]),
                                             fuse=True) for row in ROWS}

    def predict(row: tuple, efficiency: float | None, mac_fixed_s: float | None) -> float:
        """Seconds of a row's network on its board; the datasheet path (no Jetson constants) when None."""
        gpu = gpus[row[1]]
        calibration = gpu.serving_calibration
        if efficiency is not None and mac_fixed_s is not None:
            calibration = merge_calibration(calibration, overrides(efficiency, mac_fixed_s), "calibrate_jetson")
        seconds = gpu.sequence_time(tables[row], "graph", calibration=calibration).total_s
        return seconds * mlperf if row[1] == "jetson_agx_orin" else seconds

    return predict


def fit(rows, predict, measured) -> tuple[float, float]:
    """The (efficiency, fixed time) on a log grid that minimises the sum of squared log ratios."""
    best = (np.inf, 0.0, 0.0)
    for efficiency in np.geomspace(0.2, 1.2, 19):
        for fixed in np.geomspace(2e-6, 1e-4, 18):
            loss = sum(np.log(predict(r, efficiency, fixed) / measured[r[0]]) ** 2 for r in rows)
            best = min(best, (loss, efficiency, fixed))
    return best[1], best[2]


# a board with rows -> the presets that take its fitted constants (itself, and its architecture's board without rows)
FITTED = {"jetson_nano": ("jetson_nano", "jetson_tx2_nx"),
          "jetson_agx_xavier": ("jetson_agx_xavier", "jetson_xavier_nx")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the fit into the Jetson presets")
    args = parser.parse_args()
    predict, measured = predictor(), measured_s()
    datasheet = {r: predict(r, None, None) for r in ROWS}
    print(f"{'row':>3s} {'preset':18s} {'network':14s} {'bits':>4s} {'measured_ms':>11s} {'datasheet_ms':>12s} "
          f"{'ratio':>6s} {'held_out_ms':>11s} {'ratio':>6s}")
    fits = {board: fit([r for r in ROWS if r[1] == board], predict, measured) for board in FITTED}
    for row in ROWS:
        ratio = max(datasheet[row] / measured[row[0]], measured[row[0]] / datasheet[row])
        text = f"{row[0]:>3s} {row[1]:18s} {row[2]:14s} {row[3]:4d} {measured[row[0]] * 1e3:11.2f} " \
               f"{datasheet[row] * 1e3:12.2f} {ratio:6.2f}"
        if row[1] in FITTED:
            train = [r for r in ROWS if r[1] == row[1] and r != row]
            held = predict(row, *fit(train, predict, measured))
            text += f" {held * 1e3:11.2f} {max(held / measured[row[0]], measured[row[0]] / held):6.2f}"
        print(text)
    for board, (efficiency, fixed) in fits.items():
        rows = [r for r in ROWS if r[1] == board]
        fitted = [max(predict(r, efficiency, fixed) / measured[r[0]], measured[r[0]] / predict(r, efficiency, fixed))
                  for r in rows]
        print(f"{board}: tensor efficiency {efficiency:.3f}, MAC kernel fixed time {fixed * 1e6:.1f} us; in-sample "
              f"median ratio {np.median(fitted):.2f}x, worst {max(fitted):.2f}x")
    if args.write:
        from hardware_models.registry import PRESET_DIR

        for board, presets in FITTED.items():
            block = overrides(*fits[board])
            text = (f"calibration:  # fitted on {board}'s TensorRT rows: benchmarks/calibrate_jetson.py --write\n"
                    f"  tensor_efficiency: {{fp16: {block['tensor_efficiency']['fp16']:.4g}, int8: "
                    f"{block['tensor_efficiency']['int8']:.4g}}}\n"
                    "  fixed_s: {" + ", ".join(f"{k}: {v:.4g}" for k, v in block["fixed_s"].items()) + "}\n")
            for preset in presets:
                path = PRESET_DIR / f"{preset}.yaml"
                body = re.sub(r"calibration:.*?\n(  .*\n)*", "", path.read_text())
                path.write_text(body.replace("evidence:", text + "evidence:", 1))
                print(f"wrote the calibration of {preset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
