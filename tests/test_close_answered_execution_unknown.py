"""/close whose market order executed but was answered -1006 UNEXPECTED_RESP "Execution
status unknown." (https://developers.binance.com/docs/derivatives/usds-margined-futures/
error-code) or HTTP 408, with a -1007 body or none (.../usds-margined-futures/general-info,
HTTP Return Codes): one close sent, the position read back closed, and the reply says that
this close's answer was lost and the position read back is closed, as for the 503 "Unknown
error" (tests/test_close_answers_in_plain_words.py).

Before the fix (review7, LOW) the answer was read as a refusal and, the position being flat
on the read-back, the reply said "market close 0.507 not needed: the position was already
closed on Binance" although it was this close that closed it.
"""

import pytest

from tests.test_first_command_after_boot import SYMBOL, streaming_agent
from tests.test_order_answered_execution_unknown import answer_executed
from trader.commands import CommandKind

ORDER = "POST /fapi/v1/order"


@pytest.mark.parametrize("answer", ["error_unexpected_resp", "-1006@400", "error_408_empty",
                                    "error_backend_timeout"])
async def test_a_close_answered_execution_unknown_is_read_back_not_called_needless(tmp_path,
                                                                                  answer):
    async with streaming_agent(tmp_path) as (fake, agent):
        assert (await agent.run(CommandKind.LONG)).ok
        answer_executed(fake, ORDER, answer, {"type": "MARKET", "reduceOnly": "true"})
        result = await agent.run(CommandKind.CLOSE)
        text = " | ".join(result.lines)
        closes = [r for r in fake.requests(ORDER) if r.params.get("type") == "MARKET"
                  and r.params.get("reduceOnly") == "true"]
        assert fake.sim.position(SYMBOL).quantity == 0
        assert len(closes) == 1, f"{len(closes)} market closes sent for one /close"
        assert "refused" not in text and "not needed" not in text, text
        assert "answer was lost" in text and "read back is closed" in text, text
        assert SYMBOL not in agent.engine.positions
