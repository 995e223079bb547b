"""A systolic array (SCALE-Sim's model) in closed form: compute cycles, SRAM and DRAM traffic, stalls, energy.

**Mapping** (as SCALE-Sim 3.0.0 maps a layer). A conv group is the GEMM of its im2col view: `M` output
pixels (x batch), `K` window elements (kernel area x input channels of one group), `N` filters. An
`R x C` array maps, per dataflow, two of them spatially and streams the third (`T`):

| dataflow | rows (R) | cols (C) | streamed T | folds                        | cycles per fold |
|----------|----------|----------|------------|------------------------------|-----------------|
| os       | M        | N        | K          | ceil(M/R) x ceil(N/C)        | T + R + C - 2   |
| ws       | K        | N        | M          | ceil(K/R) x ceil(N/C)        | T + 2R + C - 2  |
| is       | K        | M        | N          | ceil(K/R) x ceil(M/C)        | T + 2R + C - 2  |

SCALE-Sim's compute cycles ("Total Cycles" - "Stall Cycles" of its COMPUTE_REPORT) are
`folds x cycles per fold - 1`: each fold is its demand matrix (operand skew in, T cycles of streaming,
results drained; ws/is first shift R rows of stationary operand in), folds run back to back, and the
report counts from cycle 0 to the last output. A grouped conv is its groups run one after another
(`groups x` one group). This equals SCALE-Sim on every layer of the committed references
(tests/scalesim_reference/).

**Bit-widths.** MAC units are `native_bits` wide (8): operands up to `native_bits` take one pass, wider
ones `ceil(bits / native_bits)` passes (16-bit = 2x), so fewer bits do not speed up compute. With
`mac_mode: bit_serial` the PEs are bit-serial in both operands (Loom-like): cycles scale with
`weight_bits x activation_bits / native_bits**2`. Bytes (SRAM capacity in elements, fills, DRAM traffic)
always scale with the real bit-widths.

**Memory** (assumptions; SCALE-Sim's own stall accounting is not copied, see the note of issue 3). Each layer
reads its input and weights from DRAM and writes its output to DRAM (layer-by-layer execution). Each SRAM
is double buffered: half of it holds the working set while the other half is filled, so an operand is
"resident" when it fits in half its SRAM. Per group, with `I`, `W`, `O` the unique input (the part the conv
reads: a stride larger than the kernel skips rows and columns), weight and output bytes:
- os (filter col-fold outer, row folds inner): the K x C filter tile of a col fold stays resident across the
  row folds (fetched once; if even one tile does not fit, it is re-fetched per row fold); the whole input is
  re-streamed per col fold unless it is resident: `I x (1 | ceil(N/C))`; outputs leave once: `O`.
- ws: weights move once: `W`; input `I x (1 | ceil(N/C))`; partial sums of the K row folds (an M x C tile at
  `accumulator_bits`) stay in the ofmap SRAM if resident; if not, M is cut into chunks whose partial sums
  are, which costs no DRAM traffic while the column's K x C filter strip is resident (reloaded from SRAM per
  chunk), else the cheaper of spilling partial sums (written and read back once per extra row fold) and
  re-fetching the weights per chunk.
- is: input moves once: `I`; weights `W x (1 | ceil(M/C))`; partial sums as in ws (a C x N tile, N cut into
  chunks, the C x K input strip the one that must stay resident).
Time: with double buffering, transfers overlap compute except the first fold's operand tiles (prologue)
and the last fold's output tile (epilogue): `stall = prologue + epilogue + max(0, rest / bandwidth - compute)`.
Without a bandwidth (a SCALE-Sim `.cfg` in CALC mode) there are no stalls, like SCALE-Sim's CALC mode.
SRAM accesses from the array are SCALE-Sim's operand reads (os: input `ceil(N/C) x M x K`, weights
`ceil(M/R) x K x N`; ws: input `ceil(N/C) x M x K`, weights `K x N`; is: input `M x K`, weights
`ceil(M/C) x K x N`), output writes `M x N` plus, for ws/is, partial-sum writes and reads at accumulator
width for each extra row fold.

**Matmuls.** A linear layer is one GEMM (rows = tokens x batch); a matmul of two activations (attention's
QK^T, AV) is one GEMM per matrix (group and batch element) one after another, its second operand in the
filter SRAM at activation bits
(SCALE-Sim's GEMM mode maps a GEMM the same way: tests/scalesim_reference/ checks its cycles); an LSTM/GRU
is its gate GEMM, one per step (`sequential_steps`), each waiting for the previous hidden state (its
DRAM and SRAM traffic are counted as one GEMM's: the weights stay, the rows stream). A dilated conv
computes the same im2col GEMM as the undilated one; only its input footprint (the rows and columns its
spread window touches) is larger.

**Layers without MACs** (pooling, element-wise) run on a vector unit `cols` lanes wide (one operation per
lane per cycle, an assumption) and move their inputs and output through DRAM; a layer that reads its input
twice (softmax, layernorm) fetches it once if it fits in half the ifmap SRAM, else once per read. A data
layer that moves data (transpose, gather, roll, ...) is a copy on the vector unit (one element per lane per
cycle) through DRAM; views (reshape, flatten) and concatenations (written in place by their producers)
cost nothing.

**Energy** (hardware_models/energy.py): MACs at their real bit-widths, SRAM reads and writes per buffer at
that buffer's size, DRAM bytes, element operations of pooling/element-wise layers as adds.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

from pydantic import Field

from hardware_models.base import Accelerator, LayerCost
from hardware_models.energy import EnergyModel, EnergyPreset
from hardware_models.errors import UserError
from hardware_models.layer import LayerSpec
from hardware_models.preset import Bandwidth, BitList, Frequency, PositiveInteger, PresetModel, Size, validate_preset

DATAFLOWS = ("os", "ws", "is")
MAC_MODES = ("native", "bit_serial")


class SystolicPreset(PresetModel):
    """A `kind: systolic` preset (human units)."""

    rows: PositiveInteger = Field(description="the array's rows of PEs")
    cols: PositiveInteger = Field(description="the array's columns of PEs")
    dataflow: Literal["os", "ws", "is"] = Field(description="os, ws or is")
    ifmap_sram: Size = Field(description="the input SRAM's size, e.g. '108KiB'")
    filter_sram: Size = Field(description="the weight SRAM's size, e.g. '108KiB'")
    ofmap_sram: Size = Field(description="the output SRAM's size, e.g. '108KiB'")
    clock: Frequency = Field(description="the clock, e.g. '200MHz'")
    dram_bandwidth: Bandwidth | None = None  # None: unlimited, SCALE-Sim's stall-free CALC mode
    supported_bits: BitList = Field(description="the bit-widths the PEs compute at, e.g. [4, 8, 16]")
    native_bits: PositiveInteger = 8
    mac_mode: Literal["native", "bit_serial"] = "native"
    accumulator_bits: PositiveInteger = 32
    energy: EnergyPreset | None = None


def fold_counts(m: int, n: int, k: int, rows: int, cols: int, dataflow: str) -> tuple[int, int, int]:
    """(row folds, col folds, streamed length T) of an M x K by K x N GEMM on a rows x cols array."""
    if dataflow == "os":
        return math.ceil(m / rows), math.ceil(n / cols), k
    if dataflow == "ws":
        return math.ceil(k / rows), math.ceil(n / cols), m
    if dataflow == "is":
        return math.ceil(k / rows), math.ceil(m / cols), n
    raise ValueError(f"dataflow must be one of {DATAFLOWS}, got {dataflow!r}")


def scalesim_compute_cycles(m: int, n: int, k: int, rows: int, cols: int, dataflow: str) -> int:
    """SCALE-Sim 3.0.0's compute cycles ("Total Cycles" - "Stall Cycles") of one M x N x K GEMM."""
    row_folds, col_folds, streamed = fold_counts(m, n, k, rows, cols, dataflow)
    per_fold = streamed + rows + cols - 2 if dataflow == "os" else streamed + 2 * rows + cols - 2
    return row_folds * col_folds * per_fold - 1


