"""Soak: `tradebot run` for --minutes (default 10) of mixed faults, after a fault-free baseline
segment in the same run, against the fake Binance and the fake Telegram Bot API (both in this
process, on 127.0.0.1), driven by the real python-binance and python-telegram-bot clients.

Prices move by closed 1m candles (tests/chaos/market.py: warm-up history first, then one
candle a minute as each closes, as on Binance); the agent trades every candle
(tests/chaos/strategy.py). The fault segment injects, on a schedule: 503 bursts on reads,
429 with Retry-After on any path (and on reads), malformed answers and user-data events,
hand-cancelled stops, a tick-size change (and back), a liquidation, a hand close, and the
database made read-only for 30 s (tests/chaos/faults.py, tests/chaos/agent.py).

Prints, for the baseline and the fault segment: requests inside Retry-After windows (must be
0), agent exits (must be 0: the process never died), naked position-seconds (an open position
on the exchange without a live stop-loss, sampled every 100 ms), REST requests, alerts
sent to Telegram by name, and the /status reply time. Exits non-zero if a must-be-zero figure
is not zero or SIGTERM does not end the agent with 0.

Usage: python benchmarks/soak.py [--minutes 10] [--baseline-minutes 1] [--seed 7]
                                 [--algo-api on|off]
(--algo-api off: a Binance without the Algo Order API, stops and targets on /fapi/v1/order.)
"""

import argparse
import asyncio
import contextlib
import random
import re
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from loguru import logger  # noqa: E402 - after the sys.path fix on purpose

from tests.chaos import faults, invariants  # noqa: E402
from tests.chaos.agent import (  # noqa: E402
    ReadOnlyDatabase,
    agent_env,
    start_agent,
    wait_for_boot,
)
from tests.chaos.market import Market  # noqa: E402
from tests.fakes.binance_server import FakeBinance  # noqa: E402
from tests.fakes.telegram_server import FakeTelegram, SentItem  # noqa: E402

PRICES = {"BTCUSDT": Decimal("50000"), "ETHUSDT": Decimal("3000")}
CHAT = 4242
SAMPLE_EVERY = 0.1                 # seconds between naked-position samples
MIXED_EVERY = 20.0                 # seconds between the rotating faults
MIXED = ("read-503-burst", "any-429", "malformed-event", "cancel-stop", "malformed-answer",
         "read-429")
RETRY_AFTER = (2, 10)              # seconds announced with 429 / 418
BOOT_BOUND, REPLY_BOUND, POSITION_BOUND = 180.0, 60.0, 30.0   # bounds of condition waits
AGENT_SETTINGS = {"TRADEBOT_TICK_SECONDS": "2", "TRADEBOT_RECONCILE_SECONDS": "60",
                  "TRADEBOT_SENTINEL_DEBOUNCE_SECONDS": "2",
                  "TRADEBOT_SENTINEL_DEBOUNCE_CYCLES": "2", "TRADEBOT_COOLDOWN_MINUTES": "0",
                  "TRADEBOT_MAX_POSITION_PCT": "0.3"}   # room for both symbols' positions
# An alert's first line (bot/format.py): "ℹ️ NAME", "⚠️ NAME · SYMBOL", "🚨🚨 CRITICAL: NAME 🚨🚨"
ALERT_TITLE = re.compile(r"^\S+ (?:CRITICAL: )?([A-Z][A-Z_]{2,})(?: · [A-Z0-9]+)?(?: \S+)?$")
PUBLISHED = re.compile(r": alert name=([A-Z_]+) severity=")


@dataclass
class Segment:
    """The figures of one stretch of the run (indices into the fakes' logs at its start)."""
    name: str
    requests_from: int
    sent_from: int
    windows_from: int
    violations_from: int
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    naked_seconds: float = 0.0
    longest_naked: float = 0.0
    faults: Counter[str] = field(default_factory=Counter)
    exits: int = 0
    status_reply: float | None = None
    violations: list[object] = field(default_factory=list)   # requests inside Retry-After
    windows: int = 0
    requests: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)
    cancels: int = 0
    alerts: Counter[str] = field(default_factory=Counter)


