"""Calibrate the GPU model's serving mode on published TensorRT results; print held-out errors.

    .venv/bin/python benchmarks/calibrate_gpu_serving.py           # leave-one-group-out table + full fit
    .venv/bin/python benchmarks/calibrate_gpu_serving.py --write   # also stores the constants and the
                                                                   # evidence line in gpu_calibration.yaml

Data: hardware_models/data/tensorrt_published.csv (copy of ../shared/data/gpu/tensorrt_published.csv),
ResNet-50 v1.5 (autosplit's zoo resnet50, torchvision's v1.5) on A100 SXM/PCIe, A10 and T4. How each row is
predicted (copies, Offline throughput, Paddle's framework floor) and which rows are left out is in
tools/gpu_serving_fit.py. A row group is one source on one GPU; each is held out in turn.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]


def held_out_summary(held_out) -> list[dict]:
    """Median and worst |error| per batch class and precision, and per batch class over all precisions."""
    from tools.gpu_serving_fit import batch_class

    out = []
    keys = sorted({(batch_class(p.row.batch), p.row.precision) for p in held_out})
    for bc in ("1", "8", "128+", "other"):
        for precision in ("all", "fp32", "fp16", "int8"):
            if precision != "all" and (bc, precision) not in keys:
                continue
            errors = [abs(p.error) for p in held_out if batch_class(p.row.batch) == bc
                      and precision in ("all", p.row.precision)]
            if errors:
                out.append({"batch": bc, "precision": precision, "rows": len(errors),
                            "median": float(np.median(errors)), "worst": float(max(errors))})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store the fit in hardware_models/gpu_calibration.yaml")
    args = parser.parse_args()

    from hardware_models import load_accelerator
    from hardware_models.gpu_calibration import default_calibration
    from simulator.graph import load_model
    from tools import gpu_serving_fit as fitting

    graph = load_model("resnet50")
    rows, left_out = fitting.read_rows()
    gpus = {preset: load_accelerator(preset) for preset in sorted({r.preset for r in rows})}
    cases = fitting.build_cases(rows, graph.layer_specs(), gpus)
    base, _ = default_calibration()
    held_out = fitting.leave_one_group_out(cases, base)
    print(f"{len(rows)} rows in {len({r.group for r in rows})} groups; {len(left_out)} left out "
          f"(Triton over gRPC)\n\nleave-one-group-out, per row:")
    print(f"{'id':>3s} {'group':17s} {'prec':5s} {'batch':>5s} {'measured_ms':>11s} {'predicted_ms':>12s} {'error':>7s}")
    for p in held_out:
        unit = 1e3
        print(f"{p.row.row_id:3d} {p.row.group:17s} {p.row.precision:5s} {p.row.batch:5d} "
              f"{p.row.measured_s * unit:11.4f} {p.predicted_s * unit:12.4f} {p.error:+7.1%}"
              + ("  (per image, Offline)" if p.row.per_image else ""))
    print("\nheld-out |error| by batch and precision (targets: median <= 15%, worst <= 35% at batch 1, 8, 128)")
    summary = held_out_summary(held_out)
    for s in summary:
        print(f"  batch {s['batch']:5s} {s['precision']:5s} rows {s['rows']:3d}  median {s['median']:6.1%}  "
              f"worst {s['worst']:6.1%}")
    by_gpu = fitting.leave_one_gpu_out(cases, base)
    print("\nleave-one-GPU-out (every source of the GPU held out; target median 30%, worst 2x):")
    for gpu_name in sorted({p.row.group.split("/")[1] for p in by_gpu}):
        items = [p for p in by_gpu if p.row.group.endswith("/" + gpu_name)]
        errors = [abs(p.error) for p in items]
        ratio = max(max(p.predicted_s / p.row.measured_s, p.row.measured_s / p.predicted_s) for p in items)
        print(f"  {gpu_name:10s} rows {len(items):3d}  median {np.median(errors):6.1%}  worst ratio {ratio:.2f}x")
    errors = [abs(p.error) for p in by_gpu]
    ratio = max(max(p.predicted_s / p.row.measured_s, p.row.measured_s / p.predicted_s) for p in by_gpu)
    print(f"  all        rows {len(by_gpu):3d}  median {np.median(errors):6.1%}  worst ratio {ratio:.2f}x")
    values = fitting.fit(cases, base)
    in_sample = fitting.predictions(cases, values, base)
    errors = [abs(p.error) for p in in_sample]
    print(f"\nin-sample (all groups): median {np.median(errors):.1%}, worst {max(errors):.1%}")
    print("constants:", {k: float(f"{v:.4g}") for k, v in values.items()})
    if args.write:
        write(values, summary)
    return 0


def write(values: dict, summary: list[dict]) -> None:
    from hardware_models.gpu_calibration import CALIBRATION_PATH

    data = yaml.safe_load(CALIBRATION_PATH.read_text())
    header = CALIBRATION_PATH.read_text().split("\nachievable_fraction")[0]
    serving = {
        "source": "hardware_models/data/tensorrt_published.csv (ResNet-50; MLPerf, Paddle-TRT, trtexec rows on "
                  "A100 SXM/PCIe, A10, T4); written by .venv/bin/python benchmarks/calibrate_gpu_serving.py --write",
        "calibration": {
            "tensor_efficiency": {k: round(values[f"tensor_efficiency.{k}"], 4) for k in ("tf32", "fp16", "int8")},
            "mac_bandwidth_efficiency": round(values["mac_bandwidth_efficiency"], 4),
            "fixed_s": {c: float(f"{values['fixed_s.mac' if c in ('conv', 'pwconv', 'dwconv', 'gemm') else 'fixed_s.other']:.4g}")
                        for c in ("conv", "pwconv", "dwconv", "gemm", "batchnorm", "eltwise", "pool", "copy",
                                  "transpose")},
            "graph_launch_s": float(f"{values['graph_launch_s']:.4g}"),
        },
        "paddle_floor_s": float(f"{values['paddle_floor_s']:.4g}"),
        "mlperf_time_factor": float(f"{values['mlperf_time_factor']:.4g}"),
    }
    by = {(s["batch"], s["precision"]): s for s in summary}
    def worst_16_8(b):
        return max(by[(b, p)]["worst"] for p in ("fp16", "int8") if (b, p) in by)

    parts = [f"batch {b}: median {by[(b, 'all')]['median']:.0%}, worst {by[(b, 'all')]['worst']:.0%} "
             f"(fp16/int8 worst {worst_16_8(b):.0%})" for b in ("1", "8", "128+") if (b, "all") in by]
    evidence = dict(data.get("evidence") or {})
    evidence["serving"] = ("TensorRT engines: fitted on 50 published ResNet-50 results (MLPerf Inference, "
                           "Paddle-TRT, trtexec) on A100, A10 and T4; leave-one-source-and-GPU-out |error| "
                           + "; ".join(parts) + "; the worst rows are TF32 (fp32) ones (benchmarks/calibrate_gpu_serving.py).")
    evidence.setdefault("framework", "PyTorch 2.11 + cuDNN 9.19 on an H200: leave-one-network-out on ResNet-18, "
                        "VGG-16, MobileNet-v2, about 11% mean error (graph at batch 1, eager at batch 128; "
                        "benchmarks/calibrate_gpu.py).")
    data["serving"] = serving
    data["evidence"] = evidence
    order = ["achievable_fraction", "calibration", "serving", "evidence"]
    text = header + "\n" + yaml.safe_dump({k: data[k] for k in order if k in data}, sort_keys=False,
                                          default_flow_style=None, width=110)
    CALIBRATION_PATH.write_text(text)
    print(f"wrote {CALIBRATION_PATH}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
