"""CPU seconds, peak memory and (with --profile) a phase table of every example experiment.

Each example runs as a fresh `autosplit run` process (so imports count, as they do for a user). Without
--profile the figures are the process's own CPU time and peak RSS; with --profile it runs once more under
cProfile and prints the cumulative seconds of each phase's entry points (cProfile's overhead inflates
Python-heavy phases, so read the phases as shares, the unprofiled total as the figure). Phases may overlap
where one calls another (exact and Optuna start from Auto-Split's cached answer, counted where it is built).

    PYTHONPATH=. python benchmarks/example_phases.py [--profile] [--cold] [EXAMPLE ...]
"""
from __future__ import annotations

import argparse
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# phase -> (file regex, function regex) of its entry points; cumulative time of the outermost matching call
PHASES = {
    "optuna": (r"search/optuna_search\.py", r"^(run|propose)$"),
    "exact": (r"search/exact\.py", r"^propose$"),
    "autosplit": (r"search/autosplit\.py", r"^propose$"),
    "baselines": (r"search/baselines\.py", r"^propose$"),
    "cost tables": (r"simulator/evaluate\.py", r"^build$"),
    "accuracy measurement": (r"accuracy/(measure|fake_quant|cache)\.py", r".*"),
    "fleet simulation": (r"capacity/answers\.py", r"^simulate$"),
    "plots": (r"report/(plots|capacity_plots)\.py", r"^(write_plots|latency_plot|utilisation_plot|breakdown_plot)$"),
    "result files": (r"experiment/(tables|capacity_run)\.py", r"^(write_results|run_capacity)$"),
}


PROFILED = """import cProfile, sys, time
from simulator.cli import main
profiler = cProfile.Profile(time.process_time)
try:
    profiler.runcall(main, {argv!r})
except SystemExit:
    pass
profiler.dump_stats({out!r})
"""


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
    """Cumulative seconds per phase: each phase's matching functions, not counting calls made from another match."""
    stats = pstats.Stats(str(profile)).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    result = {}
    for phase, (file_pattern, name_pattern) in PHASES.items():
        def matches(key) -> bool:
            return bool(re.search(file_pattern, key[0])) and bool(re.search(name_pattern, key[2]))
        total = 0.0
        for key, (_cc, _nc, _tt, _ct, callers) in stats.items():
            if not matches(key):
                continue
            # time reached from a non-matching caller (the outermost entries of this phase)
            total += sum(entry[3] for caller, entry in callers.items() if not matches(caller))
        result[phase] = total
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="example stems (default: every experiments/*.yaml)")
    parser.add_argument("--profile", action="store_true", help="also print the phase table (runs twice)")
    parser.add_argument("--cold", action="store_true", help="empty measured-accuracy and cost-table caches")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    header = f"{'example':<24} {'CPU s':>7} {'wall s':>7} {'peak MB':>8}"
    if args.profile:
        header += "  " + "  ".join(f"{p:>10}" for p in PHASES)
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
