"""Chaos: `tradebot run` as a subprocess against the fake Binance server, killed with
SIGKILL at seeded random points and restarted, sometimes on the same database and
sometimes on an empty one (a wiped Heroku disk), while prices move and faults are
injected. After every restart the invariants of tests/chaos/invariants.py must hold.

Size: TRADEBOT_CHAOS_KILLS (default 30), seed: TRADEBOT_CHAOS_SEED (default 7).
"""

import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.chaos import invariants
from tests.fakes.binance_server import FakeBinance
from trader.domain import Candle, Side

SYMBOL = "BTCUSDT"
REPO = Path(__file__).resolve().parents[2]
KILLS = int(os.environ.get("TRADEBOT_CHAOS_KILLS", "30"))
SEED = int(os.environ.get("TRADEBOT_CHAOS_SEED", "7"))
BOOT_TIMEOUT = 20.0
SETTLE = 3.2          # > sentinel debounce (1 s) + 2 cycles of 1 s ticks

pytestmark = pytest.mark.chaos


@dataclass
class Counts:
    kills: int = 0
    same_db: int = 0
    fresh_db: int = 0
    faults: int = 0
    read_only: int = 0


class Market:
    """Moves the fake exchange's price one closed 1m candle at a time (seeded walk)."""

    def __init__(self, fake: FakeBinance, rng: random.Random) -> None:
        self.fake = fake
        self.rng = rng
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        # candle times run from a day ago: fills stay inside the boot pass's 2-day look-back
        self.next_open = now - timedelta(days=1)
        self.price = Decimal("50000")
        self.pushed = 0

    async def push(self) -> None:
        move = Decimal(str(self.rng.gauss(0, 0.0035)))
        close = (self.price * (1 + move)).quantize(Decimal("0.1"))
        wick = Decimal(str(abs(self.rng.gauss(0, 0.0015)))) * self.price
        high = (max(self.price, close) + wick).quantize(Decimal("0.1"))
        low = (min(self.price, close) - wick).quantize(Decimal("0.1"))
        candle = Candle(SYMBOL, self.next_open, timedelta(minutes=1), self.price, high, low,
                        close, Decimal("12"))
        await self.fake.push_candle(candle)
        self.price = close
        self.next_open += timedelta(minutes=1)
        self.pushed += 1

    async def run(self, every: float) -> None:
        while True:
            await self.push()
            await asyncio.sleep(every)


def agent_env(fake: FakeBinance, db_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEBOT_", "TELEGRAM_"))}
    env.update({
        "TRADEBOT_EXCHANGE": "binance", "BINANCE_API_KEY": fake.api_key,
        "BINANCE_API_SECRET": fake.api_secret, "BINANCE_FUTURES_URL": fake.url,
        "BINANCE_FUTURES_WS_URL": fake.ws_url, "TRADEBOT_SYMBOLS": SYMBOL,
        "TRADEBOT_DB": str(db_path), "TRADEBOT_TICK_SECONDS": "1.0",
        "TRADEBOT_STRATEGY": "tests.chaos.strategy:EveryFewCandles",
        "TRADEBOT_COOLDOWN_MINUTES": "0", "TRADEBOT_SENTINEL_DEBOUNCE_SECONDS": "1",
        "TRADEBOT_SENTINEL_DEBOUNCE_CYCLES": "2", "TRADEBOT_RECONCILE_SECONDS": "3",
        "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
    })
    return env


async def start_agent(env: dict[str, str], log_path: Path) -> asyncio.subprocess.Process:
    log = log_path.open("ab")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "trader", "run", cwd=REPO, env=env,
        stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL)
    log.close()
    return process


