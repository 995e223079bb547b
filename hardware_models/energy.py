"""Energy per action and Accelergy-style totals: energy = sum over actions of count x energy per action.

The default table is Horowitz, ISSCC 2014 (45 nm, 0.9 V; hardware_models/data/horowitz_isscc2014_45nm.csv).
Rules, each stated where it is applied:

- **MAC** of a `w`-bit weight and an `a`-bit activation = one `w x a` multiply + one add at the accumulator
  width `w + a + accumulator_guard_bits` (16 guard bits by default: 32-bit accumulators for 8x8).
  Multiply energy is interpolated linearly in the product `w * a` through the table's 8, 16 and 32-bit
  multiplies (64, 256, 1024) and is proportional to `w * a` below 8x8 and above 32x32: an array
  multiplier has `w * a` partial-product cells, so its energy goes with the square of an equal width.
  Add energy is interpolated linearly in width through the 8/16/32-bit adds, proportional outside them.
- **SRAM** energy per 64-bit access depends on capacity: log-log interpolation through the table's 8 KiB,
  32 KiB and 1 MiB rows (Horowitz by default, CACTI 7 with `sram_table: cacti7`), extrapolated with the
  end segments' slopes; per byte = per 64-bit access / 8; a write costs `sram_write_factor` (1.0) x a read.
- **DRAM** energy per byte = the table's 64-bit access / 8 (1300 pJ, Horowitz's low end), reads = writes.
- **Technology scaling** (`technology_nm`, `supply_voltage_v`): switched capacitance scales with feature size
  and energy with C V^2, so MAC and SRAM energies are multiplied by (node / 45 nm) x (V / 0.9 V)^2. DRAM is
  off chip and is not scaled. Explicit overrides (`mac_8bit`, `dram_per_byte`, `sram_read_64bit`) are taken
  as given, at the preset's node.
- **Radio** energy = transmitted bits x joules per bit; the figure per bit comes from the network preset.
"""
from __future__ import annotations

import csv
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from hardware_models.preset import Energy, NonNegativeInteger, PositiveNumber, Size, StrictModel, validate_preset
from hardware_models.units import BYTE_UNITS

TABLE_PATH = Path(__file__).parent / "data" / "horowitz_isscc2014_45nm.csv"
REFERENCE_NODE_NM = 45.0
REFERENCE_SUPPLY_V = 0.9
PICO = 1e-12



def radio_j(bits: float, j_per_bit: float) -> float:
    """Energy in joules to transmit `bits` at `j_per_bit` joules per bit (the network preset's figure)."""
    return bits * j_per_bit


def _interpolate(points: tuple[tuple[float, float], ...], x: float) -> float:
    """Linear interpolation through `points` (sorted by x); proportional to x outside them."""
    if x <= points[0][0]:
        return points[0][1] * x / points[0][0]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1] * x / points[-1][0]


def _interpolate_log_log(points: tuple[tuple[float, float], ...], x: float) -> float:
    """Log-log interpolation through `points` (sorted by x), extrapolated with the end segments' slopes."""
    if len(points) == 1:
        return points[0][1]
    index = 0
    while index < len(points) - 2 and x > points[index + 1][0]:
        index += 1
    (x0, y0), (x1, y1) = points[index], points[index + 1]
    slope = math.log(y1 / y0) / math.log(x1 / x0)
    return y0 * (x / x0) ** slope


