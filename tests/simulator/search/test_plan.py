"""The core `Plan`: what every search returns as its answer, the columns of every plans table, DESIGN's plan JSON
in and out."""
from __future__ import annotations

import json

import numpy as np
import pytest
from support import make_scenario

from simulator.search import run_method
from simulator.search.base import PLAN_COLUMNS, Plan


@pytest.fixture(scope="module")
def answered():
    """A search's result on a scenario where its answer runs a prefix of layers at mixed bits on the edge."""
    scenario = make_scenario("resnet18", edge="edge_tpu", edge_memory_bytes=4 * 2**20, max_accuracy_drop=1.0)
    return run_method("autosplit", scenario)


def test_the_answer_is_the_plans_row_it_was_chosen_from(answered):
    plan = answered.plan
    assert plan is not None and plan.feasible
    same = answered.plans[np.isclose(answered.plans["latency_s"], plan.latency_s, rtol=0, atol=0)
                          & answered.plans["feasible"]]
    row = same.iloc[0]
    for column in PLAN_COLUMNS:
        value = getattr(plan, column)
        if isinstance(value, float):
            assert value == float(row[column]), column
        else:
            assert value == (list(row[column]) if isinstance(value, list) else row[column]), column
    assert plan.latency_s == pytest.approx(plan.edge_s + plan.transfer_s + plan.cloud_s)
    # the answer is the fastest plan within the bounds
    assert plan.latency_s == answered.plans.loc[answered.plans["feasible"], "latency_s"].min()


def test_plans_tables_have_the_plan_fields_as_columns_in_order(answered):
    assert list(answered.plans.columns[:len(PLAN_COLUMNS)]) == list(PLAN_COLUMNS)
    assert list(answered.feasible_front.columns) == list(answered.plans.columns)


def test_plan_json_nests_the_breakdown_and_reads_back_equal(answered):
    plan = answered.plan
    text = json.dumps(plan.to_json())
    data = json.loads(text)
    assert set(data["breakdown"]) == {"edge_s", "transfer_s", "cloud_s"}
    assert "edge_s" not in data and data["breakdown"]["transfer_s"] == plan.transfer_s
    assert len(data["edge_layers"]) == len(data["weight_bits"]) == len(data["activation_bits"])
    assert Plan.from_json(data) == plan
    assert answered.best == plan.to_json()


def test_a_plan_without_a_prefix_cut_and_weightless_layers_round_trips():
    plan = Plan(method="dads", model="googlenet", cut_index=None, edge_layers=["conv1", "pool1"], latency_s=0.5,
                edge_s=0.1, transfer_s=0.3, cloud_s=0.1, accuracy=70.0, accuracy_drop=0.5, edge_memory_bytes=1024.0,
                edge_energy_j=1e-3, payload_bytes=100.0, wire_bytes=160.0, weight_bits=[8, None],
                activation_bits=[8, 8], feasible=True, accuracy_expected=70.2, accuracy_low=69.9, accuracy_high=70.4)
    data = json.loads(json.dumps(plan.to_json()))
    assert data["cut_index"] is None and data["weight_bits"] == [8, None]
    assert Plan.from_json(data) == plan


def test_the_feasible_front_is_the_nondominated_feasible_plans_fastest_first(answered):
    front = answered.feasible_front
    assert len(front) and front["feasible"].all()
    assert np.all(np.diff(front["latency_s"]) >= 0)
    feasible = answered.plans[answered.plans["feasible"]]
    for _, plan in front.iterrows():  # no feasible plan is at least as good in both and better in one
        dominated = ((feasible["latency_s"] <= plan["latency_s"]) & (feasible["accuracy_drop"] <= plan["accuracy_drop"])
                     & ((feasible["latency_s"] < plan["latency_s"]) | (feasible["accuracy_drop"] < plan["accuracy_drop"])))
        assert not dominated.any()
    # every feasible plan is dominated by or equal to a front plan
    for _, plan in feasible.iterrows():
        assert ((front["latency_s"] <= plan["latency_s"]) & (front["accuracy_drop"] <= plan["accuracy_drop"])).any()
