"""Print the accuracy proxy's validation: left-out errors on the published PTQ table, and proxy against
measurement on a real ONNX model with data (by default the digits CNN fixture).

    python -m simulator.accuracy.validation [--write] [--skip-model]
                                            [--onnx MODEL.onnx --data DATA.npz --calibration CAL.npz]
                                            [--plans 50] [--seeds 0 1 2]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from simulator.accuracy.calibration import (WELL_COVERED_BITS, _stored, calibrate_on_measurements, chance_accuracy,
                                            fp32_reference, inverse_link, link, published_calibration,
                                            published_interval, write_published_fit, zoo_proxy)
from simulator.accuracy.measure import AccuracyMeter, load_npz
from simulator.accuracy.published import PlanBuilder, unrepresentable_rows

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    def ranks(v):
        r = np.empty(len(v))
        r[np.argsort(v, kind="stable")] = np.arange(len(v))
        for value in np.unique(v):
            r[v == value] = r[v == value].mean()
        return r
    return float(np.corrcoef(ranks(np.asarray(a)), ranks(np.asarray(b)))[0, 1])


def tier_summary(left_out: list[dict]) -> dict[str, dict]:
    """Per tier: rows, mean absolute error of the drop (points), Spearman of predicted vs published drop."""
    out = {}
    for tier in ("naive", "calibrated", "reconstruction"):
        rows = [r for r in left_out if r["tier"] == tier]
        drop = np.array([r["drop"] for r in rows])
        predicted = np.array([r["predicted_drop"] for r in rows])
        out[tier] = {"rows": len(rows), "mae_points": float(np.mean(np.abs(predicted - drop))),
                     "spearman": spearman(predicted, drop)}
    return out


def interval_coverage(left_out: list[dict], bands: dict) -> float:
    """Fraction of left-out rows whose published top-1 lies inside the predicted 80% interval (the band of
    the row's lowest bit-width; per-tensor widening below the calibrated bits not applied here)."""
    shape = published_calibration().shape
    inside = 0
    for r in left_out:
        interval = bands["high_bits" if r["lowest_bits"] >= WELL_COVERED_BITS else "low_bits"]
        chance = chance_accuracy(fp32_reference()[r["model"]][1])
        x = inverse_link(r["predicted_top1"], r["fp32_top1"], chance, shape)
        low = link(x * np.exp(interval["log_high"]), r["fp32_top1"], chance, shape)
        high = link(x * np.exp(interval["log_low"]), r["fp32_top1"], chance, shape)
        inside += low - 0.5 <= r["top1"] <= high + 0.5
    return inside / len(left_out)


def published_table() -> None:
    """Print the stored leave-one-source-out table (regenerate with --write)."""
    calibration = published_calibration()
    left_out = _stored()["leave_one_source_out"]
    print("Fit on every representable row:", {k: round(v, 3) for k, v in calibration.theta.items()},
          {k: round(v, 3) for k, v in calibration.model_robustness.items()})
    print(f"\nLeave-one-source-out ({len(left_out)} rows; each predicted by a fit that saw no row of its source):")
    print(f"{'row':5} {'source':12} {'model':12} {'tier':14} {'gran':11} {'plan':52} {'fp32':>6} {'top1':>6} "
          f"{'pred':>6} {'error':>6}")
    for r in left_out:
        print(f"{r['row_id']:5} {r['source'][:12]:12} {r['model']:12} {r['tier']:14} {r['granularity']:11} "
              f"{r['plan'][:52]:52} {r['fp32_top1']:6.2f} {r['top1']:6.2f} {r['predicted_top1']:6.2f} {r['error']:+6.2f}")
    print()
    for tier, v in tier_summary(left_out).items():
        print(f"{tier:14} {v['rows']:3} rows: drop MAE {v['mae_points']:5.2f} points, Spearman {v['spearman']:.3f}")
    bands = published_interval()
    for name, band in bands.items():
        print(f"80% interval, {name}: noise x exp({band['log_low']:.2f}) .. x exp({band['log_high']:.2f}) "
              f"({band['rows']} rows)")
    print(f"left-out rows inside their interval (+-0.5 point): {interval_coverage(left_out, bands):.0%}")
    print("\nRows left out of the fit:")
    for row in unrepresentable_rows():
        print(f"  {row.row_id} {row.model:12} {row.method[:50]:50} {row.top1:6.2f}  {row.reason}")


def targets() -> None:
    """The issue's named predictions: Auto-Split's split plans, ResNet-18's conv1 alone, MobileNet-v2 W4A4."""
    print("\nNamed predictions (expected, 80% interval):")
    cases = []
    r50 = PlanBuilder("resnet50")
    for label, cut, sent, published in (("8.0_2_4", 2, 4, 21.8), ("8.0_12_4", 12, 4, 13.0), ("8.0_12_6", 12, 6, 73.1),
                                        ("8.0_12_8", 12, 8, 75.9), ("stem output at A1 (cut 2)", 2, 1, None),
                                        ("stem output at A2 (cut 2)", 2, 2, None)):
        cases.append(("resnet50", "calibrated", "per-channel", label, *r50.split(cut, 8, sent), published))
    r18 = PlanBuilder("resnet18")
    for tier, published in (("naive", None), ("calibrated", 52.29), ("reconstruction", 69.58)):
        cases.append(("resnet18", tier, "per-tensor", "conv1 weights alone W4", *r18.only(r18.first, w=4), published))
    mb = PlanBuilder("mobilenet_v2")
    cases.append(("mobilenet_v2", "reconstruction", "per-channel", "W4A4 first/last 8 (MQBench 65.74-68.13)",
                  *mb.uniform(4, 4), None))
    for model, tier, granularity, label, wb, ab, published in cases:
        proxy = zoo_proxy(model, tier, granularity)
        expected = float(proxy.predict(wb, ab))
        low, high = (float(v) for v in proxy.predict_interval(wb, ab))
        shown = f"published {published:.2f}" if published is not None else ""
        print(f"  {model:12} {tier:14} {label:42} {expected:6.2f}  [{low:6.2f}, {high:6.2f}]  fp {proxy.fp_accuracy:.2f} {shown}")


def real_model(onnx_path: Path, data: Path, calibration: Path | None, plans: int, seeds: list[int]) -> None:
    x, y = load_npz(data)
    meter = AccuracyMeter(onnx_path, x, y, load_npz(calibration)[0] if calibration else None)
    classes = int(meter.quantizer.logits(x[:1]).size)
    proxy = calibrate_on_measurements(meter, chance=100.0 / classes)
    n = len(meter.layers)
    print(f"\n{onnx_path.name}: {n} layers {meter.layers}, {len(y)} test samples, chance {100 / classes:.1f}%")
    print(f"sensitivities: weights {np.round(proxy.weight_sensitivity, 4).tolist()}, "
          f"activations {np.round(proxy.activation_sensitivity, 4).tolist()}, shape {proxy.shape:.3f}")
    print(f"{'plan':6} {'measured':>8} {'predicted':>9}")
    for w, a in ((16, 16), (8, 8), (6, 6), (4, 8), (4, 4), (3, 3), (2, 8), (8, 2), (2, 2)):
        print(f"W{w}A{a:<3} {meter.accuracy_of_lists([w] * n, [a] * n):8.2f} {proxy.predict_uniform(w, a):9.2f}")
    for seed in seeds:
        rng = np.random.default_rng(seed)
        wbits, abits = rng.integers(2, 9, size=(plans, n)), rng.integers(2, 9, size=(plans, n))
        measured = np.array([meter.accuracy_of_lists(list(w), list(a)) for w, a in zip(wbits, abits)])
        predicted = proxy.predict(wbits, abits)
        print(f"seed {seed}: {plans} random plans (bits uniform in 2..8): Spearman {spearman(predicted, measured):.3f}, "
              f"MAE {np.mean(np.abs(predicted - measured)):.2f} points, measured range "
              f"{measured.min():.1f}..{measured.max():.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", type=Path, default=FIXTURES / "digits_cnn.onnx")
    parser.add_argument("--data", type=Path, default=FIXTURES / "digits.npz")
    parser.add_argument("--calibration", type=Path, default=FIXTURES / "digits_calibration.npz")
    parser.add_argument("--plans", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--skip-table", action="store_true")
    parser.add_argument("--skip-model", action="store_true", help="only the published table")
    parser.add_argument("--write", action="store_true", help="refit on the published rows and store the fit and its "
                        "leave-one-source-out residuals (simulator/accuracy/data/proxy_fit.json)")
    args = parser.parse_args()
    if args.write:
        write_published_fit()
    if not args.skip_table:
        published_table()
        targets()
    if args.skip_model:
        return
    real_model(args.onnx, args.data, args.calibration, args.plans, args.seeds)


if __name__ == "__main__":
    main()
