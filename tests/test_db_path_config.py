"""TRADEBOT_DB where no database can be kept (a directory, under a file, in a folder this
user may not write) is a configuration error: one line naming TRADEBOT_DB and what is wrong,
exit code 2, for every command that opens the database (`run`, a replay, `shutdown`,
`wake`), not "disk I/O error" from SQLite or a traceback."""

import os
from pathlib import Path

import pytest

from tests.test_cli import run_cli
from trader.cli import EXIT_CONFIG, database_path_problem

# A live agent on an exchange nobody answers at: refused before it would try to connect.
LIVE = {"TRADEBOT_EXCHANGE": "binance", "BINANCE_API_KEY": "k" * 16,
        "BINANCE_API_SECRET": "s" * 16, "BINANCE_FUTURES_URL": "http://127.0.0.1:9",
        "BINANCE_FUTURES_WS_URL": "ws://127.0.0.1:9/"}
COMMANDS = [("run",), ("run", "--replay"), ("shutdown",), ("wake",)]


def assert_refused(result, *words: str) -> None:   # type: ignore[no-untyped-def]
    assert result.returncode == EXIT_CONFIG == 2, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("config error: TRADEBOT_DB: "), lines[0]
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in result.stderr and "disk I/O" not in result.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_a_directory_is_refused_naming_the_variable(tmp_path: Path, command: tuple) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    result = run_cli(tmp_path, *command, TRADEBOT_DB=str(folder), **LIVE)
    assert_refused(result, str(folder), "is a directory")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_path_under_a_file_is_refused_naming_the_variable(tmp_path: Path,
                                                            command: tuple) -> None:
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("hello")
    result = run_cli(tmp_path, *command, TRADEBOT_DB=str(not_a_folder / "sub" / "t.db"), **LIVE)
    assert_refused(result, str(not_a_folder), "not a folder")
    assert not_a_folder.read_text() == "hello"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder")
def test_a_folder_this_user_may_not_write_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = run_cli(tmp_path, "run", TRADEBOT_DB=str(locked / "new" / "t.db"), **LIVE)
    finally:
        locked.chmod(0o755)
    assert_refused(result, str(locked), "not writable")


def test_folders_that_do_not_exist_yet_are_created(tmp_path: Path) -> None:
    database = tmp_path / "new" / "deeper" / "t.db"
    assert database_path_problem(database) is None
    result = run_cli(tmp_path, "run", "--replay", "--speed", "1000000",
                     TRADEBOT_DB=str(database))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "new" / "deeper" / "t-replay.db").is_file()


def test_an_existing_database_file_is_fine(tmp_path: Path) -> None:
    database = tmp_path / "t.db"
    database.write_bytes(b"")
    assert database_path_problem(database) is None
    assert database_path_problem(Path("relative-name.db")) is None
