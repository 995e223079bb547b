"""Flag values: argparse types with the same bounds as the experiment YAML's keys, and readers of what a flag
names. Each refusal names the flag (argparse adds it for a type; the others say it themselves)."""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from hardware_models.errors import UserError
from hardware_models.units import parse_time
from simulator.experiment.limits import MAX_SEED


def whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """argparse type: a whole number in [low, high]."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            upper = f"..{high}" if high is not None else " or more"
            raise argparse.ArgumentTypeError(f"expected a whole number {low}{upper}, got {text!r}")
        return value

    whole.__name__ = "whole number"
    return whole


def number(low: float, high: float, *, low_open: bool = False, high_open: bool = False,
           what: str = "a number") -> Callable[[str], float]:
    """argparse type: a finite number in the interval [low, high] (open ends where asked)."""

    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {what} in {'(' if low_open else '['}{low:g}, {high:g}"
                                             f"{')' if high_open else ']'}, got {text!r}")
        return value

    number.__name__ = "number"
    return number


# argparse type: a random seed, 0..2^32-1 (the YAML's `seed` bounds)
seed_number = whole(0, MAX_SEED)


def parse_bits(text: str) -> tuple[int, int]:
    """'4/8' -> (4, 8) weight and activation bits; '8' -> (8, 8)."""
    parts = text.split("/")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or any(not 1 <= v <= 64 for v in values):
        raise UserError(f"--bits: expected W or W/A with whole bit-widths such as 8 or 4/8, got {text!r}")
    return values[0], values[-1]


def seconds(text: str, flag: str) -> float:
    """A timeout such as '30s' in seconds: more than 0, at most a day."""
    value = parse_time(text, flag)
    if not (value > 0 and math.isfinite(value)) or value > 86400:
        raise UserError(f"{flag}: expected a time > 0 and at most a day, got {text!r}")
    return value

