"""The search methods by name: how to make each, how to draw it, and what the experiment YAML and the reports
need to know about it.

One `register` call makes a method known everywhere: `run_method`, the YAML's `search.methods`,
`search.budgets` (its budget model) and `search.<name>` (its options model), the capacity section's
`plan.method`, the JSON Schema, the CLI's budget and option flags, the plots and summary.md. Those read the
registry when they run, not when they are imported, so a method registered later (by a notebook, a plug-in, a
test) is accepted and drawn like the built-in ones (`simulator.search` registers those).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

from hardware_models.errors import UserError, suggest
from hardware_models.units import parse_time
from hardware_models.yaml_errors import kind_of
from simulator.evaluate import Scenario
from simulator.search.base import SearchMethod, SearchResult


@dataclass(frozen=True)
class PlotStyle:
    """How the figures draw a method's plans: colour, marker, legend label; `size` scales its markers and
    `on_top` lifts them (searches often choose the same plan: larger markers underneath keep all visible)."""

    colour: str
    marker: str
    label: str
    size: float = 1.0
    on_top: float = 0.0


class MethodSettings(BaseModel):
    """Base of a method's options and budget models: the experiment YAML's rules (unknown keys are errors,
    no coercion: `true` is not 1 and "3" is not 3). Field descriptions become the JSON Schema's and the CLI's
    help."""

    model_config = ConfigDict(extra="forbid", validate_default=True, strict=True, allow_inf_nan=False)


MAX_BUDGET_S = 3600.0  # a wall-clock budget beyond an hour per cell: a typo


def _positive_duration(value: Any) -> str | float:
    """A wall-clock budget as written ('20s', or a bare number of seconds), checked: > 0 and <= MAX_BUDGET_S."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):  # YAML's `true` is not 1 s
        raise ValueError(f"expected a duration such as '20s', got {kind_of(value)} {value!r}")
    seconds = parse_time(value, "value")
    if not 0 < seconds <= MAX_BUDGET_S:
        raise ValueError(f"expected a duration > 0 and <= {MAX_BUDGET_S:g} s, got {value!r}")
    return value


Duration = Annotated[str | float, BeforeValidator(_positive_duration),
                     WithJsonSchema({"anyOf": [{"type": "string", "examples": ["20s"]}, {"type": "number"}],
                                     "description": "a duration, e.g. '20s' (a bare number is in seconds)"})]
"""A method setting in seconds, kept as the user wrote it; `parse_time` gives the seconds."""


class Budget(MethodSettings):
    """A method's budget (its `search.budgets` entry); `as_dict` is what its `propose` receives, in SI units."""

    def as_dict(self) -> dict[str, Any]:
        """The keys given, in SI units (a subclass converts what the user writes with a unit)."""
        return self.model_dump(exclude_none=True)


def no_guarantee(info: dict) -> str:
    """A method whose answer needs no sentence in summary.md."""
    return ""


def applies_everywhere(scenario: Scenario) -> str | None:
    """A method that can run on any scenario."""
    return None


@dataclass(frozen=True)
class RegisteredMethod:
    """A search method known by `name`.

    `factory(**options)` makes it, `options` being the fields of its `options` model (the YAML's
    `search.<name>`, e.g. optuna's sampler; None: it takes none); `budget` is the model of its
    `search.budgets` entry (None: it takes no budget); `resumes` says its `run` takes `storage` and
    `study_name` (a study other processes can resume or join: `autosplit worker`); `applies(scenario)` says
    why it cannot run on a scenario (a note; None where it can); `baseline` marks one of the paper's
    comparison points (a single plan each; they warm-start Optuna and are drawn as points, the others as
    fronts); `default` methods run when an experiment lists none; `guarantee(info)` says in a sentence what its
    answer guarantees, from its run's `SearchResult.info`."""

    name: str
    factory: Callable[..., SearchMethod]
    style: PlotStyle
    baseline: bool = False
    default: bool = True
    guarantee: Callable[[dict], str] = no_guarantee
    options: type[MethodSettings] | None = None
    budget: type[Budget] | None = None
    resumes: bool = False
    applies: Callable[[Scenario], str | None] = applies_everywhere

    @property
    def budget_keys(self) -> tuple[str, ...]:
        """What its `search.budgets` entry may hold."""
        return tuple(self.budget.model_fields) if self.budget is not None else ()


