"""`autosplit run-edge`: an exported split's edge part, sending every sample to serve-cloud."""
from __future__ import annotations

import argparse
import math
import sys

from hardware_models.errors import UserError
from hardware_models.units import UNITS_HELP, parse_rate, parse_time
from simulator.cli._arguments import add_format_argument, add_link_arguments
from simulator.cli._output import emit, format_table
from simulator.cli._values import number, seconds, whole


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run-edge", help="run an exported split's edge part against serve-cloud",
        description="Run edge.onnx of an exported split (--plan DIR) on every sample of --data, one request each "
        "(batch 1): quantize and pack the crossing tensors, send them to serve-cloud at --connect, receive the "
        "outputs. Prints per-request edge compute, bytes on the wire, transfer (send call to the cloud's receipt of "
        "the last byte), cloud compute and end-to-end percentiles, and the top-1 accuracy over the labels. Edge and "
        "cloud compute are this machine's CPU times with onnxruntime, not the modelled accelerators. A dropped "
        "connection is re-opened and the request sent again (--retries), then reported. With --uplink (and --rtt) "
        "it also prints the simulator's transfer_time_s for the request's bytes. " + UNITS_HELP)
    parser.add_argument("--plan", required=True, metavar="DIR", help="folder written by `autosplit export`")
    parser.add_argument("--connect", required=True, metavar="HOST:PORT", help="where serve-cloud listens")
    parser.add_argument("--data", required=True, metavar="FILE.npz", help="labelled inputs (x, y) as for `accuracy`")
    parser.add_argument("--rate", type=number(0.0, 1e6, low_open=True, what="requests per second"), metavar="R",
                        help="start requests at R per second (default: each as soon as the last is answered)")
    parser.add_argument("--limit", type=whole(1), metavar="N", help="only the first N samples")
    parser.add_argument("--timeout", default="30s", help="longest wait for an answer or a connection, e.g. 30s")
    parser.add_argument("--retries", type=whole(0, 100), default=2, help="re-connections per request (default 2)")
    add_link_arguments(parser, protocol=False)
    parser.add_argument("--per-request", action="store_true", help="json: include every request's timings")
    add_format_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    # the runtime loads numpy and onnxruntime, the network package simpy: not for --help
    from simulator.accuracy.npz import load_npz
    from simulator.deploy.edge_cloud import run_edge
    from simulator.network import Link

    host, sep, port_text = args.connect.rpartition(":")
    if not sep or not host:
        raise UserError(f"--connect: expected HOST:PORT, got {args.connect!r}")
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise UserError(f"--connect: port {port_text!r} is not 1..65535")
    timeout_s = seconds(args.timeout, "--timeout")
    link = None
    if args.uplink is not None:
        uplink_bps, rtt_s = parse_rate(args.uplink, "--uplink"), parse_time(args.rtt, "--rtt")
        if not (0 < uplink_bps < math.inf) or not (0 <= rtt_s < math.inf):
            raise UserError(f"--uplink/--rtt: expected a rate > 0 and a time >= 0, got {args.uplink!r}, {args.rtt!r}")
        link = Link(uplink_bps=uplink_bps, rtt_s=rtt_s)
    x, y = load_npz(args.data, "--data")
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    result = run_edge(args.plan, host.strip("[]"), port, x, y, args.rate, timeout_s, args.retries,
                      progress=sys.stderr.isatty() and len(x) > 50)
    if link is not None:
        result["predicted_transfer_s"] = float(link.transfer_time_s(result["frame_bytes"]))
    result["predicted_edge_s"] = _predicted_edge_s(args.plan)
    per_request = result.pop("per_request")
    result.pop("predicted_labels")
    if args.format == "json":
        if args.per_request:
            result["per_request"] = per_request
        emit("json", result, [])
        return
    rows = [{"stage": stage, **{k: (v * 1e3 if v is not None else None) for k, v in result[key].items()}}
            for stage, key in (("edge compute", "edge_s"), ("transfer", "transfer_s"), ("cloud compute", "cloud_s"),
                               ("end to end", "end_to_end_s"))]
    if args.format == "csv":
        emit("csv", result, rows)
        return
    print(f"{result['requests']} requests to {args.connect}: {result['payload_bytes']} payload bytes "
          f"({result['frame_bytes']} with the frame header) each, accuracy "
          f"{'n/a' if result['accuracy'] is None else format(result['accuracy'], '.2f') + ' %'}"
          + (f", {result['reconnects']} reconnection(s)" if result["reconnects"] else ""))
    if "predicted_transfer_s" in result:
        print(f"simulator's transfer_time_s for {result['frame_bytes']} bytes: "
              f"{result['predicted_transfer_s'] * 1e3:.3f} ms")
    measured_edge_s = result["edge_s"]["p50"]
    if measured_edge_s is not None:
        predicted = result["predicted_edge_s"]
        print(f"edge compute: measured {measured_edge_s * 1e3:.3f} ms per request (median); the plan predicted "
              + ("nothing (no edge_s in plan.json's source plan)" if predicted is None else
                 f"{predicted * 1e3:.3f} ms ({(measured_edge_s / predicted - 1) * 100:+.1f} % measured vs predicted)"
                 if predicted > 0 else f"{predicted * 1e3:.3f} ms"))
    print("milliseconds per request:")
    print(format_table(rows))


def _predicted_edge_s(folder: str) -> float | None:
    """The edge time the exported plan was chosen with (plan.json's source plan: `plan --format json`'s breakdown
    or a results table's edge_s), None when the plan came without it."""
    import json
    from pathlib import Path

    try:
        source = json.loads((Path(folder) / "plan.json").read_text()).get("source_plan", {})
    except (OSError, ValueError, AttributeError):
        return None
    breakdown = source.get("breakdown")
    value = breakdown.get("edge_s") if isinstance(breakdown, dict) else source.get("edge_s")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
