"""UserError carries the offending input's key as a field: a boundary renames the key, never the message text."""
import pickle

from hardware_models.errors import UserError


def test_a_keyed_error_reads_key_colon_detail():
    error = UserError("expected a positive size, got 0 bytes", "edge_memory")
    assert str(error) == "edge_memory: expected a positive size, got 0 bytes"
    assert (error.key, error.detail) == ("edge_memory", "expected a positive size, got 0 bytes")


def test_renamed_replaces_the_key_by_the_users_name_and_prepends_the_source():
    error = UserError("[3] not supported by edge_tpu", "edge_bits").renamed({"edge_bits": "bits.edge"}, "exp.yaml")
    assert str(error) == "exp.yaml: bits.edge: [3] not supported by edge_tpu"


def test_renamed_keeps_a_key_the_boundary_does_not_know():
    error = UserError("loss 0.2 is beyond 0.1", "network.loss").renamed({"edge_bits": "bits.edge"})
    assert str(error) == "network.loss: loss 0.2 is beyond 0.1" and error.key == "network.loss"


def test_a_message_that_merely_starts_with_a_core_name_is_not_rewritten():
    error = UserError("edge_bits: written by hand, no key").renamed({"edge_bits": "--edge-bits"})
    assert str(error) == "edge_bits: written by hand, no key"


def test_a_keyed_error_survives_pickling_for_dask_workers():
    error = pickle.loads(pickle.dumps(UserError("expected >= 0 points, got -1", "max_accuracy_drop")))
    assert error.key == "max_accuracy_drop" and str(error) == "max_accuracy_drop: expected >= 0 points, got -1"
