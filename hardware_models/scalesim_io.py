"""SCALE-Sim's own inputs: its `.cfg` architecture file and its conv topology CSV.

A `.cfg` becomes a `SystolicArray`; a topology CSV becomes a list of `LayerSpec`s; `write_topology` writes
LayerSpecs back as a topology SCALE-Sim 3.0.0 reads. Conventions of SCALE-Sim kept here:

- sizes in the `.cfg` ("ifmapsramszkB") are 1024-byte kB (DESIGN.md: read as KiB);
- a topology row is `name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
  Strides,` with a trailing comma; the IFMAP dims are the padded input (no padding column), so the output
  is `ceil((ifmap - filter + stride) / stride)`;
- the topology has no groups column: a grouped or depthwise conv is written as one group's conv
  (`Channels` = in_channels / groups, `Num Filter` = out_channels / groups) and its cycles are that group's
  times `groups` (`write_topology` returns the groups of each row for that purpose);
- SCALE-Sim expands a layer whose name contains "DP" into one row per channel, so names are written with
  "DP" replaced;
- a GEMM topology (SCALE-Sim's `-i gemm`: header `Layer, M, N, K`, rows `name, M, N, K,`) is read as gemm
  layers of M rows, K inputs and N outputs.

A `.cfg` carries no clock and, in its CALC bandwidth mode, no off-chip bandwidth: the optional section
`[autosplit]` may give `Clock` (e.g. "202.381MHz"), `OffChipBandwidth` (e.g. "1GB/s" or bytes/s) and
`SupportedBits`; otherwise the clock is 1 GHz (an assumption, said so in the array's `source`), and the
bandwidth is unlimited in CALC mode (SCALE-Sim's stall-free mode) or `Bandwidth` words (bytes) per cycle
in USER mode.
"""
from __future__ import annotations

import configparser
import math
from collections.abc import Sequence
from pathlib import Path

from hardware_models.errors import UserError
from hardware_models.layer import LayerSpec
from hardware_models.systolic import SystolicArray
from hardware_models.units import parse_bandwidth, parse_frequency

TOPOLOGY_HEADER = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels",
                   "Num Filter", "Strides")
DEFAULT_CFG_CLOCK_HZ = 1e9


def read_scalesim_cfg(path: str | Path) -> SystolicArray:
    """A SystolicArray from a SCALE-Sim 3.0.0 `.cfg` (its `[architecture_presets]` section)."""
    path = Path(path)
    parser = configparser.ConfigParser()
    try:
        parser.read_string(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or 'not a text file'}") from None
    except configparser.Error as exc:
        raise UserError(f"{path}: not a SCALE-Sim config: {str(exc).splitlines()[0]}") from None
    section = "architecture_presets"
    if not parser.has_section(section):
        raise UserError(f"{path}: no [{section}] section; not a SCALE-Sim config")
    arch = parser[section]

    def integer(key: str) -> int:
        if key not in arch:
            raise UserError(f"{path}: [{section}] {key}: missing")
        try:
            value = int(str(arch[key]).strip())
        except ValueError:
            raise UserError(f"{path}: [{section}] {key}: expected a whole number, got {arch[key]!r}") from None
        if value <= 0:
            raise UserError(f"{path}: [{section}] {key}: expected a positive number, got {value}")
        return value

    rows, cols = integer("ArrayHeight"), integer("ArrayWidth")
    kib = 1024
    sram = {name: integer(key) * kib for name, key in
            (("ifmap", "IfmapSramSzkB"), ("filter", "FilterSramSzkB"), ("ofmap", "OfmapSramSzkB"))}
    dataflow = str(arch.get("Dataflow", "os")).strip()
    if dataflow not in ("os", "ws", "is"):
        raise UserError(f"{path}: [{section}] Dataflow: expected os, ws or is, got {dataflow!r}")

    clock_hz = DEFAULT_CFG_CLOCK_HZ
    clock_note = "clock 1 GHz assumed (a .cfg has none)"
    bandwidth_bytes_per_s: float | None = None
    supported_bits: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 8, 16)
    mode = "CALC"
    if parser.has_section("run_presets"):
        mode = str(parser["run_presets"].get("InterfaceBandwidth", "CALC")).strip().upper()
    if mode == "USER" and "Bandwidth" in arch:
        words = float(str(arch["Bandwidth"]).split(",")[0])
        bandwidth_bytes_per_s = words * clock_hz  # SCALE-Sim words are 1 byte; rescaled below with the clock
    if parser.has_section("autosplit"):
        extra = parser["autosplit"]
        if "Clock" in extra:
            new_clock = parse_frequency(extra["Clock"], f"{path}: [autosplit] Clock")
            if bandwidth_bytes_per_s is not None:
                bandwidth_bytes_per_s *= new_clock / clock_hz
            clock_hz, clock_note = new_clock, "clock from [autosplit]"
        if "OffChipBandwidth" in extra:
            bandwidth_bytes_per_s = parse_bandwidth(extra["OffChipBandwidth"], f"{path}: [autosplit] OffChipBandwidth")
        if "SupportedBits" in extra:
            try:
                supported_bits = tuple(int(b) for b in str(extra["SupportedBits"]).split(","))
            except ValueError:
                raise UserError(f"{path}: [autosplit] SupportedBits: expected e.g. '4,8,16'") from None
    name = path.stem
    if parser.has_section("general") and "run_name" in parser["general"]:
        name = str(parser["general"]["run_name"]).strip()
    return SystolicArray(
        name=name, rows=rows, cols=cols, dataflow=dataflow,
        ifmap_sram_bytes=sram["ifmap"], filter_sram_bytes=sram["filter"], ofmap_sram_bytes=sram["ofmap"],
        clock_hz=clock_hz, offchip_bandwidth_bytes_per_s=bandwidth_bytes_per_s, supported_bits=supported_bits,
        source=f"SCALE-Sim config {path} ({clock_note})",
    )


