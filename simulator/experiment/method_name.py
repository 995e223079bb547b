"""A search method in the experiment YAML: its name (`search.methods`, `search.budgets`, a capacity group's
`plan.method`), its budget (`search.budgets.<name>`) and its options (`search.<name>`), each checked against
the search registry when a YAML is validated (by the models the method registered) and listed in the JSON
Schema as registered when the schema is generated, so a method registered at run time is accepted."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, GetJsonSchemaHandler, ValidationError
from pydantic_core import InitErrorDetails

from hardware_models.errors import suggest
from simulator.search import Budget, MethodSettings, method_names, registered, registered_methods


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


# --- a method's own settings: its `search.budgets` entry and its options under `search.<name>` --------------
def validate_budgets(budgets: dict[str, Any]) -> dict[str, Budget]:
    """Each method's `search.budgets` entry validated by its registered budget model; a ValidationError
    locating each problem under the method's name (`optuna.trials`)."""
    out: dict[str, Budget] = {}
    errors: list[InitErrorDetails] = []
    for method, value in budgets.items():
        model = registered(method).budget
        if model is None:
            takes = "; ".join(f"{name} takes {' or '.join(keys)}" for name, keys in budget_keys().items())
            errors.append(_value_error((method,), value, f"{method} takes no budget ({takes})"))
            continue
        try:
            out[method] = model.model_validate(value)
        except ValidationError as exc:
            errors += _nested(exc, (method,), model)
    if errors:
        raise ValidationError.from_exception_data("budgets", errors)
    return out


def validate_options(given: dict[str, Any], sections: tuple[str, ...]) -> dict[str, MethodSettings]:
    """The options of every method that has some (`search.optuna`), each validated by its registered options
    model (its defaults where not given); a ValidationError for a key that is not such a method (`sections`:
    the section's own keys, for the message)."""
    models = {entry.name: entry.options for entry in registered_methods() if entry.options is not None}
    out: dict[str, MethodSettings] = {}
    errors: list[InitErrorDetails] = []
    for key, value in given.items():
        if key not in models:
            known = [*sections, *models]
            errors.append(_value_error((key,), value, f"unknown key{suggest(key, known)}; expected one of "
                                       f"{', '.join(known)} (a method's options go under its name)"))
            continue
        try:
            out[key] = models[key].model_validate(value)
        except ValidationError as exc:
            errors += _nested(exc, (key,), models[key])
    if errors:
        raise ValidationError.from_exception_data("search", errors)
    return {name: out[name] if name in out else model() for name, model in models.items()}


def _value_error(loc: tuple, given: Any, message: str) -> InitErrorDetails:
    return InitErrorDetails(type="value_error", loc=loc, input=given, ctx={"error": ValueError(message)})


def _nested(exc: ValidationError, prefix: tuple, model: type[MethodSettings]) -> list[InitErrorDetails]:
    """`exc`'s errors located under `prefix`; an unknown key says which keys the method's model takes (the
    schema's own hint cannot see into a registered model)."""
    errors: list[InitErrorDetails] = []
    for error in error_details(exc, prefix):
        if error["type"] == "extra_forbidden":
            known = list(model.model_fields)
            key = str(error["loc"][-1])
            error = _value_error(error["loc"], error["input"], f"unknown key for {prefix[0]}{suggest(key, known)}; "
                                 f"expected one of {', '.join(known)}")
        errors.append(error)
    return errors


def error_details(exc: ValidationError, prefix: tuple = ()) -> list[InitErrorDetails]:
    """`exc`'s errors as details a new ValidationError can carry (with more errors), located under `prefix`."""
    return [InitErrorDetails(type=error["type"], loc=(*prefix, *error["loc"]), input=error["input"],
                             ctx=error.get("ctx", {})) for error in exc.errors(include_url=False)]


def settings_json_schema(schema: dict[str, Any]) -> None:
    """`search` in the JSON Schema: the options of every method that has some under its name, as registered
    now (the section takes nothing else)."""
    for entry in registered_methods():
        if entry.options is not None:
            schema.setdefault("properties", {})[entry.name] = _inline(entry.options)
    schema["additionalProperties"] = False


def budgets_json_schema(schema: dict[str, Any]) -> None:
    """`search.budgets` in the JSON Schema: each method's budget model, as registered now."""
    schema.pop("additionalProperties", None)
    schema["type"] = "object"
    schema["properties"] = {entry.name: _inline(entry.budget) for entry in registered_methods()
                            if entry.budget is not None}
    schema["additionalProperties"] = False


def _inline(model: type[MethodSettings]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    return schema
