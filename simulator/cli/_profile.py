"""`autosplit profile MODEL.onnx --out PROFILE.csv`: every layer measured with onnxruntime on this machine."""
from __future__ import annotations

import argparse
import os
import time

from hardware_models.errors import UserError
from simulator.cli._arguments import add_format_argument, add_model_argument, input_shape, model_name
from simulator.cli._output import emit
from simulator.cli._values import whole


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "profile", help="measure every layer of an ONNX model with onnxruntime (measured hardware)",
        description="Run MODEL (an .onnx file) with onnxruntime's profiler on this machine (ORT_ENABLE_ALL, as it is served) "
        "and write each autosplit layer's median latency to --out, a profile CSV that --hardware, --edge, --cloud "
        "and the experiment's edge:/cloud: accept like a preset, for this model (its SHA-256) at the precision "
        "measured. onnxruntime's fused nodes are shared among the layers they fuse; time that maps to no layer is "
        "reported as unmapped. The header records the thread count, provider, onnxruntime version, machine and "
        "the end-to-end latency (timed without the profiler).")
    add_model_argument(parser)
    parser.add_argument("--out", required=True, metavar="PROFILE.csv", help="where to write the profile")
    parser.add_argument("--threads", type=whole(1, 1024), default=os.cpu_count() or 1,
                        help="onnxruntime intra-op threads (default: this machine's logical cores)")
    parser.add_argument("--runs", type=whole(1, 100000), default=20, help="timed runs; each layer's latency is "
                        "their median (default 20)")
    parser.add_argument("--statistic", choices=["median", "min"], default="median",
                        help="each layer's latency: the median of the runs (default) or their minimum (on a machine "
                        "other processes load: the runs they did not interrupt)")
    parser.add_argument("--clock", choices=["wall", "cpu"],
                        help="a node's time: wall, or cpu (1 thread only): the CPU time the computing thread spent in "
                        "it, which leaves out the time other processes held the core on a loaded machine (equal to "
                        "the wall time on an idle one). Default: cpu with --threads 1 (where the OS has per-thread CPU clocks), "
                        "else wall")
    parser.add_argument("--warmup", type=whole(0, 100000), default=5, help="untimed runs first (default 5)")
    parser.add_argument("--provider", default="CPUExecutionProvider",
                        help="onnxruntime execution provider (default CPUExecutionProvider)")
    parser.add_argument("--based-on", metavar="PRESET", help="an analytic preset whose latency ratio gives the "
                        "bit-widths not measured (written as the profile's based_on)")
    add_format_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    # onnxruntime, onnx and numpy load here: not for --help
    from hardware_models.measured import write_profile
    from hardware_models.registry import load_accelerator
    from simulator.atomic import write_text
    from simulator.profiling import profile_model

    model = model_name(args)
    if not model.endswith(".onnx"):
        raise UserError(f"profile: MODEL must be an .onnx file (what onnxruntime runs), got {model!r}")
    if not args.out.endswith(".csv"):
        raise UserError(f"--out: expected a .csv file name (a profile is found by its suffix), got {args.out!r}")
    if args.based_on:
        load_accelerator(args.based_on)  # a wrong name fails before the measurement
    clock = args.clock or ("cpu" if args.threads == 1 and hasattr(time, "pthread_getcpuclockid") else "wall")
    profile = profile_model(model, args.threads, args.runs, args.warmup, args.provider, args.statistic, clock,
                            input_shape(args), args.until)
    header = {**profile.header, **({"based_on": args.based_on} if args.based_on else {})}
    try:
        write_text(args.out, write_profile(header, profile.rows))
    except OSError as exc:
        raise UserError(f"--out: cannot write {args.out} ({exc.strerror or exc})") from None
    # the profile loads as an accelerator, so a based_on that cannot give a ratio fails here, not at use
    load_accelerator(args.out)
    rows = [{"layer": name, "latency_ms": latency * 1e3, "ort_nodes": len(nodes)}
            for name, latency, nodes in profile.rows]
    data = {**header, "layers_s": profile.layers_s, "out": args.out,
            "layers": [{"layer": n, "latency_s": s, "ort_nodes": nodes} for n, s, nodes in profile.rows]}
    e2e, layers = header["end_to_end_s"], profile.layers_s
    emit(args.format, data, rows, title=f"{model} on {header['device']} with onnxruntime "
         f"{header['onnxruntime']} ({args.provider}, {args.threads} thread(s), {header['precision']}): "
         f"{args.statistic} {clock} time of {args.runs} runs",
         footer=f"layers sum {layers * 1e3:.3f} ms; end to end {e2e * 1e3:.3f} ms wall "
         f"({(layers / e2e - 1) * 100:+.1f} %), {header['end_to_end_cpu_s'] * 1e3:.3f} ms CPU; unmapped "
         f"{header['unmapped_s'] * 1e3:.3f} ms; wrote {args.out}")
