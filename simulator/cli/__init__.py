"""`autosplit` command line: one sub-command per module, shared conventions for all of them.

Every command takes `--format table|csv|json` (table by default), exits 0 on success and 2 on a user
error with a one-line message (never a traceback). Each command module has `add_parser(subparsers)`, which
registers its arguments and sets `func` to the module's `run(args)`. Building the parser (all `--help`
needs) loads no numpy, pandas or onnx: the handlers import the parts of the core that do when they run.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from hardware_models.errors import UserError
from hardware_models.units import UNITS_HELP
from simulator.cli import (
    _accuracy,
    _capacity,
    _export,
    _hardware,
    _inspect,
    _layer_cost,
    _models,
    _netsim,
    _plan,
    _profile,
    _run,
    _run_edge,
    _schema,
    _serve_cloud,
    _worker,
)
from simulator.freed_memory import keep_freed_memory

__all__ = ["build_parser", "main"]

# in the order `autosplit --help` lists them
COMMANDS = (_models, _inspect, _layer_cost, _hardware, _profile, _run, _schema, _plan, _accuracy, _netsim, _capacity,
            _worker, _export, _serve_cloud, _run_edge)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is a UserError (one line, exit 2) instead of usage + message; flags that
    need the core (`_arguments.defer_arguments`) are added when the command is parsed, not when --help runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deferred_arguments: list[Callable[[argparse.ArgumentParser], None]] = []

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        while self.deferred_arguments:
            self.deferred_arguments.pop(0)(self)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message} (see --help)")


_NEGATIVE_VALUE = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


def _join_negative_values(argv: Sequence[str]) -> list[str]:
    """['--uplink', '-1Mbps'] -> ['--uplink=-1Mbps']: argparse would read '-1Mbps' as a flag and say "expected
    one argument"; joined, the value reaches the flag's own check ("expected a rate > 0")."""
    out: list[str] = []
    for token in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NEGATIVE_VALUE.match(token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def _version() -> str:
    try:
        return version("autosplit")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The `autosplit` parser with every command's sub-parser."""
    parser = _Parser(prog="autosplit", description="Split DNN inference between an edge device and a cloud GPU.",
                     epilog=UNITS_HELP)
    parser.add_argument("--version", action="version", version=f"autosplit {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def _refuse_empty_values(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """An empty value (`--topology ""`) is a mistake, not "not given"; say which flag has it."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for action in commands.choices[args.command]._actions:
        value = getattr(args, action.dest, None)
        if value == "" or (isinstance(value, list) and any(v == "" for v in value)):
            name = action.option_strings[0] if action.option_strings else (action.metavar or action.dest)
            raise UserError(f"{args.command} {name}: empty value; see --help for what it expects")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command of `argv` (default: the process's arguments); the exit status: 0, 2 on a user error."""
    keep_freed_memory()
    parser = build_parser()
    try:
        args = parser.parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        _refuse_empty_values(parser, args)
        args.func(args)
    except UserError as exc:  # one line per problem, each starting with "error:"
        print("\n".join(f"error: {line}" for line in str(exc).splitlines() or [""]), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0
