"""Human units at the edges ("3Mbps", "4MiB", "20ms", "1.2GHz") to SI numbers inside.

Decimal prefixes are powers of 10 (kB = 1e3 bytes, Mbps = 1e6 bit/s); binary prefixes are powers of 2
(KiB = 2**10 bytes, Mibps = 2**20 bit/s). A bare number is taken as already in SI units.
"""
from __future__ import annotations

import re

from hardware_models.errors import UserError

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z/]*)\s*$")

_DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}

BYTE_UNITS = {"B": 1.0, **{p + "B": f for p, f in _DECIMAL.items() if p}, **{p + "B": f for p, f in _BINARY.items()}}
RATE_UNITS = {
    "bps": 1.0, "bit/s": 1.0,
    **{p + "bps": f for p, f in _DECIMAL.items() if p},
    **{p + "bps": f for p, f in _BINARY.items()},
    **{p + "bit/s": f for p, f in _DECIMAL.items() if p},
}
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}
FREQUENCY_UNITS = {"Hz": 1.0, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9}
ENERGY_UNITS = {"J": 1.0, "mJ": 1e-3, "uJ": 1e-6, "nJ": 1e-9, "pJ": 1e-12, "fJ": 1e-15}


def _parse(value: object, units: dict[str, float], what: str, key: str) -> float:
    if isinstance(value, bool):
        raise UserError(f"{key}: expected {what}, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    match = _NUMBER.match(str(value))
    if not match:
        raise UserError(f"{key}: expected {what} such as {_example(units)}, got {value!r}")
    number, unit = float(match.group(1)), match.group(2)
    if unit == "":
        return number
    if unit not in units:
        raise UserError(f"{key}: unknown unit {unit!r} in {value!r}; expected one of {', '.join(units)}")
    return number * units[unit]


def _example(units: dict[str, float]) -> str:
    return {id(BYTE_UNITS): "'4MiB'", id(RATE_UNITS): "'3Mbps'", id(TIME_UNITS): "'20ms'",
            id(ENERGY_UNITS): "'0.2pJ'"}.get(id(units), "'1.2GHz'")


def parse_bytes(value: object, key: str = "size") -> float:
    """'4MiB' -> 4194304.0 bytes."""
    return _parse(value, BYTE_UNITS, "a size in bytes", key)


def parse_rate(value: object, key: str = "rate") -> float:
    """'3Mbps' -> 3e6 bit/s; '3Mibps' -> 3 * 2**20 bit/s."""
    return _parse(value, RATE_UNITS, "a rate in bits per second", key)


def parse_time(value: object, key: str = "time") -> float:
    """'20ms' -> 0.02 s."""
    return _parse(value, TIME_UNITS, "a duration", key)


def parse_frequency(value: object, key: str = "clock") -> float:
    """'202.381MHz' -> 202381000.0 Hz."""
    return _parse(value, FREQUENCY_UNITS, "a frequency", key)


def parse_energy(value: object, key: str = "energy") -> float:
    """'0.2pJ' -> 2e-13 joules."""
    return _parse(value, ENERGY_UNITS, "an energy", key)


def parse_bandwidth(value: object, key: str = "bandwidth") -> float:
    """'4.8TB/s' -> 4.8e12 bytes per second ('1GiB/s' -> 2**30); a rate in bits ('8Gbps') is divided by 8;
    a bare number is already in bytes per second."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UserError(f"{key}: expected a bandwidth in bytes per second such as '4.8TB/s', got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    match = _NUMBER.match(value)
    unit = match.group(2) if match else ""
    if match and unit == "":
        return float(match.group(1))
    if match and unit.endswith("B/s") and unit[:-2] in BYTE_UNITS:
        return float(match.group(1)) * BYTE_UNITS[unit[:-2]]
    if match and unit in RATE_UNITS:
        return float(match.group(1)) * RATE_UNITS[unit] / 8
    raise UserError(f"{key}: expected a bandwidth in bytes per second such as '4.8TB/s' (or bits per second such "
                    f"as '8Gbps'), got {value!r}")


UNITS_HELP = (
    "Units: kB/MB = 10^3/10^6 bytes, KiB/MiB = 2^10/2^20 bytes; Mbps = 10^6 bit/s, Mibps = 2^20 bit/s; "
    "s, ms, us; Hz, MHz, GHz. A bare number is in SI units (bytes, bit/s, seconds, hertz)."
)