class Soak:
    def __init__(self, fake: FakeBinance, telegram: FakeTelegram, workdir: Path,
                 rng: random.Random, read_only_shm: bool) -> None:
        self.fake, self.telegram, self.workdir, self.rng = fake, telegram, workdir, rng
        self.db_path, self.log_path = workdir / "tradebot.db", workdir / "agent.log"
        self.read_only = ReadOnlyDatabase(self.db_path, include_shm=read_only_shm)
        self.process: asyncio.subprocess.Process | None = None
        self.segment = self.new_segment("boot")
        self.segments: list[Segment] = []
        self.exits = 0
        self._stretch: Counter[str] = Counter()

    def new_segment(self, name: str) -> Segment:
        watch = self.fake.retry_after_watch
        return Segment(name, len(self.fake.request_log), len(self.telegram.sent),
                       watch.windows, watch.count)

    # --- the agent ------------------------------------------------------------------
    async def boot(self) -> float:
        env = agent_env(self.fake, self.db_path, ",".join(PRICES), **AGENT_SETTINGS,
                        TELEGRAM_BOT_TOKEN=self.telegram.token,
                        TELEGRAM_ALLOWED_CHAT_IDS=str(CHAT),
                        TELEGRAM_API_URL=self.telegram.api_url)
        self.process = await start_agent(env, self.log_path)
        return await wait_for_boot(self.log_path, 0, self.process, BOOT_BOUND)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def shut_down(self) -> tuple[int | None, float]:
        """SIGTERM; the exit code (None if it did not exit within 25 s) and the seconds."""
        assert self.process is not None
        started = time.monotonic()
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.process.wait(), 25)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            code = None
        return code, time.monotonic() - started

    # --- sampling -------------------------------------------------------------------
    async def sample_forever(self) -> None:
        """Every 100 ms: which open positions have no live stop-loss; is the agent alive."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(SAMPLE_EVERY)
            now = time.monotonic()
            elapsed, last = now - last, now
            sim = self.fake.sim
            naked = {p.symbol for p in invariants.open_positions(sim)
                     if not invariants.live_stop_losses(sim, p)}
            for symbol in PRICES:
                self._stretch[symbol] = self._stretch[symbol] + elapsed if symbol in naked else 0
            self.segment.naked_seconds += elapsed * len(naked)
            self.segment.longest_naked = max(self.segment.longest_naked,
                                             *self._stretch.values(), 0.0)
            if self.process is not None and self.process.returncode is not None \
                    and not self.exits:
                self.exits = self.segment.exits = 1

    async def run_segment(self, name: str, seconds: float, faulty: bool) -> Segment:
        self.segment = self.new_segment(name)
        deadline = self.segment.started + seconds
        if faulty:
            await self.inject_on_schedule(seconds, deadline)
        while self.alive and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        if self.alive:
            self.segment.status_reply = await self.status_reply()
        self.close_segment()
        return self.segment

    def close_segment(self) -> None:
        segment, fake, watch = self.segment, self.fake, self.fake.retry_after_watch
        segment.seconds = time.monotonic() - segment.started
        requests = fake.request_log[segment.requests_from:]
        sent = self.telegram.sent[segment.sent_from:]
        segment.violations = list(watch.violations[segment.violations_from:])
        segment.windows = watch.windows - segment.windows_from
        segment.requests = len(requests)
        segment.by_endpoint = Counter(f"{r.method} {r.path}" for r in requests)
        segment.cancels = sum(1 for r in requests if r.method == "DELETE"
                              and r.path in ("/fapi/v1/algoOrder", "/fapi/v1/order"))
        segment.alerts = alert_names(sent)
        self.segments.append(segment)

    async def status_reply(self) -> float | None:
        """Seconds from /status to its answer in Telegram (None: no answer within the bound)."""
        since = len(self.telegram.sent)
        asked = time.monotonic()
        self.telegram.inject_message(CHAT, CHAT, "/status")
        try:
            await self.telegram.wait_for(lambda item: item.method == "sendMessage"
                                         and "quity" in (item.plain or ""), REPLY_BOUND, since)
        except AssertionError:
            return None
        return time.monotonic() - asked

    # --- faults ---------------------------------------------------------------------
    def schedule(self, seconds: float) -> list[tuple[float, str]]:
        """(offset in seconds, fault) for a fault segment of `seconds`."""
        steps = int(seconds // MIXED_EVERY)
        events = [(MIXED_EVERY * (n + 0.5), MIXED[n % len(MIXED)]) for n in range(steps)]
        events += [(seconds * 0.20, "tick-size"), (seconds * 0.70, "tick-size-back"),
                   (seconds * 0.35, "read-only-db"), (seconds * 0.50, "liquidation"),
                   (seconds * 0.85, "close-by-hand")]
        return sorted(events)

    async def inject_on_schedule(self, seconds: float, deadline: float) -> None:
        for offset, kind in self.schedule(seconds):
            await asyncio.sleep(max(0.0, self.segment.started + offset - time.monotonic()))
            if not self.alive or time.monotonic() >= deadline:
                return
            done = await self.inject(kind, deadline)
            self.segment.faults[kind if faults.IDLE not in done else f"{kind} {faults.IDLE}"] += 1
            print(f"  {time.monotonic() - self.segment.started:6.1f} s  {done}", flush=True)

    async def inject(self, kind: str, deadline: float) -> str:
        symbol = self.rng.choice(sorted(PRICES))
        if kind == "tick-size-back":
            for name in PRICES:
                faults.restore_rules(self.fake, name)
            return "tick sizes back to the defaults"
        if kind == "read-only-db":
            seconds = min(30.0, max(5.0, deadline - time.monotonic() - 5.0))
            how = self.read_only.start()
            if not how:
                return f"{kind} {faults.IDLE} (neither chattr nor a write lock)"
            asyncio.get_running_loop().call_later(seconds, self.read_only.stop)
            return f"{kind} for {seconds:.0f} s ({how})"
        if kind in faults.NEEDS_A_STOP:
            symbol = await self.symbol_with_a_stop(deadline) or symbol
        return await faults.inject(self.fake, kind, self.rng, symbol, retry_after=RETRY_AFTER)

    async def symbol_with_a_stop(self, deadline: float) -> str | None:
        """A symbol whose position has a stop of ours, waiting for one up to POSITION_BOUND
        (or the segment's end)."""
        bound = min(time.monotonic() + POSITION_BOUND, deadline - 2.0)
        while time.monotonic() < bound:
            found = [s for s in sorted(PRICES) if faults.our_stops(self.fake, s)]
            if found:
                return self.rng.choice(found)
            await asyncio.sleep(0.1)
        return None

    # --- alerts at the end ----------------------------------------------------------
    def undelivered_alerts(self) -> tuple[int, int]:
        """Alerts the agent published (its log) but Telegram never got, and alerts still
        pending in the outbox (delivered on the next start, not lost)."""
        published = Counter(PUBLISHED.findall(self.log_path.read_text(errors="replace")))
        delivered = alert_names(self.telegram.sent)
        missing = sum(max(0, n - delivered[name]) for name, n in published.items())
        with contextlib.closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)) as db:
            pending = db.execute("SELECT count(*) FROM alerts WHERE status = 'pending'")
            return missing, int(pending.fetchone()[0])