async def wait_for_boot(log_path: Path, offset: int, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        text = log_path.read_bytes()[offset:].decode(errors="replace")
        if "boot reconciliation done" in text:
            return
        if process.returncode is not None:
            raise AssertionError(f"agent exited with {process.returncode}:\n{text[-3000:]}")
        await asyncio.sleep(0.05)
    raise AssertionError("agent did not finish boot reconciliation in time:\n" +
                         log_path.read_bytes()[offset:].decode(errors="replace")[-3000:])


def set_read_only(db_path: Path, read_only: bool) -> bool:
    """Make the agent's database files immutable (a disk gone read-only under a running
    agent; chmod does not stop root, `chattr +i` does). False where chattr is unavailable."""
    if shutil.which("chattr") is None:
        return False
    files = [p for p in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")) if p.exists()]
    result = subprocess.run(["chattr", "+i" if read_only else "-i", *map(str, files)],
                            capture_output=True, check=False)
    return result.returncode == 0


def inject_random_fault(fake: FakeBinance, rng: random.Random) -> str:
    choice = rng.choice(["none", "none", "margin", "unknown-stop", "busy", "rate-limit",
                         "streams", "read-error"])
    if choice == "margin":
        fake.inject_fault("POST /fapi/v1/order", code=-2019, times=1)
    elif choice == "unknown-stop":
        fake.inject_fault("POST /fapi/v1/algoOrder", http_status=503, times=1, execute=True)
    elif choice == "busy":
        fake.inject_fault("POST /fapi/v1/order", http_status=503, times=1,
                          execute=rng.random() < 0.5)
    elif choice == "rate-limit":
        fake.inject_fault("GET /fapi/v3/positionRisk", http_status=429, times=1, retry_after=1)
    elif choice == "read-error":
        fake.inject_fault("GET /fapi/v1/openOrders", code=-1001, times=2)
    return choice


def check_all(fake: FakeBinance, db_path: Path, booted_at: datetime, fills_at_boot: int,
              tally: invariants.Tally) -> None:
    sim = fake.sim
    tally.record(invariants.duplicate_orders(fake.accepted_orders))
    tally.record(invariants.naked_positions(sim))
    tally.record(invariants.orders_without_position(sim, [SYMBOL]))
    tally.record(invariants.unrecorded_fills(sim, SYMBOL, db_path, fills_at_boot))
    tally.record(invariants.undelivered_alerts(db_path, booted_at))


async def boot_and_check(fake: FakeBinance, db_path: Path, log_path: Path,
                         tally: invariants.Tally) -> asyncio.subprocess.Process:
    """Start the agent, wait for its boot reconciliation, let it settle, check everything."""
    offset = log_path.stat().st_size if log_path.exists() else 0
    booted_at = datetime.now(UTC)
    fills_at_boot = len(fake.sim.fills(SYMBOL))
    process = await start_agent(agent_env(fake, db_path), log_path)
    await wait_for_boot(log_path, offset, process)
    await asyncio.sleep(SETTLE)
    check_all(fake, db_path, booted_at, fills_at_boot, tally)
    return process


async def test_agent_survives_random_kills_and_wiped_disks(tmp_path):
    rng = random.Random(SEED)
    counts, tally = Counts(), invariants.Tally()
    log_path = tmp_path / "agent.log"
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        market = Market(fake, rng)
        for _ in range(40):
            await market.push()              # history for the strategy's warm-up
        mover = asyncio.create_task(market.run(every=0.15))
        db_path = tmp_path / "run0" / "tradebot.db"
        db_path.parent.mkdir()
        process: asyncio.subprocess.Process | None = None
        try:
            for cycle in range(KILLS):
                if cycle and rng.random() < 0.3:
                    db_path = tmp_path / f"run{cycle}" / "tradebot.db"   # a wiped disk
                    db_path.parent.mkdir()
                    counts.fresh_db += 1
                elif cycle:
                    counts.same_db += 1
                process = await boot_and_check(fake, db_path, log_path, tally)
                assert not tally.violations, "\n".join(tally.violations)
                if inject_random_fault(fake, rng) != "none":
                    counts.faults += 1
                if rng.random() < 0.15 and set_read_only(db_path, True):
                    counts.read_only += 1
                if rng.random() < 0.15:
                    await fake.drop_streams()
                await asyncio.sleep(rng.uniform(0.0, 1.5))
                process.send_signal(signal.SIGKILL)
                await process.wait()
                set_read_only(db_path, False)
                counts.kills += 1
                fake.clear_faults()
            # A last clean run: everything must reconcile, and SIGTERM ends it with 0.
            process = await boot_and_check(fake, db_path, log_path, tally)
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 25) == 0
        finally:
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
            set_read_only(db_path, False)
            mover.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await mover
    entries = sum(1 for c in fake.accepted_orders if "-en" in c)
    stops = sum(1 for c in fake.accepted_orders if "-sl" in c)
    fills = len(fake.sim.fills(SYMBOL))
    print(f"\nchaos: kills={counts.kills} restarts_same_db={counts.same_db} "
          f"restarts_empty_db={counts.fresh_db} faults={counts.faults} "
          f"read_only_db={counts.read_only} save_failures_seen={log_path.read_text().count('SAVE_STATE_FAILURE')} "
          f"candles={market.pushed} "
          f"orders={len(fake.accepted_orders)} entries={entries} stops={stops} fills={fills} "
          f"invariant_checks={tally.checks} violations={len(tally.violations)}")
    assert not tally.violations, "\n".join(tally.violations)
    assert counts.kills >= min(KILLS, 30)
    if KILLS >= 20:
        assert entries >= 3 and stops >= 3, "the run must actually trade to prove anything"


async def test_checker_catches_a_planted_duplicate_from_intents_written_after_sending(tmp_path):
    """The planted bug: an agent that records its intent only after sending, killed in
    between, re-sends the same entry on restart. The checker must flag it."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        from tests.fakes.binance_harness import market, started_exchange
        async with started_exchange(fake) as exchange:
            await exchange.place(market(Side.BUY, "0.010"))    # sent; "crash" before journaling
            await exchange.place(market(Side.BUY, "0.010"))    # restart: no intent -> sent again
        found = invariants.duplicate_orders(fake.accepted_orders)
        assert found and "accepted 2 times" in found[0]
        assert invariants.naked_positions(fake.sim), "a position without a stop is flagged"


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
