"""Reading a preset's fields: each accessor validates one key and names file and key in its error."""
from __future__ import annotations

from collections.abc import Mapping

from hardware_models.errors import UserError, suggest


class PresetFields:
    """The fields of one preset mapping read from `source` (a file name, for the messages)."""

    def __init__(self, config: Mapping, source: str) -> None:
        self.config = config
        self.source = source

    def where(self, key: str) -> str:
        return f"{self.source}: {key}"

    def whole(self, key: str, default: int | None = None, minimum: int = 1) -> int:
        """An integer >= `minimum` (booleans refused)."""
        value = self.config.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise UserError(f"{self.where(key)}: expected a whole number >= {minimum}, got {value!r}")
        return value

    def positive(self, key: str, value: float) -> float:
        """`value` (already parsed from the key) if > 0; the message shows what was written."""
        if not value > 0:
            raise UserError(f"{self.where(key)}: expected a positive value, got {self.config[key]!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.config.get(key, default)
        if value not in choices:
            raise UserError(f"{self.where(key)}: expected one of {', '.join(choices)}, got {value!r}"
                            f"{suggest(str(value), choices)}")
        return value

    def bit_list(self, key: str, default: tuple[int, ...] | None = None) -> tuple[int, ...]:
        """A non-empty list of bit-widths in 1..32, sorted and deduplicated."""
        value = self.config.get(key, default)
        if (not isinstance(value, (list, tuple)) or not value
                or any(isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= 32 for b in value)):
            raise UserError(f"{self.where(key)}: expected a list of bit-widths between 1 and 32, got {value!r}")
        return tuple(sorted(set(value)))

    def mapping(self, key: str) -> Mapping | None:
        value = self.config.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise UserError(f"{self.where(key)}: expected a mapping of {key} settings, got {value!r}")
        return value
