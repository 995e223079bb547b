"""`autosplit plan`: the best split plan of one search method for a scenario given as flags.

The scenario flags are the experiment YAML's keys: they go through the same schema, and the messages name the
flag. `export --method` uses them too (`add_scenario_arguments`, `search`)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardware_models.errors import UserError
from hardware_models.units import UNITS_HELP
from simulator.choices import ACTIVATION_CODECS, CONFIDENCES, INPUT_CODECS, MEMORY_MODELS, TIERS
from simulator.cli._arguments import (
    add_format_argument,
    add_gpu_mode_arguments,
    add_link_arguments,
    add_method_arguments,
    add_model_argument,
    add_progress_argument,
    apply_progress,
    defer_arguments,
    method_flag,
    method_flags,
    model_keys,
    model_name,
)
from simulator.cli._output import emit, format_table

if TYPE_CHECKING:
    from simulator.evaluate import Scenario
    from simulator.experiment.schema import Experiment
    from simulator.search.base import SearchResult

# the YAML keys of the scenario flags, for messages
SCENARIO_FLAGS = {"model": "MODEL", "input_shape": "--input-shape", "until": "--until", "edge": "--edge", "cloud": "--cloud", "network.uplink": "--uplink",
                  "network.rtt": "--rtt", "network.loss": "--loss", "network.link": "--link",
                  "constraints.edge_memory": "--edge-memory", "constraints.memory_model": "--memory-model",
                  "constraints.max_accuracy_drop": "--max-accuracy-drop",
                  "constraints.accuracy_confidence": "--accuracy-confidence", "bits.edge": "--edge-bits",
                  "accuracy.tier": "--tier", "accuracy.extrapolate": "--extrapolate", "accuracy.data": "--data",
                  "accuracy.calibration": "--calibration", "accuracy.fp_accuracy": "--fp-accuracy",
                  "codecs.input": "--input-codec", "codecs.activation": "--activation-codec",
                  "search.methods": "--method", "search.budgets": "--method", "seed": "--seed",
                  "cloud_mode.execution": "--cloud-execution", "cloud_mode.fusion": "--cloud-fusion"}

# the core's field names in the scenario's messages: the flags
_CORE_FLAGS = {"edge_bits": "--edge-bits", "edge_memory": "--edge-memory", "max_accuracy_drop": "--max-accuracy-drop",
               "memory_model": "--memory-model", "input_codec": "--input-codec",
               "activation_codec": "--activation-codec", "uplink_bps": "--uplink", "rtt_s": "--rtt",
               "loss_rate": "--loss", "protocol": "--link", "edge": "--edge", "network.loss": "--loss",
               "network.preset": "--link", "cloud_mode": "--cloud-execution/--cloud-fusion"}


def add_scenario_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """`plan`'s scenario and method flags (also `export`'s, where they are optional: a --plan file replaces them);
    the methods' budget and option flags come from the search registry when the command runs."""
    parser.add_argument("--edge", required=required,
                        help="edge accelerator: preset name, preset .yaml or SCALE-Sim .cfg")
    parser.add_argument("--cloud", required=required, help="cloud accelerator: preset name or file (runs at 16 bits)")
    add_gpu_mode_arguments(parser, "--cloud-execution", "--cloud-fusion", "the cloud GPU's")
    add_link_arguments(parser, required=required)
    parser.add_argument("--edge-memory", required=required, help="edge memory budget, e.g. 4MiB")
    parser.add_argument("--memory-model", choices=MEMORY_MODELS, default="peak_live",
                        help="activation memory: peak_live (largest live set, default) or max_layer (the paper's)")
    parser.add_argument("--max-accuracy-drop", type=float, required=required,
                        help="accuracy bound, percentage points")
    parser.add_argument("--accuracy-confidence", choices=CONFIDENCES, default="pessimistic",
                        help="the end of the predicted accuracy's 80%% interval the bound applies to (default "
                        "pessimistic)")
    parser.add_argument("--method", required=required, help="a search method, e.g. cloud, edge-u8, neurosurgeon, "
                        "autosplit, exact, optuna (a wrong name lists every registered one); its budget and options "
                        "are the flags of the last group below")
    parser.add_argument("--edge-bits", help="bit-widths the edge may use, e.g. 2,4,6,8 (default: the preset's)")
    parser.add_argument("--tier", choices=TIERS, default="calibrated",
                        help="post-training quantization method tier for the accuracy proxy (default calibrated)")
    parser.add_argument("--extrapolate", action="store_true",
                        help="allow plans outside the accuracy model's evidence envelope (accuracy.extrapolate)")
    parser.add_argument("--input-codec", choices=INPUT_CODECS, default="raw", help="how cloud-only sends the image")
    parser.add_argument("--activation-codec", choices=ACTIVATION_CODECS, default="raw",
                        help="how a split sends activations")
    parser.add_argument("--seed", type=int, default=0, help="random seed, 0..2^32-1 (default 0)")
    defer_arguments(parser, add_method_arguments)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan", help="the best split plan of one method",
        description="Split MODEL between an edge accelerator and a cloud one over a link, with one search method, "
        "and print its plan: cut, per-layer bits, latency breakdown, accuracy, memory, energy. Baselines report "
        "their own plan even when it breaks the bounds (feasible: false); the searches report their lowest-latency "
        "plan within the bounds. " + UNITS_HELP)
    add_model_argument(parser)
    add_scenario_arguments(parser)
    add_measured_accuracy_arguments(parser)
    add_progress_argument(parser)
    add_format_argument(parser)
    parser.set_defaults(func=run)


