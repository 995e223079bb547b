"""Measured accuracy's wall time: `autosplit accuracy MODEL.onnx --data` the first time (every single-layer and
plan measurement made) and again (every one from the measurement cache), then optionally `autosplit run` on an
experiment, each as its own process with a fresh cache folder.

Issue 21's targets (2 cores): squeezenet1_1 on 1,000 images at 224x224 under 60 s first and 5 s after;
`autosplit run experiments/trained_cnn.yaml` under 30 s. The model and data are not in the repository; make them
with torch (random weights, random labelled images: only the time matters here):

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
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--samples", type=int, help="measure on the first N samples of the data only")
    parser.add_argument("--run", metavar="EXPERIMENT.yaml", help="also time `autosplit run` on it")
    args = parser.parse_args()
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
        command = [sys.executable, "-m", "simulator.cli", "accuracy", args.model, "--data", data, "--format", "json"]
        first, output = timed(command, env)
        answer = json.loads(output)
        again, output = timed(command, env)
        reused = json.loads(output)
        made = answer["measurements_made"]
        print(f"{Path(args.model).name} on {samples} samples, {os.cpu_count()} cores: first {first:.1f} s "
              f"({made} measurements, {first / made:.3f} s each, {first / made / samples * 1e3:.2f} ms per sample "
              f"and measurement), again {again:.1f} s ({reused['measurements_reused']} reused, "
              f"{reused['measurements_made']} made); top-1 {answer['measured_accuracy']:.2f} %")
        if args.run:
            with tempfile.TemporaryDirectory(prefix="autosplit-bench-run-") as out:
                seconds, _ = timed([sys.executable, "-m", "simulator.cli", "run", args.run, "--out", out,
                                    "--no-progress"], env)
            print(f"autosplit run {args.run}: {seconds:.1f} s (fresh measurement cache)")


if __name__ == "__main__":
    main()
