"""Read an experiment YAML, apply `--set key=value` overrides, and validate it and every cell of its sweep.

Every error is a UserError of the form `FILE: key.path: what was expected, got what (did you mean ...?)`,
whatever went wrong: YAML syntax, an empty file, an unknown key, a wrong type, a bad unit, an unknown preset.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from hardware_models.errors import UserError
from hardware_models.yaml_errors import kind_of
from hardware_models.yaml_io import read_yaml_file
from simulator.experiment.sweep import expand
from simulator.experiment.validated import LoadedExperiment, set_dotted, validate

__all__ = ["apply_overrides", "load_experiment", "read_mapping"]


def read_mapping(path: Path) -> dict:
    """The YAML mapping in `path`, or a UserError naming the file (and line, for a syntax error)."""
    data = read_yaml_file(path, "experiment file", column=True)
    if data is None:
        raise UserError(f"{path}: empty file; expected a mapping with at least model, edge, network and constraints")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of keys to values at the top level, got {kind_of(data)}")
    return data


def apply_overrides(data: dict, overrides: list[str], source: Path) -> dict:
    """A copy of `data` with each `key.path=value` set (the value read as YAML: numbers, lists, strings)."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected key=value, e.g. --set network.uplink=10Mbps")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        if isinstance(value, str) and not Path(value).is_absolute() and Path(value).is_file():
            # a path typed on the command line is relative to the working directory (the file's own paths are
            # relative to the file's folder)
            value = str(Path(value).resolve())
        set_dotted(data, key, value, where=f"--set {key}")
    return data


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> LoadedExperiment:
    """Read, override and validate the experiment in `path` (sweep values included), or raise UserError."""
    source = Path(path)
    overrides = list(overrides or [])
    data = apply_overrides(read_mapping(source), overrides, source)
    config = validate(data, str(source), base_dir=source.parent)
    loaded = LoadedExperiment(config=config, data=data, source=source, overrides=overrides)
    loaded.cells = expand(loaded)  # every sweep value and every cell must validate too; expanded once a run
    return loaded