def alert_names(sent: list[SentItem]) -> Counter[str]:
    """Alerts among the messages sent, by name (the first line of an alert names it)."""
    names: Counter[str] = Counter()
    for item in sent:
        if item.method != "sendMessage" or not item.plain:
            continue
        found = ALERT_TITLE.match(item.plain.splitlines()[0])
        if found:
            names[found.group(1)] += 1
    return names


def print_figures(segments: list[Segment], shutdown: tuple[int | None, float],
                  undelivered: tuple[int, int], log_path: Path) -> bool:
    """The figures table; True when every must-be-zero figure is zero."""
    def row(name: str, values: list[object], must: str = "") -> None:
        print(f"{name:<42}" + "".join(f"{v!s:>12}" for v in values) + f"   {must}")

    print(f"\n{'figure':<42}" + "".join(f"{s.name:>12}" for s in segments) + "   must be")
    row("requests inside Retry-After windows", [len(s.violations) for s in segments], "0")
    row("agent exits (the process died)", [s.exits for s in segments], "0")
    row("minutes", [f"{s.seconds / 60:.1f}" for s in segments])
    row("naked position-seconds (100 ms samples)", [f"{s.naked_seconds:.1f}" for s in segments])
    row("longest naked stretch, s", [f"{s.longest_naked:.1f}" for s in segments])
    row("REST requests", [s.requests for s in segments])
    row("REST requests per minute", [f"{s.requests / (s.seconds / 60):.0f}" for s in segments])
    row("cancels sent", [s.cancels for s in segments])
    row("Retry-After windows announced", [s.windows for s in segments])
    row("faults injected", [sum(s.faults.values()) for s in segments])
    row("alerts sent to Telegram", [sum(s.alerts.values()) for s in segments])
    row("/status answered in, s", [f"{s.status_reply:.2f}" if s.status_reply is not None
                                   else "no answer" for s in segments])
    for segment in segments:
        names = ", ".join(f"{name} {count}" for name, count in sorted(segment.alerts.items()))
        print(f"alerts by name, {segment.name}: {names or '-'}")
        top = ", ".join(f"{name} {n}" for name, n in segment.by_endpoint.most_common(6))
        print(f"requests by endpoint, {segment.name}: {top or '-'}")
        if segment.faults:
            print(f"faults, {segment.name}: "
                  + ", ".join(f"{kind} {n}" for kind, n in sorted(segment.faults.items())))
        for violation in segment.violations[:10]:
            print(f"  inside Retry-After: {violation}")
    code, seconds = shutdown
    print(f"alerts published but never delivered: {undelivered[0]} "
          f"(still pending in the outbox: {undelivered[1]})")
    print(f"SIGTERM: exit {code} in {seconds:.1f} s; agent log {log_path}")
    return not any(s.violations or s.exits for s in segments) and code == 0


