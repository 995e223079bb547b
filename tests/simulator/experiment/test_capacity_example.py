"""experiments/capacity_resnet50_wifi.yaml's headline answer, as its header states it (issue 25: the header had
promised ~1,500 split cameras while the plan was cloud-only raw and 0 cameras met the SLO)."""
from __future__ import annotations

import pytest
from support import EXPERIMENTS

from simulator.experiment.capacity_run import build_fleet, plan_rows
from simulator.experiment.loading import load_experiment


@pytest.mark.slow
def test_the_capacity_examples_plans_and_saturation_are_what_its_header_says():
    loaded = load_experiment(EXPERIMENTS / "capacity_resnet50_wifi.yaml")
    fleet, gpu = build_fleet(loaded)
    rows = {row["group"]: row for row in plan_rows(fleet, gpu.name)}
    split, jpeg = rows["autosplit"], rows["cloud-jpeg"]
    # Auto-Split: cloud-only with the raw frame, whose upload alone is over the 45 ms SLO
    assert split["cut_index"] == 0 and split["payload_bytes"] == 150_528
    assert fleet.link.transfer_time_s(150_528.0) > loaded.config.capacity.slo_p99_s
    # cloud-only JPEG: a 15.8 kB frame, the GPU saturating near 1,500 cameras at 15 fps
    assert jpeg["cut_index"] == 0 and 15_000 < jpeg["payload_bytes"] < 16_500
    assert 1_400 < jpeg["devices_at_gpu_saturation"] < 1_600
