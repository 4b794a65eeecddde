"""The soak benchmark (benchmarks/soak.py) in a 1-minute smoke run: `tradebot run` against
the fake Binance and the fake Telegram, a fault-free baseline, then 45 s of mixed faults
(503 bursts, 429 with Retry-After, malformed answers and events, a tick-size change, a
liquidation, a hand close, a read-only database). Its must-be-zero figures must be zero:
no request inside a Retry-After window, no agent exit, and SIGTERM ends the agent with 0.
TRADEBOT_CHAOS_ALGO_API=off runs it against a Binance without the Algo Order API."""

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BOUND = 240.0        # seconds; a bound, not a wait: the run takes about 65 s

pytestmark = pytest.mark.chaos


async def test_a_one_minute_soak_keeps_every_must_be_zero_figure_at_zero(tmp_path):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "benchmarks/soak.py", "--minutes", "0.75", "--baseline-minutes",
        "0.15", "--workdir", str(tmp_path), "--algo-api",
        os.environ.get("TRADEBOT_CHAOS_ALGO_API", "on"), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), BOUND)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-4000:]
    assert re.search(r"requests inside Retry-After windows +0 +0 ", text), text[-4000:]
    assert re.search(r"agent exits \(the process died\) +0 +0 ", text), text[-4000:]
    assert "SIGTERM: exit 0 " in text
    assert re.search(r"faults injected +0 +([1-9]\d*) ", text), "the faults must be injected"
