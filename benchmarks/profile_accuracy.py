"""Issue 24's check of measured hardware: `layer-cost --hardware P.csv`, P from `autosplit profile ... --threads 1`,
against onnxruntime's own end-to-end latency of the whole model on this machine.

    python benchmarks/profile_accuracy.py [--runs 30] [--statistic median|min] [--clock cpu|wall] [MODEL.onnx ...]

For each model: `autosplit profile MODEL --threads 1 --out P.csv`, then `autosplit layer-cost MODEL --hardware
P.csv` (its total), then a fresh onnxruntime session (1 thread, ORT_ENABLE_ALL, no profiler) timed over the same
number of runs: median wall time and median CPU time of the calling thread. On an unloaded machine the two agree;
on a shared one the wall time includes the time other processes held the core (the load average is printed), and
the CPU time is what the model costs this machine. The error is `layer-cost total / end to end - 1`.
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from simulator.cli import main  # noqa: E402

MODELS = {  # the three kinds: a CNN, a small DAG, a transformer (once one imports)
    "CNN": REPO / "tests/fixtures/onnx/resnet18.onnx",
    "DAG (residuals, squeeze-excitation)": REPO / "tests/fixtures/onnx/efficientnet_b0.onnx",
    "DAG (channel split, concat)": REPO / "tests/fixtures/onnx/shufflenet_v2_x1_0.onnx",
    "CNN (depthwise)": REPO / "tests/fixtures/onnx/mobilenet_v2.onnx",
    "small DAG (residual add, concat)": REPO / "experiments/data/trained_cnn.onnx",
    "transformer": REPO / "tests/fixtures/onnx/vit_b_16.torchscript.onnx.gz",
    "transformer (shifted windows)": REPO / "tests/fixtures/onnx/swin_t.torchscript.onnx.gz",
}


def cli_json(*argv: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main([*argv, "--format", "json"])
    if status:
        raise SystemExit(f"autosplit {' '.join(argv)} failed")
    return json.loads(out.getvalue())


def end_to_end(model: Path, runs: int, warmup: int) -> tuple[float, float]:
    """Median wall and calling-thread CPU seconds of session.run, 1 thread, as a user runs it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    feeds = {i.name: np.random.default_rng(1).standard_normal([d if isinstance(d, int) else 1 for d in i.shape])
             .astype(np.float32) for i in session.get_inputs()}
    wall, cpu = [], []
    for run in range(warmup + runs):
        start, start_cpu = time.perf_counter(), time.thread_time()
        session.run(None, feeds)
        if run >= warmup:
            wall.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def check(model: Path, runs: int, warmup: int, statistic: str, clock: str) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        if model.suffix == ".gz":  # onnx-import's gzipped fixtures
            unpacked = Path(folder) / model.stem
            unpacked.write_bytes(gzip.decompress(model.read_bytes()))
            model = unpacked
        profile = Path(folder) / "profile.csv"
        cli_json("profile", str(model), "--out", str(profile), "--threads", "1", "--runs", str(runs),
                 "--warmup", str(warmup), "--statistic", statistic, "--clock", clock)
        predicted = cli_json("layer-cost", str(model), "--hardware", str(profile))["total"]["latency_s"]
        load = os.getloadavg()[0]
        wall, cpu = end_to_end(model, runs, warmup)
    return {"predicted_s": predicted, "wall_s": wall, "cpu_s": cpu, "error_wall": predicted / wall - 1,
            "error_cpu": predicted / cpu - 1, "load": load}


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--statistic", choices=["median", "min"], default="median",
                        help="the profile's statistic (default median, as `autosplit profile`)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="cpu",
                        help="the profile's clock (default cpu, as `autosplit profile --threads 1`)")
    args = parser.parse_args(argv)
    models = {m.name.split(".")[0]: m for m in args.models} or MODELS
    print(f"{'model':38s} {'layer-cost':>10s} {'e2e wall':>9s} {'e2e CPU':>9s} {'err wall':>9s} {'err CPU':>8s} "
          f"{'load':>5s}   (ms; layers: {args.statistic} {args.clock} time of {args.runs} runs, 1 thread)")
    for label, model in models.items():
        r = check(model, args.runs, args.warmup, args.statistic, args.clock)
        print(f"{label + ' ' + model.stem:38.38s} {r['predicted_s'] * 1e3:10.3f} {r['wall_s'] * 1e3:9.3f} "
              f"{r['cpu_s'] * 1e3:9.3f} {r['error_wall'] * 100:+8.1f}% {r['error_cpu'] * 100:+7.1f}% {r['load']:5.1f}")


if __name__ == "__main__":
    run()
