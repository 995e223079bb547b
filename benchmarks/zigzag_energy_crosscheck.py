"""Cross-check the DSP's energy (hardware_models/dsp.py + energy.py) against ZigZag's cost model.

ZigZag (PyPI zigzag-dse 3.9.1, which also needs `six`) is given the same architecture and the same energy per
action: one vector MAC instruction's 32 accumulator lanes x 4-deep dot product as its operational array,
zero-cost vector registers (one weight per MAC, one activation broadcast over the lanes, four 32-bit
accumulators per lane: autosplit's register block of 4 pixels), the DSP's on-chip memory (one SRAM for all
operands, autosplit's energy per byte) and DRAM (autosplit's energy per byte), and autosplit's MAC energy at
the layer's bit-widths. autosplit uses its fixed mapping; ZigZag either evaluates that same loop order
(mode `same`) or searches its own for minimum energy (modes `loma` and `salsa`; about 15 s and 60 s per
layer here).

Run it in its own virtual environment (ZigZag pins its own dependencies):
    python3 -m venv /work/zigzag-venv && /work/zigzag-venv/bin/pip install zigzag-dse==3.9.1 six
    nice /work/zigzag-venv/bin/python benchmarks/zigzag_energy_crosscheck.py \
        [--modes same,loma,salsa] [--out tests/fixtures/zigzag_dsp_energy.csv]
It prints, per layer and bit-width, both tools' energy by part (mac, sram, dram) and their ratio (all three
modes take about 25 minutes on a loaded 2-core machine, SALSA most of it).
"""
from __future__ import annotations

import argparse
import csv
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware_models import LayerSpec, load_accelerator  # noqa: E402

PJ = 1e-12
LANES, DEPTH = 32, 4
DRAM_PORT_BITS = 4096  # one HVX-like vector MAC instruction: 32 accumulator lanes x 4-deep dot product


