"""Write the SCALE-Sim inputs of the references: topology CSVs from the zoo's LayerSpecs, and the configs.

Run with the project's venv from the repository root:
    .venv/bin/python tests/scalesim_reference/make_inputs.py
Writes topologies/<model>.csv (SCALE-Sim's conv format, one group of each grouped conv) and
topologies/<model>.groups.csv (layer name, groups: how many times SCALE-Sim's cycles are repeated).
The configs in configs/ are written by hand (see README.md).
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from hardware_models.scalesim_io import topology_row, write_topology  # noqa: E402
from simulator.graph import zoo  # noqa: E402

MODELS = ("resnet18", "mobilenet_v2")


def main() -> None:
    for model in MODELS:
        layers = [layer for layer in zoo.build(model).layer_specs() if layer.is_mac_layer]
        groups = write_topology(layers, HERE / "topologies" / f"{model}.csv")
        with open(HERE / "topologies" / f"{model}.groups.csv", "w") as handle:
            handle.write("name,groups\n")
            for layer, g in zip(layers, groups):
                handle.write(f"{topology_row(layer)[0]},{g}\n")
        print(f"{model}: {len(layers)} conv/gemm layers")


if __name__ == "__main__":
    main()
