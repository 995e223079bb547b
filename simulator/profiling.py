"""Measure every layer of an ONNX model with onnxruntime's own profiler, on this machine, as autosplit's layers.

onnxruntime optimises the graph before it runs it (ORT_ENABLE_ALL, as a user runs it): it folds batchnorms,
fuses activations and residual adds into convs, renames nodes (`<tensor>_nchwc`, `.../QuickGeluFusion/`) and
inserts layout reorders. Its profiler times the optimised nodes, so each is mapped back to the original ONNX
nodes it computes, and those to autosplit's (simplified) layers:
1. the optimised node's *anchor*: an original tensor it produces (or the output of the original node an output
   is named after), else the original tensor its name was made from (`<tensor>_nchwc`, `<node name>/<fusion>/`),
   else the last original tensor it reads (a layout reorder), else its producer's anchor;
2. the original nodes it covers: walking back from the anchor's producer through the original graph, stopping
   at the tensors its inputs stand for and at nodes an earlier optimised node covered. Ops onnxruntime fused
   past the anchor (an add and relu inside a NCHWc conv) are covered by the next node that walks through them;
3. its time (the median over the timed runs, or the minimum) is shared among the autosplit layers of the
   covered nodes in proportion to their work (MACs + output elements); a node covering none goes to the layer
   producing its anchor (a reorder of a layer's output) or, when that is no layer either (a Shape -> Gather ->
   Concat chain autosplit folded as constants), to the first layer downstream that reads what it computes (the
   reshape). Time that still maps to no layer (a node whose results no layer reads) is reported as unmapped.
Times are wall time by default. With `clock="cpu"` (1 thread: onnxruntime computes on the calling thread)
a node's time is the CPU time that thread spent in it, from its CPU clock sampled every 0.5 ms by a second
thread and interpolated at the node's start and end: on a machine other processes load, the wall time
includes the time they held the core, the CPU time does not (on an idle machine the two agree).
The profile is written in hardware_models.measured's CSV format; `end_to_end_s` is timed apart, without the
profiler, in runs that alternate with the profiled ones.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hardware_models.errors import UserError
from hardware_models.measured import file_sha256
from simulator.graph import Graph

INPUT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8,
               "tensor(int8)": np.int8, "tensor(bool)": np.bool_}


@dataclass
class Profile:
    """What `profile_model` measured: the CSV header (hardware_models.measured.HEADER_KEYS) and one row per
    layer of `graph` in execution order: (layer, median latency in seconds, onnxruntime nodes it shares)."""

    header: dict[str, Any]
    rows: list[tuple[str, float, list[str]]]
    graph: Graph

    @property
    def layers_s(self) -> float:
        return sum(latency for _, latency, _ in self.rows)


def profile_model(path: str | Path, threads: int, runs: int, warmup: int, provider: str = "CPUExecutionProvider",
                  statistic: str = "median", clock: str = "wall", input_shape: tuple[int, ...] | None = None,
                  until: str | None = None, seed: int = 0) -> Profile:
    """Profile the ONNX file at `path` with onnxruntime: `warmup` untimed runs, then `runs` timed ones; each
    layer's latency is the `statistic` (median or min) of its runs, on the `clock` (wall, or cpu: the running
    thread's CPU time in each node, with 1 thread only). `input_shape` and `until` are the importer's
    (`prepare_onnx`): the input's fixed shape, and where autosplit's graph ends (onnxruntime runs the whole
    file; the nodes past `until` map to no layer and are reported as unmapped)."""
    if clock == "cpu" and not hasattr(time, "pthread_getcpuclockid"):
        raise UserError("--clock cpu: this system has no per-thread CPU clock (time.pthread_getcpuclockid); use "
                        "--clock wall")
    if clock == "cpu" and threads != 1:
        raise UserError(f"--clock cpu: needs --threads 1 (it reads the CPU clock of the one thread that computes), "
                        f"got --threads {threads}")
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("profiling needs onnxruntime: pip install 'autosplit[onnx]'") from None
    path = Path(path)
    graph, layer_of_tensor = _layers_of_tensors(path, input_shape, until)
    if provider not in ort.get_available_providers():
        raise UserError(f"--provider: {provider} is not available in this onnxruntime; expected one of "
                        f"{', '.join(ort.get_available_providers())}")
    with tempfile.TemporaryDirectory(prefix="autosplit-profile-") as folder:
        options = _session_options(ort, threads)
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder) / "ort")
        options.optimized_model_filepath = str(Path(folder) / "optimized.onnx")
        profiled = _session(ort, path, options, provider)
        plain = _session(ort, path, _session_options(ort, threads), provider)
        feeds = _feeds(profiled, np.random.default_rng(seed), input_shape)
        sampler = CpuClockSampler() if clock == "cpu" else None
        wall, cpu = [], []
        # the profiled and the plain session take turns, so that what else the machine runs (which slows even
        # the CPU time: shared caches and cores) weighs on both alike; a small model pays for it, each session
        # evicting the other's weights from the caches
        for run in range(warmup + runs):
            if sampler is not None and run == warmup:
                sampler.start()
            if sampler is not None:  # samples at both ends of every profiled run: the plain run between is not in
                sampler.sample()     # the profiled run's interpolation, whatever the sampling thread managed
            profiled.run(None, feeds)
            if sampler is not None:
                sampler.sample()
            start, start_cpu = time.perf_counter(), time.thread_time()
            plain.run(None, feeds)
            if run >= warmup:
                wall.append(time.perf_counter() - start)
                cpu.append(time.thread_time() - start_cpu)
        if sampler is not None:
            sampler.stop()
        trace = json.loads(Path(profiled.end_profiling()).read_text())
        origin_ns = profiled.get_profiling_start_time_ns()
        node_s = _node_times(trace, runs, statistic, None if sampler is None else
                             lambda start_us, end_us: sampler.cpu_between(origin_ns + start_us * 1e3,
                                                                          origin_ns + end_us * 1e3))
        latency, nodes_of, unmapped_s = _attribute(path, Path(folder) / "optimized.onnx", graph, layer_of_tensor,
                                                   node_s)
    header = {"model": str(path), "model_sha256": file_sha256(path), "precision": _precision(path),
              "batch": graph.input_shape[0] if graph.input_shape else 1, "provider": provider, "threads": threads,
              "runs": runs, "statistic": statistic, "clock": clock, "warmup": warmup, "onnxruntime": ort.__version__,
              "graph_optimization": "ORT_ENABLE_ALL", "device": _device(),
              "end_to_end_s": float(statistics.median(wall)), "end_to_end_cpu_s": float(statistics.median(cpu)),
              "unmapped_s": float(unmapped_s)}
    if input_shape is not None:
        header["input_shape"] = "x".join(map(str, input_shape))
    if until is not None:
        header["until"] = until
    rows = [(layer.name, latency.get(layer.name, 0.0), nodes_of.get(layer.name, [])) for layer in graph.layers]
    return Profile(header, rows, graph)


# --- onnxruntime ----------------------------------------------------------------------------------------------
def _session_options(ort: Any, threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # not the warning that a NCHWc-optimised model is machine-specific
    return options


def _session(ort: Any, path: Path, options: Any, provider: str) -> Any:
    try:
        return ort.InferenceSession(str(path), options, providers=[provider])
    except Exception as exc:  # onnxruntime raises its own types for a model it cannot run
        raise UserError(f"{path}: onnxruntime cannot run it: {' '.join(str(exc).split())[:300]}") from None


def _feeds(session: Any, rng: np.random.Generator, input_shape: tuple[int, ...] | None) -> dict[str, np.ndarray]:
    """Random inputs of the session's shapes (a symbolic dimension is 1; the first input's is `input_shape` when
    given) and types."""
    feeds: dict[str, np.ndarray] = {}
    for index, value in enumerate(session.get_inputs()):
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in value.shape]
        if index == 0 and input_shape is not None:
            shape = list(input_shape)
        dtype = INPUT_TYPES.get(value.type)
        if dtype is None:
            raise UserError(f"input {value.name!r}: cannot make a random {value.type}")
        feeds[value.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def _node_times(trace: list[dict], runs: int, statistic: str,
                cpu_between: Callable[[np.ndarray, np.ndarray], np.ndarray] | None) -> dict[str, float]:
    """Seconds of each optimised node over the last `runs` model runs of a profiler trace, their median or
    minimum (a node that did not run in a run counts 0 there): its wall time, or with `cpu_between` (trace
    microseconds -> CPU seconds) the CPU time its thread spent in it."""
    spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in trace if e.get("cat") == "Session"
                   and e.get("name") == "model_run")[-runs:]
    starts = np.array([s for s, _ in spans])
    events = [e for e in trace if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
    begin = np.array([e["ts"] for e in events], dtype=float)
    seconds = np.array([e["dur"] for e in events], dtype=float) * 1e-6
    if cpu_between is not None:
        seconds = cpu_between(begin, begin + seconds * 1e6)
    run_of = np.searchsorted(starts, begin, side="right") - 1
    per_run: dict[str, np.ndarray] = {}
    for event, run, value in zip(events, run_of, seconds):
        if run < 0 or event["ts"] > spans[run][1]:
            continue  # a warm-up run
        per_run.setdefault(event["name"].removesuffix("_kernel_time"), np.zeros(len(spans)))[run] += value
    reduce = np.median if statistic == "median" else np.min
    return {node: float(reduce(times)) for node, times in per_run.items()}


class CpuClockSampler:
    """The CPU clock of the thread that creates it (the one that runs onnxruntime with 1 thread), read every
    `interval_s` by a second thread, so that the CPU time spent in any wall-clock interval can be interpolated:
    on a machine other processes load, a node's wall time includes theirs, its CPU time does not."""

    def __init__(self, interval_s: float = 5e-4) -> None:
        self.clock = time.pthread_getcpuclockid(threading.get_ident())
        self.interval_s = interval_s
        self.samples: list[tuple[int, int]] = []  # (wall ns since the epoch, as onnxruntime's trace; CPU ns)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        self.samples.append((time.time_ns(), time.clock_gettime_ns(self.clock)))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def cpu_between(self, start_ns: np.ndarray, end_ns: np.ndarray) -> np.ndarray:
        """CPU seconds of the sampled thread between wall times (ns since the epoch), interpolated."""
        wall, cpu = np.array(sorted(self.samples), dtype=float).T
        return np.maximum(np.interp(end_ns, wall, cpu) - np.interp(start_ns, wall, cpu), 0.0) * 1e-9


