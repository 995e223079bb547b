"""`autosplit netsim`: the transfer-time distribution of one upload, simulated at TCP segment level."""
from __future__ import annotations

import argparse
import time
from typing import Any

from hardware_models.errors import UserError
from hardware_models.units import UNITS_HELP, parse_bytes, parse_rate, parse_time
from simulator.cli._arguments import add_format_argument, add_link_arguments
from simulator.cli._output import emit
from simulator.cli._values import seed_number, whole
from simulator.experiment.limits import MAX_ANALYTIC_LOSS, MAX_DURATION_S, MAX_RATE_BPS

# a simulated upload holds its segments' state in arrays: bound what one run may allocate (~1.5 GB of payload)
MAX_SIMULATED_BYTES = 2**30 * 1.5

# the Link's field names in its messages: the flags
_LINK_FLAGS = {"uplink_bps": "--uplink", "rtt_s": "--rtt", "loss_rate": "--loss", "jitter_s": "--jitter",
               "protocol": "--link"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "netsim", help="transfer-time distribution of one upload (SimPy, segment level)",
        description="Simulates uploading --bytes over the uplink --runs times at TCP segment level (a persistent "
        "connection unless --new-connection; slow start from 10 segments; loss with retransmission) and prints the "
        "distribution, beside the analytic model the search uses. --link ideal is the paper's bytes / rate (no "
        "framing, no RTT). With --trace each run starts at a random point of the bandwidth trace.",
        epilog=UNITS_HELP)
    add_link_arguments(parser, simulated=True)
    parser.add_argument("--preset", help="a network preset (ble, 3g, lte, 5g, wifi, paper-3mbps, ...) or a .yaml "
                        "file; other options override its values")
    parser.add_argument("--trace", help="bandwidth trace file: rows of 'time_s, rate_bps' (replaces --uplink)")
    parser.add_argument("--jitter", help="extra one-way delay per packet, uniform in [0, JITTER], e.g. 5ms")
    parser.add_argument("--new-connection", action="store_true",
                        help="open a new TCP connection per upload (+1 RTT)")
    parser.add_argument("--bytes", default="150528", help="payload size, e.g. 150528 or 147KiB (default 150528, "
                        "a 224x224x3 8-bit image)")
    parser.add_argument("--runs", type=whole(1, 1_000_000), default=1000, help="simulated uploads (default 1000)")
    parser.add_argument("--seed", type=seed_number, default=0, help="random seed, 0..2^32-1 (default 0)")
    add_format_argument(parser)
    parser.set_defaults(func=run)


def _bounded(value: float, flag: str, text: str, low: float, high: float, what: str) -> float:
    """`value` if low <= value <= high, else a UserError naming the flag and what it was given."""
    if not value >= low or not value <= high:
        raise UserError(f"{flag}: expected {what} >= {low:g} and <= {high:g}, got {text!r}")
    return value


def run(args: argparse.Namespace) -> None:
    # numpy, and the network package's simpy: loaded when the command runs, not for --help
    import numpy as np

    from simulator.network import BandwidthTrace, Link, load_link, simulate_transfer_times_s

    payload = parse_bytes(args.bytes, "--bytes")
    if not (0 <= payload <= MAX_SIMULATED_BYTES) or payload != int(payload):
        raise UserError(f"--bytes: expected a whole number of bytes in 0..{MAX_SIMULATED_BYTES:.0f} (what one "
                        f"simulated upload may hold), got {args.bytes!r}")
    fields: dict[str, Any] = {}
    if args.uplink is not None:
        fields["uplink_bps"] = _bounded(parse_rate(args.uplink, "--uplink"), "--uplink", args.uplink, 1.0,
                                        MAX_RATE_BPS, "a rate in bit/s")
    if args.rtt is not None:
        fields["rtt_s"] = _bounded(parse_time(args.rtt, "--rtt"), "--rtt", args.rtt, 0.0, MAX_DURATION_S,
                                   "a time in s")
    if args.loss is not None:
        fields["loss_rate"] = args.loss
    if args.jitter is not None:
        fields["jitter_s"] = _bounded(parse_time(args.jitter, "--jitter"), "--jitter", args.jitter, 0.0,
                                      MAX_DURATION_S, "a time in s")
    if args.new_connection:
        fields["new_connection"] = True
    if args.link is not None:
        fields["protocol"] = args.link
    if args.trace is not None:
        fields["trace"] = BandwidthTrace.from_file(args.trace)
        fields["uplink_bps"] = fields["trace"].mean_rate_bps
    try:
        if args.preset:
            link = load_link(args.preset, **fields)
        elif "uplink_bps" not in fields:
            raise UserError("netsim: give --uplink RATE (or --trace FILE or --preset NAME)")
        else:
            link = Link(**fields)
    except UserError as exc:
        raise exc.renamed(_LINK_FLAGS) from None
    started = time.perf_counter()
    times = simulate_transfer_times_s(link, int(payload), args.runs, seed=args.seed)
    elapsed = time.perf_counter() - started
    note = None
    if link.model.loss_bounded and link.loss_rate > MAX_ANALYTIC_LOSS:
        note = (f"loss {link.loss_rate:g} > {MAX_ANALYTIC_LOSS:g}: beyond where the analytic model (model_s) agrees "
                "with the simulation; plan and run refuse it")
    data = {"payload_bytes": int(payload), "uplink_bps": link.uplink_bps, "rtt_s": link.rtt_s,
            "mean_s": float(times.mean()), "p50_s": float(np.percentile(times, 50)),
            "p95_s": float(np.percentile(times, 95)), "p99_s": float(np.percentile(times, 99)),
            "runs": args.runs, "min_s": float(times.min()), "max_s": float(times.max()),
            "model_s": float(link.transfer_time_s(payload)), "wire_bytes": float(link.wire_bytes(payload)),
            "link": link.protocol, "loss_rate": link.loss_rate, "new_connection": link.new_connection,
            "preset": args.preset, "trace": args.trace, "simulation_s": elapsed, "note": note}
    rows = [{k: data[k] for k in ("payload_bytes", "wire_bytes", "uplink_bps", "rtt_s", "loss_rate", "runs",
                                  "mean_s", "p50_s", "p95_s", "p99_s", "model_s")}]
    emit(args.format, data, rows, title=f"netsim: {link.protocol} link, {link.uplink_bps / 1e6:g} Mbit/s, "
         f"RTT {link.rtt_s * 1e3:g} ms, loss {link.loss_rate:g}; model_s = the analytic model's mean",
         footer=f"note: {note}" if note else None)