def add_measured_accuracy_arguments(parser: argparse.ArgumentParser) -> None:
    """An .onnx model's accuracy: --data (measured), --calibration, or --fp-accuracy (the YAML's accuracy keys)."""
    parser.add_argument("--data", metavar="FILE.npz", help="an .onnx model's labelled data (x: model-ready float32 "
                        "inputs, batch first; y: integer labels): the accuracy proxy is fitted to measurements on it "
                        "(kept in the measurement cache, see `autosplit accuracy --help`)")
    parser.add_argument("--calibration", metavar="FILE.npz", help="with --data: inputs that fix activation ranges "
                        "(default: the first 128 samples of --data)")
    parser.add_argument("--fp-accuracy", metavar="PCT", help="an .onnx model's float accuracy (percent) when there "
                        "is no --data: the proxy then uses assumed distortions and published sensitivities")


def experiment_from_flags(args: argparse.Namespace) -> Experiment:
    """The scenario flags as a validated experiment config (the YAML keys' checks), or a UserError naming a flag."""
    # the schema loads numpy and pandas: not for --help
    from pydantic import ValidationError

    from simulator.experiment.schema import Experiment
    from simulator.experiment.validated import describe_error

    edge_bits = None
    if args.edge_bits is not None:
        try:
            edge_bits = [int(b) for b in args.edge_bits.split(",")]
        except ValueError:
            raise UserError(f"--edge-bits: expected a comma-separated list of integers, "
                            f"got {args.edge_bits!r}") from None
    budget, options = method_flags(args)
    model = model_name(args)
    if getattr(args, "calibration", None) and not getattr(args, "data", None):
        raise UserError(f"{args.command} --calibration: calibration inputs are for measuring; give --data FILE.npz too")
    if getattr(args, "fp_accuracy", None) is not None and getattr(args, "data", None):
        raise UserError(f"{args.command} --fp-accuracy: with --data the float accuracy is measured; give one of them")
    if model.endswith(".onnx") and not (getattr(args, "data", None) or getattr(args, "fp_accuracy", None)):
        raise UserError(f"{args.command}: {model} is an .onnx model: give --data FILE.npz (labelled data, to measure "
                        "its accuracy) or --fp-accuracy PCT (its float accuracy)")
    data: dict[str, Any] = {
        "model": model, **model_keys(args), "edge": args.edge, "cloud": args.cloud,
        "network": {"uplink": args.uplink, "rtt": args.rtt, "loss": args.loss, "link": args.link},
        "constraints": {"edge_memory": args.edge_memory, "memory_model": args.memory_model,
                        "max_accuracy_drop": args.max_accuracy_drop, "accuracy_confidence": args.accuracy_confidence},
        "accuracy": {"tier": args.tier, "extrapolate": args.extrapolate, **_measured_accuracy_keys(args)},
        "codecs": {"input": args.input_codec, "activation": args.activation_codec},
        "search": {"methods": [args.method], "budgets": {args.method: budget} if budget else {}, **options},
        "seed": args.seed}
    if edge_bits is not None:
        data["bits"] = {"edge": edge_bits}
    if args.cloud_execution is not None or args.cloud_fusion is not None:
        data["cloud_mode"] = {k: v for k, v in (("execution", args.cloud_execution), ("fusion", args.cloud_fusion))
                              if v is not None}
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        lines: list[str] = []
        for error in exc.errors(include_url=False):
            line = describe_error(error, "\0").removeprefix("\0: ")
            key, _, message = line.partition(": ")
            inner, _, rest = message.partition(": ")
            if key == "accuracy" and f"accuracy.{inner}" in SCENARIO_FLAGS:  # a check across the section's keys
                key, message = f"accuracy.{inner}", rest
            flag = method_flag(key) or next((f for k, f in SCENARIO_FLAGS.items()
                                             if key == k or key.startswith((k + ".", k + "["))), key)
            line = f"plan {flag}: {message}"
            if line not in lines:
                lines.append(line)
        raise UserError("\n".join(lines)) from None