async def soak(minutes: float, baseline_minutes: float, seed: int, read_only_shm: bool,
               workdir: Path, algo_api: bool = True) -> int:
    logger.remove()                       # the fakes' own log: warnings only
    logger.add(sys.stderr, level="WARNING")
    rng = random.Random(seed)
    async with FakeBinance(prices=PRICES, flat_orders="keep", algo_api=algo_api) as fake, \
            FakeTelegram() as telegram:
        markets = [Market(fake, random.Random(f"{seed}:{s}"), s, p, timedelta(minutes=45))
                   for s, p in PRICES.items()]
        for market in markets:
            for _ in range(44):
                await market.push()     # warm-up history; the last candle closed ~1 min ago
        run = Soak(fake, telegram, workdir, rng, read_only_shm)
        tasks = [asyncio.create_task(m.run(every=1.0)) for m in markets]
        tasks.append(asyncio.create_task(run.sample_forever()))
        try:
            booted = await run.boot()
            print(f"soak: agent booted in {booted:.1f} s; Algo Order API {'on' if algo_api else 'off'}; "
                  f"baseline {baseline_minutes} min, "
                  f"then {minutes} min of faults; seed {seed}; log {run.log_path}", flush=True)
            await run.run_segment("baseline", baseline_minutes * 60, faulty=False)
            await run.run_segment("faults", minutes * 60, faulty=True)
            shutdown = await run.shut_down()
        except AssertionError as exc:       # the agent exited or never booted
            print(f"soak: {exc}")
            return 1
        finally:
            run.read_only.stop()
            if run.alive:
                assert run.process is not None
                run.process.kill()
                await run.process.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    ok = print_figures(run.segments, shutdown, run.undelivered_alerts(), run.log_path)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="fault segment length")
    parser.add_argument("--baseline-minutes", type=float, default=1.0,
                        help="fault-free segment before it")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--read-only-shm", action="store_true",
                        help="make the WAL's -shm immutable too (kills the agent with SIGBUS "
                             "until storage/ stops memory-mapping it)")
    parser.add_argument("--algo-api", choices=("on", "off"), default="on",
                        help="off: the fake Binance has no Algo Order API (HTTP 404 there)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="for the agent's database and log (default: a new /tmp dir, kept)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tradebot-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(soak(args.minutes, args.baseline_minutes, args.seed, args.read_only_shm,
                            workdir, args.algo_api == "on"))


if __name__ == "__main__":
    sys.exit(main())
