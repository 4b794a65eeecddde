"""Chaos: `tradebot run` as a subprocess against the fake Binance server, killed with
SIGKILL at seeded random points and restarted, sometimes on the same database and
sometimes on an empty one (a wiped Heroku disk), while prices move and faults are
injected (tests/chaos/faults.py: order errors, 503 bursts and 429 / 418 with Retry-After on
reads, malformed answers and user-data events, hand-cancelled stops, hand closes,
liquidations, a tick-size change, dropped streams, a read-only database). After every
restart the invariants of tests/chaos/invariants.py must hold, among them: no request
reached the exchange inside a Retry-After window it announced, and every open position has
exactly one live stop-loss of ours.

The operator moves stops too (tests/chaos/stop_moves.py): in MOVE_SHARE of the cycles the
agent runs with the fake Telegram and gets `/sl SYMBOL PRICE` (and its button press) at a
seeded random moment, the kill coming within a second of the press (before or after the
reply) or of the reply (before or after the old stop's cancel); the market is held still
from the press until the check after the restart, which wants the moved position's one
stop at the level last acknowledged (or the one before, or the one asked, when the kill
came before the acknowledgement): never an order from before them, never looser; tighter
only by the agent's own moves (breakeven, trailing, the regime rule), which go on in every
cycle through the same new-first replacement. Only those cycles run with Telegram: its start costs ~0.8 s of every boot.

The market (tests/chaos/market.py) is a seeded walk drawn candle by candle for as long as
the run lasts (a year of candle time: ~22 h at one candle every 0.15 s), so a larger
TRADEBOT_CHAOS_KILLS adds trades, not only restarts.

Every wait is on a condition with a bound, never a fixed sleep: the boot until the agent
logs it, the check until the agent has settled (every open position has exactly one live
stop-loss, no leftover orders, boot fills journaled, earlier alerts delivered) or the bound
passes, then the invariants are checked. So a loaded machine makes the run slower, not red.

Size: TRADEBOT_CHAOS_KILLS (default 30), seed: TRADEBOT_CHAOS_SEED (default 7), what the
fake does with reduce-only orders of a flat position: TRADEBOT_CHAOS_FLAT_ORDERS ("keep",
the default, makes the agent cancel them itself; or "expire"), whether it has Binance's
Algo Order API: TRADEBOT_CHAOS_ALGO_API ("on", the default; "off" is a server without it,
`FakeBinance(algo_api=False)`: stops and targets go to the classic /fapi/v1/order), and the
order of a triggered stop's events: TRADEBOT_CHAOS_TRIGGER_EVENTS ("triggered-first", the
default, "fill-first", or with the Algo API off "expired-first": binance_ledger.py).
"""

import asyncio
import contextlib
import os
import random
import signal
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.chaos import faults, invariants
from tests.chaos.agent import ReadOnlyDatabase, agent_env, start_agent, wait_for_boot
from tests.chaos.market import Market
from tests.chaos.stop_moves import StopMoves
from tests.fakes import binance_harness as harness
from tests.fakes.binance_server import FakeBinance
from tests.fakes.telegram_server import FakeTelegram
from trader.domain import OrderRole, Side
from trader.exchange.base import CircuitOpen, ExchangeError
from trader.exchange.gate import RequestGate

SYMBOL = "BTCUSDT"
KILLS = int(os.environ.get("TRADEBOT_CHAOS_KILLS", "30"))
SEED = int(os.environ.get("TRADEBOT_CHAOS_SEED", "7"))
FLAT_ORDERS = os.environ.get("TRADEBOT_CHAOS_FLAT_ORDERS", "keep")
ALGO_API = os.environ.get("TRADEBOT_CHAOS_ALGO_API", "on")
if ALGO_API not in ("on", "off"):
    raise ValueError(f"TRADEBOT_CHAOS_ALGO_API must be 'on' or 'off', not {ALGO_API!r}")
CANCEL = "DELETE /fapi/v1/algoOrder" if ALGO_API == "on" else "DELETE /fapi/v1/order"
TRIGGER_EVENTS = os.environ.get("TRADEBOT_CHAOS_TRIGGER_EVENTS", "triggered-first")
BOOT_BOUND = 90.0      # seconds; bounds, not waits: an idle machine boots in ~2 s and
SETTLE_BOUND = 45.0    # settles in ~0-3 s (sentinel debounce 1 s + 2 ticks of 1 s)
POSITION_BOUND = 4.0   # how long a fault that acts on a position waits for one (breakers
                       # may block entries for minutes: then it finds nothing to do)
