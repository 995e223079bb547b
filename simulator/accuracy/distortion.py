"""Quantization distortion: the relative mean-squared error of quantizing a layer's weights or activations.

Distortion D is noise power over signal power (dimensionless), so layers of any scale are comparable:
- weights: symmetric, per output channel (or per tensor) with signed levels -(2^(b-1)-1)..(2^(b-1)-1)
  (1 bit: {-c, +c}); D = mean over output channels of sum((w - q)^2) / sum(w^2) of that channel;
- activations: asymmetric, per tensor, 2^b levels on [lo, hi] with zero exactly representable;
  D = sum((x - q)^2) / sum(x^2).

The clipping range comes from the PTQ method tier: `naive` takes the min-max range, `calibrated` and
`reconstruction` take the range that minimises the MSE (a grid search; reconstruction's extra gain from
optimising the rounding is the proxy's business, not a different quantizer here).

Two sources of distortion: real arrays (`weight_distortion`, `activation_distortion`, the same quantizers
that `fake_quant` puts into an ONNX model), or stated distribution assumptions when there are no weights or
no data (`gaussian_weight_distortion`: He-initialised Gaussian weights, channel scales log-normal with a
stated spread to model batchnorm folding; `gaussian_activation_distortion`: ReLU'd Gaussian activations, or
signed Gaussian where no ReLU precedes). Bits 16 stand for the floating-point reference: distortion 0.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from simulator.choices import TIERS

BIT_WIDTHS = (1, 2, 3, 4, 5, 6, 7, 8, 16)
FLOAT_BITS = 16
# clip candidates as fractions of the min-max range, for the MSE-optimal search on real arrays
_CLIP_FRACTIONS = np.concatenate([np.geomspace(0.01, 0.2, 16, endpoint=False), np.linspace(0.2, 1.0, 49)])
_REFINE = np.linspace(-0.06, 0.06, 13)  # a second, finer pass around the best coarse fraction
_MAX_SEARCH_ELEMENTS = 1 << 18


def clip_method(tier: str) -> str:
    """'minmax' for the naive tier, 'mse' for the others."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; expected one of {', '.join(TIERS)}")
    return "minmax" if tier == "naive" else "mse"


# --- quantizers on real arrays ---------------------------------------------------------------------------
def quantize_symmetric(w: np.ndarray, clip: np.ndarray | float, bits: int) -> np.ndarray:
    """Quantize-dequantize `w` symmetrically to `bits` with clipping threshold `clip` (broadcast)."""
    clip = np.maximum(np.asarray(clip, dtype=np.float64), 1e-30)
    if bits >= FLOAT_BITS:
        return np.asarray(w, dtype=np.float64)
    if bits == 1:
        return np.where(w >= 0, clip, -clip)
    levels = 2 ** (bits - 1) - 1
    step = clip / levels
    return np.clip(np.round(w / step), -levels, levels) * step


