"""The accuracy proxy: predicted accuracy = g(sum over layers of s_i * D_i(bits_i)).

For a plan with weight bits w_i and activation bits a_i per layer, the weighted distortion is

    x = sum_i  s^w_i * D^w_i(w_i)  +  s^a_i * D^a_i(a_i)

(D: relative MSE tables from `distortion`, s: non-negative sensitivities), and

    g(x) = chance + (fp - chance) * exp(-x ** shape)

is decreasing in x, equals the floating-point accuracy at x = 0 and tends to chance level. Because x is a
sum of per-layer terms, the search can compute an exact front by dynamic programming over x, then map x
through g. Tables are monotone non-increasing in bits, so the prediction never falls when a bit-width rises.
Bits index the columns of `BIT_WIDTHS` (1..8, 16); 16 (or more) is the float reference, distortion 0.

The interval: every term's noise is uncertain by a factor, exp(log_low) .. exp(log_high) from the calibration's
left-out residuals, widened per tensor and bit-width (`*_extrapolation`, in log units) where a plan leaves
what the calibration covered. The optimistic and pessimistic ends are sums of per-layer terms too, so a search
can bound either end exactly; `cost_tables(end)` gives them.

The evidence envelope: `weight_floor` / `activation_floor`, the lowest bits of each tensor the calibration
covers (`inside`, `inside_table`); a per-layer constraint, so it too keeps an exact search exact.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator.accuracy.distortion import (
    BIT_WIDTHS,
    DENSE_CHANNEL_SCALE_SPREAD,
    DEPTHWISE_CHANNEL_SCALE_SPREAD,
    FLOAT_BITS,
    activation_distortion,
    gaussian_activation_distortion,
    gaussian_weight_distortion,
    weight_distortion,
)
from simulator.accuracy.sensitivity import is_depthwise
from simulator.graph.ir import DATA_OPS, POOL_OPS, Graph

NONNEGATIVE_OPS = ("relu", "relu6")
ENDS = ("expected", "pessimistic", "optimistic")
ASSUMED_CALIBRATION_IMAGES = 256
"""Images a naive (min-max) activation range is taken over, in the distribution-assumption mode."""


def bit_columns(bits: np.ndarray) -> np.ndarray:
    """Column of each bit-width in BIT_WIDTHS (>= 16 is the float column); ValueError for 9..15 or < 1."""
    bits = np.asarray(bits, dtype=np.int64)
    lookup = np.full(FLOAT_BITS + 1, -1)
    lookup[list(BIT_WIDTHS)] = np.arange(len(BIT_WIDTHS))
    clipped = np.minimum(bits, FLOAT_BITS)
    if np.any(clipped < 1) or np.any(lookup[np.maximum(clipped, 0)] < 0):
        bad = sorted(set(int(b) for b in bits.ravel() if b < 1 or (8 < b < FLOAT_BITS)))
        raise ValueError(f"unsupported bit-widths {bad}; expected 1..8 or 16")
    return lookup[clipped]


@dataclass
class AccuracyProxy:
    """Per-layer distortion tables, sensitivities and the link g of one model, tier and granularity.

    `weight_distortion` and `activation_distortion` are (layers, len(BIT_WIDTHS)) arrays, columns in
    `bits` order; `weight_sensitivity` and `activation_sensitivity` are (layers,) arrays; accuracies in percent.
    """

    layers: list[str]
    weight_distortion: np.ndarray
    activation_distortion: np.ndarray
    weight_sensitivity: np.ndarray
    activation_sensitivity: np.ndarray
    fp_accuracy: float
    chance_accuracy: float
    shape: float = 0.5
    tier: str = "calibrated"
    granularity: str = "per-channel"
    distortion_source: str = ""
    sensitivity_source: str = ""
    bits: tuple[int, ...] = field(default=BIT_WIDTHS)
    log_low: float = 0.0
    log_high: float = 0.0
    weight_extrapolation: np.ndarray | None = None
    activation_extrapolation: np.ndarray | None = None
    test_samples: int = 0
    """Size of the test set a measured accuracy is taken on (0: none): the interval adds its sampling error."""
    weight_floor: np.ndarray | None = None
    activation_floor: np.ndarray | None = None
    """The evidence envelope: (layers,) the lowest bits of each tensor that the calibration covers (None: 1,
    everything inside). Searches keep every tensor at or above its floor unless told to extrapolate."""

    def __post_init__(self) -> None:
        # more bits never hurt: a finer grid could always mimic the coarser one's error level
        self.weight_distortion = np.minimum.accumulate(np.asarray(self.weight_distortion, float), axis=1)
        self.activation_distortion = np.minimum.accumulate(np.asarray(self.activation_distortion, float), axis=1)
        self.weight_sensitivity = np.maximum(np.asarray(self.weight_sensitivity, float), 0.0)
        self.activation_sensitivity = np.maximum(np.asarray(self.activation_sensitivity, float), 0.0)
        shape = (len(self.layers), len(self.bits))
        if self.weight_distortion.shape != shape or self.activation_distortion.shape != shape:
            raise ValueError(f"distortion tables must be {shape}")
        if self.log_low > 0 or self.log_high < 0:
            raise ValueError("the interval must contain the prediction: log_low <= 0 <= log_high")
        zeros = np.zeros(shape)
        self.weight_extrapolation = zeros if self.weight_extrapolation is None else np.asarray(self.weight_extrapolation, float)
        self.activation_extrapolation = (zeros if self.activation_extrapolation is None
                                         else np.asarray(self.activation_extrapolation, float))
        ones = np.ones(len(self.layers), int)
        self.weight_floor = ones if self.weight_floor is None else np.asarray(self.weight_floor, int)
        self.activation_floor = ones if self.activation_floor is None else np.asarray(self.activation_floor, int)

    def inside(self, weight_bits: np.ndarray, activation_bits: np.ndarray) -> np.ndarray:
        """Whether plans (bits (plans, layers) or (layers,)) keep every tensor inside the evidence envelope."""
        assert self.weight_floor is not None and self.activation_floor is not None  # __post_init__
        return np.asarray(((np.asarray(weight_bits) >= self.weight_floor)
                           & (np.asarray(activation_bits) >= self.activation_floor)).all(-1))

    def inside_table(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(weights, activations) (layers, len(bits)) bool: each tensor at each bit-width inside the envelope."""
        assert self.weight_floor is not None and self.activation_floor is not None  # __post_init__
        bits = np.asarray(bits)[None, :]
        return bits >= self.weight_floor[:, None], bits >= self.activation_floor[:, None]

    # --- the additive part ----------------------------------------------------------------------------
    @property
    def weight_cost(self) -> np.ndarray:
        """s^w_i * D^w_i(b): (layers, bits), the per-layer terms of the weighted sum."""
        return self.weight_sensitivity[:, None] * self.weight_distortion

    @property
    def activation_cost(self) -> np.ndarray:
        """s^a_i * D^a_i(b): (layers, bits)."""
        return self.activation_sensitivity[:, None] * self.activation_distortion

    def cost_tables(self, end: str = "expected") -> tuple[np.ndarray, np.ndarray]:
        """(weight, activation) (layers, bits) terms at one end of the interval: `expected`, `pessimistic`
        (every term's noise at its upper factor: the lowest accuracy) or `optimistic`."""
        if end == "expected":
            return self.weight_cost, self.activation_cost
        if end not in ENDS:
            raise ValueError(f"unknown end {end!r}; expected one of {', '.join(ENDS)}")
        sign, base = (1.0, self.log_high) if end == "pessimistic" else (-1.0, self.log_low)
        assert self.weight_extrapolation is not None and self.activation_extrapolation is not None  # __post_init__
        out = []
        for cost, extra in ((self.weight_cost, self.weight_extrapolation), (self.activation_cost, self.activation_extrapolation)):
            scaled = cost * np.exp(base + sign * extra)
            # a term never grows with more bits: keep both ends non-increasing along the bits, as the expected is
            if end == "pessimistic":
                out.append(np.maximum.accumulate(np.maximum(scaled, cost)[:, ::-1], axis=1)[:, ::-1])
            else:
                out.append(np.minimum.accumulate(np.minimum(scaled, cost), axis=1))
        return out[0], out[1]

    def weighted_sum(self, weight_bits: np.ndarray, activation_bits: np.ndarray, end: str = "expected") -> np.ndarray:
        """x for plans: bits arrays (plans, layers) or (layers,) -> (plans,) or a scalar array."""
        wcol, acol = bit_columns(weight_bits), bit_columns(activation_bits)
        rows = np.arange(len(self.layers))
        weight_cost, activation_cost = self.cost_tables(end)
        return (weight_cost[rows, wcol] + activation_cost[rows, acol]).sum(axis=-1)

    # --- the link -------------------------------------------------------------------------------------
    def predict_from_weighted_sum(self, x: np.ndarray | float) -> np.ndarray:
        """g(x), vectorised: accuracy in percent, from fp (x = 0) down towards chance."""
        x = np.maximum(np.asarray(x, dtype=float), 0.0)
        return self.chance_accuracy + (self.fp_accuracy - self.chance_accuracy) * np.exp(-x ** self.shape)

    def weighted_sum_for_accuracy(self, accuracy: np.ndarray | float) -> np.ndarray:
        """g's inverse: the largest weighted sum that keeps the predicted accuracy at `accuracy` or above."""
        span = self.fp_accuracy - self.chance_accuracy
        ratio = np.clip((np.asarray(accuracy, float) - self.chance_accuracy) / span, 1e-300, 1.0)
        return (-np.log(ratio)) ** (1.0 / self.shape)

    def predict(self, weight_bits: np.ndarray, activation_bits: np.ndarray) -> np.ndarray:
        """Predicted accuracy (percent) of plans: bits arrays (plans, layers) or (layers,)."""
        return self.predict_from_weighted_sum(self.weighted_sum(weight_bits, activation_bits))

    def predict_interval(self, weight_bits: np.ndarray, activation_bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) accuracy of plans: the pessimistic and optimistic ends of the interval."""
        return self.interval_from_weighted_sums(self.weighted_sum(weight_bits, activation_bits, "pessimistic"),
                                                self.weighted_sum(weight_bits, activation_bits, "optimistic"))

    def interval_from_weighted_sums(self, pessimistic: np.ndarray, optimistic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) accuracy from the two ends' sums, widened by the test set's sampling error (binomial,
        80%: 1.28 standard errors) where the accuracy is measured on `test_samples` inputs."""
        low, high = self.predict_from_weighted_sum(pessimistic), self.predict_from_weighted_sum(optimistic)
        if self.test_samples > 0:
            def error(p):
                return 1.2816 * 100.0 * np.sqrt(np.clip(p / 100.0, 0, 1) * (1 - np.clip(p / 100.0, 0, 1)) / self.test_samples)
            low, high = np.maximum(low - error(low), 0.0), np.minimum(high + error(high), 100.0)
        return low, high

    def predict_uniform(self, weight_bits: int, activation_bits: int) -> float:
        """Every layer at the same bits."""
        n = len(self.layers)
        return float(self.predict(np.full(n, weight_bits), np.full(n, activation_bits)))


