"""Energy per action (hardware_models/energy.py) against the Horowitz 45 nm table it cites, and its rules."""
from __future__ import annotations

import csv

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import REPO

from hardware_models.energy import EnergyModel, radio_j
from hardware_models.errors import UserError
from hardware_models.units import parse_energy

TABLE = REPO / "hardware_models" / "data" / "horowitz_isscc2014_45nm.csv"


def table_pj(operation: str, bits: int | None = None) -> float:
    """The table's figure in pJ, read straight from the CSV (the oracle the model cites)."""
    with open(TABLE, newline="") as handle:
        for row in csv.DictReader(handle):
            if row["operation"] == operation and (bits is None or int(row["bits"]) == bits):
                return float(row["energy_pJ"])
    raise KeyError(operation)


MODEL = EnergyModel.default()
PJ = 1e-12


def test_an_8bit_mac_is_the_tables_8bit_multiply_plus_a_32bit_accumulate():
    expected = table_pj("mult", 8) + table_pj("add", 32)
    assert MODEL.mac_j(8, 8) == pytest.approx(expected * PJ)


def test_a_16bit_mac_uses_the_tables_16bit_multiply_and_a_48bit_accumulate():
    add_48 = table_pj("add", 32) * 48 / 32  # proportional above the table's widest add
    assert MODEL.mac_j(16, 16) == pytest.approx((table_pj("mult", 16) + add_48) * PJ)


def test_multiply_energy_below_8_bits_goes_with_the_product_of_the_widths():
    eight = MODEL.multiply_j(8, 8)
    assert MODEL.multiply_j(4, 4) == pytest.approx(eight / 4)
    assert MODEL.multiply_j(2, 8) == pytest.approx(eight / 4)
    assert MODEL.multiply_j(4, 8) == pytest.approx(eight / 2)


@given(st.integers(1, 32), st.integers(1, 32), st.integers(1, 32), st.integers(1, 32))
def test_fewer_bits_never_increase_mac_energy(w1, a1, w2, a2):
    small_w, large_w = sorted((w1, w2))
    small_a, large_a = sorted((a1, a2))
    assert MODEL.mac_j(small_w, small_a) <= MODEL.mac_j(large_w, large_a)


@pytest.mark.parametrize("kib, operation", [(8, "SRAM/cache read 8KB"), (32, "SRAM/cache read 32KB"),
                                            (1024, "SRAM/cache read 1MB")])
def test_sram_energy_per_byte_at_the_tables_sizes_is_the_64bit_access_over_8(kib, operation):
    assert MODEL.sram_j_per_byte(kib * 1024) == pytest.approx(table_pj(operation) / 8 * PJ)


def test_cacti7_table_gives_the_cacti_cross_check_rows():
    cacti = EnergyModel.default("cacti7")
    assert cacti.sram_j_per_byte(32 * 1024) == pytest.approx(table_pj("CACTI7 SRAM 32KB 1RW read") / 8 * PJ)


@given(st.floats(256, 64 * 2**20), st.floats(256, 64 * 2**20))
def test_a_larger_sram_never_costs_less_per_byte(c1, c2):
    small, large = sorted((c1, c2))
    assert MODEL.sram_j_per_byte(small) <= MODEL.sram_j_per_byte(large) * (1 + 1e-12)


def test_sram_between_table_sizes_lies_between_their_energies():
    middle = MODEL.sram_j_per_byte(108 * 1024)
    assert MODEL.sram_j_per_byte(32 * 1024) < middle < MODEL.sram_j_per_byte(2**20)


def test_dram_energy_per_byte_is_the_tables_64bit_access_over_8():
    assert MODEL.dram_j_per_byte() == pytest.approx(table_pj("DRAM access") / 8 * PJ)


def test_energy_sums_count_times_energy_per_action_grouped_by_part():
    parts = EnergyModel.energy_j({
        "mac": (1000, MODEL.mac_j(4, 8)),
        "sram.ifmap_read": (300, MODEL.sram_j_per_byte(2**16)),
        "sram.ofmap_write": (100, MODEL.sram_j_per_byte(2**16, write=True)),
        "dram.read": (50, MODEL.dram_j_per_byte()),
    })
    assert set(parts) == {"mac", "sram", "dram"}
    assert parts["mac"] == pytest.approx(1000 * MODEL.mac_j(4, 8))
    assert parts["sram"] == pytest.approx(400 * MODEL.sram_j_per_byte(2**16))
    assert parts["dram"] == pytest.approx(50 * MODEL.dram_j_per_byte())


def test_negative_action_counts_are_refused():
    with pytest.raises(ValueError, match="mac"):
        EnergyModel.energy_j({"mac": (-1, 1e-12)})


def test_radio_energy_is_bits_times_energy_per_bit():
    assert radio_j(8e6, 50e-9) == pytest.approx(0.4)


def test_technology_scaling_goes_with_feature_size_times_voltage_squared_and_leaves_dram_alone():
    scaled = EnergyModel.from_config({"technology_nm": 22.5, "supply_voltage_v": 0.45}, "p.yaml")
    factor = (22.5 / 45) * (0.45 / 0.9) ** 2
    assert scaled.mac_j(8, 8) == pytest.approx(MODEL.mac_j(8, 8) * factor)
    assert scaled.sram_j_per_byte(2**15) == pytest.approx(MODEL.sram_j_per_byte(2**15) * factor)
    assert scaled.dram_j_per_byte() == MODEL.dram_j_per_byte()


def test_overrides_replace_the_table_and_keep_the_bit_rule():
    model = EnergyModel.from_config({
        "mac_8bit": "0.5pJ", "dram_per_byte": "100pJ", "sram_write_factor": 1.5,
        "sram_read_64bit": {"8KiB": "8pJ", "128KiB": "32pJ"},
    }, "p.yaml")
    assert model.mac_j(8, 8) == pytest.approx(0.5 * PJ)
    assert model.mac_j(4, 8) / model.mac_j(8, 8) == pytest.approx(MODEL.mac_j(4, 8) / MODEL.mac_j(8, 8))
    assert model.dram_j_per_byte() == pytest.approx(100 * PJ)
    assert model.sram_j_per_byte(8 * 1024) == pytest.approx(1 * PJ)
    assert model.sram_j_per_byte(32 * 1024) == pytest.approx(2 * PJ)  # sqrt: 4x the size, 2x the energy
    assert model.sram_j_per_byte(8 * 1024, write=True) == pytest.approx(1.5 * PJ)


@pytest.mark.parametrize("config, key", [
    ({"mac_8bits": "1pJ"}, "energy.mac_8bits"),
    ({"technology_nm": -7}, "energy.technology_nm"),
    ({"dram_per_byte": "10pW"}, "energy.dram_per_byte"),
    ({"dram_per_byte": "-1pJ"}, "energy.dram_per_byte"),
    ({"sram_table": "cacti"}, "energy.sram_table"),
    ({"sram_read_64bit": {"-8KiB": "1pJ"}}, "energy.sram_read_64bit"),
])
def test_bad_energy_config_is_a_one_line_error_naming_file_and_key(config, key):
    with pytest.raises(UserError, match=f"p.yaml: {key}") as info:
        EnergyModel.from_config(config, "p.yaml")
    assert "\n" not in str(info.value)


def test_energy_strings_parse_to_joules():
    assert parse_energy("0.2pJ") == pytest.approx(2e-13)
    assert parse_energy("1.3 nJ") == pytest.approx(1.3e-9)
    assert parse_energy(3) == 3.0
