"""`autosplit capacity`: the validated capacity: section, the JSON answer's keys, the files of capacity/,
refusal to overwrite without --force, one-line errors (exit 2) for bad sections."""
from __future__ import annotations

import json

import pytest
import yaml

from simulator.cli import main

BASE = {
    "model": "resnet18", "edge": "eyeriss", "cloud": "h100",
    "network": {"uplink": "20Mbps", "rtt": "10ms", "link": "tcp"},
    "constraints": {"edge_memory": "4MiB", "max_accuracy_drop": 1.0},
    "output": {"plot_formats": ["png"]},
    "capacity": {
        "groups": [{"name": "cams", "plan": {"edge_time": "3ms", "payload": "20kB", "cut_index": 2},
                    "arrivals": {"kind": "periodic", "rate": 10, "jitter": "1ms"}, "devices": 300}],
        "gpus": [1], "batching": {"max_batch": 4, "max_wait": "1ms"},
        "uplink": {"sharing": "shared", "devices_per_uplink": 2},
        "slo_p99": "40ms", "gpu_hour_price": 3.0, "duration": "3s", "warmup": "0.5s", "seeds": 2,
        "plot_points": 3,
    },
}


def write(tmp_path, data, name="fleet.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def answer(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("capacity")
    path = write(tmp, BASE)
    out_dir = tmp / "results"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["capacity", str(path), "--out", str(out_dir), "--format", "json"])
    assert code == 0
    return path, out_dir, json.loads(buffer.getvalue())


@pytest.mark.slow
def test_capacity_json_has_the_documented_keys_and_a_consistent_answer(answer):
    _, _, data = answer
    assert data["slo_p99_s"] == pytest.approx(0.040)
    assert data["path"] == "vectorised"
    for point in data["points"]:
        assert {"group", "devices", "gpus", "p50_s", "p95_s", "p99_s", "gpu_utilisation", "slo_met"} <= set(point)
        if point["p99_s"] is None:  # stopped as soon as its miss was certain
            assert not point["slo_met"] and point["stopped_at_s"] < data["duration_s"]
            continue
        assert point["slo_met"] == (point["p99_s"] <= 0.040)
        assert point["p50_s"] <= point["p95_s"] <= point["p99_s"]
    (best,) = data["max_devices"]
    assert {"group", "gpus", "devices"} <= set(best) and best["group"] == "cams" and best["gpus"] == 1
    assert best["devices"] > 0 and best["path"] == "vectorised"
    met = [p["devices"] for p in data["points"] if p["slo_met"]]
    missed = [p["devices"] for p in data["points"] if not p["slo_met"]]
    assert max(met) == best["devices"] and min(missed) > best["devices"]
    # cost per million = price / 3600 / (devices x rate) x 1e6
    assert best["cost_per_million_usd"] == pytest.approx(3.0 / 3600 / (best["devices"] * 10) * 1e6)
    (fleet,) = data["fleet"]
    assert fleet["devices"] == 300 and fleet["gpus"] >= 1


def test_capacity_writes_tables_plots_and_summary_into_the_capacity_folder(answer):
    _, out_dir, _ = answer
    folder = out_dir / "capacity"
    for name in ("points.csv", "max_devices.csv", "plans.csv", "fleet.csv", "capacity.json", "summary.md",
                 "latency.png", "utilisation.png", "breakdown.png"):
        assert (folder / name).is_file(), name
    assert "Largest fleet meeting the SLO" in (folder / "summary.md").read_text()


def test_capacity_refuses_to_overwrite_without_force(answer, capsys):
    path, out_dir, _ = answer
    code, _, err = run_cli(capsys, "capacity", str(path), "--out", str(out_dir))
    assert code == 2 and "--force" in err and "Traceback" not in err


@pytest.mark.parametrize("change, message", [
    (lambda c: c["groups"][0].update(colour="red"), "colour"),
    (lambda c: c["groups"][0]["plan"].update(method="autosplit"), "not both"),
    (lambda c: c.update(warmup="5s"), "warmup"),
    (lambda c: c.update(slo_p99="fast"), "slo_p99"),
    (lambda c: c["groups"][0]["arrivals"].update(kind="bursty"), "kind"),
    (lambda c: c.update(gpu="h1000"), "h100"),
])
def test_a_bad_capacity_section_is_one_line_naming_the_key(tmp_path, capsys, change, message):
    data = json.loads(json.dumps(BASE))
    change(data["capacity"])
    code, _, err = run_cli(capsys, "capacity", str(write(tmp_path, data)), "--out", str(tmp_path / "out"))
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_an_experiment_without_a_capacity_section_is_a_user_error(tmp_path, capsys):
    data = {k: v for k, v in BASE.items() if k != "capacity"}
    code, _, err = run_cli(capsys, "capacity", str(write(tmp_path, data)), "--out", str(tmp_path / "out"))
    assert code == 2 and "capacity" in err


def test_a_fair_share_uplink_is_answered_on_the_simpy_path(tmp_path, capsys):
    data = json.loads(json.dumps(BASE))
    capacity = data["capacity"]
    capacity.update(uplink={"sharing": "shared", "devices_per_uplink": 2, "discipline": "fair"}, max_devices=24,
                    seeds=1, duration="2s", plot_points=0)
    capacity["groups"][0]["devices"] = 0
    code, out, err = run_cli(capsys, "capacity", str(write(tmp_path, data)), "--out", str(tmp_path / "out"),
                             "--format", "json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["path"] == "simpy" and answer["max_devices"][0]["path"] == "simpy"
    assert all(p["path"] == "simpy" for p in answer["points"])


@pytest.mark.slow
def test_run_includes_the_capacity_section(tmp_path, capsys):
    data = json.loads(json.dumps(BASE))
    data["search"] = {"methods": ["cloud"]}
    capacity = data["capacity"]
    capacity["groups"][0]["plan"] = {"method": "cloud"}
    capacity.update(slo_p99="300ms", seeds=1, duration="2s", plot_points=0, max_devices=50,
                    uplink={"sharing": "per_device"})  # a raw 150 kB input: 0.6 of a 20 Mbit/s link at 10 fps
    capacity["groups"][0]["devices"] = 0
    out_dir = tmp_path / "out"
    code, _, err = run_cli(capsys, "run", str(write(tmp_path, data)), "--out", str(out_dir), "--no-progress")
    assert code == 0, err
    answer = json.loads((out_dir / "capacity" / "capacity.json").read_text())
    plan = answer["plans"][0]
    assert plan["source"].startswith("cloud") and plan["cut_index"] == 0 and plan["edge_s"] == 0
    assert answer["max_devices"][0]["devices"] == 50   # far under the GPU's saturation: the search's limit
    assert (out_dir / "summary.md").is_file()


@pytest.mark.slow
def test_a_group_no_fleet_can_serve_says_why_in_the_summary(tmp_path, capsys):
    """Issue 25: a group whose single device already misses the SLO (here a 2 ms SLO against a 3 ms edge time)
    gets '0 (one device alone: p99 ... ms > the SLO)' instead of a bare 0 and an empty panel."""
    data = json.loads(json.dumps(BASE))
    data["capacity"].update(slo_p99="2ms", plot_points=0)
    data["capacity"]["groups"][0]["devices"] = 0
    code, _, err = run_cli(capsys, "capacity", str(write(tmp_path, data)), "--out", str(tmp_path / "out"))
    assert code == 0, err
    summary = (tmp_path / "out" / "capacity" / "summary.md").read_text()
    assert "| cams | 1 | 0 (one device alone: p99 " in summary and "ms > the SLO) |" in summary
