"""A validated experiment, and how a mapping becomes one: `validate` against the schema (relative paths against
the experiment file's folder), `set_dotted` for overrides and sweep values, and what is wrong said in one line.

Every error is a UserError of the form `FILE: key.path: what was expected, got what (did you mean ...?)`,
whatever went wrong: an unknown key, a wrong type, a bad unit, an unknown preset.
"""
from __future__ import annotations

import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from hardware_models.errors import UserError, suggest
from simulator.experiment.schema import Experiment


@dataclass
class LoadedExperiment:
    """A validated experiment: the typed config, the mapping it came from, where it came from."""

    config: Experiment
    data: dict  # the user's mapping after --set overrides (defaults not filled in)
    source: Path
    overrides: list[str] = field(default_factory=list)

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
    lines: dict[tuple, str] = {}
    for error in sorted(errors, key=lambda e: e.get("type") != "extra_forbidden"):  # stable: file order kept
        loc = tuple(p for p in error.get("loc", ()) if dotted((p,)) or isinstance(p, int))
        if loc not in lines:
            lines[loc] = describe_error(error, source, prefix)
    shown = list(lines.values())
    if len(shown) > MAX_ERRORS_SHOWN:
        rest = len(shown) - MAX_ERRORS_SHOWN
        shown = shown[:MAX_ERRORS_SHOWN] + [f"{source}: ... and {rest} more problem{'s' * (rest > 1)}"]
    return "\n".join(shown)


# --- messages -----------------------------------------------------------------------------------------
def describe_error(error: ErrorDetails, source: str, prefix: str = "") -> str:
    """One line: source, dotted key path, what was expected, what was given."""
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    given = error.get("input")
    ctx = error.get("ctx") or {}
    key = prefix + dotted(loc) if loc else (prefix.rstrip(".") or "(top level)")
    if kind == "extra_forbidden":
        known = fields_at(loc[:-1])
        hint = suggest(str(loc[-1]), known)
        return f"{source}: {key}: unknown key{hint}; expected one of {', '.join(known)}"
    if kind == "missing":
        return f"{source}: {key}: missing; {describe_field(loc)}"
    if kind in ("literal_error", "enum"):
        expected = ctx.get("expected", "")
        choices = [c.strip(" '") for c in expected.replace(" or ", ",").split(",") if c.strip(" '")]
        return f"{source}: {key}: expected one of {', '.join(choices)}, got {_show(given)}{suggest(str(given), choices)}"
    if kind == "value_error":
        message = str(ctx.get("error", error.get("msg", "")))
        message = message.removeprefix("value: ")
        return f"{source}: {key}: {message}"
    if kind == "model_type" or kind == "dict_type":
        return f"{source}: {key}: expected a mapping of keys to values, got {kind_of(given)} {_show(given)}"
    if kind == "too_short":
        return f"{source}: {key}: expected at least {ctx.get('min_length', 1)} item(s), got {_show(given)}"
    if kind == "list_type":
        return f"{source}: {key}: expected a list, got {kind_of(given)} {_show(given)}"
    message = str(error.get("msg", kind)).replace("Input should be", "expected")
    return f"{source}: {key}: {message}, got {_show(given)}"


def dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            # pydantic names a union/annotated branch (e.g. 'str', 'float', '[key]'); not part of the user's path
            if text in ("str", "float", "int", "[key]") or text.startswith("function-"):
                continue
            out += ("." if out else "") + text
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def kind_of(value: Any) -> str:
    """"a mapping", "a list", "a string", ...: what a YAML value is, in words."""
    return {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number",
            bool: "a boolean", type(None): "nothing"}.get(type(value), type(value).__name__)


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class whose fields live at `loc` (None when `loc` is not inside a model)."""
    model: Any = Experiment
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        info = model.model_fields.get(str(part))
        if info is None:
            # a dict of models: the key is a user name (e.g. a method under search.budgets)
            continue
        model = _inner_model(info.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def fields_at(loc: tuple) -> list[str]:
    model = _model_at(loc)
    return list(model.model_fields) if model else []


def describe_field(loc: tuple) -> str:
    model = _model_at(loc[:-1])
    info = model.model_fields.get(str(loc[-1])) if model else None
    return f"expected {info.description}" if info and info.description else "expected a value"