def asymmetric_grid(lo: float, hi: float, bits: int) -> tuple[float, float]:
    """(step, zero_point) of an asymmetric `bits` grid covering [lo, hi] with 0.0 exactly representable."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    step = max(hi - lo, 1e-30) / (2 ** bits - 1)
    zero_point = float(np.clip(np.round(-lo / step), 0, 2 ** bits - 1))
    return step, zero_point


def quantize_asymmetric(x: np.ndarray, lo: float, hi: float, bits: int) -> np.ndarray:
    """Quantize-dequantize `x` to `bits` on the asymmetric grid of [lo, hi]."""
    if bits >= FLOAT_BITS:
        return np.asarray(x, dtype=np.float64)
    step, zero_point = asymmetric_grid(lo, hi, bits)
    return (np.clip(np.round(x / step) + zero_point, 0, 2 ** bits - 1) - zero_point) * step


def _as_channels(w: np.ndarray) -> np.ndarray:
    """Weights as (output channels, fan-in): conv OIHW and linear (out, in) both put outputs first."""
    w = np.asarray(w, dtype=np.float64)
    return w.reshape(w.shape[0], -1) if w.ndim > 1 else w.reshape(1, -1)


def weight_clip(w: np.ndarray, bits: int, tier: str = "calibrated", granularity: str = "per-channel") -> np.ndarray:
    """Clipping threshold per output channel, shape (channels, 1) (all equal for per-tensor)."""
    w2 = _as_channels(w)
    per_channel = granularity == "per-channel"
    absmax = np.abs(w2).max(axis=1, keepdims=True) if per_channel else np.full((w2.shape[0], 1), np.abs(w2).max())
    if clip_method(tier) == "minmax" or bits >= FLOAT_BITS:
        return absmax
    sample = w2 if w2.shape[1] * w2.shape[0] <= _MAX_SEARCH_ELEMENTS else w2[:, :: int(np.ceil(w2.size / _MAX_SEARCH_ELEMENTS))]
    def best_of(fractions: np.ndarray) -> np.ndarray:
        """fractions: (candidates, channels) -> the best fraction per channel."""
        errors = []
        for fraction in fractions:
            err = (sample - quantize_symmetric(sample, absmax * fraction[:, None], bits)) ** 2
            errors.append(err.sum(axis=1) if per_channel else np.full(w2.shape[0], err.sum()))
        return fractions[np.argmin(np.stack(errors), axis=0), np.arange(w2.shape[0])]

    coarse = best_of(np.repeat(_CLIP_FRACTIONS[:, None], w2.shape[0], axis=1))
    fine = best_of(np.clip(coarse[None, :] * (1 + _REFINE[:, None]), 1e-3, 1.0))
    return absmax * fine[:, None]


def quantize_weight(w: np.ndarray, bits: int, tier: str = "calibrated", granularity: str = "per-channel") -> np.ndarray:
    """`w` quantize-dequantized (same shape, float64)."""
    w2 = _as_channels(w)
    return quantize_symmetric(w2, weight_clip(w, bits, tier, granularity), bits).reshape(np.shape(w))


def _channel_relative_mse(w2: np.ndarray, q2: np.ndarray) -> float:
    power = (w2 ** 2).sum(axis=1)
    noise = ((w2 - q2) ** 2).sum(axis=1)
    keep = power > 0
    return float(np.mean(noise[keep] / power[keep])) if keep.any() else 0.0


def weight_distortion(w: np.ndarray, bits: int, tier: str = "calibrated", granularity: str = "per-channel") -> float:
    """Relative MSE of quantizing real weights `w` (output channels first)."""
    if bits >= FLOAT_BITS:
        return 0.0
    w2 = _as_channels(w)
    return _channel_relative_mse(w2, quantize_symmetric(w2, weight_clip(w, bits, tier, granularity), bits))


def activation_range(x: np.ndarray, bits: int, tier: str = "calibrated") -> tuple[float, float]:
    """Clipping range (lo, hi) of an activation tensor, from calibration samples `x`."""
    x = np.asarray(x, dtype=np.float64).ravel()
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    if clip_method(tier) == "minmax" or bits >= FLOAT_BITS:
        return lo, hi
    sample = x if x.size <= _MAX_SEARCH_ELEMENTS else x[:: int(np.ceil(x.size / _MAX_SEARCH_ELEMENTS))]
    sample = np.ascontiguousarray(sample)
    buffer = np.empty_like(sample)

    def best_of(fractions: np.ndarray) -> float:
        errors = [_asymmetric_error(sample, lo * f, hi * f, bits, buffer) for f in fractions]
        return float(fractions[int(np.argmin(errors))])

    coarse = best_of(_CLIP_FRACTIONS)
    fraction = best_of(np.clip(coarse * (1 + _REFINE), 1e-3, 1.0))
    return lo * fraction, hi * fraction


def _asymmetric_error(x: np.ndarray, lo: float, hi: float, bits: int, buffer: np.ndarray) -> float:
    """sum((x - quantize_asymmetric(x, lo, hi, bits)) ** 2), the same operations in place in `buffer` (as large
    as `x`): bit for bit the same sum without allocating each step's array (the range search's cost)."""
    step, zero_point = asymmetric_grid(lo, hi, bits)
    np.divide(x, step, out=buffer)
    np.round(buffer, out=buffer)
    # clip(r + zp, 0, 2^b - 1) - zp on whole numbers below 2^53 is exactly clip(r, -zp, 2^b - 1 - zp)
    np.clip(buffer, -zero_point, 2 ** bits - 1 - zero_point, out=buffer)
    buffer *= step
    np.subtract(x, buffer, out=buffer)
    np.square(buffer, out=buffer)
    return float(buffer.sum())


def activation_distortion(x: np.ndarray, bits: int, tier: str = "calibrated",
                          value_range: tuple[float, float] | None = None) -> float:
    """Relative MSE of quantizing activation samples `x` per tensor (range from `x` unless given)."""
    if bits >= FLOAT_BITS:
        return 0.0
    x = np.asarray(x, dtype=np.float64).ravel()
    lo, hi = value_range if value_range is not None else activation_range(x, bits, tier)
    power = float(np.sum(x ** 2))
    return float(np.sum((x - quantize_asymmetric(x, lo, hi, bits)) ** 2) / power) if power > 0 else 0.0


# --- stated distribution assumptions ------------------------------------------------------------------
DENSE_CHANNEL_SCALE_SPREAD = 0.4
"""Assumed std of log(channel scale) of a dense conv/linear after batchnorm folding (scales span ~5x)."""
DEPTHWISE_CHANNEL_SCALE_SPREAD = 1.5
"""Assumed std of log(channel scale) of a depthwise conv after folding: ranges span two to three orders of
magnitude (Nagel et al., Data-Free Quantization, ICCV 2019, Fig. 2 for MobileNet-v2)."""

_Z = np.linspace(-12.0, 12.0, 48001)
_PDF = np.exp(-_Z ** 2 / 2) / np.sqrt(2 * np.pi) * (_Z[1] - _Z[0])
_CDF = np.cumsum(_PDF)
_LOG_CLIPS = np.linspace(np.log(0.02), np.log(1e4), 400)


@cache
def _expected_max(count: float, one_sided: bool) -> float:
    """E[max] of `count` iid |N(0,1)| (or N(0,1) one-sided: the largest value, taken >= 0)."""
    cdf = _CDF[_Z >= 0]
    single = cdf if one_sided else np.clip(2 * cdf - 1, 0, 1)  # P(z <= t) or P(|z| <= t)
    return float(np.sum(1 - single ** max(count, 1.0)) * (_Z[1] - _Z[0]))


# The three tables below depend on nothing but the bit-width: they are computed once, stored in
# GAUSSIAN_TABLES (`python -m simulator.accuracy.distortion --write-tables`) and read from there, which saves
# every command that builds an accuracy proxy about two seconds; a test recomputes them and compares exactly.
GAUSSIAN_TABLES = Path(__file__).parent / "data" / "gaussian_tables.json"


@lru_cache(maxsize=1)
def _stored_tables() -> dict[str, list[float]]:
    try:
        return json.loads(GAUSSIAN_TABLES.read_text())
    except (OSError, ValueError):
        return {}


def _stored(key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    stored = _stored_tables().get(key)
    return np.array(stored, dtype=np.float64) if stored is not None else compute()


def write_gaussian_tables() -> None:
    """Compute every Gaussian table and store them in GAUSSIAN_TABLES (exact float64 values, as JSON)."""
    tables = {f"symmetric_{b}": _compute_symmetric_mse_table(b).tolist() for b in BIT_WIDTHS if b < FLOAT_BITS}
    tables |= {f"rounding_{b}": _compute_rounding_table(b).tolist() for b in BIT_WIDTHS if b < FLOAT_BITS}
    tables |= {f"activation_{b}_{relu}": _compute_activation_table(b, relu).tolist()
               for b in BIT_WIDTHS if b < FLOAT_BITS for relu in (True, False)}
    GAUSSIAN_TABLES.write_text(json.dumps(tables))


@cache
def _gaussian_symmetric_mse_table(bits: int) -> np.ndarray:
    return _stored(f"symmetric_{bits}", lambda: _compute_symmetric_mse_table(bits))


@cache
def _gaussian_rounding_table(bits: int) -> np.ndarray:
    return _stored(f"rounding_{bits}", lambda: _compute_rounding_table(bits))


def _compute_symmetric_mse_table(bits: int) -> np.ndarray:
    """E[(z - Q(z))^2] for z ~ N(0,1), symmetric `bits` quantizer, at each clip in exp(_LOG_CLIPS)."""
    out = np.empty(_LOG_CLIPS.size)
    for i, clip in enumerate(np.exp(_LOG_CLIPS)):
        out[i] = np.sum(_PDF * (_Z - quantize_symmetric(_Z, clip, bits)) ** 2)
    return out


def _compute_rounding_table(bits: int) -> np.ndarray:
    """E[(z - Q(z))^2] for a min-max clip at each exp(_LOG_CLIPS): no sample exceeds its own maximum, so
    only rounding error counts."""
    out = np.empty(_LOG_CLIPS.size)
    for i, clip in enumerate(np.exp(_LOG_CLIPS)):
        if bits == 1:
            out[i] = np.sum(_PDF * (np.abs(_Z) - clip) ** 2)
        else:
            step = clip / (2 ** (bits - 1) - 1)
            out[i] = np.sum(_PDF * (_Z - np.round(_Z / step) * step) ** 2)
    return out


def _gaussian_rounding_mse(clip: np.ndarray | float, bits: int) -> np.ndarray | float:
    out = np.interp(np.log(np.maximum(clip, 1e-12)), _LOG_CLIPS, _gaussian_rounding_table(bits))
    return float(out) if np.ndim(out) == 0 else out


def _gaussian_symmetric_mse(clip: np.ndarray, bits: int) -> np.ndarray:
    return np.interp(np.log(np.maximum(clip, 1e-12)), _LOG_CLIPS, _gaussian_symmetric_mse_table(bits))


@cache
def gaussian_weight_distortion(fan_in: int, channels: int, bits: int, tier: str = "calibrated",
                               granularity: str = "per-channel", scale_spread: float = DENSE_CHANNEL_SCALE_SPREAD) -> float:
    """Relative MSE of quantizing He-initialised Gaussian weights (`channels` x `fan_in`).

    Per channel the distortion depends only on the clip in units of the channel's std; per tensor the
    channels' stds are log-normal with std `scale_spread` and share one clip, so small channels suffer.
    """
    if bits >= FLOAT_BITS:
        return 0.0
    minmax = clip_method(tier) == "minmax"
    if granularity == "per-channel":
        if minmax:
            return float(_gaussian_rounding_mse(_expected_max(fan_in, one_sided=False), bits))
        # the MSE-optimal clip of a finite channel never does worse than its own min-max range
        naive = _gaussian_rounding_mse(_expected_max(fan_in, one_sided=False), bits)
        return min(float(naive), float(_gaussian_symmetric_mse_table(bits).min()))
    n = max(1, min(int(channels), 512))
    quantiles = np.interp((np.arange(n) + 0.5) / n, _CDF, _Z)
    scales = np.exp(scale_spread * quantiles)
    scales /= np.sqrt(np.mean(scales ** 2))
    if minmax:
        clip = float(scales.max()) * _expected_max(fan_in * max(1.0, channels / n), one_sided=False)
        return float(np.mean(_gaussian_rounding_mse(clip / scales, bits)))
    candidates = np.exp(_LOG_CLIPS)[:, None] * scales.max()
    absolute = np.sum(scales ** 2 * _gaussian_symmetric_mse(candidates / scales, bits), axis=1)
    clip = float(candidates[int(np.argmin(absolute)), 0])
    return float(np.mean(_gaussian_symmetric_mse(clip / scales, bits)))


@cache
def gaussian_activation_distortion(elements: int, bits: int, tier: str = "calibrated", relu: bool = True) -> float:
    """Relative MSE of quantizing per tensor a ReLU'd Gaussian activation (or a signed one, `relu=False`).

    `elements` is the number of calibration samples the min-max range is taken over (the naive tier's
    range grows with it as the expected maximum of that many Gaussians).
    """
    if bits >= FLOAT_BITS:
        return 0.0
    table = _gaussian_activation_table(bits, relu)
    if clip_method(tier) == "minmax":
        return float(np.interp(np.log(_expected_max(elements, one_sided=True)), _LOG_RANGES, table))
    return float(table.min())


_LOG_RANGES = np.linspace(np.log(0.05), np.log(12.0), 300)


@cache
def _gaussian_activation_table(bits: int, relu: bool) -> np.ndarray:
    return _stored(f"activation_{bits}_{relu}", lambda: _compute_activation_table(bits, relu))


def _compute_activation_table(bits: int, relu: bool) -> np.ndarray:
    """Relative MSE of the asymmetric `bits` grid over [0, hi] (ReLU) or [-hi, hi] at each exp(_LOG_RANGES)."""
    x = np.maximum(_Z, 0.0) if relu else _Z
    power = float(np.sum(_PDF * x ** 2))
    return np.array([np.sum(_PDF * (x - quantize_asymmetric(x, 0.0 if relu else -hi, hi, bits)) ** 2) / power
                     for hi in np.exp(_LOG_RANGES)])


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--write-tables"]:
        write_gaussian_tables()
        print(f"wrote {GAUSSIAN_TABLES}")
