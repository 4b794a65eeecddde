"""review5: the only stop of a long is cancelled by hand (or expired by the exchange); its
replacement and the backup sent at once beside it both meet a 5xx burst (a gateway's 502
page: "HTTP 5XX ... the execution status is UNKNOWN", Binance's HTTP return codes). Neither
landed (a read by client id finds neither), the next request would succeed, yet the agent
sent nothing for recvWindow + 10 s (trader/stop_backup.py allowed one backup only: "a
backup whose answer is lost too is waited for"): the position had no stop for ~16-18 s,
the gap that module was written to close. The backup is sent "at once", inside the same
burst as the first, so a burst loses both.

Seen from outside (exp_gateway_page.py): SL_MISSING "replacing it now" at 03:41:20, nothing
else until POSITION_UNPROTECTED "never placed (not found on the exchange)" at 03:41:36; the
stop on the exchange again at 03:41:38.

Now each lost stop placement gets its own backup while nothing covers the position (up to
three unresolved): the third request lands within the tick. The pure rules, the bound and
the restart case: tests/test_stop_backup_bound_and_restart.py.
"""

import asyncio
import time

from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import SYMBOL, streaming_agent
from trader.commands import CommandKind

BODY = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
PAGE = (b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: "
        + str(len(BODY)).encode() + b"\r\nConnection: close\r\n\r\n" + BODY)


def stops(fake: FakeBinance) -> list[str]:
    return [o.client_id for o in fake.sim.open_orders(SYMBOL) if o.type.value == "STOP_MARKET"]


async def test_a_stop_is_back_within_seconds_after_two_lost_answers(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        result = await agent.run(CommandKind.LONG)
        assert result.ok, result.lines
        engine = agent.engine
        await engine.tick()
        [stop] = stops(fake)
        # a 5xx burst: the next two stop placements get a gateway page, not placed
        fake.inject_fault("POST /fapi/v1/algoOrder", raw_answer=PAGE, execute=False,
                          times=2)
        await fake.cancel_order_by_hand(SYMBOL, stop)
        started = time.monotonic()
        while time.monotonic() - started < 6.0 and not stops(fake):
            await engine.tick()
            await asyncio.sleep(0.3)
        sent = [r.params.get("clientAlgoId") for r in fake.requests("POST /fapi/v1/algoOrder")]
        assert stops(fake), (
            f"no stop on the exchange 6 s after the burst ended (the third request would "
            f"have been accepted); stop placements sent: {sent}; position "
            f"{fake.sim.position(SYMBOL).quantity} unprotected")


async def test_a_new_position_gets_its_stop_within_seconds_after_two_lost_answers(tmp_path):
    """The same right after an entry: the entry fills, its stop and the backup meet the burst."""
    async with streaming_agent(tmp_path) as (fake, agent):
        fake.inject_fault("POST /fapi/v1/algoOrder", raw_answer=PAGE, execute=False,
                          times=2, only={"type": "STOP_MARKET"})
        result = await agent.run(CommandKind.LONG)
        assert fake.sim.position(SYMBOL).quantity > 0, result.lines
        engine = agent.engine
        started = time.monotonic()
        while time.monotonic() - started < 6.0 and not stops(fake):
            await engine.tick()
            await asyncio.sleep(0.3)
        assert stops(fake), (
            f"the new LONG {fake.sim.position(SYMBOL).quantity} has no stop 6 s after its "
            f"entry; /long answered: {result.lines}")
