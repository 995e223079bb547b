"""`autosplit serve-cloud`: an exported split's cloud part as a TCP service."""
from __future__ import annotations

import argparse
import ipaddress

from hardware_models.errors import UserError
from simulator.cli._values import seconds, whole


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve-cloud", help="serve an exported split's cloud part over TCP",
        description="Run cloud.onnx of an exported split (--plan DIR, written by `autosplit export`) as a TCP "
        "service: each connection states its plan (HELLO, checked against plan.json), then sends requests of the "
        "plan's packed crossing tensors and gets the model's outputs back. Every frame is checked against the plan "
        "(kind, plan digest, exact byte count) before its body is read; a malformed frame or a client silent for "
        "--read-timeout gets an ERROR frame and its connection closed, and the server keeps serving. Binds to "
        "127.0.0.1 unless --host says otherwise. Runs until interrupted (Ctrl-C).")
    parser.add_argument("--plan", required=True, metavar="DIR", help="folder written by `autosplit export`")
    parser.add_argument("--port", required=True, type=whole(0, 65535), help="TCP port (0: any free port, printed)")
    parser.add_argument("--host", default="127.0.0.1", help="IP address to listen on (default 127.0.0.1; 0.0.0.0 "
                        "for all interfaces)")
    parser.add_argument("--read-timeout", default="30s", help="longest wait for a client's next frame, e.g. 30s "
                        "(default 30s); an idle client is disconnected and run-edge reconnects")
    parser.add_argument("--max-connections", type=whole(1, 65536), default=None,
                        help="clients served at once; more wait in the accept queue (default: 512, or the "
                        "process's file-descriptor limit minus 64 when that is lower)")
    parser.add_argument("--format", choices=["table", "json"], default="table",
                        help="the line printed once listening: text (default) or a JSON object with host and port")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from simulator.deploy.edge_cloud import serve_cloud  # loads numpy and onnxruntime: not for --help

    if args.host != "localhost":
        try:
            ipaddress.ip_address(args.host)
        except ValueError:
            raise UserError(f"--host: expected an IP address to listen on (127.0.0.1, 0.0.0.0, ::) or localhost, "
                            f"got {args.host!r}") from None
    serve_cloud(args.plan, args.host, args.port, seconds(args.read_timeout, "--read-timeout"), args.format,
                args.max_connections)