def _precision(path: Path) -> str:
    """fp16 or int8 when the model's weights are stored so, else fp32."""
    import onnx

    types = {init.data_type for init in onnx.load(str(path), load_external_data=False).graph.initializer}
    if onnx.TensorProto.FLOAT16 in types:
        return "fp16"
    if types & {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}:
        return "int8"
    return "fp32"


def _device() -> str:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical cores"


# --- onnx nodes -> autosplit layers -----------------------------------------------------------------------------
def _layers_of_tensors(path: Path, input_shape: tuple[int, ...] | None = None,
                       until: str | None = None) -> tuple[Graph, dict[str, str]]:
    """The simplified Graph of the ONNX file and, for each ONNX tensor a layer computes, that layer's name
    (a batchnorm or activation folded into a conv gives the conv's name)."""
    from simulator.graph.onnx_import import _Importer
    from simulator.graph.onnx_prepare import prepare_onnx
    from simulator.graph.simplify import simplify

    importer = _Importer(prepare_onnx(path, input_shape=input_shape, until=until), path)  # the importer again, for its map from ONNX tensors to layers
    graph = simplify(importer.run())
    survivor = {layer.name: layer.name for layer in graph.layers}
    survivor.update({removed: layer.name for layer in graph.layers for removed in layer.fused})
    return graph, {t: survivor[ir] for t, ir in importer.tensor_of.items() if ir in survivor}


