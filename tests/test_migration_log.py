"""Opening the database logs what is news: a fresh file is one DEBUG line (every CLI command
on a new disk creates one; six `storage migrated` INFO lines cluttered their output), an
existing database brought forward is one INFO line per migration applied."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loguru import logger

from storage.db import LATEST_VERSION, MIGRATIONS, open_database


@contextmanager
def storage_records() -> Iterator[list[tuple[str, str]]]:
    """(level, message) of every record storage/db.py logs, DEBUG included."""
    records: list[tuple[str, str]] = []
    sink = logger.add(lambda m: records.append((m.record["level"].name, m.record["message"])),
                      level="DEBUG", filter="storage.db")
    try:
        yield records
    finally:
        logger.remove(sink)


def test_a_fresh_database_is_one_debug_line(tmp_path: Path) -> None:
    path = tmp_path / "tradebot.db"
    with storage_records() as records:
        open_database(path).close()
    assert records == [("DEBUG", f"database created at schema version {LATEST_VERSION} "
                                 f"path={path}")]


def test_an_upgraded_database_logs_each_migration_at_info(tmp_path: Path) -> None:
    path = tmp_path / "tradebot.db"
    open_database(path, migrations=MIGRATIONS[:2]).close()
    with storage_records() as records:
        open_database(path).close()
    assert records == [("INFO", f"storage migrated version={version} path={path}")
                       for version in range(3, LATEST_VERSION + 1)]


def test_an_up_to_date_database_logs_nothing(tmp_path: Path) -> None:
    path = tmp_path / "tradebot.db"
    open_database(path).close()
    with storage_records() as records:
        open_database(path).close()
    assert records == []
