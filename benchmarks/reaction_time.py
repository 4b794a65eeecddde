"""Reaction times end to end: `tradebot run` as a subprocess, the real python-binance and
python-telegram-bot clients, the fake Binance and fake Telegram servers on 127.0.0.1.

Measured (p50/p95 over --rounds), with the user-data stream on and off (polling only):
  boot to protected    existing unprotected position, empty database -> stop-loss placed
  stop fill -> alert   price through the stop on the exchange -> CLOSE alert in Telegram
  /status -> reply     command injected -> reply sent
  stop re-attach       hand-cancelled stop -> new stop placed, at the default debounce (the
                       exchange confirms the cancel, so no debounce applies; the same figure
                       with the engine in process, in p95 and ticks: protection_timing.py)
The agent runs with its defaults (TRADEBOT_TICK_SECONDS 2 s); "polling only" points its
streams at a closed port, as when Binance's streams are down.

Usage: python benchmarks/reaction_time.py [--rounds 5]
"""

import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common import quiet_logs, script_parser  # noqa: E402

from tests.fakes.binance_server import FakeBinance  # noqa: E402
from tests.fakes.telegram_server import FakeTelegram  # noqa: E402
from trader.domain import Side  # noqa: E402

SYMBOL = "BTCUSDT"
CHAT = 4242


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def wait_until(predicate, timeout: float = 30.0) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if predicate():
            return time.perf_counter() - started
        await asyncio.sleep(0.005)
    raise TimeoutError("condition not reached")


def agent_env(fake: FakeBinance, telegram: FakeTelegram, db: Path, streams: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEBOT_", "TELEGRAM_"))}
    env.update({
        "TRADEBOT_EXCHANGE": "binance", "BINANCE_API_KEY": fake.api_key,
        "BINANCE_API_SECRET": fake.api_secret, "BINANCE_FUTURES_URL": fake.url,
        # polling only: point the streams at a closed port
        "BINANCE_FUTURES_WS_URL": fake.ws_url if streams else "ws://127.0.0.1:9/",
        "TRADEBOT_SYMBOLS": SYMBOL, "TRADEBOT_DB": str(db), "TRADEBOT_TICK_SECONDS": "2",
        "TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_ALLOWED_CHAT_IDS": str(CHAT),
        "TELEGRAM_API_URL": telegram.api_url, "LOG_LEVEL": "WARNING"})
    return env


async def one_round(streams: bool, workdir: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake, FakeTelegram() as telegram:
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trader", "run", cwd=REPO,
            env=agent_env(fake, telegram, workdir / f"t{time.monotonic_ns()}.db", streams),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            await wait_until(lambda: any(r.params.get("type") == "STOP_MARKET"
                                         for r in fake.requests("POST /fapi/v1/algoOrder")))
            figures["boot_to_protected"] = time.perf_counter() - started
            await wait_until(lambda: any("started" in (i.plain or "") for i in telegram.sent))

            since = len(telegram.sent)
            telegram.inject_message(CHAT, CHAT, "/status")
            figures["status_reply"] = await wait_until(
                lambda: any(i.method == "sendMessage" and "quity" in (i.plain or "")
                            for i in telegram.sent[since:]))

            stop = next(o for o in fake.sim.open_orders(SYMBOL) if o.type.value == "STOP_MARKET")
            posts = len(fake.requests("POST /fapi/v1/algoOrder"))
            await fake.cancel_order_by_hand(SYMBOL, stop.client_id)
            figures["stop_reattach"] = await wait_until(
                lambda: len(fake.requests("POST /fapi/v1/algoOrder")) > posts)

            stop = next(o for o in fake.sim.open_orders(SYMBOL) if o.type.value == "STOP_MARKET")
            since = len(telegram.sent)
            moved = time.perf_counter()
            await fake.move_price(SYMBOL, stop.trigger_price - Decimal("100"))
            await wait_until(lambda: any("STOP_LOSS" in (i.plain or "") for i in telegram.sent[since:]))
            figures["stop_fill_to_alert"] = time.perf_counter() - moved
        finally:
            process.terminate()
            await process.wait()
    return figures


async def main(rounds: int) -> None:
    quiet_logs("WARNING")     # the fake server's own log lines (the agent logs in its process)
    # Each round ends by terminating the agent, sometimes in the middle of a Bot API request:
    # the fake Telegram's aiohttp server would print that lost connection as a traceback.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for streams in (True, False):
            for _ in range(rounds):
                results[streams].append(await one_round(streams, Path(tmp)))
    names = ["boot_to_protected", "status_reply", "stop_reattach", "stop_fill_to_alert"]
    goals = {"boot_to_protected": "< 3 s", "stop_fill_to_alert": "< 0.5 s (streams)",
             "status_reply": "< 1 s", "stop_reattach": "-"}
    print(f"{'figure':<22}{'streams p50':>13}{'p95':>9}{'polling p50':>13}{'p95':>9}   goal")
    for name in names:
        cells = []
        for streams in (True, False):
            values = [r[name] for r in results[streams]]
            cells += [statistics.median(values), percentile(values, 0.95)]
        print(f"{name:<22}" + "".join(f"{v:>12.3f}s" if i % 2 == 0 else f"{v:>8.3f}s"
                                      for i, v in enumerate(cells)) + f"   {goals[name]}")
    fill = [r["stop_fill_to_alert"] for r in results[True]]
    print(f"stop fill -> Telegram alert with streams: p50 {statistics.median(fill) * 1000:.0f} ms, "
          f"p95 {percentile(fill, 0.95) * 1000:.0f} ms (goal < 500 ms)")


if __name__ == "__main__":
    parser = script_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args().rounds))