def _attribute(path: Path, optimized_path: Path, graph: Graph, layer_of_tensor: dict[str, str],
               node_s: dict[str, float]) -> tuple[dict[str, float], dict[str, list[str]], float]:
    """(layer -> seconds, layer -> the optimised nodes it shares, unmapped seconds): each optimised node's
    time shared among the layers of the original nodes it covers (see the module docstring)."""
    import onnx

    original = list(onnx.load(str(path), load_external_data=False).graph.node)
    producer = {out: i for i, node in enumerate(original) for out in node.output if out}
    by_name = {node.name: i for i, node in enumerate(original) if node.name}
    readers: dict[str, list[int]] = {}
    for index, node in enumerate(original):
        for t in node.input:
            readers.setdefault(t, []).append(index)
    optimized = list(onnx.load(str(optimized_path), load_external_data=False).graph.node)
    work = {layer.name: float(layer.macs + layer.output_elements) for layer in graph.layers}
    anchors: dict[str, str | None] = {}
    made_by: dict[str, str] = {}  # optimised tensor -> the optimised node producing it
    claimed: set[int] = set()
    latency: dict[str, float] = {}
    nodes_of: dict[str, list[str]] = {}
    unmapped = 0.0
    for node in optimized:
        anchor = _anchor(node, producer, by_name, original)
        if anchor is None:  # it reads only onnxruntime's own tensors: it stands where their producer stands
            anchor = next((a for t in node.input if t in made_by and (a := anchors[made_by[t]]) is not None), None)
        anchors[node.name] = anchor
        made_by.update({out: node.name for out in node.output})
        if anchor is None:
            unmapped += node_s.get(node.name, 0.0)
            continue
        boundary = {t for t in node.input if t in producer}
        boundary |= {a for t in node.input if t in made_by and (a := anchors[made_by[t]]) is not None}
        covered = _walk_back(producer[anchor], original, producer, boundary, claimed) or {producer[anchor]}
        claimed |= covered
        layers = sorted({layer_of_tensor[out] for i in covered for out in original[i].output if out in layer_of_tensor},
                        key=lambda name: graph.index[name])
        layers = layers or _first_layer_reading(anchor, original, readers, layer_of_tensor)
        seconds = node_s.get(node.name, 0.0)
        if not layers:
            unmapped += seconds
            continue
        weights = np.array([work[name] for name in layers])
        for name, share in zip(layers, weights / weights.sum()):
            latency[name] = latency.get(name, 0.0) + seconds * float(share)
            nodes_of.setdefault(name, []).append(node.name)
    return latency, nodes_of, unmapped


