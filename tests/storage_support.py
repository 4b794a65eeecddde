"""Helpers shared by the storage tests: a fixed clock, a read-only handle (root ignores
chmod), a full disk, and a child Python process."""

import hashlib
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from sqlite_utils import Database

from storage import SaveStateFailure, Store

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
S = TypeVar("S", bound=Store)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_only_store(path: Path, kind: type[S] = Store) -> S:  # type: ignore[assignment]
    """The tests run as root, so chmod cannot stop writes: open the file read-only instead."""
    return kind(Database(sqlite3.connect(f"file:{path}?mode=ro", uri=True)))


def fill_the_disk(store: Store) -> SaveStateFailure:
    """Cap the file at its current size, then write until SQLite reports the disk full."""
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")
    for n in range(500):
        try:
            store.append_event(NOW, "filler", "", {"n": n, "pad": "x" * 2000})
        except SaveStateFailure as failure:
            return failure
    raise AssertionError("the capped database never filled up")


def run_helper(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          timeout=60, check=False)
