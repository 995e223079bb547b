"""The stored Gaussian distortion tables (simulator/accuracy/data/gaussian_tables.json) equal what the code
computes, exactly: reading them instead of computing saves every proxy-building command about two seconds."""
from __future__ import annotations

import json

import numpy as np
import pytest

from simulator.accuracy import distortion


@pytest.mark.slow
def test_the_stored_gaussian_tables_are_exactly_the_computed_ones():
    stored = json.loads(distortion.GAUSSIAN_TABLES.read_text())
    bits = [b for b in distortion.BIT_WIDTHS if b < distortion.FLOAT_BITS]
    computed = {f"symmetric_{b}": distortion._compute_symmetric_mse_table(b) for b in bits}
    computed |= {f"rounding_{b}": distortion._compute_rounding_table(b) for b in bits}
    computed |= {f"activation_{b}_{relu}": distortion._compute_activation_table(b, relu)
                 for b in bits for relu in (True, False)}
    assert set(stored) == set(computed)
    for key, table in computed.items():
        assert np.array_equal(np.array(stored[key], dtype=np.float64), table), key


def test_a_missing_table_file_falls_back_to_computing(monkeypatch, tmp_path):
    monkeypatch.setattr(distortion, "GAUSSIAN_TABLES", tmp_path / "none.json")
    distortion._stored_tables.cache_clear()
    try:
        assert np.array_equal(distortion._stored("rounding_4", lambda: distortion._compute_rounding_table(4)),
                              distortion._compute_rounding_table(4))
    finally:
        distortion._stored_tables.cache_clear()
