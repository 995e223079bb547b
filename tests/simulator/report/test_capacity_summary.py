"""capacity/summary.md from small records: report/ renders it without the experiment layer."""
from simulator.report.capacity_summary import capacity_summary

PLAN = {"group": "cams", "source": "autosplit", "cut_index": 12, "edge_s": 0.004, "edge_load": 0.06,
        "payload_bytes": 2048.0, "uplink_load_per_device": 0.01, "gpu_batch1_s": 0.0011, "gpu_max_batch_s": 0.009,
        "gpu_max_batch": 32, "devices_at_gpu_saturation": 950.0}
DATA = {"gpu": {"name": "h100", "mode": "serving", "evidence": "fitted"}, "slo_p99_s": 0.1, "seeds": [0, 1],
        "duration_s": 20.0, "warmup_s": 2.0, "path": "vectorised", "fleet": [],
        "max_devices": [{"group": "cams", "gpus": 1, "devices": 400, "search_limit": 400, "devices_per_gpu": 400,
                         "p99_s": 0.0523, "gpu_utilisation": 0.71, "cost_per_million_usd": 1.2345},
                        {"group": "raw", "gpus": 1, "devices": 0, "search_limit": 400, "devices_per_gpu": 0,
                         "p99_s": None, "gpu_utilisation": None, "cost_per_million_usd": None,
                         "alone_p99_s": 0.31}]}


def summary(**changes):
    settings = {"max_batch": 32, "max_wait_s": 0.002, "sharing": "shared", "devices_per_uplink": 8,
                "discipline": "fair"} | changes
    return capacity_summary("wifi cameras", "How many cameras?", DATA, [PLAN], **settings)


def test_the_summary_states_the_question_and_the_settings_in_human_units():
    text = summary()
    assert text.startswith("# Capacity: wifi cameras\n\nHow many cameras?\n")
    assert "GPU: h100 in serving mode. Evidence: fitted" in text
    assert "p99 SLO 100 ms; 2 seeds of 20 s simulated (2 s warm-up)" in text
    assert "max batch 32, max wait 2 ms; uplink shared (8 devices per link, fair)." in text


def test_a_per_device_uplink_names_no_sharing_details():
    text = summary(sharing="per_device")
    assert "uplink per_device." in text and "devices per link" not in text


def test_plan_and_answer_rows_in_milliseconds_with_the_search_limit_and_a_lone_device_said():
    text = summary()
    assert "| cams | autosplit | 12 | 4.00 | 0.060 | 2048 | 0.010 | 1.100 | 9.000 (batch 32) | 950 |" in text
    assert "| cams | 1 | 400 (the search's limit: at least) | 400 | 52.3 | 0.71 | 1.234 |" in text
    assert "| raw | 1 | 0 (one device alone: p99 310 ms > the SLO) | 0 | - | - | - |" in text
