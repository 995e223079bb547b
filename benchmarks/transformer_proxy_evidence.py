"""The zoo proxy against the published vision-transformer PTQ rows (simulator/accuracy/data/ptq_vit_published.csv).

    python benchmarks/transformer_proxy_evidence.py

For every representable row (PTQ4ViT, RepQ-ViT on DeiT-B / ViT-B -> vit_b_16 and Swin-T -> swin_t): the published
drop (against the row's own FP32) and the zoo proxy's expected drop and 80% interval for the same plan (drops are
compared, not accuracies: the papers' weights are not torchvision's). Then, per model, the best single
robustness factor on the noise (the one scalar per model the CNN fit gives a model with rows of its own) and its
rms error: how far the proxy's structure can follow these rows at all.
"""
from __future__ import annotations

import numpy as np

from simulator.accuracy.calibration import link, noise_of_rows, published_calibration, zoo_proxy
from simulator.accuracy.published import transformer_rows


def main() -> None:
    rows, skipped = transformer_rows()
    proxies = {key: zoo_proxy(*key) for key in dict.fromkeys((r.model, r.tier, r.granularity) for r in rows)}
    print(f"{'row':4} {'model':9} {'plan':44} {'method':30} {'drop':>6} {'proxy':>6}  80% interval")
    for r in rows:
        proxy = proxies[(r.model, r.tier, r.granularity)]
        wb, ab = np.array(r.weight_bits), np.array(r.activation_bits)
        drop = proxy.fp_accuracy - float(proxy.predict(wb, ab))
        low, high = (proxy.fp_accuracy - float(end) for end in proxy.predict_interval(wb, ab))
        print(f"{r.row_id:4} {r.model:9} {r.description[:44]:44} {r.method[:30]:30} {r.drop:6.2f} {drop:6.2f}  "
              f"{high:6.2f} .. {low:6.2f}")
    print(f"{len(skipped)} rows not representable (LayerNorm and Softmax quantized)")

    calibration = published_calibration()
    noise = noise_of_rows(calibration, rows)
    factors = np.exp(np.linspace(-8.0, 4.0, 1201))
    for model in dict.fromkeys(r.model for r in rows):
        mine = [i for i, r in enumerate(rows) if r.model == model]
        fp = np.array([rows[i].fp32_top1 for i in mine])
        top1 = np.array([rows[i].top1 for i in mine])
        predicted = link(factors[:, None] * noise[mine][None, :], fp, 0.1, calibration.shape)
        errors = np.sqrt(np.mean((predicted - top1) ** 2, axis=1))
        best = int(np.argmin(errors))
        print(f"{model}: best single robustness {factors[best]:.3g}, rms error {errors[best]:.2f} points over "
              f"{len(mine)} rows (link shape {calibration.shape:.2f}, fitted on the CNN rows)")


if __name__ == "__main__":
    main()
