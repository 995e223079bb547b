"""Print the accuracy proxy's validation: every published row's in-sample residual (the stored fit, what a
command answers) and left-out residual (a fit that saw no row of its source), the left-out interval figures
(coverage, median width, expected-drop MAE, Spearman) inside the evidence envelope and on every row, and the
proxy against measurement on a real ONNX model with data (by default the digits CNN fixture).

    python -m tools.proxy_validation [--write] [--skip-model]
                                            [--onnx MODEL.onnx --data DATA.npz --calibration CAL.npz]
                                            [--plans 50] [--seeds 0 1 2]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from simulator.accuracy.calibration import (
    REPRODUCIBILITY_POINTS,
    _stored,
    calibrate_on_measurements,
    interval_band,
    published_calibration,
    published_interval,
    row_interval,
    write_published_fit,
    zoo_proxy,
)
from simulator.accuracy.measure import AccuracyMeter
from simulator.accuracy.npz import load_npz
from simulator.accuracy.published import PlanBuilder, unrepresentable_rows

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


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


def left_out_intervals(left_out: list[dict]) -> list[tuple[float, float]]:
    """Each left-out row's 80% interval, its band taken from the other sources' left-out residuals only (the
    row's own source never sets the width it is judged by)."""
    bands = {source: interval_band([r for r in left_out if r["source"] != source])
             for source in {r["source"] for r in left_out}}
    return [row_interval(r, bands[r["source"]]) for r in left_out]


def interval_figures(left_out: list[dict]) -> dict:
    """The four figures of the issue on the left-out rows: coverage of the 80% interval (a row within
    `REPRODUCIBILITY_POINTS` of it counts as covered: published top-1s of one configuration spread that much),
    its median width (points), the expected drop's MAE (points) and Spearman of predicted vs published drop."""
    intervals = np.array(left_out_intervals(left_out)).reshape(-1, 2)
    top1 = np.array([r["top1"] for r in left_out])
    drop = np.array([r["drop"] for r in left_out])
    predicted = np.array([r["predicted_drop"] for r in left_out])
    covered = (intervals[:, 0] - REPRODUCIBILITY_POINTS <= top1) & (top1 <= intervals[:, 1] + REPRODUCIBILITY_POINTS)
    return {"rows": len(left_out), "coverage": float(np.mean(covered)),
            "median_width": float(np.median(intervals[:, 1] - intervals[:, 0])),
            "mae_points": float(np.mean(np.abs(predicted - drop))), "spearman": spearman(predicted, drop)}


def published_table() -> None:
    """Print the stored fit's in-sample and leave-one-source-out residuals per row (regenerate with --write)."""
    stored = _stored()
    calibration = published_calibration()
    in_sample = {r["row_id"]: r for r in stored["in_sample"]}
    left_out = stored["leave_one_source_out"]
    print("Fit on every representable row:", {k: round(v, 3) for k, v in calibration.theta.items()},
          "robustness", {k: round(v, 3) for k, v in calibration.model_robustness.items()},
          "under reconstruction", {k: round(v, 3) for k, v in calibration.model_reconstruction.items()})
    print(f"\nPer row ({len(left_out)}): in-sample = the stored fit (what `autosplit accuracy` answers); left-out = a "
          "fit that saw no row of the row's source; env: inside the envelope of the other sources' rows")
    print(f"{'row':5} {'source':12} {'model':12} {'tier':14} {'gran':11} {'plan':46} {'fp32':>6} {'top1':>6} "
          f"{'in':>6} {'resid':>6} {'out':>6} {'resid':>6} env")
    for r in left_out:
        fit_row = in_sample[r["row_id"]]
        print(f"{r['row_id']:5} {r['source'][:12]:12} {r['model']:12} {r['tier']:14} {r['granularity']:11} "
              f"{r['plan'][:46]:46} {r['fp32_top1']:6.2f} {r['top1']:6.2f} {fit_row['predicted_top1']:6.2f} "
              f"{fit_row['error']:+6.2f} {r['predicted_top1']:6.2f} {r['error']:+6.2f} {'in' if r['inside'] else 'OUT'}")
    far = [r["row_id"] for r in stored["in_sample"] if abs(r["error"]) > 5]
    print(f"\nin-sample residuals above 5 points: {len(far)} rows {far} (their contradictions: "
          "simulator.accuracy.calibration's docstring)")
    print("\nLeave-one-source-out, per tier (every row):")
    for tier, v in tier_summary(left_out).items():
        print(f"  {tier:14} {v['rows']:3} rows: drop MAE {v['mae_points']:5.2f} points, Spearman {v['spearman']:.3f}")
    for tier, band in published_interval().items():
        print(f"80% interval of the stored proxy, {tier}: noise x exp({band['log_low']:.2f}) .. x "
              f"exp({band['log_high']:.2f}) ({band['rows']} informative left-out rows inside their envelope"
              f"{' of every tier: too few of its own' if band.get('pooled') else ''})")
    inside = [r for r in left_out if r["inside"]]
    for label, rows in (("inside the left-out envelope", inside), ("every row", left_out)):
        f = interval_figures(rows)
        print(f"Left-out, {label} ({f['rows']} rows): 80% interval coverage {f['coverage']:.0%}, median width "
              f"{f['median_width']:.1f} points, expected-drop MAE {f['mae_points']:.2f} points, Spearman "
              f"{f['spearman']:.3f}")
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
        cases.append(("resnet50", "calibrated", "per-channel", label, *r50.split(cut, 8, sent, other=sent), published))
    r18 = PlanBuilder("resnet18")
    for tier, published in (("naive", None), ("calibrated", 52.29), ("reconstruction", 69.58)):
        cases.append(("resnet18", tier, "per-tensor", "conv1 weights alone W4", *r18.only(r18.first, w=4), published))
    for w, a, published in ((2, 4, 62.31), (4, 4, 68.67)):
        cases.append(("resnet18", "reconstruction", "per-channel", f"W{w}A{a} first/last 8 (MQBench AdaRound)",
                      *r18.uniform(w, a), published))
    mb = PlanBuilder("mobilenet_v2")
    cases.append(("mobilenet_v2", "reconstruction", "per-channel", "W4A4 first/last 8 (MQBench 65.74-68.13)",
                  *mb.uniform(4, 4), None))
    for model, tier, granularity, label, wb, ab, published in cases:
        proxy = zoo_proxy(model, tier, granularity)
        expected = float(proxy.predict(wb, ab))
        low, high = (float(v) for v in proxy.predict_interval(wb, ab))
        shown = f"published {published:.2f}" if published is not None else ""
        where = "inside" if proxy.inside(wb, ab) else "OUTSIDE the envelope"
        print(f"  {model:12} {tier:14} {label:42} {expected:6.2f}  [{low:6.2f}, {high:6.2f}]  fp {proxy.fp_accuracy:.2f} "
              f"{where:20} {shown}")


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
