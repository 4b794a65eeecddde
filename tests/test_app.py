"""`tradebot run` as a process: heartbeat pings while it ticks, SIGTERM exits 0 quickly
with "going down, positions protected" on the way out."""

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from aiohttp import web

REPO = Path(__file__).resolve().parents[1]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEBOT_", "TELEGRAM_",
                                                                     "BINANCE_", "HEARTBEAT"))}
    env.update({"TRADEBOT_DB": str(tmp_path / "t.db"), **extra})
    return env


async def test_heartbeat_url_is_pinged_while_the_engine_ticks(tmp_path):
    pings: list[float] = []

    async def ping(request: web.Request) -> web.Response:
        pings.append(time.monotonic())
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/ping/abc", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trader", "run", "--replay", "--speed", "100000", cwd=tmp_path,
            env=clean_env(tmp_path, HEARTBEAT_URL=f"http://127.0.0.1:{port}/ping/abc"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        # Until the first ping, not to the end of the whole replay (10 s and more); then
        # SIGTERM, which still exits 0.
        deadline = time.monotonic() + 60
        while not pings and process.returncode is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 60) == 0
    finally:
        await runner.cleanup()
    assert pings, "the dead-man's switch was never pinged"


async def test_sigterm_stops_entries_says_going_down_and_exits_zero_fast(tmp_path):
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trader", "run", "--replay", "--speed", "30", cwd=tmp_path,
            env=clean_env(tmp_path), stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while b"tradebot started" not in log.read_bytes():
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        await asyncio.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    assert await asyncio.wait_for(process.wait(), 25) == 0
    assert time.monotonic() - sent < 25
    text = log.read_text()
    assert "going down, positions protected by exchange-side orders" in text
    assert "Traceback" not in text


async def test_an_unreachable_exchange_is_said_in_words_and_the_exit_says_nothing_traded(tmp_path):
    """Start-up alerts reach a phone: "cannot connect to host:port (Connection refused)", not
    the repr of aiohttp's connection key; going down before start-up finished does not claim
    positions protected by orders it never saw."""
    log = tmp_path / "agent.log"
    env = clean_env(tmp_path, TRADEBOT_EXCHANGE="binance", BINANCE_API_KEY="k" * 16,
                    BINANCE_API_SECRET="s" * 16, BINANCE_FUTURES_URL="http://127.0.0.1:9")
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trader", "run", cwd=tmp_path, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while b"exchange start-up failed" not in log.read_bytes():
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        await asyncio.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 25) == 0
    text = log.read_text()
    assert "exchange start-up failed: cannot connect to 127.0.0.1:9 (" in text, text[-3000:]
    assert "ConnectionKey" not in text.split("exchange start-up failed: ", 1)[1].splitlines()[0]
    assert "going down before start-up finished (exchange start-up did not finish)" in text
    assert "positions protected by exchange-side orders" not in text
