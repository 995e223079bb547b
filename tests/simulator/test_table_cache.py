"""The on-disk cost-table cache: a hit gives the tables bit for bit, anything the tables depend on misses."""
import dataclasses
import json

import numpy as np
import pytest
from support import make_scenario

from hardware_models.registry import load_accelerator
from simulator import evaluate as evaluate_module
from simulator import table_cache
from simulator.evaluate import CostTables, Scenario, evaluate

ARRAY_FIELDS = ["edge_latency_s", "edge_energy_j"] + [
    f.name for f in dataclasses.fields(CostTables) if f.name not in ("scenario", "build_edge_tables", "_cloud_cache")]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder of this test, and the hit/miss counts from zero."""
    monkeypatch.setenv("AUTOSPLIT_CACHE", str(tmp_path))
    monkeypatch.setattr(table_cache, "stats", {"hits": 0, "misses": 0})
    return tmp_path


def fresh_tables(scenario: Scenario, edge: bool = True) -> CostTables:
    """The scenario's tables on a new Scenario object (Scenario.tables is computed once per object), with the
    edge's tables read when `edge`."""
    tables = CostTables.build(dataclasses.replace(scenario))
    if edge:
        _ = tables.edge_latency_s
    return tables


def same_bits(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return a == b


def test_tables_read_from_the_cache_equal_the_built_ones_bit_for_bit(cache):
    scenario = make_scenario("resnet18", edge_bits=(2, 4, 8))
    built = fresh_tables(scenario, edge=False)
    assert table_cache.stats == {"hits": 0, "misses": 1}  # the cloud's tables: the edge's wait for their first use
    _ = built.edge_latency_s
    assert table_cache.stats == {"hits": 0, "misses": 2}
    assert len(list(cache.rglob("*.npz"))) == 2
    read = fresh_tables(scenario)
    assert table_cache.stats == {"hits": 2, "misses": 2}
    for name in ARRAY_FIELDS:
        assert same_bits(getattr(read, name), getattr(built, name)), name
    # and both are what the hardware models give, computed here without the cache
    specs = scenario.graph.layer_specs()
    direct = evaluate_module._edge_tables(scenario.edge, specs, built.bits, scenario.batch)
    assert same_bits(read.edge_latency_s, direct["latency_s"]) and same_bits(read.edge_energy_j, direct["energy_j"])
    assert read.cloud_suffix_s[0] == scenario.cloud.network_cost(specs, 16, 16)[1].latency_s


def test_another_preset_bits_batch_or_model_misses(cache):
    scenario = make_scenario("resnet18", edge_bits=(2, 4, 8))
    base = fresh_tables(scenario)
    faster = dataclasses.replace(scenario.edge, clock_hz=2 * scenario.edge.clock_hz)
    changed = [dataclasses.replace(scenario, edge=faster), dataclasses.replace(scenario, edge_bits=(4, 8)),
               dataclasses.replace(scenario, batch=2), make_scenario("yolov3_tiny", edge_bits=(2, 4, 8)),
               dataclasses.replace(scenario, cloud=load_accelerator("eyeriss"))]
    tables = []
    for other in changed:
        misses = table_cache.stats["misses"]
        tables.append(CostTables.build(other))
        _ = tables[-1].edge_latency_s
        assert table_cache.stats["misses"] > misses, other
    # the faster edge's tables are its own, not the cached ones of the preset it was copied from
    assert not np.array_equal(tables[0].edge_latency_s, base.edge_latency_s)


def test_a_new_version_stamp_or_changed_cost_model_code_misses(cache, monkeypatch, tmp_path):
    scenario = make_scenario("resnet18", edge_bits=(2, 4, 8))
    fresh_tables(scenario)
    monkeypatch.setattr(table_cache, "TABLES_VERSION", table_cache.TABLES_VERSION + 1)
    fresh_tables(scenario)
    assert table_cache.stats == {"hits": 0, "misses": 4}
    # the code stamp hashes the cost models' files: one changed byte is a new stamp
    model = tmp_path / "code" / "model.py"
    model.parent.mkdir()
    model.write_text("LATENCY = 1\n")
    monkeypatch.setattr(table_cache, "_CODE_ROOTS", (model.parent,))
    monkeypatch.setattr(table_cache, "_code_stamp", None)
    before = table_cache.code_stamp()
    model.write_text("LATENCY = 2\n")
    monkeypatch.setattr(table_cache, "_code_stamp", None)
    assert table_cache.code_stamp() != before
    fresh_tables(scenario)
    assert table_cache.stats == {"hits": 0, "misses": 6}


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign", "other_shape"])
def test_a_corrupt_or_foreign_cache_file_is_ignored_and_rebuilt(cache, damage):
    scenario = make_scenario("resnet18", edge_bits=(2, 4, 8))
    built = fresh_tables(scenario)
    [edge_file] = (cache / "tables" / "edge").glob("*.npz")
    if damage == "garbage":
        edge_file.write_bytes(b"not an archive")
    elif damage == "truncated":
        edge_file.write_bytes(edge_file.read_bytes()[:1000])
    else:
        with np.load(edge_file) as archive:
            arrays = dict(archive)
        if damage == "foreign":
            arrays[table_cache._KEY] = np.array("0" * 64)
        else:
            arrays["latency_s"] = arrays["latency_s"][:-1]
        with open(edge_file, "wb") as handle:
            np.savez(handle, **arrays)
    rebuilt = fresh_tables(scenario)
    assert table_cache.stats == {"hits": 1, "misses": 3}  # the cloud's file was fine
    assert same_bits(rebuilt.edge_latency_s, built.edge_latency_s)
    fresh_tables(scenario)  # and the rebuilt file was written back
    assert table_cache.stats["hits"] == 3


def test_an_unwritable_cache_folder_still_gives_the_tables(tmp_path, monkeypatch):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("")
    monkeypatch.setenv("AUTOSPLIT_CACHE", str(in_the_way))
    scenario = make_scenario("resnet18", edge_bits=(2, 4, 8))
    assert fresh_tables(scenario).edge_latency_s.shape[0] == len(scenario.graph.layers)


def test_a_cloud_only_plan_builds_no_edge_table(cache):
    scenario = make_scenario("resnet18", edge_bits=(2, 4, 8))
    tables = fresh_tables(scenario, edge=False)
    layers = tables.layers
    zeros = np.zeros((1, layers), int)
    cloud_only = evaluate(tables, zeros, zeros, cut=np.array([0]))
    assert "_edge_tables" not in vars(tables) and table_cache.stats["misses"] == 1
    # the same plan among others (which read the edge's tables) is evaluated to the same numbers
    bits = np.full((3, layers), len(tables.bits) - 1)
    mixed = evaluate(tables, bits, bits, cut=np.array([0, layers // 2, layers]))
    for name, value in vars(cloud_only).items():
        assert same_bits(value, getattr(mixed, name)[:1]), name


def test_the_key_is_the_accelerators_state_not_the_object():
    layers = make_scenario("resnet18").graph.layer_specs()
    a, b = load_accelerator("eyeriss"), load_accelerator("eyeriss")
    assert a is not b
    assert table_cache.identity_hash({"layers": layers, "edge": a}) == table_cache.identity_hash(
        {"layers": layers, "edge": b})
    assert table_cache.identity_hash({"layers": layers, "edge": a}) != table_cache.identity_hash(
        {"layers": layers[:-1], "edge": a})
    # a GPU in two modes, a CPU at two thread counts are told apart
    gpu, cpu = load_accelerator("h100"), load_accelerator("raspberry_pi_4b")
    assert table_cache.identity_hash({"x": gpu}) != table_cache.identity_hash(
        {"x": gpu.with_mode("eager", "framework")})
    assert table_cache.identity_hash({"x": cpu}) != table_cache.identity_hash({"x": cpu.with_threads(1)})
    assert table_cache.identity_hash({"x": {1, 2}}) == table_cache.identity_hash({"x": {2, 1}})
    with pytest.raises(TypeError):
        table_cache.canonical(lambda: 0)


@pytest.mark.parametrize("method", ["cloud", "neurosurgeon"])
def test_a_second_plan_command_reads_the_tables_and_prints_the_same_plan(cache, capsys, method):
    from simulator.cli import main

    argv = ["plan", "resnet18", "--edge", "eyeriss", "--cloud", "tpu_v1", "--uplink", "3Mbps", "--edge-memory",
            "4MiB", "--max-accuracy-drop", "1", "--method", method, "--format", "json"]
    outputs = []
    for _ in range(2):
        assert main(argv) == 0
        outputs.append(json.loads(capsys.readouterr().out))
        outputs[-1].pop("search_s")  # wall time
    assert outputs[0] == outputs[1]
    # cloud-only reads no edge table: one file (the cloud's) built, then read; neurosurgeon both
    files = 1 if method == "cloud" else 2
    assert table_cache.stats == {"hits": files, "misses": files}
