"""Measured accuracy's time: `autosplit accuracy MODEL.onnx --data` the first time (every single-layer and
plan measurement made) and again (every one from the measurement cache), and `autosplit run` on an experiment
cold (a fresh cache folder) and warm (the same folder again), each as its own process. Each prints wall and CPU
seconds (user + system of the process and its threads), the measurements made (passes over the data) and the
onnxruntime runs (`InferenceSession.run` calls, counted in the child process).

Issue 21's targets (2 cores): squeezenet1_1 on 1,000 images at 224x224 under 60 s first and 5 s after;
issue 27's: `autosplit run experiments/trained_cnn.yaml` cold under 30 CPU-s:

    python benchmarks/measured_accuracy_speed.py --run experiments/trained_cnn.yaml

The squeezenet model and data are not in the repository; make them with torch (random weights, random labelled
images: only the time matters here):

    /work/torchenv/bin/python -c "import torch, torchvision; torch.onnx.export(
        torchvision.models.squeezenet1_1().eval(), torch.randn(1, 3, 224, 224), 'squeezenet1_1.onnx',
        input_names=['input'], dynamic_axes={'input': {0: 'batch'}}, dynamo=False)"
    python -c "import numpy as np; r = np.random.default_rng(0); np.savez('images.npz',
        x=r.standard_normal((1000, 3, 224, 224), dtype=np.float32), y=r.integers(0, 1000, 1000))"
    python benchmarks/measured_accuracy_speed.py squeezenet1_1.onnx images.npz [--samples N] [--run EXP.yaml]

`--samples N` measures on the first N images only (a copy of the data), for a machine where the full first run
would take too long; the script prints the time per measurement and per image so the full run can be estimated.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RUNS_MARK = "onnxruntime runs: "


def child(arguments: list[str]) -> None:
    """`autosplit ARGUMENTS`, counting onnxruntime's InferenceSession.run calls (printed last on stderr)."""
    import atexit

    import onnxruntime

    calls = [0]
    plain = onnxruntime.InferenceSession.run

    def counted(self, *args, **kwargs):
        calls[0] += 1
        return plain(self, *args, **kwargs)

    onnxruntime.InferenceSession.run = counted  # type: ignore[method-assign]
    atexit.register(lambda: print(f"{RUNS_MARK}{calls[0]}", file=sys.stderr))
    from simulator.cli import main as cli

    sys.exit(cli(arguments))


def timed(arguments: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(wall s, CPU s, onnxruntime runs, stdout) of `autosplit ARGUMENTS` in its own process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", *arguments], env=env, capture_output=True,
                          text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"autosplit {' '.join(arguments)} failed:\n{done.stderr}")
    runs = int(next(line for line in done.stderr.splitlines()[::-1] if line.startswith(RUNS_MARK))[len(RUNS_MARK):])
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, cpu, runs, done.stdout


def measurements_kept(cache: str) -> int:
    """Accuracies in the measurement cache folder (one per measurement made)."""
    return sum(len(json.loads(Path(f).read_text()).get("accuracy", {}))
               for f in glob.glob(str(Path(cache) / "measured" / "*.json")))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?")
    parser.add_argument("data", nargs="?")
    parser.add_argument("--samples", type=int, help="measure on the first N samples of the data only")
    parser.add_argument("--run", metavar="EXPERIMENT.yaml", help="also time `autosplit run` on it, cold and warm")
    args = parser.parse_args()
    if bool(args.model) != bool(args.data) or not (args.model or args.run):
        parser.error("give MODEL and DATA, or --run EXPERIMENT.yaml, or both")
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load:.1f} at the start (CPU s are inflated on a busy machine)")
    if args.model:
        accuracy(args)
    if args.run:
        with tempfile.TemporaryDirectory(prefix="autosplit-bench-run-") as folder:
            env = {**os.environ, "AUTOSPLIT_CACHE": str(Path(folder) / "cache")}
            for what in ("cold", "warm"):
                before = measurements_kept(env["AUTOSPLIT_CACHE"])
                wall, cpu, runs, _ = timed(["run", args.run, "--out", str(Path(folder) / what), "--no-progress"],
                                           env)
                made = measurements_kept(env["AUTOSPLIT_CACHE"]) - before
                print(f"autosplit run {args.run} {what}: {cpu:.1f} CPU s, {wall:.1f} s wall; {made} measurements "
                      f"made, {runs} onnxruntime runs")


def accuracy(args) -> None:
    """`autosplit accuracy MODEL --data DATA`, first and again."""
    with tempfile.TemporaryDirectory(prefix="autosplit-bench-") as folder:
        env = {**os.environ, "AUTOSPLIT_CACHE": str(Path(folder) / "cache")}
        data = args.data
        if args.samples:
            with np.load(args.data) as archive:
                x, y = archive["x"][: args.samples], archive["y"][: args.samples]
            data = str(Path(folder) / "data.npz")
            np.savez(data, x=x, y=y)
        with np.load(data) as archive:
            samples = len(archive["y"])
        command = ["accuracy", args.model, "--data", data, "--format", "json"]
        first, first_cpu, first_runs, output = timed(command, env)
        answer = json.loads(output)
        again, again_cpu, _, output = timed(command, env)
        reused = json.loads(output)
        made = answer["measurements_made"]
        print(f"{Path(args.model).name} on {samples} samples: first {first:.1f} s ({first_cpu:.1f} CPU s, {made} "
              f"measurements, {first_runs} onnxruntime runs, {first / made:.3f} s each, "
              f"{first / made / samples * 1e3:.2f} ms per sample and measurement), again {again:.1f} s "
              f"({again_cpu:.1f} CPU s, {reused['measurements_reused']} reused, {reused['measurements_made']} "
              f"made); top-1 {answer['measured_accuracy']:.2f} %")


if __name__ == "__main__":
    main()
