"""Helpers of the tests that stop a command from outside (tests/test_*_interrupt.py): long
candle data, bounded waits, and the processes a session still holds."""

import time
from collections.abc import Callable
from pathlib import Path

import pytest

BUNDLED = Path(__file__).resolve().parent.parent / "trader" / "data" / "XRPUSDT-5m.csv"


def write_long_candles(path: Path, tiles: int, first_tile: int = 0) -> Path:
    """The bundled XRPUSDT candles repeated `tiles` times, one after the other, at `path`
    (named SYMBOL-5m.csv, so the file name says the symbol); `first_tile` > 0 starts that
    many spans later (data of another period)."""
    lines = BUNDLED.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [line.split(",") for line in lines[1:]]
    span = int(rows[-1][0]) - int(rows[0][0]) + 300_000
    tiled = [",".join([str(int(row[0]) + tile * span), *row[1:]])
             for tile in range(first_tile, first_tile + tiles) for row in rows]
    path.write_text("\n".join([header, *tiled]) + "\n", encoding="utf-8")
    return path


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds:.0f} s: {what}")
        time.sleep(0.1)


def session_processes(session: int) -> list[str]:
    """Live processes of a session (zombies excluded), as "pid command", from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:   # the process ended while we looked
            continue
        state, _ppid, _group, sid = text.rsplit(")", 1)[1].split()[:4]
        if int(sid) == session and state != "Z":
            found.append(f"{stat.parent.name} {text[text.index('(') + 1:text.rindex(')')]}")
    return found
