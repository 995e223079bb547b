"""Print the accuracy proxy's validation: left-out errors on the published PTQ table, and proxy against
measurement on a real ONNX model with data (by default the digits CNN fixture).

    python -m simulator.accuracy.validation [--onnx MODEL.onnx --data DATA.npz --calibration CAL.npz]
                                            [--plans 50] [--seeds 0 1 2]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

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


def published_table() -> None:
    from simulator.accuracy.calibration import fit, leave_one_source_out, predict_rows, published_rows

    rows = published_rows()
    calibration = fit(rows)
    in_sample = predict_rows(calibration, rows)
    print("Fit on every non-edge-only row:", {k: round(float(v), 4) if isinstance(v, float) else v
                                              for k, v in vars(calibration).items() if k != "model_robustness"},
          {k: round(float(v), 3) for k, v in calibration.model_robustness.items()})
    print()
    print(f"{'model':13} {'source':34} {'method':28} {'tier':14} {'gran':11} {'bits':5} {'fp32':>6} {'top1':>6} "
          f"{'left-out':>8} {'error':>6} {'in-fit':>6}")
    fitted_of = {(r.model, r.source, r.method, r.weight_bits, r.activation_bits, r.granularity): p
                 for r, p in zip(rows, in_sample)}
    for r in leave_one_source_out(rows):
        fitted = fitted_of[(r["model"], r["source"], r["method"], int(r["bits"][1:r["bits"].index("A")]),
                            int(r["bits"][r["bits"].index("A") + 1:]), r["granularity"])]
        mark = " (edge-only: never fitted)" if r["edge_only"] else ""
        print(f"{r['model']:13} {r['source'][:34]:34} {r['method'][:28]:28} {r['tier']:14} {r['granularity']:11} "
              f"{r['bits']:5} {r['fp32_top1']:6.2f} {r['top1']:6.2f} {r['predicted_top1']:8.2f} {r['error']:+6.2f} "
              f"{fitted:6.2f}{mark}")


def real_model(onnx_path: Path, data: Path, calibration: Path | None, plans: int, seeds: list[int]) -> None:
    from simulator.accuracy.calibration import calibrate_on_measurements
    from simulator.accuracy.measure import AccuracyMeter, load_npz

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
    args = parser.parse_args()
    if not args.skip_table:
        published_table()
    real_model(args.onnx, args.data, args.calibration, args.plans, args.seeds)


if __name__ == "__main__":
    main()
