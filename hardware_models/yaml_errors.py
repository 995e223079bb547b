"""Pydantic validation errors as the one-line messages every YAML gives (experiments and presets alike).

A message reads `FILE: key.path: what was expected, got what (did you mean ...?)`, the key path as the user
wrote it (a union's or a validator's branch names left out). `problems` turns a ValidationError's errors into
such lines, one per problem key, unknown keys first (their close-name hints explain most of the rest).
"""
from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from hardware_models.errors import suggest


def problems(errors: Sequence[Any], source: str, root: type[BaseModel], prefix: str = "") -> list[str]:
    """One line per problem key of `errors` (pydantic's `exc.errors()` for a mapping validated by `root`),
    unknown keys first, then the others in pydantic's order; `prefix` is prepended to every key path."""
    lines: dict[tuple, str] = {}
    for error in sorted(errors, key=lambda e: e.get("type") != "extra_forbidden"):  # stable: order kept
        loc = tuple(p for p in error.get("loc", ()) if dotted((p,)) or isinstance(p, int))
        if loc not in lines:
            lines[loc] = describe_error(error, source, root, prefix)
    return list(lines.values())


def describe_error(error: Any, source: str, root: type[BaseModel], prefix: str = "") -> str:
    """One line: source, dotted key path, what was expected, what was given."""
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    given = error.get("input")
    ctx = error.get("ctx") or {}
    key = prefix + dotted(loc) if loc else (prefix.rstrip(".") or "(top level)")
    if kind == "extra_forbidden":
        known = fields_at(root, loc[:-1])
        hint = suggest(str(loc[-1]), known)
        return f"{source}: {key}: unknown key{hint}; expected one of {', '.join(known)}"
    if kind == "missing":
        return f"{source}: {key}: missing; {describe_field(root, loc)}"
    if kind in ("literal_error", "enum"):
        expected = ctx.get("expected", "")
        choices = [c.strip(" '") for c in expected.replace(" or ", ",").split(",") if c.strip(" '")]
        return f"{source}: {key}: expected one of {', '.join(choices)}, got {show(given)}{suggest(str(given), choices)}"
    if kind == "value_error":
        message = str(ctx.get("error", error.get("msg", "")))
        message = message.removeprefix("value: ")
        return f"{source}: {key}: {message}"
    if kind == "model_type" or kind == "dict_type":
        return f"{source}: {key}: expected a mapping of keys to values, got {kind_of(given)} {show(given)}"
    if kind == "too_short":
        return f"{source}: {key}: expected at least {ctx.get('min_length', 1)} item(s), got {show(given)}"
    if kind == "list_type":
        return f"{source}: {key}: expected a list, got {kind_of(given)} {show(given)}"
    message = str(error.get("msg", kind)).replace("Input should be", "expected")
    return f"{source}: {key}: {message}, got {show(given)}"


def dotted(loc: tuple) -> str:
    """`('network', 'uplink')` -> 'network.uplink', `('groups', 0, 'name')` -> 'groups[0].name'."""
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


def show(value: Any) -> str:
    """`repr(value)`, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def kind_of(value: Any) -> str:
    """'a mapping', 'a list', 'a string', ... : what a YAML value is, in words."""
    return {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number",
            bool: "a boolean", type(None): "nothing"}.get(type(value), type(value).__name__)


def fields_at(root: type[BaseModel], loc: tuple) -> list[str]:
    """The keys the model at `loc` (inside `root`) accepts; [] when `loc` is not inside a model."""
    model = _model_at(root, loc)
    return list(model.model_fields) if model else []


def describe_field(root: type[BaseModel], loc: tuple) -> str:
    """'expected <the field's description>' for the field at `loc`, or 'expected a value'."""
    model = _model_at(root, loc[:-1])
    info = model.model_fields.get(str(loc[-1])) if model else None
    return f"expected {info.description}" if info and info.description else "expected a value"


def _model_at(root: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class whose fields live at `loc` (None when `loc` is not inside a model)."""
    model: Any = root
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
