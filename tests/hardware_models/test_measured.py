"""A measured profile as hardware: its CSV format, its costs, and the model and precision it answers for."""
from __future__ import annotations

import hashlib

import pytest
from support import FIXTURES

from hardware_models.errors import UserError
from hardware_models.layer import LayerSpec
from hardware_models.measured import (
    HEADER_KEYS,
    OPTIONAL_KEYS,
    PROFILE_FORMAT,
    MeasuredProfile,
    read_profile,
    write_profile,
)
from hardware_models.registry import load_accelerator

DIGITS = FIXTURES / "digits_cnn.onnx"
CONV = LayerSpec("conv1", "conv", in_channels=1, in_height=8, in_width=8, out_channels=8, out_height=8, out_width=8,
                 kernel_height=3, kernel_width=3, has_weights=True)
ROWS = [("conv1", 1.5e-4, ["/relu/Relu_output_0_nchwc"]), ("pool", 2.5e-5, ["a", "b"]), ("fc", 0.0, [])]


def header(**changes) -> dict:
    values = {"model": str(DIGITS), "model_sha256": hashlib.sha256(DIGITS.read_bytes()).hexdigest(),
              "precision": "fp32", "batch": 1, "provider": "CPUExecutionProvider", "threads": 1, "runs": 7,
              "statistic": "median", "clock": "cpu", "warmup": 2, "onnxruntime": "1.32.0", "graph_optimization": "ORT_ENABLE_ALL",
              "device": "a test machine", "end_to_end_s": 2e-4, "end_to_end_cpu_s": 1.9e-4, "unmapped_s": 1e-6}
    return {**values, **changes}


@pytest.fixture
def profile_csv(tmp_path):
    path = tmp_path / "digits.csv"
    path.write_text(write_profile(header(), ROWS))
    return path


def test_the_csv_round_trips_header_rows_and_nodes(profile_csv):
    read_header, latency, nodes = read_profile(profile_csv)
    assert read_header["format"] == PROFILE_FORMAT
    assert {k: v for k, v in read_header.items() if k != "format"} == {k: str(v) for k, v in header().items()}
    assert latency == {name: seconds for name, seconds, _ in ROWS}
    assert nodes == {name: list(ort) for name, _, ort in ROWS}


def test_a_layer_costs_its_measured_latency_and_an_absent_layer_costs_nothing(profile_csv):
    profile = load_accelerator(str(profile_csv))
    assert isinstance(profile, MeasuredProfile) and profile.kind == "measured"
    cost = profile.layer_cost(CONV, 32, 32)
    assert cost.latency_s == 1.5e-4 and cost.compute_cycles == pytest.approx(1.5e-4 * profile.clock_hz)
    assert cost.energy_j == 0.0
    absent = LayerSpec("folded_reshape", "data")
    assert profile.layer_cost(absent, 32, 32).latency_s == 0.0
    rows, total = profile.network_cost([CONV, LayerSpec("pool", "pool"), absent], 32, 32)
    assert total.latency_s == pytest.approx(1.5e-4 + 2.5e-5)
    assert profile.supported_bits == (32,) and profile.default_bits == 32


def test_other_bits_without_a_basis_are_a_user_error_naming_the_precision(profile_csv):
    profile = load_accelerator(str(profile_csv))
    with pytest.raises(UserError, match=r"measured at fp32 \(32-bit.*not 8/8.*based_on"):
        profile.layer_cost(CONV, 8, 8)


