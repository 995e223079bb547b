"""Field types the experiment YAML's sections share: human units kept as written, and a name among choices."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from annotated_types import GroupedMetadata
from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

from hardware_models.errors import suggest
from hardware_models.yaml_errors import kind_of


@dataclass(frozen=True)
class HumanUnit(GroupedMetadata):
    """`Annotated[str | float, HumanUnit(...)]`: '3Mbps'-like strings or bare SI numbers, checked, kept as given."""

    kind: str
    parse: Callable[[Any, str], float]
    example: str
    minimum: float
    strictly: bool
    maximum: float
    unit: str

    def __iter__(self) -> Iterator[object]:
        yield BeforeValidator(self._number_or_text)
        yield AfterValidator(self._check)
        yield WithJsonSchema({"anyOf": [{"type": "string", "examples": [self.example]}, {"type": "number"}],
                              "description": f"{self.kind}, e.g. '{self.example}' (a bare number is in SI units)"})

    def _number_or_text(self, value: Any) -> Any:
        # before pydantic's own coercion, which would read `true` as 1
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError(f"expected {self.kind} such as '{self.example}', got {kind_of(value)} {value!r}")
        return value

    def _check(self, value: Any) -> Any:
        number = self.parse(value, "value")
        minimum, unit = self.minimum, self.unit
        if (number <= minimum) if self.strictly else (number < minimum):
            raise ValueError(f"expected {self.kind} {'>' if self.strictly else '>='} {minimum:g}"
                             f"{' ' + unit if minimum else ''}, got {value!r}")
        if not number <= self.maximum:
            raise ValueError(f"expected {self.kind} <= {self.maximum:g} {unit}, got {value!r}")
        return value


def choice(value: str, choices, what: str) -> str:
    """`value` if it is one of `choices`, else a ValueError naming `what`, close names and every choice."""
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}{suggest(str(value), choices)}; expected one of {', '.join(choices)}")
    return value