def touched_input_elements(layer: LayerSpec) -> int:
    """Input elements a conv reads: all of them, except rows/columns skipped by a stride larger than the
    kernel (a 1x1 stride-2 downsample reads a quarter of its input)."""
    rows = min(layer.in_height, layer.padded_in_height, layer.out_height * layer.kernel_height)
    cols = min(layer.in_width, layer.padded_in_width, layer.out_width * layer.kernel_width)
    return layer.batch * layer.in_channels * rows * cols * layer.num_inputs


@dataclass(frozen=True)
class SystolicArray(Accelerator):
    """An R x C systolic array with ifmap/filter/ofmap SRAMs (bytes), a clock (Hz) and an off-chip bandwidth
    (bytes per second; None = unlimited, SCALE-Sim's stall-free CALC mode)."""

    kind: ClassVar[str] = "systolic"

    name: str
    rows: int
    cols: int
    dataflow: str
    ifmap_sram_bytes: float
    filter_sram_bytes: float
    ofmap_sram_bytes: float
    clock_hz: float
    offchip_bandwidth_bytes_per_s: float | None = None
    supported_bits: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 8, 16)
    native_bits: int = 8
    mac_mode: str = "native"
    accumulator_bits: int = 32
    energy: EnergyModel = field(default_factory=EnergyModel.default, repr=False)
    source: str = ""
    preset_evidence: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.dataflow not in DATAFLOWS:
            raise ValueError(f"dataflow must be one of {DATAFLOWS}, got {self.dataflow!r}")
        if self.mac_mode not in MAC_MODES:
            raise ValueError(f"mac_mode must be one of {MAC_MODES}, got {self.mac_mode!r}")
        if min(self.rows, self.cols, self.native_bits, self.accumulator_bits) < 1:
            raise ValueError("rows, cols, native_bits and accumulator_bits must be >= 1")
        if not min(self.ifmap_sram_bytes, self.filter_sram_bytes, self.ofmap_sram_bytes, self.clock_hz) > 0:
            raise ValueError("SRAM sizes and the clock must be positive")

    # --- presets ----------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Mapping[str, Any], source: str) -> SystolicArray:
        """An array from a preset mapping (without `kind`); a UserError names `source` and the bad key."""
        preset = validate_preset(SystolicPreset, config, source)
        return cls(
            name=preset.name or source,
            rows=preset.rows,
            cols=preset.cols,
            dataflow=preset.dataflow,
            ifmap_sram_bytes=preset.ifmap_sram,
            filter_sram_bytes=preset.filter_sram,
            ofmap_sram_bytes=preset.ofmap_sram,
            clock_hz=preset.clock,
            offchip_bandwidth_bytes_per_s=preset.dram_bandwidth,
            supported_bits=preset.supported_bits,
            native_bits=preset.native_bits,
            mac_mode=preset.mac_mode,
            accumulator_bits=preset.accumulator_bits,
            energy=EnergyModel.from_preset(preset.energy),
            source=preset.source or source,
            preset_evidence=preset.evidence or "",
        )

    # --- compute ----------------------------------------------------------------------------------
    def mac_time_factor(self, weight_bits: int, activation_bits: int) -> float:
        """Compute time relative to `native_bits` operands (1 at <= 8 bits, 2 at 16 bits natively)."""
        if self.mac_mode == "bit_serial":
            return weight_bits * activation_bits / self.native_bits**2
        return float(math.ceil(max(weight_bits, activation_bits) / self.native_bits))

    def native_compute_cycles(self, layer: LayerSpec) -> int:
        """SCALE-Sim's compute cycles of a conv/gemm layer at native precision (all groups; a recurrent
        layer's steps one after another)."""
        steps = layer.sequential_steps
        return layer.matrices * steps * scalesim_compute_cycles(layer.matrix_rows // steps, layer.gemm_n,
                                                                layer.gemm_k, self.rows, self.cols, self.dataflow)

    def _check_bits(self, weight_bits: int, activation_bits: int) -> None:
        for what, bits in (("weight", weight_bits), ("activation", activation_bits)):
            if bits not in self.supported_bits:
                raise UserError(f"{self.name}: {what} bit-width {bits} not supported; supported_bits are "
                                f"{', '.join(map(str, self.supported_bits))}")

    # --- cost -------------------------------------------------------------------------------------
    def layer_cost(
        self, layer: LayerSpec, weight_bits: int = 8, activation_bits: int = 8, batch: int = 1
    ) -> LayerCost:
        """Cycles, time, energy and DRAM bytes of `layer` (batch multiplies the layer's own batch)."""
        self._check_bits(weight_bits, activation_bits)
        if batch != 1:
            layer = replace(layer, batch=layer.batch * batch)
        if layer.kind == "data" and not layer.moves_data:
            return LayerCost(layer.name, 0.0, 0.0, 0.0, 0.0, 0.0)
        if not layer.is_mac_layer:
            return self._vector_layer_cost(layer, activation_bits)
        return self._mac_layer_cost(layer, weight_bits, activation_bits)

    def _mac_layer_cost(self, layer: LayerSpec, weight_bits: int, activation_bits: int) -> LayerCost:
        m, n, k, groups = layer.matrix_rows, layer.gemm_n, layer.gemm_k, layer.matrices
        rows, cols = self.rows, self.cols
        weight_bits = layer.operand_bits(weight_bits, activation_bits)  # a matmul's second activation
        w_byte, a_byte, acc_byte = weight_bits / 8, activation_bits / 8, self.accumulator_bits / 8
        native_cycles = self.native_compute_cycles(layer)
        compute_cycles = native_cycles * self.mac_time_factor(weight_bits, activation_bits)

        # unique bytes of one group
        input_bytes = touched_input_elements(layer) / groups * a_byte
        weight_bytes = k * n * w_byte
        output_bytes = m * n * a_byte
        ifmap_half, filter_half, ofmap_half = (self.ifmap_sram_bytes / 2, self.filter_sram_bytes / 2,
                                               self.ofmap_sram_bytes / 2)
        row_folds, col_folds, _ = fold_counts(m, n, k, rows, cols, self.dataflow)
        psum_passes = 0  # extra row folds whose partial sums go through the ofmap SRAM (ws, is)
        if self.dataflow == "os":
            ifmap_dram = input_bytes * (1 if input_bytes <= ifmap_half else col_folds)
            filter_tile = k * min(n, cols) * w_byte
            filter_dram = weight_bytes * (1 if filter_tile <= filter_half else row_folds)
            psum_spill = 0.0
            sram_ifmap_reads = col_folds * m * k * a_byte
            sram_filter_reads = row_folds * k * n * w_byte
            prologue = min(m, rows) * k * a_byte + filter_tile
            epilogue = min(m, rows) * min(n, cols) * a_byte
        else:
            psum_passes = row_folds - 1
            if self.dataflow == "ws":
                ifmap_dram = input_bytes * (1 if input_bytes <= ifmap_half else col_folds)
                filter_dram = weight_bytes
                psum_tile = m * min(n, cols) * acc_byte
                sram_ifmap_reads = col_folds * m * k * a_byte
                sram_filter_reads = weight_bytes
                prologue = min(k, rows) * min(n, cols) * w_byte + m * min(k, rows) * a_byte
                epilogue = m * min(n, cols) * a_byte
            else:
                ifmap_dram = input_bytes
                filter_dram = weight_bytes * (1 if weight_bytes <= filter_half else col_folds)
                psum_tile = min(m, cols) * n * acc_byte
                sram_ifmap_reads = m * k * a_byte
                sram_filter_reads = col_folds * k * n * w_byte
                prologue = min(k, rows) * min(m, cols) * a_byte + min(k, rows) * n * w_byte
                epilogue = min(m, cols) * n * a_byte
            # partial sums: resident if their tile fits; else the streamed operand is cut into chunks whose
            # partial sums fit, which costs nothing more if the stationary operand's strip stays resident
            # (it is reloaded from SRAM per chunk), else the cheaper of spilling partial sums to DRAM and
            # re-fetching the strip per chunk
            strip = (k * min(n, cols) * w_byte if self.dataflow == "ws" else min(m, cols) * k * a_byte)
            strip_half = filter_half if self.dataflow == "ws" else ifmap_half
            if psum_tile <= ofmap_half or psum_passes == 0 or strip <= strip_half:
                psum_spill = 0.0
            else:
                chunks = math.ceil(psum_tile / ofmap_half)
                spill = 2 * psum_passes * m * n * acc_byte
                refetch = (weight_bytes if self.dataflow == "ws" else input_bytes) * (chunks - 1)
                psum_spill = 0.0 if refetch < spill else spill
                if refetch < spill:
                    if self.dataflow == "ws":
                        filter_dram += refetch
                    else:
                        ifmap_dram += refetch
        ofmap_dram = output_bytes + psum_spill

        dram_read = groups * (ifmap_dram + filter_dram + psum_spill / 2)
        dram_write = groups * (output_bytes + psum_spill / 2)
        dram_bytes = dram_read + dram_write
        stall_cycles = self._stall_cycles(dram_bytes, prologue, epilogue, compute_cycles)

        psum_bytes = groups * psum_passes * m * n * acc_byte
        sram = {  # bytes per buffer: array-side reads/writes, fills from DRAM, drains to DRAM
            "ifmap_read": groups * sram_ifmap_reads,
            "ifmap_write": groups * ifmap_dram,
            "filter_read": groups * sram_filter_reads,
            "filter_write": groups * filter_dram,
            "ofmap_write": groups * output_bytes + psum_bytes,
            "ofmap_read": groups * output_bytes + psum_bytes,
        }
        energy = self.energy
        actions = {
            "mac": (layer.macs, energy.mac_j(weight_bits, activation_bits)),
            "sram.ifmap_read": (sram["ifmap_read"], energy.sram_j_per_byte(self.ifmap_sram_bytes)),
            "sram.ifmap_write": (sram["ifmap_write"], energy.sram_j_per_byte(self.ifmap_sram_bytes, write=True)),
            "sram.filter_read": (sram["filter_read"], energy.sram_j_per_byte(self.filter_sram_bytes)),
            "sram.filter_write": (sram["filter_write"],
                                  energy.sram_j_per_byte(self.filter_sram_bytes, write=True)),
            "sram.ofmap_write": (sram["ofmap_write"], energy.sram_j_per_byte(self.ofmap_sram_bytes, write=True)),
            "sram.ofmap_read": (sram["ofmap_read"], energy.sram_j_per_byte(self.ofmap_sram_bytes)),
            "dram.read": (dram_read, energy.dram_j_per_byte()),
            "dram.write": (dram_write, energy.dram_j_per_byte()),
        }
        parts = {
            "native_compute_cycles": float(native_cycles),
            "folds": float(groups * row_folds * col_folds),
            "dram_ifmap_bytes": groups * ifmap_dram,
            "dram_filter_bytes": groups * filter_dram,
            "dram_ofmap_bytes": groups * ofmap_dram,
            **{f"sram_{name}_bytes": value for name, value in sram.items()},
        }
        return self._cost(layer.name, compute_cycles, stall_cycles, dram_bytes, actions, parts)

    def _vector_layer_cost(self, layer: LayerSpec, activation_bits: int) -> LayerCost:
        a_byte = activation_bits / 8
        # a copy moves one element per lane per cycle
        operations = layer.output_elements * (1 if layer.kind == "data" else layer.ops_per_output)
        compute_cycles = float(math.ceil(operations / self.cols))
        input_bytes, output_bytes = layer.read_elements * a_byte, layer.output_elements * a_byte
        fetches = 1 if input_bytes <= self.ifmap_sram_bytes / 2 else layer.input_reads
        sram_input_reads = input_bytes * layer.input_reads
        input_bytes *= fetches
        dram_bytes = input_bytes + output_bytes
        stall_cycles = self._stall_cycles(dram_bytes, min(input_bytes, self.cols * a_byte),
                                          min(output_bytes, self.cols * a_byte), compute_cycles)
        energy = self.energy
        actions = {
            "vector_alu": (operations, energy.add_j(activation_bits)),
            "sram.ifmap_write": (input_bytes, energy.sram_j_per_byte(self.ifmap_sram_bytes, write=True)),
            "sram.ifmap_read": (sram_input_reads, energy.sram_j_per_byte(self.ifmap_sram_bytes)),
            "sram.ofmap_write": (output_bytes, energy.sram_j_per_byte(self.ofmap_sram_bytes, write=True)),
            "sram.ofmap_read": (output_bytes, energy.sram_j_per_byte(self.ofmap_sram_bytes)),
            "dram.read": (input_bytes, energy.dram_j_per_byte()),
            "dram.write": (output_bytes, energy.dram_j_per_byte()),
        }
        parts = {"vector_operations": float(operations), "dram_ifmap_bytes": input_bytes,
                 "dram_ofmap_bytes": output_bytes}
        return self._cost(layer.name, compute_cycles, stall_cycles, dram_bytes, actions, parts)

    def _stall_cycles(self, dram_bytes: float, prologue_bytes: float, epilogue_bytes: float,
                      compute_cycles: float) -> float:
        """Cycles the array waits for DRAM with double buffering (0 without a bandwidth)."""
        if self.offchip_bandwidth_bytes_per_s is None:
            return 0.0
        bytes_per_cycle = self.offchip_bandwidth_bytes_per_s / self.clock_hz
        exposed = min(prologue_bytes + epilogue_bytes, dram_bytes)
        hidden = dram_bytes - exposed
        return exposed / bytes_per_cycle + max(0.0, hidden / bytes_per_cycle - compute_cycles)

    def _cost(self, name: str, compute_cycles: float, stall_cycles: float, dram_bytes: float,
              actions: dict[str, tuple[float, float]], parts: dict[str, float]) -> LayerCost:
        energy_parts = EnergyModel.energy_j(actions)
        parts = {**parts, **{f"{key}_count": float(count) for key, (count, _) in actions.items()}}
        total_cycles = compute_cycles + stall_cycles
        return LayerCost(
            name=name,
            compute_cycles=float(compute_cycles),
            stall_cycles=float(stall_cycles),
            latency_s=total_cycles / self.clock_hz,
            energy_j=sum(energy_parts.values()),
            dram_bytes=float(dram_bytes),
            energy_parts_j=energy_parts,
            parts=parts,
        )
