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
  chip; otherwise they move through DRAM.
- **Weight prefetch**: a DMA engine loads the weights (from DRAM, or over the host link beyond the cache)
  one layer after another, ahead of the compute, into a double buffer: layer i computes once its weights
  have arrived and layer i - 1 is done (a two-stage flow shop). So weight traffic hides behind the compute
  of earlier layers, and a row's latency is the time its layer adds to the sequence.
- **Layers without MACs** (pooling, element-wise) run at `vector_elements_per_cycle`.
- **Overheads**: `layer_overhead` per layer with MACs or element work; `inference_overhead` (the host's
  invoke, the runtime, the input and output copies) once per inference, charged to the first layer.

Efficiencies and overheads are fitted on the product's published rows (benchmarks/calibrate_npu.py); the
preset says which rows and with what error (`evidence`).
Energy: `power_w` (an assumption from the product's published power) x latency.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from hardware_models.base import Accelerator, LayerCost, sum_costs
from hardware_models.errors import UserError, check_keys
from hardware_models.layer import LayerSpec
from hardware_models.preset import PresetFields
from hardware_models.units import parse_bandwidth, parse_bytes, parse_frequency, parse_time

PRECISION_OF_BITS = {8: "int8", 16: "fp16"}
CONFIG_KEYS = (
    "name", "description", "source", "sources", "clock", "macs_per_cycle", "array", "efficiency",
    "depthwise_efficiency", "onchip_memory", "weight_cache", "dram_bandwidth", "host_link",
    "vector_elements_per_cycle", "layer_overhead", "inference_overhead", "power_w", "supported_bits",
    "evidence", "notes",
)
REQUIRED = ("clock", "macs_per_cycle", "array", "efficiency", "onchip_memory", "dram_bandwidth", "layer_overhead",
            "inference_overhead", "supported_bits", "evidence")


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
    def from_config(cls, config: dict, source: str) -> "ProductNPU":
        check_keys(config, CONFIG_KEYS, source, REQUIRED, kind="npu preset")
        fields = PresetFields(config, source)
        where = fields.where
        clock = fields.positive("clock", parse_frequency(config["clock"], where("clock")))
        macs = config["macs_per_cycle"]
        if not isinstance(macs, dict) or not macs or any(k not in ("int8", "fp16") for k in macs):
            raise UserError(f"{where('macs_per_cycle')}: expected a mapping of int8/fp16 to MACs per cycle")
        for key, value in macs.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise UserError(f"{where('macs_per_cycle.' + key)}: expected a positive number, got {value!r}")
        array = config["array"]
        if (not isinstance(array, list) or len(array) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in array)):
            raise UserError(f"{where('array')}: expected [rows, cols] of whole numbers, got {array!r}")
        efficiency = config["efficiency"]
        if not isinstance(efficiency, dict) or set(efficiency) - set(macs) or not efficiency:
            raise UserError(f"{where('efficiency')}: expected a fraction per precision of macs_per_cycle")
        for key, value in efficiency.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise UserError(f"{where('efficiency.' + key)}: expected a fraction in (0, 1], got {value!r}")
        dw = config.get("depthwise_efficiency", 0.05)
        if isinstance(dw, bool) or not isinstance(dw, (int, float)) or not 0 < dw <= 1:
            raise UserError(f"{where('depthwise_efficiency')}: expected a fraction in (0, 1], got {dw!r}")
        onchip = fields.positive("onchip_memory", parse_bytes(config["onchip_memory"], where("onchip_memory")))
        cache = None
        if config.get("weight_cache") is not None:
            cache = fields.positive("weight_cache", parse_bytes(config["weight_cache"], where("weight_cache")))
        dram = fields.positive("dram_bandwidth", parse_bandwidth(config["dram_bandwidth"], where("dram_bandwidth")))
        link = None
        if config.get("host_link") is not None:
            link = fields.positive("host_link", parse_bandwidth(config["host_link"], where("host_link")))
        if cache is not None and link is None:
            raise UserError(f"{where('host_link')}: required with weight_cache (the weights beyond the cache "
                            f"stream over it)")
        vector = config.get("vector_elements_per_cycle", 64)
        if isinstance(vector, bool) or not isinstance(vector, (int, float)) or vector <= 0:
            raise UserError(f"{where('vector_elements_per_cycle')}: expected a positive number, got {vector!r}")
        layer_overhead = parse_time(config["layer_overhead"], where("layer_overhead"))
        inference_overhead = parse_time(config["inference_overhead"], where("inference_overhead"))
        power = config.get("power_w", 2.0)
        if isinstance(power, bool) or not isinstance(power, (int, float)) or power < 0:
            raise UserError(f"{where('power_w')}: expected a non-negative number of watts, got {power!r}")
        bits = fields.bit_list("supported_bits")
        if any(b not in PRECISION_OF_BITS for b in bits) or any(PRECISION_OF_BITS[b] not in macs for b in bits):
            raise UserError(f"{where('supported_bits')}: expected bit-widths with a rate in macs_per_cycle "
                            f"(8 for int8, 16 for fp16), got {list(bits)}")
        evidence = config["evidence"]
        if not isinstance(evidence, str) or not evidence.strip():
            raise UserError(f"{where('evidence')}: expected the published rows the preset was fitted on and its "
                            f"error, or 'assumed' with what was assumed")
        return cls(name=str(config.get("name", source)), clock_hz=clock, macs_per_cycle=macs,
                   array=(array[0], array[1]), efficiency={k: float(v) for k, v in efficiency.items()},
                   depthwise_efficiency=float(dw), onchip_bytes=onchip, weight_cache_bytes=cache,
                   dram_bandwidth_bps=dram, host_link_bps=link, vector_elements_per_cycle=float(vector),
                   layer_overhead_s=layer_overhead, inference_overhead_s=inference_overhead, power_w=float(power),
                   supported_bits=bits, evidence=" ".join(evidence.split()))

    def with_constants(self, **changes) -> "ProductNPU":
        """A copy with some constants replaced (the fit's way to try values)."""
        import copy

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
        precision = self._precision(weight_bits, activation_bits)
        peak = self.macs_per_cycle[precision] * self.clock_hz
        compute = 0.0
        if layer.is_mac_layer:
            depthwise = layer.groups > 1 and layer.gemm_n == 1
            rate = peak * (self.depthwise_efficiency if depthwise else self.efficiency[precision] * self._fill(layer))
            compute = layer.macs / rate
        elif layer.kind in ("pool", "eltwise"):
            compute = layer.output_elements * max(layer.ops_per_output, 1) / (self.vector_elements_per_cycle
                                                                              * self.clock_hz)
        element = activation_bits / 8.0
        activation_bytes = (layer.input_elements + layer.output_elements) * element
        dram = 0.0 if activation_bytes <= self.onchip_bytes else activation_bytes
        weight_bytes = layer.weight_elements * weight_bits / 8.0
        if self.weight_cache_bytes is None:
            dram += weight_bytes
            streamed = 0.0
        else:
            # a layer alone keeps what fits the cache; in a network the cache fills in execution order
            streamed = (max(weight_bytes - self.weight_cache_bytes, 0.0) if streamed_weight_bytes is None
                        else streamed_weight_bytes)
        memory = dram / self.dram_bandwidth_bps + (streamed / self.host_link_bps if streamed else 0.0)
        busy = max(compute, memory)
        overhead = self.layer_overhead_s if layer.kind != "data" else 0.0
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
        return (streamed or 0.0) / self.host_link_bps

    def _activation_s(self, layer: LayerSpec, activation_bits: int, batch: int) -> float:
        """DRAM time of a layer's activations when they do not fit on chip."""
        elements = (layer.input_elements + layer.output_elements) * max(batch, 1) / max(layer.batch, 1)
        activation_bytes = elements * activation_bits / 8.0
        return 0.0 if activation_bytes <= self.onchip_bytes else activation_bytes / self.dram_bandwidth_bps

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
            stall = added - row.overhead_s - row.parts["compute_s"]
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