_METHODS: dict[str, RegisteredMethod] = {}


def register(name: str, factory: Callable[..., SearchMethod], *, colour: str, marker: str, label: str | None = None,
             size: float = 1.0, on_top: float = 0.0, baseline: bool = False, default: bool = True,
             guarantee: Callable[[dict], str] = no_guarantee, options: type[MethodSettings] | None = None,
             budget: type[Budget] | None = None, resumes: bool = False,
             applies: Callable[[Scenario], str | None] = applies_everywhere) -> RegisteredMethod:
    """Make the method `factory` builds known as `name` (see `RegisteredMethod`; `label` defaults to the name);
    a ValueError when the name is taken."""
    if name in _METHODS:
        raise ValueError(f"search method {name!r} is registered already")
    entry = RegisteredMethod(name, factory, PlotStyle(colour, marker, label or name, size, on_top), baseline,
                             default, guarantee, options, budget, resumes, applies)
    _METHODS[name] = entry
    return entry


def unregister(name: str) -> None:
    """Forget the method `name` (a KeyError when it is not registered)."""
    del _METHODS[name]


def registered_methods() -> tuple[RegisteredMethod, ...]:
    """Every registered method, in registration order (the order tables and figures list them)."""
    return tuple(_METHODS.values())


def method_names(*, baseline: bool | None = None, default: bool | None = None) -> tuple[str, ...]:
    """The registered names in registration order; only baselines (or only the others) when `baseline` is
    given, only the methods that run by default (or the others) when `default` is."""
    return tuple(entry.name for entry in _METHODS.values()
                 if (baseline is None or entry.baseline == baseline) and (default is None or entry.default == default))


def registered(name: str) -> RegisteredMethod:
    """The method called `name`, or a UserError with the close names and every choice."""
    entry = _METHODS.get(name)
    if entry is None:
        names = method_names()
        raise UserError(f"unknown method {name!r}{suggest(name, names)}; expected one of {', '.join(names)}")
    return entry


def plot_style(name: str) -> PlotStyle:
    """How the figures draw method `name` (a grey circle when it is not registered, e.g. in results written
    with a plug-in that is not loaded now)."""
    entry = _METHODS.get(name)
    return entry.style if entry is not None else PlotStyle("#333333", "o", name)


def skip_note(name: str, scenario: Scenario) -> str | None:
    """Why method `name` is skipped on `scenario` ('NAME skipped: ...'), or None where it runs."""
    why = registered(name).applies(scenario)
    return None if why is None else f"{name} skipped: {why}"


def make_method(name: str, **options: Any) -> SearchMethod:
    """The search method called `name`, built with its own `options` (e.g. sampler="tpe" for optuna)."""
    method = registered(name).factory(**options)
    if method.name != name:  # its plans would be listed under another name than the one asked for
        raise ValueError(f"search method registered as {name!r} is named {method.name!r}")
    return method


def run_method(name: str, scenario: Scenario, budget: dict | None = None, seed: int = 0,
               **options: Any) -> SearchResult:
    """Run method `name` (built with `options`) on `scenario` with `budget` (its budget model's keys in SI
    units, e.g. {"trials": N} for optuna; {} or None for its defaults) and `seed`."""
    return make_method(name, **options).run(scenario, budget=budget, seed=seed)


def describe(name: str, info: dict) -> str:
    """One sentence on what method `name`'s answer guarantees, from its run's `info` (for summary.md), and
    what the accuracy evidence envelope kept out of its plans (`result_from` counts them)."""
    sentence = registered(name).guarantee(info)
    if info.get("outside_envelope"):
        sentence += (f" The accuracy evidence envelope excluded {info['outside_envelope']:,} of its evaluated plans "
                     f"({info.get('excluded_by_envelope', 0):,} of them within the memory and accuracy bounds "
                     "otherwise).")
    return sentence