# --- distortion tables --------------------------------------------------------------------------------
def _out_channels(layer) -> int:
    return layer.output_shape[1] if layer.op == "conv" else layer.output_shape[-1]


def nonnegative_outputs(graph: Graph) -> set[str]:
    """Layers whose output is >= 0: a (fused) ReLU, or a pool / data op over such a tensor."""
    out: set[str] = set()
    for layer in graph.layers:
        if layer.op in NONNEGATIVE_OPS or layer.attrs.get("activation") in NONNEGATIVE_OPS:
            out.add(layer.name)
        elif (layer.op in POOL_OPS or layer.op in DATA_OPS) and layer.inputs and all(t in out for t in layer.inputs):
            out.add(layer.name)
    return out


def assumed_distortion_tables(graph: Graph, tier: str = "calibrated", granularity: str = "per-channel",
                              calibration_images: int = ASSUMED_CALIBRATION_IMAGES) -> tuple[np.ndarray, np.ndarray]:
    """(weight, activation) distortion tables from the stated assumptions and the layers' shapes only.

    Weights: He-initialised Gaussian per output channel, fan-in = weight elements / output channels; per
    tensor, channel scales log-normal (spread DEPTHWISE_/DENSE_CHANNEL_SCALE_SPREAD). Activations: ReLU'd
    Gaussian where a ReLU precedes, else signed Gaussian; min-max over `calibration_images` images.
    """
    relu = nonnegative_outputs(graph)
    weights = np.zeros((len(graph.layers), len(BIT_WIDTHS)))
    activations = np.zeros_like(weights)
    for i, layer in enumerate(graph.layers):
        elements = layer.output_elements * calibration_images
        for j, bits in enumerate(BIT_WIDTHS):
            activations[i, j] = gaussian_activation_distortion(elements, bits, tier, layer.name in relu)
            if layer.weight_elements:
                channels = _out_channels(layer)
                spread = DEPTHWISE_CHANNEL_SCALE_SPREAD if is_depthwise(layer) else DENSE_CHANNEL_SCALE_SPREAD
                weights[i, j] = gaussian_weight_distortion(layer.weight_elements // channels, channels, bits,
                                                           tier, granularity, spread)
    return weights, activations


def measured_distortion_tables(quantizer, tier: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(weight, activation) tables from a FakeQuantizer's real folded weights and calibration activations."""
    tier = tier or quantizer.tier
    weights = np.zeros((len(quantizer.layers), len(BIT_WIDTHS)))
    activations = np.zeros_like(weights)
    for i, name in enumerate(quantizer.layers):
        samples = quantizer.calibration[quantizer.output_tensor[name]]
        for j, bits in enumerate(BIT_WIDTHS):
            activations[i, j] = activation_distortion(samples, bits, tier, quantizer.activation_range(name, bits)
                                                      if tier == quantizer.tier else None)
            if name in quantizer.weight_layers:
                weights[i, j] = weight_distortion(quantizer.graph.weights[name]["weight"], bits, tier,
                                                  quantizer.granularity)
    return weights, activations