FAULT_BOUND = 5.0      # how long an injected error answer waits for the agent's request
MOVE_SHARE = 0.4       # the cycles with an operator's /sl (the agent runs with Telegram)
KILL_AFTER_PRESS = 1.0  # the kill comes at most this long after the press or the reply
MOVE_BOUND = 20.0      # how long the kill waits for the press or the reply (a bound)
POLL = 0.05

pytestmark = pytest.mark.chaos


@dataclass
class Counts:
    kills: int = 0
    same_db: int = 0
    fresh_db: int = 0
    read_only: int = 0
    read_only_under_sl: int = 0    # of them, cycles with an operator's /sl
    faults: Counter[str] = field(default_factory=Counter)
    boot_seconds: list[float] = field(default_factory=list)
    settle_seconds: list[float] = field(default_factory=list)
    unsettled: int = 0     # checks made because the bound passed, not because it settled


class Checker:
    """Waits for the agent to settle (by condition, bounded), then checks every invariant."""

    def __init__(self, fake: FakeBinance, tally: invariants.Tally, counts: Counts,
                 stop_moves: StopMoves) -> None:
        self.fake, self.tally, self.counts = fake, tally, counts
        self.stop_moves = stop_moves
        self.window_violations_seen = 0

    def waiting_for(self, db_path: Path, booted_at: datetime, fills_at_boot: int) -> list[str]:
        """What the agent still has to do before a check is fair (empty: settled)."""
        sim = self.fake.sim
        pending = (invariants.naked_positions(sim)
                   + invariants.orders_without_position(sim, [SYMBOL])
                   + invariants.unrecorded_fills(sim, SYMBOL, db_path, fills_at_boot)
                   + invariants.undelivered_alerts(db_path, booted_at))
        if not pending and not invariants.settled(sim, [SYMBOL]):
            pending.append("a position without exactly one live stop-loss")
        return pending

    async def settle_and_check(self, db_path: Path, booted_at: datetime,
                               fills_at_boot: int) -> None:
        started = time.monotonic()
        while self.waiting_for(db_path, booted_at, fills_at_boot):
            if time.monotonic() - started > SETTLE_BOUND:
                self.counts.unsettled += 1
                break
            await asyncio.sleep(POLL)
        self.counts.settle_seconds.append(time.monotonic() - started)
        self.check_all(db_path, booted_at, fills_at_boot)

    def check_all(self, db_path: Path, booted_at: datetime, fills_at_boot: int) -> None:
        sim, tally = self.fake.sim, self.tally
        tally.record(invariants.duplicate_orders(self.fake.accepted_orders))
        tally.record(invariants.not_one_stop(sim))
        tally.record(self.stop_moves.violations())
        tally.record(invariants.orders_without_position(sim, [SYMBOL]))
        tally.record(invariants.unrecorded_fills(sim, SYMBOL, db_path, fills_at_boot))
        tally.record(invariants.undelivered_alerts(db_path, booted_at))
        violations = self.fake.retry_after_watch.violations
        tally.record(invariants.requests_inside_retry_after(
            violations[self.window_violations_seen:]))
        self.window_violations_seen = len(violations)


async def boot_and_check(fake: FakeBinance, db_path: Path, log_path: Path, checker: Checker,
                         telegram: bool = False) -> asyncio.subprocess.Process:
    """Start the agent (with the fake Telegram when `telegram`), wait for its boot
    reconciliation and its settling, check everything."""
    offset = log_path.stat().st_size if log_path.exists() else 0
    booted_at = datetime.now(UTC)
    fills_at_boot = len(fake.sim.fills(SYMBOL))
    bot = checker.stop_moves.env() if telegram else {}
    process = await start_agent(agent_env(fake, db_path, SYMBOL, **bot), log_path)
    checker.counts.boot_seconds.append(await wait_for_boot(log_path, offset, process,
                                                           BOOT_BOUND))
    await checker.settle_and_check(db_path, booted_at, fills_at_boot)
    return process


