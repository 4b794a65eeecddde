"""SIGTERM while the agent is still starting and Binance does not answer (a start-up read
that hangs: each attempt waits out its 10 s timeout, then the gate tries again). The host
kills the process 30 s after SIGTERM; it exited after 38 s, so the kill would have come
first and the "going down" message never been sent. Start-up steps now get the same
budget after a stop signal as the live loop (trader/stop_budget.py), then are cancelled
where they wait: nothing is lost that a kill would not lose (no trading has begun; boot's
order requests are written ahead like every other). Found by the outside judge: SIGTERM
at an awkward moment, with `tradebot run` as a process against the fake Binance."""

import asyncio
import signal
import time
from decimal import Decimal
from pathlib import Path

from tests.chaos.agent import agent_env, log_since, start_agent
from tests.fakes.binance_server import FakeBinance

PROMISED_EXIT = 25.0         # README, Deploying: "the process exits 0 within 25 s"


async def test_sigterm_while_a_start_up_read_hangs_exits_in_time(tmp_path: Path):
    async with FakeBinance(prices={"BTCUSDT": Decimal("50000")}) as fake:
        fake.inject_fault("GET /fapi/v3/positionRisk", delay=25.0, times=10)   # > the 10 s timeout
        log = tmp_path / "agent.log"
        agent = await start_agent(agent_env(fake, tmp_path / "t.db", "BTCUSDT"), log)
        deadline = time.monotonic() + 60
        while not fake.requests("GET /fapi/v3/positionRisk"):    # it is in the start-up
            assert agent.returncode is None, log_since(log, 0)[-3000:]
            assert time.monotonic() < deadline, log_since(log, 0)[-3000:]
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        started = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(agent.wait(), 45)
        finally:
            if agent.returncode is None:
                agent.kill()
        seconds = time.monotonic() - started
        assert code == 0 and seconds < PROMISED_EXIT, (code, seconds,
                                                       log_since(log, 0)[-3000:])
        assert "going down before start-up finished" in log_since(log, 0)
