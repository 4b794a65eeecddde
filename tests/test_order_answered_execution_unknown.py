"""An order Binance executed but answered with an error it documents as "execution status
unknown": -1006 UNEXPECTED_RESP, -1007 TIMEOUT (error-code page:
https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code) and HTTP
408, with or without a body ("a timeout has occurred while waiting for a response from the
backend server": .../usds-margined-futures/general-info, HTTP Return Codes).

Before the fix (review7, items 1 and 2) -1006 and 408 were refusals: /long answered "the
LONG entry was refused by the exchange ...; nothing is open" while Binance held the LONG,
then CRITICAL RECONCILE_MISMATCH adopted it as a foreign position (or, with
TRADEBOT_ADOPT_POSITIONS=false, left it with no stop); a stop that rested on Binance raised
a CRITICAL POSITION_UNPROTECTED. Now the order is probed by its client id, never re-sent.
The negative: a real refusal (-2019, -4164) is still a refusal, and nothing is probed.
"""

import asyncio

import pytest

from tests.test_first_command_after_boot import SYMBOL, streaming_agent
from tests.test_stop_fill_during_ban import ticks
from trader.commands import CommandKind
from trader.domain import OrderType

ORDER, ALGO = "POST /fapi/v1/order", "POST /fapi/v1/algoOrder"
UNEXPECTED = ("An unexpected response was received from the message bus. Execution status "
              "unknown.")


def answer_executed(fake, endpoint: str, answer: str, only: dict[str, str]) -> None:
    """The order (its parameters include `only`) is processed, then answered `answer` (a
    documented fixture's name, or "-1006@400": the code at a client-error status, as
    review7 saw it; the page gives -1006 no status)."""
    if answer == "-1006@400":
        fake.inject_fault(endpoint, code=-1006, http_status=400, msg=UNEXPECTED, execute=True,
                          only=only)
    else:
        fake.answer_documented(endpoint, answer, execute=True, only=only)


def alert_names(engine) -> list[str]:
    return [a.name for a in engine.store.recent_alerts(200)]


def entry_probes(fake) -> list:
    """Reads of the entry order by its client id after it was sent (the probe of a lost
    answer; the read before sending is the duplicate check, entry_sender `_already_sent`)."""
    log = fake.request_log
    [sent_at] = [i for i, r in enumerate(log) if (r.method, r.path) == ("POST", "/fapi/v1/order")
                 and r.params.get("type") == "MARKET"]
    client_id = log[sent_at].params["newClientOrderId"]
    return [r for r in log[sent_at:] if (r.method, r.path) == ("GET", "/fapi/v1/order")
            and r.params.get("origClientOrderId") == client_id]


@pytest.mark.parametrize("adopt", [True, False], ids=["adopt-on", "adopt-off"])
@pytest.mark.parametrize("answer", ["error_unexpected_resp", "-1006@400", "error_408_empty",
                                    "error_backend_timeout"])
async def test_an_entry_answered_execution_unknown_is_probed_and_protected_as_ours(
        tmp_path, answer, adopt):
    async with streaming_agent(tmp_path, adopt_positions=adopt) as (fake, agent):
        engine = agent.engine
        answer_executed(fake, ORDER, answer, {"type": "MARKET"})
        result = await agent.run(CommandKind.LONG)
        reply = " ".join(result.lines)
        held = fake.sim.position(SYMBOL).quantity
        assert held > 0
        assert "refused" not in reply and "answer was lost" in reply, reply
        await ticks(engine, 3)
        stops = [o for o in fake.sim.open_orders(SYMBOL) if o.type is OrderType.STOP_MARKET]
        assert [s.quantity for s in stops] == [held], "the agent's own stop protects it"
        assert "RECONCILE_MISMATCH" not in alert_names(engine)
        assert "FILL" in alert_names(engine)
        assert engine.positions[SYMBOL].quantity == held
        assert entry_probes(fake), "asked Binance for the entry by its client id"
        entries = [r for r in fake.requests(ORDER) if r.params.get("type") == "MARKET"]
        assert len(entries) == 1, "an order whose execution is unknown is never re-sent"


@pytest.mark.parametrize("answer", ["error_408_empty", "-1006@400"])
async def test_a_stop_answered_execution_unknown_raises_no_false_alarm(tmp_path, answer):
    """The stop rests on Binance: found by its client id, no POSITION_UNPROTECTED."""
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        answer_executed(fake, ALGO, answer, {"type": "STOP_MARKET"})
        assert (await agent.run(CommandKind.LONG)).ok is not None
        for _ in range(8):
            await asyncio.sleep(0.5)
            await engine.tick()
        stops = [o for o in fake.sim.open_orders(SYMBOL) if o.type is OrderType.STOP_MARKET]
        assert len(stops) == 1, stops
        names = alert_names(engine)
        assert "POSITION_UNPROTECTED" not in names and "INVARIANT_NO_STOP" not in names, names


@pytest.mark.parametrize("refusal", ["error_margin_insufficient", "-4164"])
async def test_a_refused_entry_is_still_refused_and_never_probed(tmp_path, refusal):
    """Negative: a refusal is final; nothing is open, nothing is read by the entry's id."""
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        if refusal == "-4164":
            fake.inject_fault(ORDER, code=-4164, http_status=400, only={"type": "MARKET"},
                              msg="Order's notional must be no smaller than 5.0 (unless you "
                                  "choose reduce only)")
        else:
            fake.answer_documented(ORDER, refusal, only={"type": "MARKET"})
        result = await agent.run(CommandKind.LONG)
        reply = " ".join(result.lines)
        assert "refused" in reply and "answer was lost" not in reply, reply
        await ticks(engine, 2)
        assert fake.sim.position(SYMBOL).quantity == 0
        assert SYMBOL not in engine.positions
        assert entry_probes(fake) == []