def test_based_on_scales_each_layer_by_the_presets_latency_ratio(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(write_profile(header(based_on="t4"), ROWS))
    profile = load_accelerator(str(path))
    t4 = load_accelerator("t4")
    ratio = t4.layer_cost(CONV, 8, 8).latency_s / t4.layer_cost(CONV, 32, 32).latency_s
    assert ratio != pytest.approx(1.0)
    assert profile.layer_cost(CONV, 8, 8).latency_s == pytest.approx(1.5e-4 * ratio)
    assert profile.layer_cost(CONV, 32, 32).latency_s == 1.5e-4
    assert set(profile.supported_bits) == set(t4.supported_bits) | {32}


def test_a_basis_that_cannot_run_the_measured_precision_is_refused(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(write_profile(header(based_on="eyeriss"), ROWS))
    with pytest.raises(UserError, match=r"based_on: .* does not compute at the measured fp32"):
        load_accelerator(str(path))


def test_a_yaml_preset_wraps_a_profile_relative_to_its_folder(profile_csv, tmp_path):
    preset = tmp_path / "board.yaml"
    preset.write_text(f"kind: measured\nname: my board\nprofile: {profile_csv.name}\nbased_on: t4\n"
                      "evidence: profiled by hand\n")
    profile = load_accelerator(str(preset))
    assert profile.name == "my board" and profile.layer_cost(CONV, 32, 32).latency_s == 1.5e-4
    assert profile.layer_cost(CONV, 16, 16).latency_s != 1.5e-4
    assert profile.evidence().startswith("profiled by hand; measured: median cpu time of 7 runs")
    preset.write_text("kind: measured\nprofile: missing.csv\n")
    with pytest.raises(UserError, match=r"board.yaml: profile: no such profile file 'missing.csv'"):
        load_accelerator(str(preset))
    preset.write_text(f"kind: measured\nprofile: {profile_csv.name}\nbasis: t4\n")
    with pytest.raises(UserError, match=r"board.yaml.*basis"):
        load_accelerator(str(preset))


def test_only_the_measured_model_file_is_accepted(profile_csv, tmp_path):
    profile = load_accelerator(str(profile_csv))
    profile.check_model("digits_cnn", str(DIGITS))
    copy = tmp_path / "edited.onnx"
    copy.write_bytes(DIGITS.read_bytes() + b"\0")
    sha = hashlib.sha256(copy.read_bytes()).hexdigest()
    with pytest.raises(UserError, match=rf"SHA-256 {header()['model_sha256']}.*not {copy} \(SHA-256 {sha}\)"):
        profile.check_model("edited", str(copy))
    with pytest.raises(UserError, match=r"resnet18 is not that file"):
        profile.check_model("resnet18", "zoo")


def test_a_wrong_batch_is_refused(profile_csv):
    with pytest.raises(UserError, match="measured at batch 1, not batch 4"):
        load_accelerator(str(profile_csv)).layer_cost(CONV, 32, 32, batch=4)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("# threads: 1", "# cores: 1"), "line 7: expected '# key: value' with a key among"),
    (lambda t: t.replace("# precision: fp32", "# precision: fp64"), "precision: expected one of fp32, fp16, int8"),
    (lambda t: t.replace("# runs: 7\n", ""), "header key runs missing"),
    (lambda t: t.replace("# end_to_end_s: 0.0002", "# end_to_end_s: fast"), "end_to_end_s: expected a number"),
    (lambda t: t.replace("# statistic: median", "# statistic: mean"), "statistic: expected one of median, min"),
    (lambda t: t.replace("# clock: cpu", "# clock: tsc"), "clock: expected one of wall, cpu"),
    (lambda t: t.replace(PROFILE_FORMAT, "autosplit-profile 9"), "format: expected 'autosplit-profile 1'"),
    (lambda t: t.replace("layer,latency_s,ort_nodes", "name,seconds"), "expected the columns layer,latency_s"),
    (lambda t: t.replace("pool,2.5e-05", "pool,-1"), "latency >= 0 seconds, got 'pool,-1"),
    (lambda t: t + "conv1,1e-3,\n", "a new layer"),
])
def test_a_broken_profile_is_one_line_naming_the_file_and_what_is_wrong(profile_csv, edit, message):
    profile_csv.write_text(edit(profile_csv.read_text()))
    with pytest.raises(UserError) as info:
        load_accelerator(str(profile_csv))
    assert str(info.value).startswith(f"{profile_csv}: ") and message in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_every_header_key_is_documented_and_written():
    text = write_profile(header(), ROWS)
    assert all(f"# {key}: " in text for key in HEADER_KEYS if key not in OPTIONAL_KEYS)
