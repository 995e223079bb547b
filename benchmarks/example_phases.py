"""CPU seconds, peak memory and (with --profile) a phase table of every example experiment.

Each example runs as a fresh `autosplit run` process (so imports count, as they do for a user). Without
--profile the figures are the process's own CPU time and peak RSS; with --profile it runs once more under
a sampling profiler (every 5 ms, the CPU time since the last sample goes to the phase of the stack's
innermost matching frame) and prints CPU seconds per phase. Auto-Split's answer is cached per cost table:
it is charged to whichever method builds it first (exact and Optuna start from it).

    PYTHONPATH=. python benchmarks/example_phases.py [--profile] [--cold] [EXAMPLE ...]
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# phase -> (file regex, function regex) of its entry points
PHASES = {
    "optuna": (r"search/optuna_search\.py", r"^(run|propose)$"),
    "exact": (r"search/exact\.py", r"^propose$"),
    "autosplit": (r"search/autosplit\.py", r"^(propose|run|listed)$"),
    "baselines": (r"search/baselines\.py", r"^propose$"),
    "cost tables": (r"simulator/evaluate\.py", r"^build$"),
    "accuracy measurement": (r"accuracy/(measure|fake_quant|cache)\.py", r".*"),
    "fleet simulation": (r"capacity/answers\.py", r"^simulate$"),
    "plots": (r"report/(plots|capacity_plots)\.py", r"^(write_plots|latency_plot|utilisation_plot|breakdown_plot)$"),
    "tables, files": (r"experiment/(tables|capacity_run)\.py", r"^(write_results|run_capacity)$"),
}


_COMPILED = {name: (re.compile(f), re.compile(n)) for name, (f, n) in PHASES.items()}


@functools.cache
def _phase_of(code) -> str | None:
    for name, (file_pattern, name_pattern) in _COMPILED.items():
        if file_pattern.search(code.co_filename) and name_pattern.search(code.co_name):
            return name
    return None


PROFILED = """import sys, threading, time
from benchmarks.example_phases import Sampler
from simulator.cli import main
sampler = Sampler(threading.main_thread().ident)
sampler.start()
try:
    main({argv!r})
except SystemExit:
    pass
sampler.dump({out!r})
"""


class Sampler(threading.Thread):
    """Every 5 ms, charges the CPU time used since the last look to the phase of the main thread's stack
    (its innermost matching frame): a sampling profiler, so the phases cost what they cost unprofiled."""

    def __init__(self, thread_id: int) -> None:
        super().__init__(daemon=True)
        self.thread_id = thread_id
        self.seconds: dict[str, float] = {}

    def run(self) -> None:
        last = time.process_time()
        while True:
            time.sleep(0.005)
            now = time.process_time()
            frame = sys._current_frames().get(self.thread_id)
            phase = None
            while frame is not None and phase is None:
                phase = _phase_of(frame.f_code)
                frame = frame.f_back
            phase = phase or "other"
            self.seconds[phase] = self.seconds.get(phase, 0.0) + now - last
            last = now

    def dump(self, path: str) -> None:
        Path(path).write_text(json.dumps(self.seconds))


def examples(names: list[str]) -> list[Path]:
    found = sorted((ROOT / "experiments").glob("*.yaml"))
    return [p for p in found if not names or p.stem in names]


def run(example: Path, out: Path, env: dict, profile: Path | None) -> tuple[float, float, float]:
    """(CPU seconds, wall seconds, peak RSS in bytes) of one `autosplit run` process."""
    arguments = ["run", str(example), "--out", str(out), "--no-progress", "--force"]
    command = [sys.executable, "-m", "simulator.cli", *arguments]
    if profile is not None:  # CPU time, not wall time: the machine may be busy
        command = [sys.executable, "-c", PROFILED.format(out=str(profile), argv=arguments)]
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(child.pid, 0)  # this child's own rusage (RUSAGE_CHILDREN keeps a maximum)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{example.name} failed (exit {os.waitstatus_to_exitcode(status)})")
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss * 1024.0

def phases(profile: Path) -> dict[str, float]:
    """CPU seconds per phase (the innermost phase on the stack wins; "other" is everything else)."""
    seconds = json.loads(profile.read_text())
    return {name: seconds.get(name, 0.0) for name in [*PHASES, "other"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="example stems (default: every experiments/*.yaml)")
    parser.add_argument("--profile", action="store_true", help="also print the phase table (runs twice)")
    parser.add_argument("--cold", action="store_true", help="empty measured-accuracy and cost-table caches")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    header = f"{'example':<24} {'CPU s':>7} {'wall s':>7} {'peak MB':>8}"
    if args.profile:
        header += "  " + "  ".join(f"{p:>10}" for p in [*PHASES, "other"])
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for example in examples(args.names):
            if args.cold:
                env["AUTOSPLIT_CACHE"] = tempfile.mkdtemp(dir=tmp)
            cpu, wall, peak = run(example, Path(tmp) / example.stem, env, None)
            line = f"{example.stem:<24} {cpu:>7.1f} {wall:>7.1f} {peak / 1e6:>8.0f}"
            if args.profile:
                if args.cold:
                    env["AUTOSPLIT_CACHE"] = tempfile.mkdtemp(dir=tmp)
                profile = Path(tmp) / f"{example.stem}.prof"
                run(example, Path(tmp) / example.stem, env, profile)
                line += "  " + "  ".join(f"{s:>10.1f}" for s in phases(profile).values())
            print(line, flush=True)


if __name__ == "__main__":
    main()
