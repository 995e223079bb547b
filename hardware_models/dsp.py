"""A vector DSP (Hexagon-HVX-like SIMD engine) as a per-layer roofline with named overheads.

No public simulator exists for such a DSP: the model is checked against hand-computed layers, roofline
bounds and monotonicity (tests/hardware_models/test_dsp.py), and its energy against ZigZag's cost model given the same
architecture, energies and loop order (tests/hardware_models/test_energy_zigzag.py). What it assumes:

**Compute.** A vector MAC instruction multiplies `vector_bits / lane_bits` operand pairs, grouped into
`vector_bits / accumulator_bits` accumulator lanes that each take a `accumulator_bits / lane_bits`-deep dot
product (HVX's vrmpy: 32 lanes x 4 bytes at 8 bits; 32 lanes x 2 halfwords at 16 bits), so 8-bit lanes do
twice the MACs of 16-bit lanes. Each of `vector_units` units issues `mac_instructions_per_cycle` of them per
cycle. Operands are computed in the narrowest native lane (`lane_bits`) that holds both bit-widths: 4-bit
weights run on 8-bit lanes, stored packed and widened on chip (the `unpack` overhead).
- A dense or grouped conv maps a group's filters to accumulator lanes and its window elements to the dot
  product: `groups x gemm_m x ceil(gemm_n / lanes) x ceil(gemm_k / depth)` instructions; fewer filters than
  lanes (small channel counts) or windows not a multiple of the depth leave lanes idle.
- A depthwise conv (one input channel per group) maps channels to lanes but has no channel reduction to fill
  the dot product, so each lane takes one product per instruction:
  `gemm_m x ceil(channels / lanes) x gemm_k` instructions (at most 1/depth utilisation).
- A matmul of two activations (attention) is `groups` GEMMs mapped like a dense conv, its second operand
  an activation (activation bits, no unpacking of weights); a dilated conv maps like the undilated one.
- Pooling and element-wise layers are `ops_per_output` vector ALU operations per output element (softmax 5,
  layernorm 8: simulator/graph/ir.py); a copy (transpose, gather, roll, ...) one per element.
**Memory.** Each layer reads its inputs and weights from DRAM and writes its output back (no fusion across
layers). If a layer's weights, input and output fit in `onchip_memory` they move once; otherwise half the
on-chip memory holds a chunk of one operand while the other streams through the other half (double
buffered), and the cheaper of the two orders is taken: weights + input x chunks(weights) + output, or
input + weights x chunks(input) + output (`dram_schedule`). A streamed input keeps the rows its next tile
shares with this one (line buffers), so halos are not fetched twice. A layer that reads its input twice
(softmax, layernorm) fetches it twice unless input and output fit on chip. Views (reshape, flatten) and
concatenations (written in place by their producers) move nothing; a copy reads what it writes.
**Time.** Double buffering overlaps transfers with compute: `stall = max(0, dram time - busy time)` where busy
is MAC issue plus unpacking; `overhead = unpack + layer_overhead_cycles` (per-layer launch and sync).
`parts` names every term in cycles, including `idle_lane_cycles` (issue slots lost to idle lanes).
**Energy** (hardware_models/energy.py): MACs at their real bit-widths; on-chip reads of the operands (a weight
vector is reused across `register_block_pixels` output pixels held in registers, an activation is read once
per block of filter lanes), on-chip writes of what DRAM delivers and of the outputs, DRAM bytes; ALU ops of
pooling/element-wise layers as adds at the lane width.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator

from hardware_models.base import Accelerator, LayerCost
from hardware_models.energy import EnergyModel, EnergyPreset
from hardware_models.layer import LayerSpec
from hardware_models.preset import (
    Bandwidth,
    BitList,
    Fraction,
    Frequency,
    NonNegativeNumber,
    PositiveInteger,
    PresetModel,
    Size,
    validate_preset,
)


class DspPreset(PresetModel):
    """A `kind: dsp` preset (human units)."""

    clock: Frequency = Field(description="the clock, e.g. '1GHz'")
    vector_bits: PositiveInteger = Field(description="the width of a vector register in bits, e.g. 1024")
    vector_units: PositiveInteger = Field(description="the number of vector units")
    mac_instructions_per_cycle: PositiveInteger = 1
    accumulator_bits: PositiveInteger = 32
    lane_bits: BitList = (8, 16, 32)
    onchip_memory: Size = Field(description="the on-chip memory's size, e.g. '256KiB'")
    dram_bandwidth: Bandwidth = Field(description="the DRAM bandwidth, e.g. '15GB/s'")
    register_block_pixels: PositiveInteger = 4
    layer_overhead_cycles: NonNegativeNumber = 0.0
    mac_efficiency: Fraction = 1.0  # share of the MAC issue rate the vendor library reaches (fitted, e.g. TIDL)
    supported_bits: BitList = Field(description="the bit-widths the DSP computes at, e.g. [4, 8, 16]")
    energy: EnergyPreset | None = None

    @field_validator("lane_bits")
    @classmethod
    def _lanes_divide_the_accumulator(cls, lane_bits: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        vector_bits, accumulator_bits = info.data.get("vector_bits"), info.data.get("accumulator_bits")
        if vector_bits is None or accumulator_bits is None:
            return lane_bits  # reported as their own keys
        for lane in lane_bits:
            if vector_bits % accumulator_bits or accumulator_bits % lane or lane > accumulator_bits:
                raise ValueError(f"each lane width must divide accumulator_bits ({accumulator_bits}), which must "
                                 f"divide vector_bits ({vector_bits}); got {lane}")
        return lane_bits

    @field_validator("supported_bits")
    @classmethod
    def _fit_the_widest_lane(cls, supported: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        lane_bits = info.data.get("lane_bits")
        if lane_bits is not None and max(supported) > max(lane_bits):
            raise ValueError(f"{max(supported)} bits is wider than the widest lane ({max(lane_bits)} bits)")
        return supported


@dataclass(frozen=True)
class VectorDSP(Accelerator):
    """A SIMD DSP: sizes in bits and bytes, clock in hertz, DRAM bandwidth in bytes per second."""

    kind: ClassVar[str] = "dsp"
    slower_at_fewer_bits: ClassVar[str] = "sub-byte weights are stored packed and widened to 8-bit lanes on chip " \
        "(the unpack overhead), so 4-bit layers can take longer than 8-bit ones"

    name: str
    clock_hz: float
    vector_bits: int
    vector_units: int
    onchip_memory_bytes: float
    dram_bytes_per_s: float
    supported_bits: tuple[int, ...]
    mac_instructions_per_cycle: int = 1
    accumulator_bits: int = 32
    lane_bits: tuple[int, ...] = (8, 16, 32)
    register_block_pixels: int = 4
    layer_overhead_cycles: float = 0.0
    mac_efficiency: float = 1.0
    energy: EnergyModel = field(default_factory=EnergyModel.default)
    source: str = ""
    preset_evidence: str = field(default="", repr=False, compare=False)

    # --- construction ------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Mapping[str, Any], source: str) -> VectorDSP:
        """A DSP from a preset mapping (without `kind`); a UserError names `source` and the bad key."""
        preset = validate_preset(DspPreset, config, source)
        return cls(
            name=preset.name or source,
            clock_hz=preset.clock,
            vector_bits=preset.vector_bits,
            vector_units=preset.vector_units,
            onchip_memory_bytes=preset.onchip_memory,
            dram_bytes_per_s=preset.dram_bandwidth,
            supported_bits=preset.supported_bits,
            mac_instructions_per_cycle=preset.mac_instructions_per_cycle,
            accumulator_bits=preset.accumulator_bits,
            lane_bits=preset.lane_bits,
            register_block_pixels=preset.register_block_pixels,
            layer_overhead_cycles=preset.layer_overhead_cycles,
            mac_efficiency=preset.mac_efficiency,
            energy=EnergyModel.from_preset(preset.energy),
            source=preset.source or "",
            preset_evidence=preset.evidence or "",
        )

    # --- compute -------------------------------------------------------------------------------------
    def lane_width(self, *bits: int) -> int:
        """The narrowest native lane (bits) that holds operands of all of `bits`."""
        widest = max(bits)
        for lane in self.lane_bits:
            if lane >= widest:
                return lane
        raise ValueError(f"{self.name}: {widest}-bit operands are wider than the widest lane "
                         f"({max(self.lane_bits)} bits)")

    def macs_per_cycle(self, weight_bits: int = 8, activation_bits: int = 8) -> float:
        """Peak MACs per cycle with operands of these widths (8-bit lanes do twice the 16-bit MACs)."""
        lane = self.lane_width(weight_bits, activation_bits)
        return self.vector_units * self.mac_instructions_per_cycle * self.vector_bits / lane

    def mac_instructions(self, layer: LayerSpec, lane: int) -> int:
        """Vector MAC instructions for a conv/gemm layer on `lane`-bit lanes (see the module docstring)."""
        lanes = self.vector_bits // self.accumulator_bits
        depth = self.accumulator_bits // lane
        if layer.kind == "conv" and layer.groups > 1 and layer.in_channels == layer.groups:  # depthwise: no reduction
            return layer.gemm_m * math.ceil(layer.groups * layer.gemm_n / lanes) * layer.gemm_k
        return layer.groups * layer.gemm_m * math.ceil(layer.gemm_n / lanes) * math.ceil(layer.gemm_k / depth)

    # --- memory --------------------------------------------------------------------------------------
    def dram_schedule(self, weight_bytes: float, input_bytes: float, output_bytes: float) -> tuple[str, int]:
        """How a layer's operands move through on-chip memory: ('fits', 1), or ('weights_resident', chunks)
        (weight chunks of half the memory, the input streamed once per chunk), or ('input_resident', chunks)
        (input chunks, the weights streamed once per chunk), whichever moves fewer bytes."""
        if weight_bytes + input_bytes + output_bytes <= self.onchip_memory_bytes:
            return "fits", 1
        half = self.onchip_memory_bytes / 2
        # at least one pass: a layer without weights still streams its input once
        weight_chunks = max(1, math.ceil(weight_bytes / half))
        input_chunks = max(1, math.ceil(input_bytes / half))
        if weight_bytes + input_bytes * weight_chunks <= input_bytes + weight_bytes * input_chunks:
            return "weights_resident", weight_chunks
        return "input_resident", input_chunks

    def dram_traffic_bytes(self, weight_bytes: float, input_bytes: float, output_bytes: float) -> float:
        """Bytes moved to and from DRAM for one layer under `dram_schedule`."""
        schedule, chunks = self.dram_schedule(weight_bytes, input_bytes, output_bytes)
        if schedule == "weights_resident":
            return weight_bytes + input_bytes * chunks + output_bytes
        if schedule == "input_resident":
            return input_bytes + weight_bytes * chunks + output_bytes
        return weight_bytes + input_bytes + output_bytes

    # --- the layer -----------------------------------------------------------------------------------
    def layer_cost(
        self, layer: LayerSpec, weight_bits: int = 8, activation_bits: int = 8, batch: int = 1
    ) -> LayerCost:
        """Cycles, time, energy and DRAM bytes of `layer` (batch multiplies the layer's own batch)."""
        if batch != 1:
            layer = replace(layer, batch=layer.batch * batch)
        # the second operand of a matmul of two activations is an activation
        weight_bits = layer.operand_bits(weight_bits, activation_bits)
        lane = self.lane_width(weight_bits, activation_bits)
        weight_bytes = layer.operand_elements * weight_bits / 8
        input_bytes = layer.read_elements * activation_bits / 8
        output_bytes = layer.output_elements * activation_bits / 8
        products_per_instruction = self.vector_bits // lane
        issue_per_cycle = self.vector_units * self.mac_instructions_per_cycle
        energy = self.energy
        sram_read_j = energy.sram_j_per_byte(self.onchip_memory_bytes)
        sram_write_j = energy.sram_j_per_byte(self.onchip_memory_bytes, write=True)

        if layer.kind == "data" and not layer.moves_data:  # a view, or a concat written in place: addressing only
            dram_bytes = 0.0
            compute_cycles = idle_lane_cycles = unpack_cycles = 0.0
            actions: dict[str, tuple[float, float]] = {}
        else:
            if not layer.is_mac_layer and input_bytes + output_bytes > self.onchip_memory_bytes:
                input_bytes *= layer.input_reads  # a second pass (softmax, layernorm) fetches its input again
            dram_bytes = self.dram_traffic_bytes(weight_bytes, input_bytes, output_bytes)
            delivered_bytes = dram_bytes - output_bytes
            if layer.is_mac_layer:
                instructions = self.mac_instructions(layer, lane)
                compute_cycles = instructions / issue_per_cycle / self.mac_efficiency
                idle_lane_cycles = compute_cycles * (1 - layer.macs / (instructions * products_per_instruction))
                # operands narrower than their lane are stored packed and widened once on chip
                widened = (layer.operand_elements if weight_bits < lane else 0) + \
                          (layer.input_elements if activation_bits < lane else 0)
                unpack_cycles = widened * lane / self.vector_bits / self.vector_units
                lanes = self.vector_bits // self.accumulator_bits
                operand_read_bytes = (
                    weight_bytes * math.ceil(layer.gemm_m / self.register_block_pixels)
                    + layer.groups * layer.gemm_m * layer.gemm_k * activation_bits / 8
                    * math.ceil(layer.gemm_n / lanes)
                )
                actions = {
                    "mac": (layer.macs, energy.mac_j(weight_bits, activation_bits)),
                    "vector_alu.unpack": (unpack_cycles * self.vector_units * self.vector_bits / lane,
                                          energy.add_j(lane)),
                }
            else:  # pool / eltwise / copy: vector ALU operations at the activation lane width
                element_ops = layer.output_elements * max(layer.ops_per_output, 1)
                compute_cycles = math.ceil(element_ops / products_per_instruction) / self.vector_units
                idle_lane_cycles = compute_cycles - element_ops / products_per_instruction / self.vector_units
                unpack_cycles = 0.0
                operand_read_bytes = layer.read_elements * activation_bits / 8 * layer.input_reads
                actions = {"vector_alu": (element_ops, energy.add_j(lane))}
            actions.update({
                "sram.operand_read": (operand_read_bytes, sram_read_j),
                "sram.fill_write": (delivered_bytes, sram_write_j),
                "sram.output_write": (output_bytes, sram_write_j),
                "sram.output_drain_read": (output_bytes, sram_read_j),
                "dram": (dram_bytes, energy.dram_j_per_byte()),
            })
        dram_cycles = dram_bytes / self.dram_bytes_per_s * self.clock_hz
        busy_cycles = compute_cycles + unpack_cycles
        stall_cycles = max(0.0, dram_cycles - busy_cycles)
        overhead_cycles = unpack_cycles + self.layer_overhead_cycles
        energy_parts = EnergyModel.energy_j(actions)
        total_cycles = compute_cycles + stall_cycles + overhead_cycles
        return LayerCost(
            name=layer.name,
            compute_cycles=compute_cycles,
            stall_cycles=stall_cycles,
            overhead_cycles=overhead_cycles,
            latency_s=total_cycles / self.clock_hz,
            energy_j=sum(energy_parts.values()),
            dram_bytes=dram_bytes,
            overhead_s=overhead_cycles / self.clock_hz,
            energy_parts_j=energy_parts,
            parts={
                "compute_cycles": compute_cycles,
                "idle_lane_cycles": idle_lane_cycles,
                "dram_cycles": dram_cycles,
                "stall_cycles": stall_cycles,
                "unpack_cycles": unpack_cycles,
                "layer_overhead_cycles": self.layer_overhead_cycles,
            },
        )
