"""Shared fixtures. Paths, scenario builders and the base experiment are in `support.py`."""
import os

import pytest
from support import an_experiment, make_scenario

from simulator.freed_memory import keep_freed_memory

keep_freed_memory()  # as the CLI does: numpy temporaries reuse freed memory instead of fresh mappings


@pytest.fixture(scope="session")
def paper_scenario():
    """The Auto-Split paper's setup: resnet50, eyeriss, tpu_v1, 3 Mibps ideal link, 4 MiB, max_layer."""
    return make_scenario(edge_memory_bytes=4 * 2**20, memory_model="max_layer", max_accuracy_drop=1.0,
                         edge_bits=(1, 2, 4, 5, 6, 7, 8))


@pytest.fixture
def base_experiment() -> dict:
    """A fresh copy of the base experiment (support.BASE_EXPERIMENT) to change in a test."""
    return an_experiment()


@pytest.fixture
def postgres_url() -> str:
    """The test server's URL (.ci/run starts Debian's PostgreSQL and exports it); CI fails without it."""
    url = os.environ.get("AUTOSPLIT_TEST_POSTGRES")
    if not url:
        message = ("AUTOSPLIT_TEST_POSTGRES is not set: start PostgreSQL and export "
                   "AUTOSPLIT_TEST_POSTGRES=postgresql://USER:PASSWORD@127.0.0.1:5432/DB (.ci/run does)")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(autouse=True, scope="session")
def measurement_cache(tmp_path_factory) -> None:
    """Measured accuracies go to a folder of this test session (and its subprocesses), not the user's cache."""
    os.environ["AUTOSPLIT_CACHE"] = str(tmp_path_factory.mktemp("autosplit-cache"))
