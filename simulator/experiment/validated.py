"""A validated experiment, and how a mapping becomes one: `validate` against the schema (relative paths against
the experiment file's folder), `set_dotted` for overrides and sweep values, and what is wrong said in one line.

Every error is a UserError of the form `FILE: key.path: what was expected, got what (did you mean ...?)`,
whatever went wrong: an unknown key, a wrong type, a bad unit, an unknown preset.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from hardware_models import yaml_errors
from hardware_models.errors import UserError
from hardware_models.yaml_errors import problems
from simulator.experiment.schema import Experiment

if TYPE_CHECKING:  # sweep imports this module
    from simulator.experiment.sweep import Cell


@dataclass
class LoadedExperiment:
    """A validated experiment: the typed config, the mapping it came from, where it came from."""

    config: Experiment
    data: dict  # the user's mapping after --set overrides (defaults not filled in)
    source: Path
    overrides: list[str] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)  # the sweep's cells, expanded once (`load_experiment`)

    @property
    def base_dir(self) -> Path:
        """Relative paths inside the experiment file are relative to its folder."""
        return self.source.parent

    @property
    def stem(self) -> str:
        return self.source.stem


def set_dotted(data: dict, key: str, value: Any, where: str = "") -> None:
    """data['a']['b'] = value for key 'a.b', creating mappings on the way."""
    parts = key.split(".")
    if parts[0] == "sweep" and len(parts) > 2:  # sweep keys are themselves dotted
        parts = ["sweep", ".".join(parts[1:])]
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise UserError(f"{where or key}: {'.'.join(parts[:i + 1])} is not a mapping")
        node = child
    node[parts[-1]] = value


MAX_ERRORS_SHOWN = 20


def validate(data: dict, source: str, prefix: str = "", base_dir: Path | None = None) -> Experiment:
    """Experiment.model_validate(data), or a UserError listing every problem, one per line: unknown keys first
    (their close-name hints explain most of the rest), then the others in file order, at most MAX_ERRORS_SHOWN.

    Relative paths in the mapping (ONNX models, traces, preset files) are resolved against `base_dir`
    (the experiment file's folder)."""
    try:
        return Experiment.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise UserError(describe_errors(exc.errors(include_url=False), source, prefix)) from None


def describe_errors(errors: Sequence[ErrorDetails], source: str, prefix: str = "") -> str:
    """One line per problem key (a union's branch errors are one problem), unknown keys first."""
    shown = problems(errors, source, Experiment, prefix)
    if len(shown) > MAX_ERRORS_SHOWN:
        rest = len(shown) - MAX_ERRORS_SHOWN
        shown = shown[:MAX_ERRORS_SHOWN] + [f"{source}: ... and {rest} more problem{'s' * (rest > 1)}"]
    return "\n".join(shown)


def describe_error(error: ErrorDetails, source: str, prefix: str = "") -> str:
    """One line: source, dotted key path, what was expected, what was given."""
    return yaml_errors.describe_error(error, source, Experiment, prefix)
