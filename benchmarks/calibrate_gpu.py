"""Calibrate the GPU model on the measured H200 profile and print its leave-one-network-out errors.

    .venv/bin/python benchmarks/calibrate_gpu.py            # held-out table + full fit, prints only
    .venv/bin/python benchmarks/calibrate_gpu.py --write    # also writes hardware_models/gpu_calibration.yaml

Fits on two of resnet18 / vgg16 / mobilenet_v2 (both precisions), predicts the third, rotates; then fits on
all three and (with --write) stores the constants with this command line in the file's header.
Profile: tests/fixtures/h200_pytorch_profile.json (copy of ../shared/data/gpu/h200_pytorch_profile.json).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "tests" / "fixtures" / "h200_pytorch_profile.json"
NETWORKS = ("resnet18", "vgg16", "mobilenet_v2")


def profile_networks():
    """The three profiled networks as PyTorch runs them (autosplit's zoo, unsimplified)."""
    from simulator.graph import load_model
    from tools.gpu_fit import ProfileNetwork

    out = []
    for name in NETWORKS:
        graph = load_model(name, simplify=False)
        out.append(ProfileNetwork(name, graph.layer_specs(), [l.name for l in graph], [l.op for l in graph]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write hardware_models/gpu_calibration.yaml")
    parser.add_argument("--iterations", type=int, default=400, help="Nelder-Mead iterations per round")
    args = parser.parse_args()

    from hardware_models import load_accelerator
    from tools.gpu_fit import build_cases, fit, leave_one_out, load_profile, predictions

    gpu = load_accelerator("h200")
    cases = build_cases(gpu, load_profile(PROFILE), profile_networks())
    start = time.perf_counter()
    held_out = leave_one_out(gpu, cases, iterations=args.iterations)
    print(f"leave-one-network-out ({time.perf_counter() - start:.1f} s)")
    print_table(held_out)
    cal = fit(gpu, cases, iterations=args.iterations)
    print("\nin-sample (fit on all three)")
    print_table(predictions(gpu, cases, cal))
    print("\nconstants:", yaml.safe_dump(cal.as_mapping(), default_flow_style=None, width=120))
    if args.write:
        write(cal)
    return 0


def summarise(rows):
    """Per network, precision and quantity group: worst |error| and whether all are within bounds."""
    groups = {}
    for p in rows:
        group = "suffix (all stages)" if p.quantity.startswith("suffix.") else p.quantity
        groups.setdefault((p.network, p.precision, group), []).append(p)
    return groups


def print_table(rows) -> None:
    print(f"{'network':13s} {'prec':5s} {'quantity':22s} {'measured_us':>11s} {'predicted_us':>12s} "
          f"{'error':>8s} {'bound':>14s} ok")
    for (net, prec, group), items in summarise(rows).items():
        worst = max(items, key=lambda p: abs(p.predicted_s - p.measured_s) / max(p.measured_s * p.bound_rel,
                                                                                 p.bound_abs_s, 1e-12))
        bound = "-" if worst.bound_rel == float("inf") else f"{worst.bound_rel:.0%} or {worst.bound_abs_s * 1e6:.0f}us"
        label = group if len(items) == 1 else f"{group} worst={worst.quantity}"
        ok = "yes" if all(p.within for p in items) else "NO"
        print(f"{net:13s} {prec:5s} {label:22s} {worst.measured_s * 1e6:11.1f} {worst.predicted_s * 1e6:12.1f} "
              f"{worst.error:+8.1%} {bound:>14s} {ok}")
        if len(items) > 1:
            errs = [abs(p.error) for p in items]
            print(f"{'':13s} {'':5s} {'  ' + str(len(items)) + ' suffixes, median |error|':22s} "
                  f"{sorted(errs)[len(errs) // 2]:.1%}, within bound: {sum(p.within for p in items)}/{len(items)}")


def write(cal) -> None:
    from hardware_models.gpu_calibration import CALIBRATION_PATH

    old = yaml.safe_load(CALIBRATION_PATH.read_text())
    header = ("# Fitted constants of hardware_models/gpu.py, shared by every GPU preset (a preset may override\n"
              "# them under `calibration:`). Written by:\n"
              f"#   {' '.join(['.venv/bin/python benchmarks/calibrate_gpu.py', *sys.argv[1:]])}\n"
              "# from tests/fixtures/h200_pytorch_profile.json (NVIDIA H200, PyTorch 2.11, cuDNN 9.19), fitted on\n"
              "# resnet18, vgg16 and mobilenet_v2 in fp32 (TF32 convolutions) and fp16.\n"
              "# achievable_fraction: measured H200 ceiling / datasheet peak (matmul fp32 51.25/67, tf32\n"
              "# 356.1/494.7, fp16 658.4/989.5; int8 assumed as fp16; d2d copy 4272/4800 GB/s); used for GPUs\n"
              "# without measurements.\n")
    # the serving mode's section (benchmarks/calibrate_gpu_serving.py) and the evidence lines are kept
    data = {"achievable_fraction": old["achievable_fraction"], "calibration": cal.as_mapping(),
            **{k: v for k, v in old.items() if k not in ("achievable_fraction", "calibration")}}
    CALIBRATION_PATH.write_text(header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=110))
    print(f"wrote {CALIBRATION_PATH}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
