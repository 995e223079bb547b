"""Bad input everywhere (issue 14): every key of the experiment schema and every flag of every command gets
generated bad values, and each case must end with exit 2 and one line per problem starting with "error:",
never a traceback, never a silent success.

The corpus is generated from the schema itself (`json_schema()`: types, enums, bounds) and from the argparse
parser (every sub-command's flags, their types and choices), so a key or flag added later is fuzzed without
editing this file. Cases run in-process (`simulator.cli.main`), a few through the installed `autosplit`
script. The case counts are printed (`pytest -s`) and asserted to stay large.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import FIXTURES

from simulator.cli import build_parser, main
from simulator.experiment.schema import json_schema
from simulator.experiment.validated import set_dotted

BASE_EXPERIMENT = {
    "model": "resnet18", "edge": "eyeriss", "cloud": "tpu_v1",
    "network": {"uplink": "3Mbps", "rtt": "20ms"},
    "constraints": {"edge_memory": "4MiB", "max_accuracy_drop": 1.0},
    "search": {"methods": ["cloud", "autosplit"]},
    "capacity": {"groups": [{"name": "split", "plan": {"method": "autosplit"}, "arrivals": {"rate": 15},
                             "devices": 10}],
                 "gpu": "h100", "slo_p99": "45ms", "duration": "2s", "warmup": "1s", "seeds": 1},
}
# what a group of capacity.groups holds (key_rows stops at the list): fuzzed as capacity.groups[0].KEY
GROUP_KEYS = {"name": "text", "plan": "section", "plan.method": "enum", "plan.input_codec": "enum",
              "plan.cut_index": "integer", "arrivals": "section", "arrivals.kind": "enum", "arrivals.rate": "number",
              "arrivals.jitter": "unit", "devices": "integer"}


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_refused(argv: list[str], case: str) -> None:
    try:
        code, out, err = run_cli(argv)
    except BaseException as exc:  # a traceback would reach the user
        raise AssertionError(f"{case}: {type(exc).__name__}: {exc}") from None
    lines = err.strip().splitlines()
    assert code == 2, f"{case}: exit {code}, expected 2 (stderr {err.strip()[:300]!r})"
    assert len(lines) == 1, f"{case}: expected one line, got {len(lines)}: {err.strip()[:500]!r}"
    assert lines[0].startswith("error: ") and "Traceback" not in err + out, f"{case}: {err[:300]!r}"


# --- the experiment schema ----------------------------------------------------------------------------
def schema_keys() -> list[tuple[str, dict, str]]:
    """(dotted key, JSON-schema property, kind) for every key of the experiment YAML."""
    schema = json_schema()
    definitions = schema.get("$defs", {})

    def resolve(node: dict) -> dict:
        if "$ref" in node:
            return definitions[node["$ref"].split("/")[-1]]
        options = [o for o in node.get("anyOf", []) if o.get("type") != "null"]
        if len(options) == 1 and "$ref" in options[0]:
            return definitions[options[0]["$ref"].split("/")[-1]]
        if len(options) == 1:
            return {**node, **options[0]}
        return node

    keys: list[tuple[str, dict, str]] = []

    def walk(node: dict, prefix: str) -> None:
        for name, prop in node.get("properties", {}).items():
            target = resolve(prop)
            key = prefix + name
            if target.get("type") == "object" and "properties" in target:
                keys.append((key, target, "section"))
                walk(target, key + ".")
                continue
            keys.append((key, target, kind_of(target)))

    walk(schema, "")
    return keys


def kind_of(prop: dict) -> str:
    types = {o.get("type") for o in prop.get("anyOf", [])} - {"null", None}
    if {"string", "number"} <= types:
        return "unit"
    if "enum" in prop or "const" in prop:
        return "enum"
    kind = prop.get("type")
    if kind == "array":
        return "list"
    if kind == "object":
        return "mapping"
    return {"string": "text", "number": "number", "integer": "integer", "boolean": "boolean"}.get(kind, "text")


NAMED_TEXT = {"model", "edge", "cloud", "network.preset", "network.trace", "capacity.gpu", "scheduler"}


def bad_values(key: str, prop: dict, kind: str) -> list[object]:
    """Values that must be refused for `key`: wrong types, out of bounds, unknown names."""
    common: list[object] = [[1], {"nonsense": 1}]
    if kind == "section":
        return ["nonsense", [1], 3]
    if kind == "unit":
        return [True, "nonsense", -1, "-3Mbps", float("inf"), float("nan"), "1e400", *common]
    if kind == "enum":
        return ["nonsense", True, 7, *common]
    if kind in ("number", "integer"):
        values: list[object] = [True, "nonsense", "3", float("nan"), float("inf"), *common]
        if kind == "integer":
            values.append(1.5)
        if "minimum" in prop:
            values.append(prop["minimum"] - 1)
        if "exclusiveMinimum" in prop:
            values.append(prop["exclusiveMinimum"])
        if "maximum" in prop:
            values.append(prop["maximum"] + 1 if kind == "integer" else prop["maximum"] * 1.5 + 1)
        return values
    if kind == "list":
        return ["nonsense", {"nonsense": 1}, ["nonsense"], [True], 3]
    if kind == "mapping":
        return ["nonsense", [1], 3, {"nonsense": [1]}]
    if kind == "boolean":
        return ["nonsense", 3, [1]]
    values = [3, True, *common]  # free text: only the type can be wrong
    if key in NAMED_TEXT:
        values += ["nonsense", "missing.onnx" if key == "model" else "missing.yaml"]
    return values


def experiment_cases() -> list[tuple[str, dict]]:
    cases: list[tuple[str, dict]] = []
    for key, prop, kind in schema_keys():
        for value in bad_values(key, prop, kind):
            data = copy.deepcopy(BASE_EXPERIMENT)
            set_dotted(data, key, value)
            cases.append((f"{key}={value!r}", data))
        if kind == "section":  # a misspelt key inside the section
            data = copy.deepcopy(BASE_EXPERIMENT)
            set_dotted(data, f"{key}.nonsense_key", 1)
            cases.append((f"{key}.nonsense_key", data))
    for key, kind in GROUP_KEYS.items():
        prop = {"minimum": 0} if kind == "integer" else {"exclusiveMinimum": 0} if kind == "number" else {}
        for value in bad_values(key, prop, kind):
            data = copy.deepcopy(BASE_EXPERIMENT)
            set_dotted(data["capacity"]["groups"][0], key, value)
            cases.append((f"capacity.groups[0].{key}={value!r}", data))
    cases.append(("unknown top-level key", {**copy.deepcopy(BASE_EXPERIMENT), "modle": "resnet18"}))
    return cases


@pytest.mark.slow
def test_every_experiment_key_refuses_bad_values_in_one_line(tmp_path):
    cases = experiment_cases()
    for number, (case, data) in enumerate(cases):
        path = tmp_path / f"case{number}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        assert_refused(["run", str(path), "--dry-run"], case)
    print(f"\nexperiment keys: {len(cases)} bad-value cases")
    assert len(cases) > 400


def test_set_overrides_refuse_what_the_file_would(tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(BASE_EXPERIMENT))
    texts = ["true", "nonsense", "-1", ".inf", ".nan", "[nonsense]", "{nonsense: 1}"]
    count = 0
    for key in ("network.uplink", "network.rtt", "network.loss", "constraints.edge_memory",
                "constraints.max_accuracy_drop", "seed", "bits.edge", "search.methods", "codecs.jpeg_quality",
                "capacity.seeds", "capacity.slo_p99", "output.max_plan_rows"):
        for text in texts:
            assert_refused(["run", str(path), "--dry-run", "--set", f"{key}={text}"], f"--set {key}={text}")
            count += 1
    for bad in ("nonsense", "=3", "modle=resnet18", "network=3", "sweep.network.uplink=[]"):
        assert_refused(["run", str(path), "--dry-run", "--set", bad], f"--set {bad}")
        count += 1
    print(f"\n--set: {count} cases")


# --- every flag of every command --------------------------------------------------------------------------
def bad_files(tmp_path: Path) -> dict[str, Path]:
    binary = tmp_path / "binary.dat"
    binary.write_bytes(bytes(range(256)) * 8)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    duplicate = tmp_path / "duplicate.yaml"
    duplicate.write_text(yaml.safe_dump(BASE_EXPERIMENT) + "model: resnet50\n")
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    return {"binary": binary, "empty": empty, "duplicate": duplicate, "list": listed, "directory": tmp_path,
            "missing": tmp_path / "missing.onnx", "child_of_file": a_file / "child", "binary_onnx": binary}


def command_bases(tmp_path: Path) -> dict[str, list[str]]:
    """Valid arguments of each command (the fuzzed flag is added to or replaces them); `run` dry-runs."""
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(yaml.safe_dump(BASE_EXPERIMENT))
    return {
        "models": [],
        "schema": [],
        "hardware": [],
        "inspect": ["resnet18"],
        "layer-cost": ["--hardware", "eyeriss", "resnet18"],
        "profile": [str(FIXTURES / "digits_cnn.onnx"), "--out", str(tmp_path / "p.csv"), "--runs", "1", "--warmup", "0"],
        "plan": ["resnet18", "--edge", "eyeriss", "--cloud", "tpu_v1", "--uplink", "3Mbps", "--edge-memory", "4MiB",
                 "--max-accuracy-drop", "1", "--method", "edge-u8"],
        "accuracy": ["resnet18", "--bits", "8/8"],
        "netsim": ["--uplink", "3Mbps", "--runs", "5"],
        "run": [str(experiment), "--dry-run"],
        "capacity": [str(experiment)],
        "worker": [str(experiment), "--storage", str(tmp_path / "journal.log")],
        **deploy_bases(tmp_path),
    }


def deploy_bases(tmp_path: Path) -> dict[str, list[str]]:
    """export, serve-cloud and run-edge: a valid export; a server that cannot bind (an address this machine
    lacks: TEST-NET-1) and a client with nobody to talk to, so a value that slipped through still ends in exit 2
    instead of serving or waiting."""
    fixtures = FIXTURES
    plan = tmp_path / "plan.json"
    plan.write_text('{"edge_layers": ["conv1"], "weight_bits": [8], "activation_bits": [8]}')
    export = [str(fixtures / "digits_cnn.onnx"), "--plan", str(plan), "--out", str(tmp_path / "split"),
              "--calibration", str(fixtures / "digits_calibration.npz"), "--force"]
    assert main(["export", *export]) == 0
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    return {"export": export,
            "serve-cloud": ["--plan", str(tmp_path / "split"), "--port", "0", "--host", "192.0.2.1"],
            "run-edge": ["--plan", str(tmp_path / "split"), "--connect", f"127.0.0.1:{port}", "--data",
                         str(fixtures / "digits.npz"), "--timeout", "2s"]}


# flags whose any text is valid (a directory to create, a storage URL): fuzzed with what cannot be a path
FREE_TEXT = {"--out", "--storage"}
GENERIC = ["", "nonsense", "-1", "true", "nan", "1e400", "[1]", "-inf"]


def flag_values(action: argparse.Action, files: dict[str, Path]) -> list[str]:
    flag = action.option_strings[0]
    if flag in FREE_TEXT:
        return [str(files["child_of_file"]), "/proc/autosplit-cannot/x"] if flag == "--out" else []
    values = list(GENERIC)
    if action.choices:
        values = ["nonsense", "", "TABLE"]
    values += [str(files["binary"]), str(files["directory"]), str(files["missing"])]
    return values


def flag_cases(tmp_path: Path) -> list[tuple[str, list[str]]]:
    files = bad_files(tmp_path)
    bases = command_bases(tmp_path)
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    cases: list[tuple[str, list[str]]] = []
    for command, sub in subparsers.choices.items():
        base = bases.get(command)
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._StoreTrueAction)) or action.nargs == 0:
                continue
            if not action.option_strings:  # a positional: replace the base's first argument
                if base is None or not base:
                    continue
                positional = ([str(files[k]) for k in ("binary", "empty", "duplicate", "list", "directory",
                                                      "missing")] if command in ("run", "capacity", "worker")
                              else ["nonsense", str(files["missing"]), str(tmp_path / "binary.onnx")])
                for value in positional:
                    cases.append((f"{command} {action.dest}={value}", [command, value, *base[1:]]))
                continue
            if base is None and not (action.choices or action.type):
                continue  # a command this test has no valid base for: only typed flags are fuzzed
            for value in flag_values(action, files):
                cases.append((f"{command} {action.option_strings[0]}={value!r}",
                              [command, *(base or []), f"{action.option_strings[0]}={value}"]))
    return cases


@pytest.mark.slow
def test_every_flag_of_every_command_refuses_bad_values_in_one_line(tmp_path):
    (tmp_path / "binary.onnx").write_bytes(bytes(range(256)) * 8)
    cases = flag_cases(tmp_path)
    for case, argv in cases:
        assert_refused(argv, case)
    print(f"\nflags: {len(cases)} bad-value cases")
    assert len(cases) > 500


def test_a_value_that_looks_like_a_flag_reaches_the_flags_own_check():
    code, _, err = run_cli(["netsim", "--uplink", "-1Mbps"])
    assert code == 2 and "--uplink: expected a rate in bit/s >= 1" in err


def test_every_problem_of_an_experiment_is_listed_unknown_keys_first(tmp_path):
    data = copy.deepcopy(BASE_EXPERIMENT)
    data["modle"] = data.pop("model")
    data["network"]["uplink"] = True
    data["seed"] = -1
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = run_cli(["run", str(path), "--dry-run"])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 4 and all(line.startswith("error: ") for line in lines)
    assert "modle: unknown key (did you mean 'model'?)" in lines[0]
    assert any("model: missing" in line for line in lines[1:])
    assert any("network.uplink: expected a rate" in line for line in lines[1:])
    assert any("seed:" in line for line in lines[1:])


def test_duplicate_keys_are_refused_naming_both_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("model: resnet18\nedge: eyeriss\nmodel: resnet50\n")
    code, _, err = run_cli(["run", str(path), "--dry-run"])
    assert code == 2 and "line 3" in err and "duplicate key 'model' (first at line 1)" in err


@pytest.mark.parametrize("argv", [
    ["plan", "resnet18", "--edge", "eyeriss", "--cloud", "tpu_v1", "--uplink", "3Mbps", "--edge-memory", "4MiB",
     "--max-accuracy-drop", "1", "--method", "edge-u8", "--seed", "-1"],
    ["netsim", "--uplink", "3Mbps", "--bytes", "1e15"],
    ["layer-cost", "--hardware", "eyeriss", "--topology", "BINARY"],
])
@pytest.mark.slow
def test_installed_script_exits_2_with_one_line(argv, tmp_path):
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    argv = [str(binary) if a == "BINARY" else a for a in argv]
    script = Path(sys.executable).with_name("autosplit")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "simulator.cli"]
    done = subprocess.run([*command, *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr


def test_csv_writes_exact_values_and_schema_table_fits_a_terminal():
    code, out, _ = run_cli(["netsim", "--uplink", "3Mbps", "--bytes", "4194304", "--runs", "1", "--format", "csv"])
    header, row = out.strip().splitlines()
    assert code == 0 and dict(zip(header.split(","), row.split(",")))["payload_bytes"] == "4194304"
    assert float(dict(zip(header.split(","), row.split(",")))["uplink_bps"]) == 3e6
    code, out, _ = run_cli(["schema", "--format", "table"])
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 160


def test_version():
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0


def test_a_core_check_names_the_flag_through_the_errors_key():
    """The scenario's own check (bits the edge cannot run) raises a keyed UserError; `plan` renames the key to
    its flag, as `run` does to the YAML key (test_experiment_guards)."""
    code, _, err = run_cli(["plan", "resnet18", "--edge", "edge_tpu", "--cloud", "h100", "--uplink", "3Mbps",
                            "--edge-memory", "8MiB", "--max-accuracy-drop", "1", "--edge-bits", "3",
                            "--method", "autosplit"])
    assert code == 2 and err.strip() == "error: --edge-bits: [3] not supported by edge_tpu (supported_bits: 8)"


def test_run_edge_names_data_once(tmp_path):
    """The one .npz reader names the flag itself (a wrapper once prefixed `--data:` a second time)."""
    code, _, err = run_cli(["run-edge", "--plan", str(tmp_path), "--connect", "127.0.0.1:5999", "--data",
                            str(tmp_path / "none.npz")])
    assert code == 2 and err.strip() == f"error: --data: {tmp_path / 'none.npz'}: no such file"
