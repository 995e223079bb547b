"""A search method's name in the experiment YAML (`search.methods`, `search.budgets`, a capacity group's
`plan.method`): checked against the search registry when a YAML is validated, and listed in the JSON Schema
as the names registered when the schema is generated, so a method registered at run time is accepted."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, GetJsonSchemaHandler

from hardware_models.errors import suggest
from simulator.search import method_names, registered_methods


def known_method(value: str) -> str:
    """`value`, or a ValueError naming the close names and every registered one."""
    names = method_names()
    if value not in names:
        raise ValueError(f"unknown method {value!r}{suggest(str(value), names)}; expected one of {', '.join(names)}")
    return value


class _RegisteredNames:
    """The JSON Schema of a method name: an enum of the names registered now."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {"type": "string", "enum": list(method_names())}


MethodName = Annotated[str, AfterValidator(known_method), _RegisteredNames()]


def default_methods() -> list[str]:
    """The methods an experiment runs when it lists none (every registered method that runs by default)."""
    return list(method_names(default=True))


def methods_json_schema(schema: dict[str, Any]) -> None:
    """`search.methods` in the JSON Schema: its default and the names it takes, as registered now."""
    schema["default"] = default_methods()
    schema["description"] = "methods to run, of: " + ", ".join(method_names())


def budget_keys() -> dict[str, tuple[str, ...]]:
    """What each method's `search.budgets` entry may hold (methods that take no budget are left out)."""
    return {entry.name: entry.budget_keys for entry in registered_methods() if entry.budget_keys}