def conv(name, cin, hw, cout, kernel, stride=1, groups=1):
    out = (hw + 2 * (kernel // 2) - kernel) // stride + 1
    return LayerSpec(name, "conv", cin, hw, hw, cout, out, out, kernel, kernel, stride, groups, has_weights=True)


LAYERS = [
    conv("resnet18.conv1", 3, 224, 64, 7, 2),
    conv("resnet18.layer1.0.conv1", 64, 56, 64, 3),
    conv("resnet18.layer2.1.conv1", 128, 28, 128, 3),
    conv("resnet18.layer4.1.conv2", 512, 7, 512, 3),
    conv("mobilenet_v2.features.2.conv.0", 16, 112, 96, 1),
    conv("mobilenet_v2.features.1.conv.0", 32, 112, 32, 3, groups=32),
    conv("mobilenet_v2.features.4.conv.1", 144, 56, 144, 3, stride=2, groups=144),
    LayerSpec("resnet18.fc", "gemm", 512, 1, 1, 1000, 1, 1, has_weights=True),
]
BITS = [(8, 8), (4, 4), (16, 16)]


def layer_columns(layer: LayerSpec) -> dict[str, int | str]:
    """The layer's shape, so that a test can rebuild the LayerSpec from the CSV alone."""
    return {"kind": layer.kind, "in_channels": layer.in_channels, "in_size": layer.in_height,
            "out_channels": layer.out_channels, "out_size": layer.out_height, "kernel": layer.kernel_height,
            "stride": layer.stride, "groups": layer.groups}


def is_depthwise(layer: LayerSpec) -> bool:
    return layer.groups > 1 and layer.in_channels == layer.groups


def port(name, kind, bits_min, bits_max, allocation):
    return {"name": name, "type": kind, "bandwidth_min": bits_min, "bandwidth_max": bits_max,
            "allocation": allocation}


def accelerator_yaml(dsp, wbits, abits, depthwise: bool = False) -> dict:
    """ZigZag's description of the DSP with autosplit's per-access energies (pJ). For a depthwise conv the
    instruction is 32 lanes x 1 product (channels on lanes, each lane its own activation)."""
    energy = dsp.energy
    sram_read_per_byte = energy.sram_j_per_byte(dsp.onchip_memory_bytes) / PJ
    sram_write_per_byte = energy.sram_j_per_byte(dsp.onchip_memory_bytes, write=True) / PJ
    dram_per_byte = energy.dram_j_per_byte() / PJ

    def register(operand, size_bits, served, reads, writes):
        return {"size": size_bits, "r_cost": 0.0, "w_cost": 0.0, "area": 0.0, "latency": 1, "operands": [operand],
                "ports": [port("r_port_1", "read", size_bits, size_bits, reads),
                          port("w_port_1", "write", size_bits, size_bits, writes)],
                "served_dimensions": served}

    vector_bits = dsp.vector_bits
    return {
        "name": "dsp_like",
        "memories": {
            "reg_W": register("I2", max(wbits, 8), [], ["I2, tl"], ["I2, fh"]),
            "reg_I": register("I1", max(abits, 8), [] if depthwise else ["D1"], ["I1, tl"], ["I1, fh"]),
            "reg_O": {
                "size": 4 * 32, "r_cost": 0.0, "w_cost": 0.0, "area": 0.0, "latency": 1, "operands": ["O"],
                "ports": [port("r_port_1", "read", 32, 32, ["O, tl"]), port("r_port_2", "read", 32, 32, ["O, th"]),
                          port("w_port_1", "write", 32, 32, ["O, fh"]), port("w_port_2", "write", 32, 32, ["O, fl"])],
                "served_dimensions": ["D2"],
            },
            "vtcm": {
                # energies per access of bandwidth_max bits; bandwidth_min=8 keeps byte granularity
                "size": int(dsp.onchip_memory_bytes * 8), "latency": 1, "area": 0.0,
                "r_cost": sram_read_per_byte * vector_bits / 8, "w_cost": sram_write_per_byte * vector_bits / 8,
                "operands": ["I1", "I2", "O"],
                "ports": [port("r_port_1", "read", 8, vector_bits, ["I1, tl", "I2, tl", "O, tl", "O, th"]),
                          port("w_port_1", "write", 8, vector_bits, ["I1, fh", "I2, fh", "O, fh", "O, fl"])],
                "served_dimensions": ["D1", "D2"],
            },
            "dram": {
                "size": 10**10, "latency": 1, "area": 0.0,
                # wide enough that ZigZag does not cut the spatial unrolling for bandwidth (energy only)
                "r_cost": dram_per_byte * DRAM_PORT_BITS / 8, "w_cost": dram_per_byte * DRAM_PORT_BITS / 8,
                "operands": ["I1", "I2", "O"],
                "ports": [port("rw_port_1", "read_write", 8, DRAM_PORT_BITS,
                               ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"])],
                "served_dimensions": ["D1", "D2"],
            },
        },
        "operational_array": {
            "unit_energy": energy.mac_j(wbits, abits) / PJ, "unit_area": 1.0,
            "dimensions": ["D1", "D2"], "sizes": [LANES, 1 if depthwise else DEPTH],
        },
    }


def workload(layer: LayerSpec, wbits, abits) -> list[dict]:
    precision = {"W": wbits, "I": abits, "O": 32, "O_final": abits}
    s = layer.stride
    if is_depthwise(layer):
        return [{
            "id": 0, "name": layer.name, "operator_type": "Conv",
            "equation": "O[b][g][oy][ox]+=W[g][fy][fx]*I[b][g][iy][ix]",
            "dimension_relations": [f"ix={s}*ox+1*fx", f"iy={s}*oy+1*fy"],
            "loop_dims": ["B", "G", "OY", "OX", "FY", "FX"],
            "loop_sizes": [layer.batch, layer.groups, layer.out_height, layer.out_width, layer.kernel_height,
                           layer.kernel_width],
            "operand_precision": precision, "operand_source": {"I": 0, "W": 0},
        }]
    return [{
        "id": 0, "name": layer.name, "operator_type": "Conv",
        "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
        "dimension_relations": [f"ix={s}*ox+1*fx", f"iy={s}*oy+1*fy"],
        "loop_dims": ["B", "K", "C", "OY", "OX", "FY", "FX"],
        "loop_sizes": [layer.batch, layer.out_channels, layer.in_channels, layer.out_height, layer.out_width,
                       layer.kernel_height, layer.kernel_width],
        "operand_precision": precision, "operand_source": {"I": 0, "W": 0},
    }]


SPATIAL = {"D1": ["K, 32"], "D2": ["C, 4"]}
SPATIAL_DEPTHWISE = {"D1": ["G, 32"]}
LINKS = {"O": "O", "W": "I2", "I": "I1"}


def largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def smallest_divisor_at_least(n: int, low: int) -> int:
    return min(d for d in range(1, n + 1) if n % d == 0 and d >= min(low, n))


def mapping(dsp, layer: LayerSpec, wbits: int, abits: int, same_as_autosplit: bool) -> list[dict]:
    """ZigZag's mapping: the DSP's spatial unrolling, and with `same_as_autosplit` autosplit's loop order
    (innermost first): a block of output pixels along OX (weights reused from registers), the window and the
    input channels (partial sums stay in the accumulators), then filter blocks and pixels in the order of
    autosplit's DRAM schedule (all on chip; weight chunks outermost; or input row chunks outermost)."""
    depthwise = is_depthwise(layer)
    spatial = SPATIAL_DEPTHWISE if depthwise else SPATIAL
    entries = [{"name": "default", "spatial_mapping": spatial, "memory_operand_links": LINKS}]
    if not same_as_autosplit:
        return entries
    block = largest_divisor_at_most(layer.out_width, dsp.register_block_pixels)
    filter_blocks = math.ceil(layer.out_channels / LANES)
    inner = [["OX", block], ["FX", layer.kernel_width], ["FY", layer.kernel_height]]
    if not depthwise:
        inner.append(["C", math.ceil(layer.in_channels / 4)])
    channel = "G" if depthwise else "K"
    schedule, chunks = dsp.dram_schedule(layer.weight_elements * wbits / 8, layer.input_elements * abits / 8,
                                         layer.output_elements * abits / 8)
    if schedule == "fits":
        order = inner + [[channel, filter_blocks], ["OX", layer.out_width // block], ["OY", layer.out_height]]
    elif schedule == "weights_resident":
        outer = smallest_divisor_at_least(filter_blocks, chunks)
        order = inner + [[channel, filter_blocks // outer], ["OX", layer.out_width // block],
                         ["OY", layer.out_height], [channel, outer]]
    else:
        outer = smallest_divisor_at_least(layer.out_height, chunks)
        order = inner + [["OX", layer.out_width // block], ["OY", layer.out_height // outer],
                         [channel, filter_blocks], ["OY", outer]]
    entries.append({"name": layer.name, "spatial_mapping": spatial, "memory_operand_links": LINKS,
                    "temporal_ordering": [item for item in order if item[1] > 1]})
    return entries


def run_zigzag(dsp, layer, wbits, abits, folder: Path, mode: str) -> dict[str, float]:
    """ZigZag's energy by part for `mode`: 'same' (autosplit's loop order), 'loma' (ZigZag's exhaustive LOMA
    search, lpf_limit 6) or 'salsa' (its simulated-annealing search, lpf_limit 8)."""
    from zigzag.api import get_hardware_performance_zigzag

    accelerator = folder / "dsp_like.yaml"
    accelerator.write_text(yaml.safe_dump(accelerator_yaml(dsp, wbits, abits, is_depthwise(layer)),
                                          sort_keys=False))
    mapping_file = folder / "mapping.yaml"
    mapping_file.write_text(yaml.safe_dump(mapping(dsp, layer, wbits, abits, mode == "same"),
                                           sort_keys=False))
    _, _, cmes = get_hardware_performance_zigzag(
        workload(layer, wbits, abits), str(accelerator), str(mapping_file), opt="energy",
        dump_folder=str(folder / "out"), loma_show_progress_bar=False,
        temporal_mapping_search_engine="salsa" if mode == "salsa" else "loma", lpf_limit=8 if mode == "salsa" else 6)
    cme = cmes[0][1][0][0]
    parts = {"mac": cme.mac_energy * PJ, "sram": 0.0, "dram": 0.0}
    hierarchy = cme.accelerator.memory_hierarchy
    for layer_operand, energies in cme.mem_energy_breakdown.items():
        memory_operand = cme.memory_operand_links.layer_to_mem_op(layer_operand)
        for level, joules in zip(hierarchy.get_memory_levels(memory_operand), energies):
            key = {"vtcm": "sram", "dram": "dram"}.get(level.name)
            if key:
                parts[key] += joules * PJ
            elif joules:
                raise AssertionError(f"register level {level.name} should be free, got {joules} pJ")
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hardware", default="tests/fixtures/zigzag_dsp.yaml",
                        help="a dsp preset name or YAML (default: the fixture the tests compare with)")
    parser.add_argument("--modes", default="same,loma,salsa",
                        help="same: ZigZag evaluates autosplit's loop order; loma, salsa: ZigZag's own best order "
                             "found by its LOMA (lpf_limit 6) or SALSA (lpf_limit 8) search")
    parser.add_argument("--layers", help="comma-separated layer names (default: all)")
    parser.add_argument("--out", help="write the rows as CSV (e.g. tests/fixtures/zigzag_dsp_energy.csv)")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    dsp = load_accelerator(args.hardware)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for layer in LAYERS:
            if args.layers and layer.name not in args.layers.split(","):
                continue
            for wbits, abits in BITS:
                ours = dsp.layer_cost(layer, wbits, abits).energy_parts_j
                for mode in args.modes.split(","):
                    started = time.perf_counter()
                    try:
                        theirs = run_zigzag(dsp, layer, wbits, abits, Path(tmp), mode)
                    except Exception as exc:  # report and go on: one layer ZigZag cannot map is a finding
                        print(f"{layer.name} W{wbits}A{abits} {mode}: ZigZag failed: {type(exc).__name__}: {exc}"[:300])
                        continue
                    row = {"layer": layer.name, **layer_columns(layer), "weight_bits": wbits,
                           "activation_bits": abits, "mode": mode}
                    for part in ("mac", "sram", "dram"):
                        row[f"autosplit_{part}_j"] = ours.get(part, 0.0)
                        row[f"zigzag_{part}_j"] = theirs[part]
                    row["autosplit_total_j"] = sum(row[f"autosplit_{p}_j"] for p in ("mac", "sram", "dram"))
                    row["zigzag_total_j"] = sum(theirs.values())
                    row["autosplit_unpack_j"] = ours.get("vector_alu", 0.0)  # no ZigZag counterpart
                    rows.append(row)
                    print(f"{layer.name:32s} W{wbits:<2d}A{abits:<2d} {mode:6s} "
                          + " ".join(f"{p}={row[f'autosplit_{p}_j'] * 1e6:7.2f}/{row[f'zigzag_{p}_j'] * 1e6:7.2f}uJ"
                                     for p in ("mac", "sram", "dram", "total"))
                          + f"  ratio={row['autosplit_total_j'] / row['zigzag_total_j']:.3f}"
                          + f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    if args.out and rows:
        with open(args.out, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
