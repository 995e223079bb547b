"""Argument groups that several commands share, defined once so that a flag means the same in each: `--format`,
the model (MODEL / --model / --onnx), the experiment file with --out and --set, the uplink flags and the GPU
mode flags, and the search methods' budget and option flags (generated from the search registry)."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hardware_models.errors import UserError
from simulator.choices import EXECUTION_MODES, FUSION_MODES
from simulator.cli._values import number

if TYPE_CHECKING:
    from simulator.graph import Graph


def add_format_argument(parser: argparse.ArgumentParser) -> None:
    """--format table|csv|json, table by default."""
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table",
                        help="output format (default: table; json for scripts)")


def add_model_argument(parser: argparse.ArgumentParser, *, onnx_keys: bool = True) -> None:
    """MODEL, optional as a positional because --model (and its alias --onnx) may name it instead; with
    `onnx_keys`, --input-shape and --until for an .onnx model (a command that builds the graph elsewhere has
    them only once it passes them on)."""
    parser.add_argument("model_pos", nargs="?", metavar="MODEL",
                        help="zoo name (see `autosplit models`) or an .onnx path")
    parser.add_argument("--model", "--onnx", dest="model", help="same as MODEL")
    if not onnx_keys:
        return
    parser.add_argument("--input-shape", metavar="NxCxHxW",
                        help="an .onnx model's input shape, batch first, e.g. 1x3x224x224: sets its symbolic "
                        "dimensions (input_shape: in YAML)")
    parser.add_argument("--until", metavar="NODE",
                        help="import an .onnx model up to this node or tensor, leaving out post-processing such as "
                        "NMS (until: in YAML)")


def input_shape(args: argparse.Namespace) -> tuple[int, ...] | None:
    """--input-shape 1x3x224x224 as a tuple of positive sizes, or None when not given."""
    text = getattr(args, "input_shape", None)
    if text is None:
        return None
    try:
        shape = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise UserError(f"--input-shape: expected positive sizes joined by x, batch first, e.g. 1x3x224x224; "
                        f"got {text!r}")
    return shape


def model_keys(args: argparse.Namespace) -> dict:
    """--input-shape and --until as the experiment's YAML keys (only those given)."""
    shape = input_shape(args)
    return {k: v for k, v in (("input_shape", list(shape) if shape else None), ("until", getattr(args, "until", None)))
            if v is not None}


def model_name(args: argparse.Namespace) -> str:
    """MODEL, or --model/--onnx: one of them, not two different ones."""
    for given, what in ((args.model, "--model"), (args.model_pos, "MODEL")):
        if given is not None and not given.strip():
            raise UserError(f"{args.command}: {what} is empty; expected a zoo name or an .onnx file")
    if args.model and args.model_pos and args.model != args.model_pos:
        raise UserError(f"{args.command}: MODEL {args.model_pos!r} and --model {args.model!r} disagree; give one")
    name = args.model or args.model_pos
    if not name:
        raise UserError(f"{args.command}: give a MODEL (a zoo name or an .onnx file)")
    return name


def model_from_args(args: argparse.Namespace, simplify: bool = True) -> Graph:
    """The Graph named by MODEL / --model / --onnx."""
    from simulator.graph import load_model  # loads numpy (and onnx for a file): not for --help

    return load_model(model_name(args), simplify=simplify, input_shape=input_shape(args),
                      until=getattr(args, "until", None))


def add_experiment_arguments(parser: argparse.ArgumentParser, *, out: bool = True) -> None:
    """EXPERIMENT.yaml, --out DIR where the command writes a results directory, and --set KEY=VALUE overrides."""
    parser.add_argument("experiment", metavar="EXPERIMENT.yaml", help="the experiment file")
    if out:
        parser.add_argument("--out", metavar="DIR",
                            help="results directory (default: output.dir, else results/<file stem>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key, e.g. --set network.uplink=10Mbps --set search.budgets.optuna.trials=500 "
                        "(repeatable; the value is read as YAML)")


def add_link_arguments(parser: argparse.ArgumentParser, *, required: bool = False, simulated: bool = False,
                       protocol: bool = True) -> None:
    """The uplink: --uplink RATE and --rtt TIME and, with `protocol`, --loss P and --link MODEL (tcp, ideal).

    `simulated` (netsim) leaves every default to the --preset, else to the Link, and takes a loss anywhere in
    [0, 1), which the segment-level simulation holds. Otherwise the defaults are 0 s, no loss and tcp, and the
    experiment schema bounds the values (the loss to 0.1, where the analytic model agrees with the simulation).
    """
    or_preset = ", or the preset's" if simulated else ""
    parser.add_argument("--uplink", required=required,
                        help="uplink rate, e.g. 3Mbps (10^6 bit/s) or 3Mibps (2^20 bit/s)")
    parser.add_argument("--rtt", default=None if simulated else "0s",
                        help=f"round-trip time, e.g. 40ms (default 0{or_preset})")
    if not protocol:
        return
    if simulated:
        parser.add_argument("--loss", type=number(0.0, 1.0, high_open=True, what="a probability"),
                            help="packet loss probability in [0, 1) (default 0, or the preset's); the analytic model "
                            "(model_s, what the search uses) holds up to 0.1")
    else:
        parser.add_argument("--loss", type=float, default=0.0,
                            help="packet loss probability on the uplink, 0..0.1 (default 0; where the analytic TCP "
                            "model agrees with the simulation)")
    # any registered link model (checked where the link is built: the registry is not loaded for --help)
    parser.add_argument("--link", metavar="MODEL", default=None if simulated else "tcp",
                        help=f"link model: tcp (framing, slow start, RTT), ideal (bytes / rate, the paper's model) "
                        f"or a registered one (default tcp{or_preset})")