def _measured_accuracy_keys(args: argparse.Namespace) -> dict[str, Any]:
    """accuracy.data / calibration / granularity / fp_accuracy from the flags of a command that has them (`plan`,
    `export`); the schema checks them."""
    keys = {"data": getattr(args, "data", None), "calibration": getattr(args, "calibration", None)}
    values: dict[str, Any] = {k: str(Path(v).resolve()) for k, v in keys.items() if v is not None}
    if values and getattr(args, "granularity", None):
        values["granularity"] = args.granularity
    if getattr(args, "fp_accuracy", None) is not None:
        values["fp_accuracy"] = _number_or_text(args.fp_accuracy)
    return values


def _number_or_text(text: str) -> float | str:
    """A flag's number as the YAML would read it; text that is not one goes to the schema, which refuses it."""
    try:
        return float(text)
    except ValueError:
        return text


def search(args: argparse.Namespace) -> tuple[Scenario, SearchResult]:
    """The scenario of the flags and what --method found in it."""
    from simulator.experiment.scenario import build_scenario  # numpy, pandas: not for --help
    from simulator.experiment.settings import method_options
    from simulator.search import make_method, skip_note  # loads numpy, pandas and optuna: not for --help

    config = experiment_from_flags(args)
    scenario = build_scenario(config, names=_CORE_FLAGS)
    skipped = skip_note(args.method, scenario)
    if skipped:
        raise UserError(f"--method {skipped.replace(' skipped:', ':')}")
    budget = config.search.budgets[args.method].as_dict() if args.method in config.search.budgets else {}
    method = make_method(args.method, **method_options(config, args.method))
    return scenario, method.run(scenario, budget=budget, seed=config.seed)


def run(args: argparse.Namespace) -> None:
    from hardware_models.registry import preset_evidence  # loads every hardware model: not for --help

    apply_progress(args)
    scenario, result = search(args)
    plan = result.plan
    if plan is None:
        data: dict[str, Any] = {"method": args.method, "model": scenario.graph.name, "feasible": False,
                                "message": "no plan meets the memory and accuracy bounds"}
        emit(args.format, data, [data])
        return
    best = plan.to_json()
    data = {**best, "evaluations": result.evaluations, "search_s": result.elapsed_s}
    data["hardware_evidence"] = {"edge": preset_evidence(scenario.edge), "cloud": preset_evidence(scenario.cloud)}
    if scenario.cloud.has_modes:
        data["cloud_mode"] = scenario.cloud.mode()
    if args.format != "table":
        emit(args.format, data, [{k: v for k, v in data.items() if k not in ("breakdown",)} | best["breakdown"]])
        return
    cut = "non-prefix (DAG min-cut)" if plan.cut_index is None else plan.cut_index
    print(f"{plan.method} on {plan.model}: cut {cut}, {len(plan.edge_layers)} edge layers, "
          f"{'feasible' if plan.feasible else 'NOT feasible (breaks a bound)'}")
    print(f"  latency  {plan.latency_s * 1e3:9.3f} ms = edge {plan.edge_s * 1e3:.3f} + transfer "
          f"{plan.transfer_s * 1e3:.3f} + cloud {plan.cloud_s * 1e3:.3f} ms")
    print(f"  accuracy {plan.accuracy_expected:9.3f} %  (80% interval {plan.accuracy_low:.2f} .. "
          f"{plan.accuracy_high:.2f}; drop {plan.accuracy_drop:.3f} points at the "
          f"{args.accuracy_confidence} end)")
    print(f"  memory   {plan.edge_memory_bytes / 2**20:9.3f} MiB   energy {plan.edge_energy_j * 1e3:.3f} mJ   "
          f"payload {plan.payload_bytes:.0f} B ({plan.wire_bytes:.0f} B on the wire)")
    if scenario.cloud.has_modes:
        print(f"  cloud    {scenario.cloud.name} in {scenario.cloud.mode_label()} mode")
    rows = [{"layer": n, "weight_bits": w, "activation_bits": a}
            for n, w, a in zip(plan.edge_layers, plan.weight_bits, plan.activation_bits)]
    if rows:
        print(format_table(rows))
