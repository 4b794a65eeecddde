"""A partial liquidation sounds, with the advice a full one gets. Found by a reviewer: an
order "autoclose-..." that made the position smaller was a WARN "POSITION_REDUCED ...
(LIQUIDATION) ... protection follows the new size", with no word about the margin, while a
full liquidation (EXCHANGE_CLOSE) is CRITICAL with "Check the account's margin and leverage".
Binance names its orders in ORDER_TRADE_UPDATE (https://developers.binance.com/docs/
derivatives/usds-margined-futures/user-data-streams/Event-Order-Update): "If user gets
liquidated due to insufficient margin balance: c shows as "autoclose-XXX""; "If user has
enough margin balance but gets ADL: c shows as "adl_autoclose"" (not the account's margin:
its alert stays a WARN)."""

import asyncio
from decimal import Decimal

import pytest

from tests.fakes.binance_server import FakeBinance
from tests.test_alert_texts_formatted import apply, position
from tests.test_first_command_after_boot import booted, market_up_to_now
from trader.alerts import AlertName, Severity
from trader.commands import CommandKind
from trader.domain import CloseReason
from trader.events import PositionSizeChanged
from trader.exchange.websocket_stream import StreamOptions

SYMBOL = "BTCUSDT"
D = Decimal


def reduced(reason: CloseReason | None, cause: str) -> list:
    _, actions = apply(position(), PositionSizeChanged(D("0.300"), D("50000.00"), cause,
                                                       by_exchange=reason))
    return [a for a in actions if getattr(a, "name", None) is AlertName.POSITION_REDUCED]


def test_a_partial_liquidation_is_critical_and_says_to_check_margin_and_leverage() -> None:
    [alert] = reduced(CloseReason.LIQUIDATION, "by the exchange (LIQUIDATION)")
    assert alert.level is Severity.CRITICAL
    assert alert.text == (f"{SYMBOL}: LONG reduced by the exchange (LIQUIDATION) from 0.5 to "
                          "0.3; protection follows the new size. Binance liquidated part of it: "
                          "the margin was insufficient. Check the account's margin and leverage "
                          "before trading on.")


@pytest.mark.parametrize("reason,cause", [(CloseReason.ADL, "by the exchange (ADL)"),
                                          (None, "by hand")])
def test_an_adl_or_a_hand_reduction_stays_a_warning_without_margin_advice(reason, cause) -> None:
    [alert] = reduced(reason, cause)
    assert alert.level is Severity.WARN
    assert alert.text.endswith("protection follows the new size")


@pytest.mark.parametrize("client_id,level", [("autoclose-1796164000123", Severity.CRITICAL),
                                             ("adl_autoclose", Severity.WARN)])
async def test_an_exchange_reduction_over_the_stream_is_said_by_its_kind(tmp_path, client_id,
                                                                         level):
    async with FakeBinance(prices={SYMBOL: D("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=StreamOptions()) as agent:
            engine = agent.engine
            assert (await agent.run(CommandKind.LONG)).ok
            await engine.tick()
            held = fake.sim.position(SYMBOL).quantity
            part = (held / 3).quantize(D("0.001"))
            await fake.close_position_by_exchange(SYMBOL, client_id, qty=part)
            for _ in range(20):
                await asyncio.sleep(0.2)
                await engine.tick()
                said = [a for a in engine.store.recent_alerts(20)
                        if a.name == AlertName.POSITION_REDUCED.value]
                if said:
                    break
            left = fake.sim.position(SYMBOL).quantity
            assert engine.positions[SYMBOL].quantity == left == held - part
    [alert] = said
    assert alert.severity == level.value
    advice = "Check the account's margin and leverage" in alert.text
    assert advice is (level is Severity.CRITICAL), alert.text
