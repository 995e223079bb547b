"""A bandwidth trace: the uplink rate as a piecewise-constant function of time, repeating.

A trace file is CSV (or whitespace-separated) with two columns, the time in seconds at which a rate starts and
the rate in bit/s (a bare number, or with a unit such as `3Mbps`); lines starting with `#` and a header line
are skipped. Each rate holds until the next row's time; the last row's rate holds for as long as the interval
before it, and then the trace repeats from the start (a single row is a constant rate).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hardware_models.bounded_read import read_bounded
from hardware_models.errors import UserError
from hardware_models.units import parse_rate, parse_time

MAX_TRACE_BYTES = 64 * 2**20  # a day of Mahimahi-style traces is a few MB

_SPLIT = re.compile(r"[,\s;]+")


@dataclass(frozen=True, eq=False)
class BandwidthTrace:
    """Rates `rates_bps[i]` from `times_s[i]` on, periodic with period `period_s`."""

    times_s: np.ndarray
    rates_bps: np.ndarray
    source: str = "trace"
    period_s: float = field(init=False)
    _cumulative_bits: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        times = np.asarray(self.times_s, dtype=float)
        rates = np.asarray(self.rates_bps, dtype=float)
        where = self.source
        if times.ndim != 1 or times.size == 0 or times.shape != rates.shape:
            raise UserError(f"{where}: empty bandwidth trace; expected rows of 'time_s, rate_bps'")
        if not np.all(np.isfinite(times)) or not np.all(np.isfinite(rates)):
            raise UserError(f"{where}: bandwidth trace has a non-finite time or rate")
        if times[0] != 0.0:
            raise UserError(f"{where}: bandwidth trace must start at time 0, got {times[0]:g} s")
        bad = np.flatnonzero(np.diff(times) <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            raise UserError(f"{where}: bandwidth trace times are not increasing: row {i + 1} has "
                            f"{times[i]:g} s after {times[i - 1]:g} s")
        negative = np.flatnonzero(rates < 0)
        if negative.size:
            i = int(negative[0])
            raise UserError(f"{where}: negative rate {rates[i]:g} bit/s at {times[i]:g} s in bandwidth trace")
        last_interval = times[-1] - times[-2] if times.size > 1 else 1.0
        period = float(times[-1] + last_interval)
        edges = np.append(times, period)
        cumulative = np.concatenate([[0.0], np.cumsum(rates * np.diff(edges))])
        if cumulative[-1] <= 0:
            raise UserError(f"{where}: bandwidth trace has no capacity (every rate is 0)")
        object.__setattr__(self, "times_s", times)
        object.__setattr__(self, "rates_bps", rates)
        object.__setattr__(self, "period_s", period)
        object.__setattr__(self, "_cumulative_bits", cumulative)

    @classmethod
    def from_file(cls, path: str | Path) -> BandwidthTrace:
        """Read a trace file (see the module docstring); errors name the file and the line."""
        path = Path(path)
        try:
            text = read_bounded(path, MAX_TRACE_BYTES, "a bandwidth trace of 'time_s, rate_bps' rows").decode()
        except UnicodeDecodeError:
            raise UserError(f"{path}: not a text file; expected a bandwidth trace of 'time_s, rate_bps' rows") from None
        except OSError as exc:
            raise UserError(f"{path}: cannot read bandwidth trace: {exc.strerror}") from None
        times: list[float] = []
        rates: list[float] = []
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            cells = [c for c in _SPLIT.split(line) if c]
            if len(cells) != 2:
                raise UserError(f"{path}:{number}: expected two columns 'time_s, rate_bps', got {line!r}")
            if not times and not re.match(r"^[-+.\d]", cells[0]):
                continue  # a header line
            try:
                times.append(parse_time(cells[0], f"{path}:{number}: time"))
                rates.append(parse_rate(cells[1], f"{path}:{number}: rate"))
            except UserError:
                raise
        return cls(np.array(times), np.array(rates), source=str(path))

    @property
    def mean_rate_bps(self) -> float:
        return float(self._cumulative_bits[-1] / self.period_s)

    def rate_at(self, time_s: np.ndarray | float) -> np.ndarray:
        """Rate in bit/s at `time_s`."""
        phase = np.mod(np.asarray(time_s, dtype=float), self.period_s)
        return self.rates_bps[np.searchsorted(self.times_s, phase, side="right") - 1]

    def bits_by(self, time_s: np.ndarray | float) -> np.ndarray:
        """Capacity in bits delivered from time 0 to `time_s`."""
        t = np.asarray(time_s, dtype=float)
        periods, phase = np.divmod(t, self.period_s)
        index = np.searchsorted(self.times_s, phase, side="right") - 1
        within = self._cumulative_bits[index] + self.rates_bps[index] * (phase - self.times_s[index])
        return periods * self._cumulative_bits[-1] + within

    def time_to_send_s(self, bits: np.ndarray | float, start_s: np.ndarray | float = 0.0) -> np.ndarray:
        """Seconds needed to serialise `bits` starting at `start_s` (vectorised; the inverse of bits_by)."""
        start = np.asarray(start_s, dtype=float)
        target = self.bits_by(start) + np.asarray(bits, dtype=float)
        per_period = self._cumulative_bits[-1]
        periods = np.floor(target / per_period)
        remainder = target - periods * per_period
        # the first interval whose end reaches the remainder, skipping zero-rate intervals
        index = np.searchsorted(self._cumulative_bits[1:], remainder, side="left")
        index = np.minimum(index, self.rates_bps.size - 1)
        rate = self.rates_bps[index]
        offset = np.divide(remainder - self._cumulative_bits[index], rate,
                           out=np.zeros(np.broadcast(remainder, rate).shape), where=rate > 0)
        end = periods * self.period_s + self.times_s[index] + offset
        return np.maximum(end - start, 0.0)