def add_gpu_mode_arguments(parser: argparse.ArgumentParser, execution_flag: str, fusion_flag: str,
                           whose: str) -> None:
    """The GPU mode flags (issue 14): execution graph|eager and fusion serving|framework."""
    parser.add_argument(execution_flag, choices=EXECUTION_MODES,
                        help=f"{whose} execution: graph (one captured graph / engine) or eager (PyTorch dispatching "
                        "op by op; implies --fusion framework); default: the preset's (graph)")
    parser.add_argument(fusion_flag, choices=FUSION_MODES,
                        help=f"{whose} kernels: serving (a TensorRT engine, fitted on published TensorRT results) or "
                        "framework (PyTorch's kernels, fitted on a measured H200 profile); default: the preset's "
                        "(serving)")


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """--progress: the accuracy measurements' progress bar on stderr even when stderr is not a terminal."""
    parser.add_argument("--progress", action="store_true",
                        help="show the progress bar of accuracy measurements on stderr even when it is not a "
                        "terminal (on a terminal it shows anyway; never on stdout)")


def apply_progress(args: argparse.Namespace) -> None:
    """Turn --progress into the measurements' setting (else a bar shows when stderr is a terminal)."""
    from simulator.accuracy.measure import show_progress  # loads numpy: not for --help

    show_progress(True if args.progress else None)


def defer_arguments(parser: argparse.ArgumentParser, add: Callable[[argparse.ArgumentParser], None]) -> None:
    """Call `add(parser)` when the command is parsed rather than now: flags generated from the core's
    registries load numpy and pandas, which `autosplit --help` must not (a parser that cannot defer: now)."""
    deferred = getattr(parser, "deferred_arguments", None)
    if deferred is None:
        add(parser)
    else:
        deferred.append(add)


def add_method_arguments(parser: argparse.ArgumentParser) -> None:
    """Every registered search method's budget keys (`--trials`, `--epsilon`: one flag per key, whichever
    methods take it) and options (`--optuna-sampler`), generated from the search registry; a value is read as
    YAML and checked by the method's own model, as its key in the experiment YAML is."""
    from simulator.search import registered_methods  # loads numpy and pandas: only when the command runs

    group = parser.add_argument_group("search method budgets and options (of the registered methods)")
    takers: dict[str, list[str]] = {}
    helps: dict[str, str] = {}
    for entry in registered_methods():
        for key, info in (entry.budget.model_fields.items() if entry.budget is not None else ()):
            takers.setdefault(key, []).append(entry.name)
            helps.setdefault(key, info.description or key)
    for key, methods in takers.items():
        group.add_argument(_flag(key), dest=f"budget.{key}", metavar="VALUE",
                           help=f"{' and '.join(methods)} budget: {helps[key]}")
    for entry in registered_methods():
        for key, info in (entry.options.model_fields.items() if entry.options is not None else ()):
            group.add_argument(_flag(f"{entry.name}_{key}"), dest=f"options.{entry.name}.{key}", metavar="VALUE",
                               help=f"{entry.name} option: {info.description or key}")


def method_flags(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The budget and the options that the method flags give, as the experiment YAML's `search.budgets.<m>`
    entry and `search.<method>` sections (values read as YAML; the schema checks them); a UserError for an
    option of another method than --method."""
    budget: dict[str, Any] = {}
    options: dict[str, dict[str, Any]] = {}
    for dest, text in vars(args).items():
        if text is None or not dest.startswith(("budget.", "options.")):
            continue
        value = _yaml_value(text)
        if dest.startswith("budget."):
            budget[dest.removeprefix("budget.")] = value
            continue
        _, method, key = dest.split(".", 2)
        if method != args.method:
            raise UserError(f"{args.command} {_flag(f'{method}_{key}')}: an option of {method}, not of --method "
                            f"{args.method}")
        options.setdefault(method, {})[key] = value
    return budget, options


def method_flag(key: str) -> str:
    """The flag of a method's setting in the schema's messages: `search.budgets.optuna.trials` -> --trials,
    `search.optuna.sampler` -> --optuna-sampler; '' for another key."""
    parts = key.split(".")
    if len(parts) == 4 and parts[:2] == ["search", "budgets"]:
        return _flag(parts[3])
    if len(parts) == 3 and parts[0] == "search" and parts[1] not in ("methods", "budgets"):
        return _flag(f"{parts[1]}_{parts[2]}")
    return ""


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _yaml_value(text: str) -> Any:
    """A flag's value as the YAML would read it (a number, a list, a word); text that is not YAML stays text."""
    import yaml  # not for --help

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
