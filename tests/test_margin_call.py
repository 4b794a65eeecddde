"""Binance pushes MARGIN_CALL "when the user's position risk ratio is too high"
(https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/
Event-Margin-Call; "there may be the possibility that the user's position has been
liquidated at the same time"). The operator must hear it at once, on the phone: the
agent's stop may sit beyond the liquidation price (leverage changed by hand, margin
removed). It is a CRITICAL MARGIN_CALL alert naming the symbol, the size, the mark and
the maintenance margin; the agent changes nothing itself.

Found from outside: the real engine, python-binance and the user-data socket against the
fake Binance; the page's example for the symbol traded. The agent did not even subscribe
to the event (the routed stream names its events), and decoded nothing of it."""

import time
from decimal import Decimal

import pytest

from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import documented
from tests.test_binance_protection import running_agent
from trader.alerts import AlertName, Severity
from trader.exchange.base import MarginCall
from trader.exchange.binance_event_codec import margin_call_from_event
from trader.margin_call import margin_call_alerts

SYMBOL = "BTCUSDT"


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as server:
        yield server


def test_the_documented_event_reads_as_its_positions_and_becomes_one_critical_alert():
    call = margin_call_from_event(documented("event_margin_call").fresh())
    assert isinstance(call, MarginCall)
    [position] = call.positions
    assert (position.symbol, position.quantity, position.mark_price) == (
        "ETHUSDT", Decimal("1.327"), Decimal("187.17127"))
    assert call.maintenance == {"ETHUSDT": Decimal("1.614445")}
    [alert] = margin_call_alerts([call], ["ETHUSDT"])
    assert alert.name is AlertName.MARGIN_CALL and alert.level is Severity.CRITICAL
    assert "ETHUSDT" in alert.text and "1.327" in alert.text and "187.17" in alert.text
    assert "liquidat" in alert.text


def margin_call_for(symbol: str, quantity: str) -> dict:
    payload = documented("event_margin_call").fresh()
    now = int(time.time() * 1000)
    payload["E"] = now
    payload["p"][0].update({"s": symbol, "ps": "BOTH", "pa": quantity, "mt": "ISOLATED",
                            "iw": "980.5", "mp": "49100", "up": "-90.5", "mm": "24.55"})
    del payload["cw"]        # "Only pushed with crossed position margin call"
    return payload


async def test_a_margin_call_on_the_stream_rings_a_critical_alert(fake, tmp_path):
    async with running_agent(fake, tmp_path, streams=True) as engine:
        await fake.hub.send_user([margin_call_for(SYMBOL, "0.100")])

        def rung() -> list[str]:
            return [a.text for a in engine.store.recent_alerts(50)
                    if a.name == AlertName.MARGIN_CALL]
        assert await eventually(lambda: bool(rung()), 5.0)
        [text] = rung()
        assert SYMBOL in text and "49,100" in text
