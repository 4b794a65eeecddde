"""One agent per database: a second `tradebot run` on the same database refuses to start
(one line, exit 2) instead of trading beside the first; a second replay never deletes the
running replay's database; a crashed agent's lock is gone at once (a restart is never
refused)."""

import os
import signal
import subprocess
import sys

import pytest

from storage import StorageError
from tests.test_operator_intent_cli import BOUND, cli, running_replay
from trader.config import ConfigError
from trader.instance_lock import agent_lock, lock_path

HOLD = ("import sys, time; from pathlib import Path; from trader.instance_lock import agent_lock\n"
        "with agent_lock(Path(sys.argv[1])):\n"
        "    print('held', flush=True); time.sleep(120)\n")


def test_a_second_holder_is_refused_naming_the_variable_and_the_pid(tmp_path):
    db = tmp_path / "tradebot.db"
    with agent_lock(db):
        with pytest.raises(ConfigError) as refused:
            with agent_lock(db):
                pytest.fail("two agents on one database")
    [line] = refused.value.problems
    assert line.startswith("TRADEBOT_DB: another tradebot agent") and f"pid {os.getpid()}" in line
    with agent_lock(db):          # released when the block ends
        pass


def test_a_killed_holder_releases_the_lock_at_once(tmp_path):
    db = tmp_path / "tradebot.db"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        with pytest.raises(ConfigError, match=f"pid {holder.pid}"):
            with agent_lock(db):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(BOUND)
    with agent_lock(db):          # SIGKILL left no stale lock
        assert lock_path(db).exists()


def test_a_folder_that_cannot_hold_the_lock_is_a_storage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="lock file"):
        with agent_lock(blocker / "tradebot.db"):
            pass


async def test_a_second_replay_refuses_and_leaves_the_running_one_alone(tmp_path):
    async with running_replay(tmp_path) as first:
        database = tmp_path / "t-replay.db"
        inode = database.stat().st_ino
        code, output, _ = await cli(tmp_path, "run", "--replay")
        assert code == 2, output
        assert f"another tradebot agent (pid {first.pid})" in output, output
        assert "Traceback" not in output, output
        assert database.stat().st_ino == inode, "the running replay's database was replaced"
        code, output, _ = await cli(tmp_path, "shutdown")
        assert code == 0 and "asleep" in output, output
    assert first.returncode == 0
