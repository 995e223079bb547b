"""Sweeps: the cartesian product of the values listed under `sweep:`, one validated scenario per cell."""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any

from hardware_models.errors import UserError
from simulator.experiment.schema import Experiment
from simulator.experiment.validated import LoadedExperiment, set_dotted, validate


@dataclass(frozen=True)
class Cell:
    """One point of the sweep: its index, the swept values (as written) and the fully resolved config."""

    index: int
    values: dict[str, Any]
    config: Experiment

    @property
    def label(self) -> str:
        """'network.uplink=3Mbps, model=resnet50', or the model name when nothing is swept."""
        if not self.values:
            return self.config.model
        return ", ".join(f"{key}={value}" for key, value in self.values.items())


def expand(loaded: LoadedExperiment) -> list[Cell]:
    """Every cell of the sweep in row-major order of the `sweep:` keys (one cell when there is no sweep)."""
    source = str(loaded.source)
    base = copy.deepcopy(loaded.data)
    base.pop("sweep", None)
    sweep = loaded.config.sweep
    if not sweep:
        return [Cell(0, {}, loaded.config)]
    # each value alone first, so that an error names the offending list item
    for key, listed in sweep.items():
        for i, value in enumerate(listed):
            data = copy.deepcopy(base)
            set_dotted(data, key, value)
            validate(data, source, prefix=f"sweep.{key}[{i}] -> ", base_dir=loaded.base_dir)
    cells = []
    keys = list(sweep)
    for index, combo in enumerate(itertools.product(*(sweep[k] for k in keys))):
        data = copy.deepcopy(base)
        for key, value in zip(keys, combo):
            set_dotted(data, key, value)
        values = dict(zip(keys, combo))
        try:
            config = validate(data, source, base_dir=loaded.base_dir)
        except UserError as exc:
            raise UserError(f"sweep cell {values}: {exc}") from None
        cells.append(Cell(index, values, config))
    return cells
