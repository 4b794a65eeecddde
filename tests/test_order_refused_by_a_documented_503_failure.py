"""HTTP 503 answers Binance documents as failures ("100% failure": nothing executed), told
apart from the 503 whose execution is unknown (USD-M General Info, "HTTP 503 Status: Message
Variants & Handling": https://developers.binance.com/docs/derivatives/usds-margined-futures/
general-info): C, -1008 "Request throttled by system-level protection. Reduce-only/
close-position orders are exempt." (new orders only), B, "Service Unavailable.", and case 3,
-1001 "Internal error; unable to process your request. Please try again.".

Before the fix (review7, item 7) any 5xx while sending was an unknown outcome: /long
answered "its answer was lost (Binance: execution status unknown) ... tells you within about
17 s" and /status showed a LONG ENTERING that did not exist until ENTRY_NOT_FILLED. Now the
reply says the entry was refused and nothing is open, at once. The negatives: the 503
"Unknown error" is still probed by client id; a close is exempt from -1008 (the fake
throttles only new orders, as the page says), and a close that meets -1008 anyway is sent
again, as any refused close.
"""

import pytest

from tests.test_first_command_after_boot import SYMBOL, streaming_agent
from tests.test_stop_fill_during_ban import ticks
from trader.commands import CommandKind

ORDER = "POST /fapi/v1/order"


def market_orders(fake, *, reduce_only: bool) -> list:
    return [r for r in fake.requests(ORDER) if r.params.get("type") == "MARKET"
            and (r.params.get("reduceOnly") == "true") is reduce_only]


@pytest.mark.parametrize("failure", ["error_request_throttled", "error_503_service_unavailable",
                                     "error_internal_503"])
async def test_an_entry_refused_by_a_documented_failure_is_told_refused_at_once(tmp_path,
                                                                               failure):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        if failure == "error_request_throttled":
            fake.throttle_new_orders()
        else:
            fake.answer_documented(ORDER, failure, only={"type": "MARKET"})
        result = await agent.run(CommandKind.LONG)
        reply = " ".join(result.lines)
        assert "execution status unknown" not in reply and "answer was lost" not in reply
        assert "refused" in reply and "nothing is open" in reply, reply
        status = (await agent.run(CommandKind.STATUS)).status
        assert status is not None and not status.positions, "no phantom ENTERING"
        assert SYMBOL not in engine.positions
        await ticks(engine, 2)
        assert fake.sim.position(SYMBOL).quantity == 0
        assert len(market_orders(fake, reduce_only=False)) == 1, "an entry is not resent"
        assert "ENTRY_NOT_FILLED" not in [a.name for a in engine.store.recent_alerts(50)]


async def test_the_503_unknown_error_is_still_an_answer_lost_and_probed(tmp_path):
    """Negative: variant A ("execution status unknown"), the order not executed: the reply
    says its answer was lost; the agent asks Binance by client id, never sends it again."""
    async with streaming_agent(tmp_path) as (fake, agent):
        fake.answer_documented(ORDER, "error_503_unknown", only={"type": "MARKET"})
        result = await agent.run(CommandKind.LONG)
        assert "answer was lost" in " ".join(result.lines), result.lines
        assert SYMBOL in agent.engine.positions            # ENTERING until the probe tells
        await ticks(agent.engine, 2)
        assert len(market_orders(fake, reduce_only=False)) == 1


async def test_a_close_is_exempt_from_system_level_throttling(tmp_path):
    """While Binance throttles new orders (-1008), a /close goes through at once."""
    async with streaming_agent(tmp_path) as (fake, agent):
        assert (await agent.run(CommandKind.LONG)).ok
        fake.throttle_new_orders(times=5)
        result = await agent.run(CommandKind.CLOSE)
        assert "refused" not in " ".join(result.lines), result.lines
        assert fake.sim.position(SYMBOL).quantity == 0
        assert len(market_orders(fake, reduce_only=True)) == 1


async def test_a_close_that_meets_a_throttle_anyway_is_sent_again(tmp_path):
    """Should a reduce-only close meet -1008 after all, nothing executed: the close is sent
    again (a refused close is), the position ends closed, never read as closed before."""
    async with streaming_agent(tmp_path) as (fake, agent):
        assert (await agent.run(CommandKind.LONG)).ok
        fake.answer_documented(ORDER, "error_request_throttled",
                               only={"type": "MARKET", "reduceOnly": "true"})
        result = await agent.run(CommandKind.CLOSE)
        text = " ".join(result.lines)
        assert fake.sim.position(SYMBOL).quantity == 0, text
        assert len(market_orders(fake, reduce_only=True)) == 2, text
        assert "not needed" not in text and "answer was lost" not in text, text