def _anchor(node: Any, producer: dict[str, int], by_name: dict[str, int], original: list[Any]) -> str | None:
    """The original tensor an optimised node stands for (module docstring, step 1), or None."""
    produced = [out for out in node.output if out in producer]
    if produced:
        return produced[-1]
    renamed = [by_name[out] for out in node.output if out in by_name]  # an output named after the node it replaces
    if renamed:
        return original[renamed[-1]].output[0]
    stem = node.name.removesuffix("_nchwc")
    if stem != node.name and stem in producer:
        return stem
    parts = node.name.split("/")
    for end in range(len(parts), 0, -1):
        index = by_name.get("/".join(parts[:end]))
        if index is not None:
            return original[index].output[0]
    read = [t for t in node.input if t in producer]
    return read[-1] if read else None


def _first_layer_reading(tensor: str, original: list[Any], readers: dict[str, list[int]],
                         layer_of_tensor: dict[str, str]) -> list[str]:
    """The first layer downstream of `tensor` in the original graph (breadth first), as a one-name list, or [].
    A shape computation autosplit folded (Shape -> Gather -> Concat) is paid for by the reshape that reads it."""
    seen, frontier = {tensor}, [tensor]
    while frontier:
        following = []
        for t in frontier:
            for index in readers.get(t, []):
                for out in original[index].output:
                    if out in layer_of_tensor:
                        return [layer_of_tensor[out]]
                    if out and out not in seen:
                        seen.add(out)
                        following.append(out)
        frontier = following
    return []


def _walk_back(start: int, original: list[Any], producer: dict[str, int], boundary: set[str],
               claimed: set[int]) -> set[int]:
    """The original nodes from `start` back to the `boundary` tensors, leaving out `claimed` ones."""
    covered: set[int] = set()
    stack = [start]
    while stack:
        index = stack.pop()
        if index in covered or index in claimed:
            continue
        covered.add(index)
        stack.extend(producer[t] for t in original[index].input if t in producer and t not in boundary)
    return covered
