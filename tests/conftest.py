"""Fixtures shared by the storage-backed tests: a database file in a temporary directory."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import Store


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "tradebot.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    opened = Store.open(db_path)
    yield opened
    opened.close()
