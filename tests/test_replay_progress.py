"""`tradebot run --replay` says how far it is: at its default speed a replay takes an hour
with few log lines, and looked hung. On a terminal it logs a start line and a status line
now and then (candles done of total, the simulated time, the wall time left); piped, or with
--no-progress, it says nothing of the kind."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from loguru import logger

import trader.replay_progress as replay_progress
from storage.db import SaveStateFailure
from tests.test_cli import run_cli
from trader.app import run_agent
from trader.config import load_settings
from trader.domain import Candle
from trader.exchange.paper import PaperExchange
from trader.replay_progress import STATUS_SECONDS, ReplayProgress

START = datetime(2024, 3, 1, tzinfo=UTC)
FIVE_MINUTES = timedelta(minutes=5)


@pytest.fixture
def said() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(message.record["message"]), level="INFO",
                      filter=lambda record: record["message"].startswith("replay "))
    yield lines
    logger.remove(sink)


class Wall:
    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


def candles(count: int, symbol: str = "XRPUSDT") -> list[Candle]:
    price = Decimal("0.5")
    return [Candle(symbol, START + FIVE_MINUTES * n, FIVE_MINUTES, price, price, price, price,
                   Decimal("10")) for n in range(count)]


def test_a_status_line_every_so_often_with_candles_simulated_time_and_time_left(said) -> None:
    wall = Wall()
    rows = candles(100)
    progress = ReplayProgress({"XRPUSDT": rows}, 60.0, enabled=True, wall=wall)
    assert said == ["replay started candles=100 symbols=XRPUSDT from=2024-03-01 00:00 UTC "
                    "speed=60"]
    for row in rows[:9]:
        wall.seconds += 3                    # 5 min of candles at speed 60: 5 s (+ work)
        progress.advance([row])
    assert len(said) == 1, "not before STATUS_SECONDS"
    wall.seconds += STATUS_SECONDS - 27
    progress.advance([rows[9]])
    assert said[1] == ("replay progress candles=10/100 (10%) at=2024-03-01 00:50 UTC "
                       "left=about 5 min")   # 30 s for 10 candles: 270 s for 90 more
    wall.seconds += 1
    progress.advance([rows[10]])
    assert len(said) == 2


def test_disabled_it_says_nothing(said) -> None:
    wall = Wall()
    progress = ReplayProgress({"XRPUSDT": candles(3)}, 60.0, enabled=False, wall=wall)
    wall.seconds += 10 * STATUS_SECONDS
    progress.advance(candles(3))
    assert said == [] and progress.done == 3


async def test_a_replay_with_progress_counts_every_candle_to_the_end(tmp_path, said,
                                                                    monkeypatch) -> None:
    monkeypatch.setattr(replay_progress, "STATUS_SECONDS", 0.0)     # a line per batch
    settings = load_settings(_env_file=None, TRADEBOT_DB=str(tmp_path / "t.db"),
                             TRADEBOT_SYMBOLS="XRPUSDT")
    assert await run_agent(settings, replay=True, speed=1e9, progress=True) == 0
    total = int(re.search(r"candles=(\d+) ", said[0]).group(1))
    counts = [int(re.search(r"candles=(\d+)/", line).group(1)) for line in said
              if line.startswith("replay progress")]
    assert total > 100 and counts == sorted(counts) and counts[-1] == total
    assert said[-2].startswith(f"replay progress candles={total}/{total} (100%) at=")
    assert said[-1].startswith("replay finished")


def on_a_terminal(cwd: Path, *args: str) -> str:
    """`python -m trader ARGS` with stderr on a pseudo-terminal; what it wrote there."""
    leader, follower = pty.openpty()
    # a terminal of 24 x 100 (a new pty has 0 x 0, where a progress bar draws nothing)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd),
           "PYTHONDONTWRITEBYTECODE": "1", "TRADEBOT_DB": str(cwd / "t.db")}
    process = subprocess.Popen([sys.executable, "-m", "trader", *args], cwd=cwd, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=follower)
    os.close(follower)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:                  # EIO: the process closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert process.wait(timeout=120) == 0, b"".join(chunks).decode(errors="replace")[-2000:]
        reader.join(timeout=10)
    finally:
        process.kill()
        os.close(leader)
    return b"".join(chunks).decode(errors="replace")


REPLAY = ("run", "--replay", "--speed", "1000000")


def test_on_a_terminal_the_replay_says_it_started_and_how_big_it_is(tmp_path: Path) -> None:
    text = on_a_terminal(tmp_path, *REPLAY)
    assert re.search(r"replay started candles=\d+ symbols=\w+ from=.* speed=1e\+06", text), \
        text[-2000:]


def test_with_no_progress_or_piped_it_says_nothing_of_the_kind(tmp_path: Path) -> None:
    quiet = on_a_terminal(tmp_path, *REPLAY, "--no-progress")
    assert "replay finished" in quiet and "replay started" not in quiet
    piped = run_cli(tmp_path, *REPLAY, TRADEBOT_DB=str(tmp_path / "t.db"))
    assert piped.returncode == 0, piped.stderr[-2000:]
    assert "replay finished" in piped.stderr and "replay started" not in piped.stderr


async def test_a_replay_goes_on_when_the_paper_exchange_cannot_save_its_state(
        tmp_path, said, monkeypatch) -> None:
    """The simulated market's state save after a candle fails (a disk error): the replay
    says so and goes on to the end; the save is tried again on the next candle."""
    failures = iter(range(3))
    real_feed = PaperExchange.feed_candle

    def feed_then_fail_to_save(self: PaperExchange, candle: Candle) -> list:
        events = real_feed(self, candle)     # the market moved; its save is what fails
        if next(failures, None) is not None:
            raise SaveStateFailure("paper state", OSError("disk I/O error"))
        return events

    monkeypatch.setattr(PaperExchange, "feed_candle", feed_then_fail_to_save)
    settings = load_settings(_env_file=None, TRADEBOT_DB=str(tmp_path / "t.db"),
                             TRADEBOT_SYMBOLS="XRPUSDT")
    assert await run_agent(settings, replay=True, speed=1e9) == 0
    assert next(failures, None) is None        # the failures did happen
    assert said[-1].startswith("replay finished")
