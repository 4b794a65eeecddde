"""TRADEBOT_DB whose folder cannot really be created, or in which no file can be created, is
a configuration error before anything else is printed, whoever runs it: root "may write"
/proc by its permission bits, yet nothing can be created there. The check creates the
missing folders itself (as the agent would a moment later) instead of guessing from
permissions: `config error: TRADEBOT_DB: ...`, exit 2, and nothing on stdout (no "Acting
here, directly on the exchange ..." first), for `run`, a replay, `shutdown` and `wake`."""

from pathlib import Path

import pytest

from tests.test_cli import run_cli
from tests.test_db_path_config import COMMANDS, LIVE, assert_refused
from trader.cli import database_path_problem

needs_proc = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")


@needs_proc
@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_that_cannot_be_created_is_a_config_error_first(tmp_path: Path,
                                                                 command: tuple) -> None:
    result = run_cli(tmp_path, *command, TRADEBOT_DB="/proc/nope/x.db", **LIVE)
    assert_refused(result, "/proc/nope", "cannot be created")
    assert result.stdout == "", result.stdout


@needs_proc
@pytest.mark.parametrize("command", [("run",), ("shutdown",), ("wake",)])
def test_an_existing_folder_where_no_file_can_be_created_is_a_config_error(
        tmp_path: Path, command: tuple) -> None:
    result = run_cli(tmp_path, *command, TRADEBOT_DB="/proc/x.db", **LIVE)
    assert_refused(result, "/proc", "no file can be created")
    assert result.stdout == "", result.stdout


def test_the_check_creates_the_missing_folders_and_leaves_nothing_else(tmp_path: Path) -> None:
    database = tmp_path / "new" / "deeper" / "t.db"
    assert database_path_problem(database) is None
    assert database.parent.is_dir()
    assert list(database.parent.iterdir()) == []      # its probe file is gone again


@needs_proc
def test_the_check_names_the_folder_it_could_not_create() -> None:
    problem = database_path_problem(Path("/proc/nope/deeper/x.db"))
    assert problem is not None and "/proc/nope" in problem and "cannot be created" in problem
