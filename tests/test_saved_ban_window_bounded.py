"""An IP-ban window kept across restarts (trader/circuit_memory.py) is waited no longer than
the Retry-After it was given, counted from now, nor than Binance's longest ban.

Binance (general info, LIMITS): "A Retry-After header is sent with a 418 or 429 responses
and will give the number of seconds required to wait", and "IP bans are tracked and scale
in duration for repeat offenders, from 2 minutes to 3 days". Found by review9
(test_rv9_saved_ban_window.py): the saved end was trusted on the wall clock, so a window
saved by a host clock 1 h ahead (NTP corrected it before the restart) held a 120 s ban for
1 h 2 min; a 30-day window was waited in full by every restart; a 418 with Retry-After
100000000 was kept until 2030. Now the end restored is cut to its saved length from now,
and to 3 days, and the log says so.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tests.fakes.binance_harness import captured_logs, settings_for
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import SYMBOL
from tests.test_restart_during_ban import banned_first_run
from trader.circuit_memory import KEY, CircuitMemory
from trader.engine_setup import build_engine
from trader.exchange.base import LONGEST_BAN
from trader.start_retry import circuit_text
from trader.trade_store import TradeStore

ENDPOINT = "https://fapi.binance.com"
NOW = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
CUT = "saved rate-limit window cut"


class _Clock:
    def now(self) -> datetime:
        return NOW


def _recall(tmp_path: Path, opened_at: datetime | None, open_until: datetime):
    """What a process restarted at NOW restores of the window saved (opened_at, open_until),
    and what it logged."""
    store = TradeStore.open(tmp_path / "a.db")
    try:
        store.put(KEY, {"open_until": open_until.isoformat(), "reason": "IP banned",
                        "opened_at": opened_at.isoformat() if opened_at else None,
                        "http_status": 418, "told": True, "endpoint": ENDPOINT}, NOW)
        with captured_logs("WARNING") as logs:
            kept = CircuitMemory(store, _Clock(), ENDPOINT).recall()
        return kept, logs
    finally:
        store.close()


def test_a_window_saved_by_a_clock_that_ran_ahead_is_waited_no_longer_than_its_retry_after(
        tmp_path):
    ahead = NOW + timedelta(hours=1)
    kept, logs = _recall(tmp_path, ahead, ahead + timedelta(seconds=120))
    assert kept is not None and kept.open_until == NOW + timedelta(seconds=120)
    assert kept.http_status == 418 and kept.opened_at == ahead
    assert [line for line in logs if CUT in line], logs
    assert "07:02:00 UTC" in circuit_text(kept, NOW)


def test_a_saved_window_longer_than_any_ban_binance_gives_is_cut_to_three_days(tmp_path):
    kept, logs = _recall(tmp_path, NOW, NOW + timedelta(days=30))
    assert kept is not None and kept.open_until == NOW + LONGEST_BAN
    assert [line for line in logs if CUT in line], logs
    # a far end is shown with its date (three days at most: no year needed)
    assert "05 Dec 07:00:00 UTC" in circuit_text(kept, NOW)


def test_a_saved_window_without_its_start_is_cut_to_three_days(tmp_path):
    kept, _ = _recall(tmp_path, None, NOW + timedelta(days=400))
    assert kept is not None and kept.open_until == NOW + LONGEST_BAN


async def test_a_retry_after_of_years_is_not_kept_for_every_restart(tmp_path):
    """Retry-After: 100000000 (3 years) on a 418: the restarted process waits 3 days at most."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await banned_first_run(fake, tmp_path / "a.db", 100_000_000)
        engine, close = await build_engine(settings_for(fake, db_path=tmp_path / "a.db"),
                                           start=False)
        try:
            until, now = engine.exchange.circuit().open_until, engine.clock.now()
            assert until is not None and now < until <= now + LONGEST_BAN
        finally:
            await close()


def test_negative_a_window_saved_by_a_clock_that_agrees_is_kept_to_its_end_quietly(tmp_path):
    """A 120 s ban saved 30 s ago holds 90 s more; a 3-day ban saved an hour ago, 71 h."""
    for opened_ago, length in ((timedelta(seconds=30), timedelta(seconds=120)),
                               (timedelta(hours=1), LONGEST_BAN)):
        opened_at = NOW - opened_ago
        kept, logs = _recall(tmp_path, opened_at, opened_at + length)
        assert kept is not None and kept.open_until == opened_at + length
        assert kept.opened_at == opened_at
        assert not [line for line in logs if CUT in line], logs


def test_negative_a_window_that_ended_is_not_restored(tmp_path):
    kept, _ = _recall(tmp_path, NOW - timedelta(seconds=200), NOW - timedelta(seconds=80))
    assert kept is None
