"""A report file that cannot be written (a full disk, a quota) does not lose the run: the
backtest still prints its report and the sweep its table, then one line says which folder
could not be written and why, with a non-zero exit; never a traceback after minutes of work
with nothing printed (found by hand on a 600 KB tmpfs: `OSError: [Errno 28] No space left
on device` from equity.png, exit 1, stdout empty)."""

import errno
import sqlite3
from pathlib import Path

import pytest

from storage.db import SaveStateFailure
from trader.cli import main
from trader.trade_store import TradeStore

XRP_DAY = ["--symbols", "XRPUSDT", "--from", "2021-11-16", "--to", "2021-11-16"]


def disk_full(self: Path, data: bytes) -> int:
    raise OSError(errno.ENOSPC, "No space left on device", str(self))


def test_a_backtest_whose_report_cannot_be_written_still_prints_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(Path, "write_bytes", disk_full)    # equity.png, the first file
    code = main(["backtest", "--out", str(tmp_path), "--run-id", "full", "--no-progress",
                 *XRP_DAY])
    printed = capsys.readouterr()
    assert code == 2
    assert "Portfolio" in printed.out and "Net PnL" in printed.out, printed.out
    assert "Files in" not in printed.out, "no file list: they were not written"
    [line] = [text for text in printed.err.splitlines() if text.startswith("backtest error")]
    assert str(tmp_path / "full") in line and "No space left on device" in line, line
    assert "printed above" in line, line


def test_a_sweep_whose_pictures_cannot_be_written_still_prints_its_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(Path, "write_bytes", disk_full)    # the equity pictures
    code = main(["sweep", "--out", str(tmp_path), "--run-id", "full", "--no-progress",
                 "--workers", "1", "--grid", "strategy.channel=20", *XRP_DAY])
    printed = capsys.readouterr()
    assert code == 2
    assert "strategy.channel" in printed.out and "Sharpe" in printed.out, printed.out
    [line] = [text for text in printed.err.splitlines() if text.startswith("sweep error")]
    assert str(tmp_path / "full") in line and "No space left on device" in line, line


def test_a_backtest_whose_last_commit_fails_says_so_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The replay's batches are committed together; the last one is written when the run's
    database closes, so a disk that fills at the end failed there, outside the tick's
    boundary: a traceback, exit 1 (found on a 450 KB tmpfs)."""
    real_close = TradeStore.close

    def close_on_a_full_disk(store: TradeStore) -> None:
        real_close(store)
        raise SaveStateFailure("replay batches", sqlite3.OperationalError(
            "database or disk is full"))
    monkeypatch.setattr(TradeStore, "close", close_on_a_full_disk)
    code = main(["backtest", "--out", str(tmp_path), "--run-id", "full", "--no-progress",
                 *XRP_DAY])
    printed = capsys.readouterr()
    assert code == 2
    [line] = [text for text in printed.err.splitlines() if text.startswith("backtest error")]
    assert "could not save replay batches: database or disk is full" in line, line
    assert "Traceback" not in printed.err