def read_topology(path: str | Path, groups: Sequence[int] | None = None) -> list[LayerSpec]:
    """LayerSpecs from a SCALE-Sim conv topology CSV (batch 1, no padding: IFMAP dims are the padded input)
    or GEMM topology CSV (header `Layer, M, N, K`).

    `groups`, if given, says how many times each row's conv is repeated (a grouped conv written as one
    group); the LayerSpec then has `groups` times the row's channels and filters.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or 'not a text file'}") from None
    layers: list[LayerSpec] = []
    gemm = bool(lines) and [c.strip().upper() for c in lines[0].split(",")[1:4]] == ["M", "N", "K"]
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        while cells and cells[-1] == "":
            cells.pop()
        if gemm:
            layers.append(_gemm_row(path, number, cells))
            continue
        if len(cells) < 8:
            raise UserError(f"{path}: line {number}: expected at least 8 columns "
                            f"({', '.join(TOPOLOGY_HEADER)}), got {len(cells)}")
        name = cells[0]
        try:
            ifmap_h, ifmap_w, filt_h, filt_w, channels, filters, stride = (int(c) for c in cells[1:8])
        except ValueError:
            raise UserError(f"{path}: line {number}: expected whole numbers after the layer name") from None
        if min(ifmap_h, ifmap_w, filt_h, filt_w, channels, filters, stride) <= 0:
            raise UserError(f"{path}: line {number}: sizes and stride must be positive")
        if filt_h > ifmap_h or filt_w > ifmap_w:
            raise UserError(f"{path}: line {number} ({name}): filter larger than the IFMAP")
        repeat = 1 if groups is None else int(groups[len(layers)])
        out_h = math.ceil((ifmap_h - filt_h + stride) / stride)
        out_w = math.ceil((ifmap_w - filt_w + stride) / stride)
        layers.append(LayerSpec(
            name=name, kind="conv", in_channels=channels * repeat, in_height=ifmap_h, in_width=ifmap_w,
            out_channels=filters * repeat, out_height=out_h, out_width=out_w, kernel_height=filt_h,
            kernel_width=filt_w, stride=stride, groups=repeat, has_weights=True))
    if not layers:
        raise UserError(f"{path}: no layers in the topology")
    return layers


def _gemm_row(path: Path, number: int, cells: list[str]) -> LayerSpec:
    """One row `name, M, N, K` of a SCALE-Sim GEMM topology."""
    try:
        if len(cells) < 4:
            raise ValueError
        m, n, k = (int(c) for c in cells[1:4])
    except ValueError:
        raise UserError(f"{path}: line {number}: expected name, M, N, K with whole numbers") from None
    if min(m, n, k) <= 0:
        raise UserError(f"{path}: line {number}: M, N and K must be positive")
    return LayerSpec(name=cells[0], kind="gemm", in_channels=k, in_height=m, out_channels=n, out_height=m,
                     has_weights=True)


def topology_row(layer: LayerSpec) -> list[object]:
    """One group of a conv/gemm layer as a SCALE-Sim topology row (padded IFMAP dims, batch folded in M)."""
    if not layer.is_mac_layer:
        raise ValueError(f"layer {layer.name!r} ({layer.kind}) has no MACs: SCALE-Sim cannot run it")
    if layer.batch != 1:
        raise ValueError(f"layer {layer.name!r}: SCALE-Sim 3.0.0 simulates batch 1 only")
    name = layer.name.replace(",", "_").replace("DP", "dp")
    # SCALE-Sim has no dilation: a dilated conv's im2col GEMM is the undilated conv's of the same output
    in_height = (layer.out_height - 1) * layer.stride + layer.kernel_height
    in_width = (layer.out_width - 1) * layer.stride + layer.kernel_width
    return [name, in_height, in_width, layer.kernel_height, layer.kernel_width,
            layer.in_channels // layer.groups, layer.out_channels // layer.groups, layer.stride]


def write_topology(layers: Sequence[LayerSpec], path: str | Path) -> list[int]:
    """Write the conv/gemm layers of `layers` as a SCALE-Sim topology CSV; returns each row's groups."""
    rows = [layer for layer in layers if layer.is_mac_layer]
    with open(path, "w") as handle:
        handle.write(",".join(TOPOLOGY_HEADER) + ",\n")
        for layer in rows:
            handle.write(",".join(str(c) for c in topology_row(layer)) + ",\n")
    return [layer.groups for layer in rows]
