"""Fixtures shared by the storage-backed tests: a database file in a temporary directory."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from storage import Store
from tests.ray_support import local_ray

# No per-example time limit (Hypothesis's default is 200 ms): a timing assertion in disguise,
# which failed on a busy machine (test_rules_confidence at load 10-16). Speed lives in
# benchmarks/.
settings.register_profile("tradebot", deadline=None)
settings.load_profile("tradebot")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "tradebot.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    opened = Store.open(db_path)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """The address of a Ray instance on the loopback, for one test module's sweeps."""
    yield from local_ray()
