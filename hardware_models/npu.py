"""A product NPU (Coral Edge TPU, Qualcomm Hexagon HTP) as a roofline with on-chip memory and overheads.

Each layer takes

    latency = layer_overhead + max(compute, memory)
    compute = MACs / (peak MAC rate of the precision x efficiency x fill)
    memory  = off-chip activation bytes / dram_bandwidth + streamed weight bytes / its link's bandwidth

- **Peak rates** are `macs_per_cycle` per precision (int8, fp16) at `clock`. The tensor unit is an
  `array` of rows x cols MACs: a layer whose reduction (K) or output channels (N) per group leave part of
  it idle runs at the `fill` K / (ceil(K/rows) rows) x N / (ceil(N/cols) cols). Depthwise convolutions (one
  channel per group) run on a vector path at `depthwise_efficiency` of the peak instead.
- **Weights**: with `weight_cache` (the Edge TPU's parameter memory) the first layers' weights, in execution
  order, stay on chip up to the cache's size; the rest stream from the host over `host_link` bandwidth on
  every inference (VGG-19's 140 MB over USB 3). Without it, weights are read from DRAM every inference.
- **Activations**: a layer whose input and output fit in `onchip_memory` (the Hexagon's VTCM) keeps them on
  chip; otherwise they move through DRAM (a softmax or layernorm reads its input twice). A matmul of two
  activations (attention) is `groups` GEMMs on the tensor unit whose second operand is an activation: it
  moves with the activations, never through the weight cache.
- **Weight prefetch**: a DMA engine loads the weights (from DRAM, or over the host link beyond the cache)
  one layer after another, ahead of the compute, into a double buffer: layer i computes once its weights
  have arrived and layer i - 1 is done (a two-stage flow shop). So weight traffic hides behind the compute
  of earlier layers, and a row's latency is the time its layer adds to the sequence.
- **Layers without MACs** (pooling, element-wise) run at `vector_elements_per_cycle`, `ops_per_output`
  operations per output element (softmax 5, layernorm 8). A data layer that moves data (transpose, gather,
  roll, ...) copies one element per lane per cycle; views (reshape, flatten) and concatenations (written in
  place by their producers) cost nothing.
- **Overheads**: `layer_overhead` per layer with MACs, element work or a copy; `inference_overhead` (the host's
  invoke, the runtime, the input and output copies) once per inference, charged to the first layer.

Efficiencies and overheads are fitted on the product's published rows (benchmarks/calibrate_npu.py); the
preset says which rows and with what error (`evidence`).
Energy: `power_w` (an assumption from the product's published power) x latency.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator

from hardware_models.base import Accelerator, LayerCost, sum_costs
from hardware_models.errors import UserError
from hardware_models.layer import LayerSpec
from hardware_models.preset import (
    Bandwidth,
    BitList,
    Duration,
    Fraction,
    Frequency,
    PositiveNumber,
    PresetModel,
    Sentence,
    Size,
    Watts,
    validate_preset,
)

PRECISION_OF_BITS = {8: "int8", 16: "fp16"}
Precision = Literal["int8", "fp16"]


def _array(value: object) -> tuple[int, int]:
    if (not isinstance(value, list) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        raise ValueError(f"expected [rows, cols] of whole numbers, got {value!r}")
    return value[0], value[1]


class NpuPreset(PresetModel):
    """A `kind: npu` preset (human units)."""

    clock: Frequency = Field(description="the clock, e.g. '500MHz'")
    macs_per_cycle: dict[Precision, PositiveNumber] = Field(
        min_length=1, description="a mapping of int8/fp16 to MACs per cycle, e.g. {int8: 4096}")
    array: Annotated[tuple[int, int], BeforeValidator(_array)] = Field(
        description="the tensor unit's [rows, cols] of MACs")
    efficiency: dict[Precision, Fraction] = Field(
        min_length=1, description="a fraction of the peak per precision of macs_per_cycle, e.g. {int8: 0.13}")
    depthwise_efficiency: Fraction = 0.05
    onchip_memory: Size = Field(description="the on-chip memory's size, e.g. '8MB'")
    weight_cache: Size | None = None
    dram_bandwidth: Bandwidth = Field(description="the DRAM bandwidth, e.g. '400MB/s'")
    host_link: Bandwidth | None = None
    vector_elements_per_cycle: PositiveNumber = 64.0
    layer_overhead: Duration = Field(description="the time a layer adds, e.g. '2.2us'")
    inference_overhead: Duration = Field(description="the time an inference adds once, e.g. '50us'")
    power_w: Watts = 2.0
    supported_bits: BitList = Field(description="the bit-widths with a rate in macs_per_cycle (8: int8, 16: fp16)")
    evidence: Sentence = Field(description="the published rows the preset was fitted on and its error, or "
                               "'assumed' with what was assumed")

    @field_validator("efficiency")
    @classmethod
    def _efficiency_of_a_rate(cls, efficiency: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        rates = info.data.get("macs_per_cycle")
        if rates is not None and set(efficiency) - set(rates):
            raise ValueError(f"expected a fraction per precision of macs_per_cycle ({', '.join(rates)}), got "
                             f"{', '.join(efficiency)}")
        return efficiency

    @field_validator("host_link")
    @classmethod
    def _weights_beyond_the_cache_stream_over_it(cls, link: float | None, info: ValidationInfo) -> float | None:
        if link is None and info.data.get("weight_cache") is not None:
            raise ValueError("required with weight_cache (the weights beyond the cache stream over it)")
        return link

    @field_validator("supported_bits")
    @classmethod
    def _bits_with_a_rate(cls, bits: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        rates = info.data.get("macs_per_cycle") or {}
        if any(PRECISION_OF_BITS.get(b) not in rates for b in bits):
            raise ValueError(f"expected bit-widths with a rate in macs_per_cycle (8 for int8, 16 for fp16), got "
                             f"{list(bits)}")
        return bits


class ProductNPU(Accelerator):
    """A product NPU from its published rates, on-chip memories and fitted efficiencies and overheads."""

    kind = "npu"

    def __init__(self, *, name: str, clock_hz: float, macs_per_cycle: dict[str, float], array: tuple[int, int],
                 efficiency: dict[str, float], depthwise_efficiency: float, onchip_bytes: float,
                 weight_cache_bytes: float | None, dram_bandwidth_bps: float, host_link_bps: float | None,
                 vector_elements_per_cycle: float, layer_overhead_s: float, inference_overhead_s: float,
                 power_w: float, supported_bits: Sequence[int], evidence: str = "") -> None:
        self.name = name
        self.clock_hz = clock_hz
        self.macs_per_cycle = dict(macs_per_cycle)
        self.array = array
        self.efficiency = dict(efficiency)
        self.depthwise_efficiency = depthwise_efficiency
        self.onchip_bytes = onchip_bytes
        self.weight_cache_bytes = weight_cache_bytes
        self.dram_bandwidth_bps = dram_bandwidth_bps
        self.host_link_bps = host_link_bps
        self.vector_elements_per_cycle = vector_elements_per_cycle
        self.layer_overhead_s = layer_overhead_s
        self.inference_overhead_s = inference_overhead_s
        self.power_w = power_w
        self.supported_bits = tuple(supported_bits)
        self.preset_evidence = evidence

    # --- construction ------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Mapping[str, Any], source: str) -> ProductNPU:
        """An NPU from a preset mapping (without `kind`); a UserError names `source` and the bad key."""
        preset = validate_preset(NpuPreset, config, source)
        return cls(name=preset.name or source, clock_hz=preset.clock,
                   macs_per_cycle={str(k): v for k, v in preset.macs_per_cycle.items()}, array=preset.array,
                   efficiency={str(k): v for k, v in preset.efficiency.items()},
                   depthwise_efficiency=preset.depthwise_efficiency, onchip_bytes=preset.onchip_memory,
                   weight_cache_bytes=preset.weight_cache, dram_bandwidth_bps=preset.dram_bandwidth,
                   host_link_bps=preset.host_link, vector_elements_per_cycle=preset.vector_elements_per_cycle,
                   layer_overhead_s=preset.layer_overhead, inference_overhead_s=preset.inference_overhead,
                   power_w=preset.power_w, supported_bits=preset.supported_bits, evidence=preset.evidence)

    def with_constants(self, **changes: Any) -> ProductNPU:
        """A copy with some constants replaced (the fit's way to try values)."""
        out = copy.copy(self)
        for key, value in changes.items():
            if not hasattr(out, key):
                raise AttributeError(key)
            setattr(out, key, dict(value) if isinstance(value, dict) else value)
        return out

    # --- cost ----------------------------------------------------------------------------------------------
    def _precision(self, weight_bits: int, activation_bits: int) -> str:
        bits = max(int(weight_bits), int(activation_bits))
        if bits not in PRECISION_OF_BITS or int(weight_bits) not in self.supported_bits \
                or int(activation_bits) not in self.supported_bits:
            raise UserError(f"{self.name}: {weight_bits}/{activation_bits}-bit layers are not supported; "
                            f"supported bits: {', '.join(map(str, self.supported_bits))}")
        return PRECISION_OF_BITS[bits]

    def _fill(self, layer: LayerSpec) -> float:
        rows, cols = self.array
        k, n = layer.gemm_k, layer.gemm_n
        return (k / (math.ceil(k / rows) * rows)) * (n / (math.ceil(n / cols) * cols))

    def layer_cost(self, layer: LayerSpec, weight_bits: int = 8, activation_bits: int = 8, batch: int = 1,
                   streamed_weight_bytes: float | None = None) -> LayerCost:
        """One layer; `streamed_weight_bytes` (from `network_cost`) are the weights beyond the cache."""
        if batch != 1:
            layer = replace(layer, batch=batch)
        precision = self._precision(layer.operand_bits(weight_bits, activation_bits), activation_bits)
        peak = self.macs_per_cycle[precision] * self.clock_hz
        compute = 0.0
        if layer.is_mac_layer:
            depthwise = layer.kind == "conv" and layer.groups > 1 and layer.gemm_n == 1
            rate = peak * (self.depthwise_efficiency if depthwise else self.efficiency[precision] * self._fill(layer))
            compute = layer.macs / rate
        elif layer.kind in ("pool", "eltwise") or layer.moves_data:
            compute = layer.output_elements * max(layer.ops_per_output, 1) / (self.vector_elements_per_cycle
                                                                              * self.clock_hz)
        dram = self._activation_dram_bytes(layer, activation_bits)
        weight_bytes = layer.weight_elements * weight_bits / 8.0
        if self.weight_cache_bytes is None:
            dram += weight_bytes
            streamed = 0.0
        else:
            # a layer alone keeps what fits the cache; in a network the cache fills in execution order
            streamed = (max(weight_bytes - self.weight_cache_bytes, 0.0) if streamed_weight_bytes is None
                        else streamed_weight_bytes)
        memory = dram / self.dram_bandwidth_bps + self._streamed_s(streamed)
        busy = max(compute, memory)
        overhead = self.layer_overhead_s if layer.kind != "data" or layer.moves_data else 0.0
        latency = overhead + busy
        stall = busy - compute
        return LayerCost(
            name=layer.name, compute_cycles=compute * self.clock_hz, stall_cycles=stall * self.clock_hz,
            latency_s=latency, energy_j=self.power_w * latency, dram_bytes=dram + streamed, overhead_s=overhead,
            overhead_cycles=overhead * self.clock_hz, energy_parts_j={"board": self.power_w * latency},
            parts={"compute_s": compute, "memory_s": stall, "overhead_s": overhead, "streamed_bytes": streamed},
        )

    def _weight_load_s(self, weight_bytes: float, streamed: float | None) -> float:
        """DMA time of a layer's weights: from DRAM, or (with a weight cache) the part beyond it over the link."""
        if self.weight_cache_bytes is None:
            return weight_bytes / self.dram_bandwidth_bps
        return self._streamed_s(streamed or 0.0)

    def _streamed_s(self, streamed_bytes: float) -> float:
        """Seconds to stream weights beyond the cache over the host link (which every cache comes with)."""
        if not streamed_bytes:
            return 0.0
        assert self.host_link_bps is not None, "a weight cache without a host link"  # NpuPreset requires one
        return streamed_bytes / self.host_link_bps

    def _activation_dram_bytes(self, layer: LayerSpec, activation_bits: int) -> float:
        """DRAM bytes of a layer's activations (a matmul's second operand among them): none when they fit
        on chip or the layer moves nothing (a view, a concatenation written in place)."""
        if layer.kind == "data" and not layer.moves_data:
            return 0.0
        element = activation_bits / 8.0
        second = 0 if layer.has_weights else layer.operand_elements
        activation_bytes = (layer.read_elements + second + layer.output_elements) * element
        if activation_bytes <= self.onchip_bytes:
            return 0.0
        return activation_bytes + (layer.input_reads - 1) * layer.read_elements * element

    def _activation_s(self, layer: LayerSpec, activation_bits: int, batch: int) -> float:
        """DRAM time of a layer's activations when they do not fit on chip."""
        if batch != 1:
            layer = replace(layer, batch=batch)
        return self._activation_dram_bytes(layer, activation_bits) / self.dram_bandwidth_bps

    def network_cost(self, layers: Sequence[LayerSpec], weight_bits: int | Sequence[int] = 8,
                     activation_bits: int | Sequence[int] = 8, batch: int = 1) -> tuple[list[LayerCost], LayerCost]:
        """Layers in execution order: the weight cache fills in that order; the inference's own overhead is
        charged to the first layer (an edge prefix always contains it)."""
        n = len(layers)
        wbits = [weight_bits] * n if isinstance(weight_bits, int) else list(weight_bits)
        abits = [activation_bits] * n if isinstance(activation_bits, int) else list(activation_bits)
        rows = []
        cached = 0.0
        loaded_at = 0.0  # when the DMA has delivered the weights of the layers so far
        done_at = 0.0  # when the compute of the layers so far is done
        for i, (layer, w, a) in enumerate(zip(layers, wbits, abits)):
            weight_bytes = layer.weight_elements * w / 8.0
            streamed = None
            if self.weight_cache_bytes is not None:
                room = max(self.weight_cache_bytes - cached, 0.0)
                kept = min(weight_bytes, room)
                cached += kept
                streamed = weight_bytes - kept
            row = self.layer_cost(layer, w, a, batch, streamed_weight_bytes=streamed)
            # the flow shop: the DMA loads this layer's weights after the previous ones; the layer starts
            # when they are in and the previous layer is done
            load = self._weight_load_s(weight_bytes, streamed)
            work = max(row.parts["compute_s"], self._activation_s(layer, a, batch))
            loaded_at += load
            start = max(done_at, loaded_at)
            finish = start + row.overhead_s + work
            added = finish - done_at
            stall = max(added - row.overhead_s - row.parts["compute_s"], 0.0)  # not -1e-21 from rounding
            row = replace(row, latency_s=added, stall_cycles=stall * self.clock_hz,
                          energy_j=self.power_w * added, energy_parts_j={"board": self.power_w * added},
                          parts={**row.parts, "memory_s": stall})
            done_at = finish
            if i == 0:
                extra = self.inference_overhead_s
                row = replace(row, latency_s=row.latency_s + extra, overhead_s=row.overhead_s + extra,
                              overhead_cycles=row.overhead_cycles + extra * self.clock_hz,
                              energy_j=row.energy_j + self.power_w * extra,
                              parts={**row.parts, "overhead_s": row.parts["overhead_s"] + extra})
            rows.append(row)
        return rows, sum_costs(rows, "total")