def fault_schedule(rng: random.Random, cycles: int) -> list[str]:
    """Every fault kind about equally often, in a seeded order."""
    kinds = list(faults.KINDS) * (cycles // len(faults.KINDS) + 1)
    rng.shuffle(kinds)
    return kinds[:cycles]


async def fault_then_kill(fake: FakeBinance, process: asyncio.subprocess.Process, kind: str,
                          rng: random.Random, read_only: ReadOnlyDatabase,
                          checker: Checker, move_stop: bool, log_path: Path) -> None:
    """One fault of `kind` (and sometimes a read-only database), the operator's /sl when
    `move_stop`, a SIGKILL at a random point after them, then the exchange made ready for
    the next boot."""
    counts = checker.counts
    if kind in faults.NEEDS_A_STOP:               # a protected position to act on
        await harness.eventually(lambda: bool(faults.our_stops(fake, SYMBOL)), POSITION_BOUND)
    done = await faults.inject(fake, kind, rng, SYMBOL)
    counts.faults[kind if faults.IDLE not in done else f"{kind} {faults.IDLE}"] += 1
    if kind in faults.ON_REQUESTS:                # let the agent meet it before the kill
        await harness.eventually(lambda: all(f.times == 0 for f in fake.faults), FAULT_BOUND)
    # Under a /sl too: the agent then moves a stop it cannot journal, and the restart on
    # that database finds the new stop newer than its record (trader/observe.py
    # `_newer_of_ours`; tests/test_restart_finds_a_newer_stop_of_its_own.py).
    if rng.random() < 0.15 and read_only.start():
        counts.read_only += 1
        counts.read_only_under_sl += move_stop
    checker.tally.record(await kill_point(rng, checker.stop_moves, move_stop, log_path))
    checker.tally.record(await kill(process))
    checker.stop_moves.killed()
    read_only.stop()
    counts.kills += 1
    fake.clear_faults()
    faults.restore_rules(fake, SYMBOL)
    # A new process cannot know the window its predecessor was told about: the operator's
    # restart comes after it (a Heroku restart takes longer anyway).
    await asyncio.sleep(fake.retry_after_watch.remaining())


async def kill_point(rng: random.Random, stop_moves: StopMoves, move_stop: bool,
                     log_path: Path) -> list[str]:
    """Wait for the kill's random moment. When `move_stop` the operator moves the stop
    meanwhile (/sl), and the kill comes within KILL_AFTER_PRESS seconds of the button press
    (before or after the reply) or of the reply (the old stop is cancelled on the next tick:
    often before that). A violation if the agent did not answer the command: it names the
    update's way to the agent (tests/fakes/telegram_updates.py) and the agent's log."""
    if not move_stop:
        await asyncio.sleep(rng.uniform(0.2, 2.5))
        return []
    after_the_reply = rng.random() < 0.5
    move = asyncio.create_task(stop_moves.move())
    try:
        if after_the_reply:
            await asyncio.wait({move}, timeout=MOVE_BOUND)
        else:
            await harness.eventually(lambda: stop_moves.pressed or move.done(), MOVE_BOUND)
        await asyncio.sleep(rng.uniform(0.0, KILL_AFTER_PRESS))
    finally:
        move.cancel()
        await asyncio.wait({move})
    failed = None if move.cancelled() else move.exception()
    if isinstance(failed, AssertionError):
        return [f"/sl went unanswered: {failed}\nthe agent's log (UTC times): {log_path}"]
    if failed is not None:
        raise failed
    return []


async def kill(process: asyncio.subprocess.Process) -> list[str]:
    """SIGKILL the agent; a violation if it had exited by itself before (it never may)."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):   # exited just now: wait() tells how
            process.send_signal(signal.SIGKILL)
    code = await process.wait()
    return [] if code == -signal.SIGKILL else [f"agent exited by itself with code {code}"]


async def test_agent_survives_random_kills_and_wiped_disks(tmp_path):
    started = time.monotonic()
    rng = random.Random(SEED)
    counts, tally = Counts(), invariants.Tally()
    log_path = tmp_path / "agent.log"
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}, flat_orders=FLAT_ORDERS,
                           algo_api=ALGO_API == "on", trigger_events=TRIGGER_EVENTS) as fake, \
            FakeTelegram() as telegram:
        market = Market(fake, rng, SYMBOL)
        stop_moves = StopMoves(fake, telegram, market, random.Random(f"{SEED}:sl"), SYMBOL)
        checker = Checker(fake, tally, counts, stop_moves)
        for _ in range(40):
            await market.push()              # history for the strategy's warm-up
        mover = asyncio.create_task(market.run(every=0.15))
        db_path = tmp_path / "run0" / "tradebot.db"
        db_path.parent.mkdir()
        process: asyncio.subprocess.Process | None = None
        read_only: ReadOnlyDatabase | None = None
        try:
            for cycle, kind in enumerate(fault_schedule(rng, KILLS)):
                if cycle and rng.random() < 0.3:
                    db_path = tmp_path / f"run{cycle}" / "tradebot.db"   # a wiped disk
                    db_path.parent.mkdir()
                    counts.fresh_db += 1
                elif cycle:
                    counts.same_db += 1
                move_stop = rng.random() < MOVE_SHARE
                process = await boot_and_check(fake, db_path, log_path, checker, move_stop)
                assert not tally.violations, "\n".join(tally.violations)
                read_only = ReadOnlyDatabase(db_path)
                await fault_then_kill(fake, process, kind, rng, read_only, checker, move_stop,
                                      log_path)
            # A last clean run: everything must reconcile, and SIGTERM ends it with 0.
            process = await boot_and_check(fake, db_path, log_path, checker)
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 25) == 0
        finally:
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
            if read_only is not None:
                read_only.stop()
            mover.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await mover
    report(fake, counts, tally, market, stop_moves, log_path, time.monotonic() - started)
    assert not tally.violations, "\n".join(tally.violations)
    assert counts.kills >= min(KILLS, 30)
    if KILLS >= 20:
        accepted = fake.accepted_orders
        assert sum("-en" in c for c in accepted) >= 3 and sum("-sl" in c for c in accepted) >= 3, \
            "the run must actually trade to prove anything"
        assert fake.requests(CANCEL), "the run must cancel orders"
        assert fake.retry_after_watch.windows, "the run must meet Retry-After windows"


def report(fake: FakeBinance, counts: Counts, tally: invariants.Tally, market: Market,
           stop_moves: StopMoves, log_path: Path, seconds: float) -> None:
    accepted = fake.accepted_orders
    cancels = len(fake.requests("DELETE /fapi/v1/algoOrder")
                  + fake.requests("DELETE /fapi/v1/order"))
    algo_paths = sum(r.path in faults.ALGO_PATHS for r in fake.request_log)
    print(f"\nchaos: seed={SEED} flat_orders={FLAT_ORDERS} algo_api={ALGO_API} "
          f"trigger_events={TRIGGER_EVENTS} "
          f"algo_requests={algo_paths} kills={counts.kills} "
          f"restarts_same_db={counts.same_db} restarts_empty_db={counts.fresh_db} "
          f"read_only_db={counts.read_only} (under /sl {counts.read_only_under_sl}) "
          f"save_failures_seen={log_path.read_text().count('SAVE_STATE_FAILURE')} "
          f"candles={market.pushed} orders={len(accepted)} "
          f"entries={sum('-en' in c for c in accepted)} stops={sum('-sl' in c for c in accepted)} "
          f"cancels_sent={cancels} fills={len(fake.sim.fills(SYMBOL))} "
          f"retry_after_windows={fake.retry_after_watch.windows} "
          f"requests_inside_retry_after={fake.retry_after_watch.count}\n"
          f"chaos: faults {dict(sorted(counts.faults.items()))}\n"
          f"chaos: /sl {dict(sorted(stop_moves.outcomes.items()))} "
          f"moved_stops_checked={stop_moves.checked} funding={market.funding_charges}\n"
          f"chaos: boot s median={statistics.median(counts.boot_seconds):.1f} "
          f"max={max(counts.boot_seconds):.1f}; settle s "
          f"median={statistics.median(counts.settle_seconds):.1f} "
          f"max={max(counts.settle_seconds):.1f} unsettled={counts.unsettled}; "
          f"invariant_checks={tally.checks} violations={len(tally.violations)} "
          f"took={seconds:.0f} s")


# --- the checker's self-tests: planted bugs it must catch ----------------------------------

async def test_checker_catches_a_planted_duplicate_from_intents_written_after_sending(tmp_path):
    """The planted bug: an agent that records its intent only after sending, killed in
    between, re-sends the same entry on restart. The checker must flag it."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        async with harness.started_exchange(fake) as exchange:
            entry = harness.market(Side.BUY, "0.010")
            await exchange.place(entry)    # sent; "crash" before journaling
            await exchange.place(entry)    # restart: no intent -> sent again
        found = invariants.duplicate_orders(fake.accepted_orders)
        assert found and "accepted 2 times" in found[0]
        assert invariants.naked_positions(fake.sim), "a position without a stop is flagged"


async def test_checker_catches_a_planted_request_inside_retry_after(monkeypatch):
    """The planted bug: a gate that forgets its circuit asks again right after a 429 with
    Retry-After. The fake counts the request, and the checker flags it."""
    monkeypatch.setattr(RequestGate, "_check_circuit", lambda self, action: None)
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        async with harness.started_exchange(fake) as exchange:
            fake.inject_fault("GET /fapi/v3/positionRisk", code=-1003, http_status=429,
                              retry_after=30)
            with pytest.raises(ExchangeError, match="Too many"):       # the 429 itself
                await exchange.position(SYMBOL)
            await exchange.position(SYMBOL)                    # inside the window
        violations = fake.retry_after_watch.violations
    found = invariants.requests_inside_retry_after(violations)
    assert len(found) == 1
    assert "GET /fapi/v3/positionRisk" in found[0] and "Retry-After 30" in found[0]
    signed_after = violations[0].signed_after_ms
    assert signed_after is not None and signed_after > -50, "signed after the 429 came back"


async def test_checker_counts_nothing_when_the_agent_waits_out_retry_after():
    """No false alarm: the real gate refuses locally inside the window, and the first request
    after it is not counted."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        async with harness.started_exchange(fake) as exchange:
            fake.inject_fault("GET /fapi/v1/ticker/bookTicker", code=-1003, http_status=429,
                              retry_after=1)
            with pytest.raises(ExchangeError, match="Too many"):
                await exchange.book_ticker(SYMBOL)
            with pytest.raises(CircuitOpen):
                await exchange.book_ticker(SYMBOL)
            assert await harness.eventually(lambda: fake.retry_after_watch.remaining() == 0, 5.0)
            assert await harness.eventually(
                lambda: not exchange.circuit().is_open(datetime.now(UTC)), 5.0)
            await exchange.book_ticker(SYMBOL)
    assert fake.retry_after_watch.windows == 1
    assert fake.retry_after_watch.violations == []


async def test_checker_flags_fills_missing_from_the_database_and_stuck_alerts(tmp_path):
    from storage import Store
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
        store = Store.open(tmp_path / "t.db")
        store.enqueue_alert(datetime.now(UTC) - timedelta(minutes=1), "SL_MISSING", "CRITICAL",
                            SYMBOL, "k", "text")
        store.close()
        assert invariants.unrecorded_fills(fake.sim, SYMBOL, tmp_path / "t.db", 1)
        assert invariants.undelivered_alerts(tmp_path / "t.db", datetime.now(UTC))
        assert not invariants.settled(fake.sim, [SYMBOL]), "a naked position is not settled"


async def test_checker_catches_a_moved_stop_back_at_an_older_level_or_two_stops():
    """The planted bugs: a restart that kept the stop from before an acknowledged /sl (an
    older level), then one that kept both stops. The checker must flag both."""
    from tests.chaos.stop_moves import MovedStop

    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        async with harness.started_exchange(fake) as exchange:
            await exchange.place(harness.market(Side.BUY, "0.010"))
            await exchange.place(harness.stop_loss(Side.SELL, "49000", "0.010", 1, False))   # before /sl
            moves = StopMoves(fake, FakeTelegram(), Market(fake, random.Random(1), SYMBOL),
                              random.Random(1), SYMBOL)
            old = {harness.client_id(OrderRole.STOP_LOSS, 1)}
            moves.moved = MovedStop(harness.POSITION_KEY, Side.BUY, {Decimal("49500")},
                                    old)                         # /sl 49500 acknowledged
            found = moves.violations()
            assert found and "an order from before the move outlived it" in found[0], found
            await exchange.place(harness.stop_loss(Side.SELL, "49500", "0.010", 2, False))
            assert "2 live stop-losses" in " ".join(invariants.not_one_stop(fake.sim))
            moves.moved = MovedStop(harness.POSITION_KEY, Side.BUY, {Decimal("49500")}, old)
            assert moves.violations() == [], "two stops: EXTRA_STOP's, not this check's"


async def test_a_move_the_agent_did_not_make_is_kept_as_refused():
    """A /sl the agent answered without moving (refused, or the exchange's trouble: "/sl not
    done: ...") keeps its level as one the stop must never be at; the record of a pressed
    move took the evidence list for the refused levels, and the first refusal of a chaos
    run raised AttributeError in the harness (seen in CI)."""
    from tests.fakes.telegram_objects import SentItem

    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        moves = StopMoves(fake, FakeTelegram(), Market(fake, random.Random(1), SYMBOL),
                          random.Random(1), SYMBOL)
        level = Decimal("49500")
        moves._pressing(harness.POSITION_KEY, Side.BUY, Decimal("49000"), level)
        moves._answered(level, SentItem("sendMessage", 1, plain=(
            "Stop-loss: failed\n/sl not done: the exchange answered with an error (HTTP 400)")))
        assert moves.moved is not None and moves.moved.refused == {level}
        assert moves.moved.allowed == {Decimal("49000")}
        assert sum(count for outcome, count in moves.outcomes.items()
                   if outcome.startswith("refused")) == 1
