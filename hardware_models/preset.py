"""The one validation path of a preset: a pydantic model per kind, checked before any model is built.

Every preset model (systolic, DSP, NPU, GPU, energy, network) derives from `StrictModel`: unknown keys are
refused with a close-name hint, `true` is not 1 and "3" is not 3, and the human units ("1GB/s", "202MHz",
"108KiB", "2.2us", "0.3pJ") are checked and turned into SI numbers by the field types below. `validate_preset`
reports the first problem as one line naming the file and the key as the user wrote it, in the format of the
experiment YAML's errors (hardware_models/yaml_errors.py). Duplicate keys are refused when the file is read
(hardware_models/yaml_io.py).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from hardware_models.errors import UserError
from hardware_models.units import parse_bandwidth, parse_bytes, parse_energy, parse_frequency, parse_rate, parse_time
from hardware_models.yaml_errors import kind_of, problems

Model = TypeVar("Model", bound=BaseModel)


def validate_preset(model: type[Model], config: Mapping[str, Any], source: str, prefix: str = "") -> Model:
    """`config` validated by `model`; a one-line UserError naming `source` and the first bad key (`prefix`
    is put before the key: 'energy.' for an energy section read on its own)."""
    try:
        return model.model_validate(config)
    except ValidationError as exc:
        raise UserError(problems(exc.errors(include_url=False), source, model, prefix)[0]) from None


# --- field types: what a preset may write, checked and in SI units -------------------------------------------
def _measure(parse: Callable[[object, str], float], minimum: float | None = 0.0,
             strictly: bool = True, plausible: tuple[str, float, float] | None = None) -> Callable[[object], float]:
    """A number with a unit ('1GB/s') or a bare SI number, parsed by `parse`; above `minimum` (None: any) and,
    with `plausible` = (what, low, high), inside the range any real device has: a typo such as a clock of
    1e-6 Hz would otherwise give latencies of 10^13 s without a word."""

    def check(value: object) -> float:
        number = parse(value, "value")  # a UserError 'value: expected ..., got ...'; pydantic adds the key
        if minimum is not None and (number <= minimum if strictly else number < minimum):
            relation = "a positive value" if strictly and minimum == 0 else \
                f"a value {'>' if strictly else '>='} {minimum:g}"
            raise ValueError(f"expected {relation}, got {value!r}")
        if plausible is not None and not plausible[1] <= number <= plausible[2]:
            what, low, high = plausible
            raise ValueError(f"expected {what} between {low:g} and {high:g} (what real devices have; the unit may "
                             f"be missing or wrong), got {value!r}")
        return number

    return check


def _number(what: str, minimum: float, strictly: bool = False,
            maximum: float | None = None) -> Callable[[object], float]:
    """A plain number (no unit; booleans refused) in [minimum, maximum] (`strictly`: above `minimum`)."""

    def check(value: object) -> float:
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or (value <= minimum if strictly else value < minimum)
                or (maximum is not None and value > maximum)):
            raise ValueError(f"expected {what}, got {value!r}")
        return float(value)

    return check


def _whole(what: str, minimum: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"expected {what}, got {value!r}")
        return value

    return check


def _bit_list(value: object) -> tuple[int, ...]:
    """A non-empty list of bit-widths in 1..32, sorted and deduplicated."""
    if (not isinstance(value, (list, tuple)) or not value
            or any(isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= 32 for b in value)):
        raise ValueError(f"expected a list of bit-widths between 1 and 32, got {value!r}")
    return tuple(sorted(set(value)))


def _sentence(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a sentence: the published rows the preset was fitted on and its error, or "
                         f"'assumed' with what was assumed; got {kind_of(value)} {value!r}")
    return " ".join(value.split())


Frequency = Annotated[float, BeforeValidator(_measure(parse_frequency, plausible=("a clock in Hz", 1e3, 1e11)))]
Size = Annotated[float, BeforeValidator(_measure(parse_bytes, plausible=("a size in bytes", 1.0, 2.0**50)))]
# bytes per second ('4.8TB/s', '1GiB/s'; a bit rate such as '8Gbps' is divided by 8)
Bandwidth = Annotated[float, BeforeValidator(_measure(parse_bandwidth,
                                                      plausible=("a bandwidth in bytes/s", 1e3, 1e15)))]
Duration = Annotated[float, BeforeValidator(_measure(parse_time, strictly=False))]
PositiveDuration = Annotated[float, BeforeValidator(_measure(parse_time))]
Energy = Annotated[float, BeforeValidator(_measure(parse_energy))]
# parsed, not range-checked: the object built from them (a network Link) checks and names its own fields
AnyRate = Annotated[float, BeforeValidator(_measure(parse_rate, minimum=None))]
AnySize = Annotated[float, BeforeValidator(_measure(parse_bytes, minimum=None))]
AnyDuration = Annotated[float, BeforeValidator(_measure(parse_time, minimum=None))]
AnyEnergy = Annotated[float, BeforeValidator(_measure(parse_energy, minimum=None))]
PositiveNumber = Annotated[float, BeforeValidator(_number("a positive number", 0.0, strictly=True))]
NonNegativeNumber = Annotated[float, BeforeValidator(_number("a number >= 0", 0.0))]
Fraction = Annotated[float, BeforeValidator(_number("a fraction in (0, 1]", 0.0, strictly=True, maximum=1.0))]
Watts = Annotated[float, BeforeValidator(_number("a non-negative number of watts", 0.0))]
PositiveInteger = Annotated[int, BeforeValidator(_whole("a positive integer", 1))]
NonNegativeInteger = Annotated[int, BeforeValidator(_whole("a whole number >= 0", 0))]
BitList = Annotated[tuple[int, ...], BeforeValidator(_bit_list)]
Sentence = Annotated[str, BeforeValidator(_sentence)]


class StrictModel(BaseModel):
    """A YAML mapping with nothing but its fields."""

    # strict: YAML already gives numbers, lists and mappings; `true` is not 1 and "3" is not 3
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True, allow_inf_nan=False, frozen=True)


class PresetModel(StrictModel):
    """What every accelerator preset may say besides its model's keys: what it is, where its figures come from."""

    name: str | None = None
    description: str | None = None
    source: str | None = None
    sources: list[str] | None = None
    notes: str | None = None
    evidence: Sentence | None = None  # what the preset was checked against, with its error, or what it assumes