@functools.lru_cache(maxsize=4)
def read_table(path: Path = TABLE_PATH) -> dict[str, tuple[tuple[float, float], ...]]:
    """The energy table as sorted (size, joules) points: int `mult`/`add` by bit-width, SRAM reads per
    64-bit access by capacity in bytes (`sram_horowitz`, `sram_cacti7`) and `dram` per 64-bit access."""
    points: dict[str, list[tuple[float, float]]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            joules = float(row["energy_pJ"]) * PICO
            operation = row["operation"]
            size = re.search(r"(\d+)\s*([KM])B", operation)
            capacity = float(size.group(1)) * BYTE_UNITS[size.group(2) + "iB"] if size else 0.0
            if row["category"] == "int":
                points.setdefault(operation, []).append((float(row["bits"]), joules))
            elif operation.startswith("SRAM/cache read"):
                points.setdefault("sram_horowitz", []).append((capacity, joules))
            elif operation.startswith("CACTI7 SRAM") and "1RW read" in operation:
                points.setdefault("sram_cacti7", []).append((capacity, joules))
            elif operation == "DRAM access":
                points.setdefault("dram", []).append((float(row["bits"]), joules))
    return {name: tuple(sorted(values)) for name, values in points.items()}


class EnergyPreset(StrictModel):
    """A preset's `energy:` section (human units; every key optional)."""

    technology_nm: PositiveNumber = REFERENCE_NODE_NM
    supply_voltage_v: PositiveNumber = REFERENCE_SUPPLY_V
    mac_8bit: Energy | None = None  # one 8x8-bit MAC, e.g. '0.3pJ'
    dram_per_byte: Energy | None = None
    sram_table: Literal["horowitz", "cacti7"] = "horowitz"
    # SRAM size -> energy of one 64-bit read, e.g. {'8KiB': '10pJ', '1MiB': '100pJ'}
    sram_read_64bit: dict[Size, Energy] | None = Field(default=None, min_length=1)
    sram_write_factor: PositiveNumber = 1.0
    accumulator_guard_bits: NonNegativeInteger = 16
    source: str | None = None  # a citation (free text)


@dataclass(frozen=True)
class EnergyModel:
    """Energy per action in joules. Build with `EnergyModel.default()` or `EnergyModel.from_config(...)`.

    `multiply_points_j`: (w x a bit product, J per multiply); `add_points_j`: (width in bits, J per add);
    `sram_read_points_j`: (SRAM capacity in bytes, J per 64-bit read). `logic_scale` multiplies MAC energy
    and `sram_scale` SRAM energy (technology scaling and overrides); DRAM is `dram_j_per_byte_value`.
    """

    multiply_points_j: tuple[tuple[float, float], ...]
    add_points_j: tuple[tuple[float, float], ...]
    sram_read_points_j: tuple[tuple[float, float], ...]
    dram_j_per_byte_value: float
    sram_write_factor: float = 1.0
    accumulator_guard_bits: int = 16
    logic_scale: float = 1.0
    sram_scale: float = 1.0
    source: str = "Horowitz ISSCC 2014, 45 nm (hardware_models/data/horowitz_isscc2014_45nm.csv)"

    @classmethod
    def default(cls, sram_table: str = "horowitz") -> EnergyModel:
        """The 45 nm table: Horowitz's MAC, SRAM and DRAM figures (SRAM from CACTI 7 with 'cacti7')."""
        table = read_table()
        multiply = tuple((bits * bits, joules) for bits, joules in table["mult"])
        dram_bits, dram_joules = table["dram"][0]
        return cls(
            multiply_points_j=multiply,
            add_points_j=table["add"],
            sram_read_points_j=table[f"sram_{sram_table}"],
            dram_j_per_byte_value=dram_joules / (dram_bits / 8),
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, source: str) -> EnergyModel:
        """The model from a preset's `energy:` mapping (None or {} gives the default 45 nm table); errors name
        `source` and the key (`energy.mac_8bit`). The keys are `EnergyPreset`'s."""
        return cls.from_preset(validate_preset(EnergyPreset, config or {}, source, prefix="energy."))

    @classmethod
    def from_preset(cls, preset: EnergyPreset | None) -> EnergyModel:
        """The model of a validated `energy:` section (None: the default 45 nm table)."""
        preset = preset or EnergyPreset()
        model = cls.default(preset.sram_table)
        technology = ((preset.technology_nm / REFERENCE_NODE_NM)
                      * (preset.supply_voltage_v / REFERENCE_SUPPLY_V) ** 2)
        model = replace(model, logic_scale=technology, sram_scale=technology,
                        sram_write_factor=preset.sram_write_factor,
                        accumulator_guard_bits=preset.accumulator_guard_bits)
        if preset.mac_8bit is not None:
            model = replace(model, logic_scale=model.logic_scale * preset.mac_8bit / model.mac_j(8, 8))
        if preset.dram_per_byte is not None:
            model = replace(model, dram_j_per_byte_value=preset.dram_per_byte)
        if preset.sram_read_64bit is not None:
            model = replace(model, sram_read_points_j=tuple(sorted(preset.sram_read_64bit.items())), sram_scale=1.0)
        if preset.source is not None:
            model = replace(model, source=preset.source)
        return model

    # --- energy per action ------------------------------------------------------------------------
    def multiply_j(self, weight_bits: int, activation_bits: int) -> float:
        """Joules of one `weight_bits` x `activation_bits` integer multiply (~ product of the widths)."""
        return self.logic_scale * _interpolate(self.multiply_points_j, weight_bits * activation_bits)

    def add_j(self, width_bits: int) -> float:
        """Joules of one integer add of `width_bits` bits (linear in width)."""
        return self.logic_scale * _interpolate(self.add_points_j, width_bits)

    def mac_j(self, weight_bits: int = 8, activation_bits: int = 8) -> float:
        """Joules of one MAC: the multiply plus an add at width `w + a + accumulator_guard_bits`."""
        _check_bits(weight_bits, activation_bits)
        accumulator_bits = weight_bits + activation_bits + self.accumulator_guard_bits
        return self.multiply_j(weight_bits, activation_bits) + self.add_j(accumulator_bits)

    def sram_j_per_byte(self, capacity_bytes: float, write: bool = False) -> float:
        """Joules per byte read (or written) in an SRAM of `capacity_bytes` (64-bit accesses / 8)."""
        if not capacity_bytes > 0:
            raise ValueError(f"SRAM capacity must be positive, got {capacity_bytes}")
        per_access = self.sram_scale * _interpolate_log_log(self.sram_read_points_j, capacity_bytes)
        return per_access / 8 * (self.sram_write_factor if write else 1.0)

    def dram_j_per_byte(self) -> float:
        """Joules per byte read from or written to off-chip DRAM."""
        return self.dram_j_per_byte_value

    # --- totals ------------------------------------------------------------------------------------
    @staticmethod
    def energy_j(actions: Mapping[str, tuple[float, float]]) -> dict[str, float]:
        """Energy in joules by part: `actions` maps a name to (count, joules per count); names are grouped
        by the part before the first '.', so {'sram.ifmap_read': ..., 'sram.filter_read': ...} -> 'sram'.

        Example: energy_j({'mac': (macs, m.mac_j(4, 8)), 'dram.read': (bytes, m.dram_j_per_byte())}).
        """
        parts: dict[str, float] = {}
        for name, (count, joules_each) in actions.items():
            if count < 0 or joules_each < 0:
                raise ValueError(f"action {name!r}: count and energy must be >= 0, got {count}, {joules_each}")
            part = name.split(".", 1)[0]
            parts[part] = parts.get(part, 0.0) + count * joules_each
        return parts


def _check_bits(*bits: int) -> None:
    for value in bits:
        if not 1 <= value <= 64:
            raise ValueError(f"bit-width must be between 1 and 64, got {value}")
