"""Before a leg is placed again (after one vanished, or re-sent), what Binance would refuse
is foreseen: the operator is alerted once with the shortfall and the retry schedule runs,
nothing is skipped silently. A reduce-only leg needs no margin and is exempt from the
minimum notional (https://developers.binance.com/docs/derivatives/usds-margined-futures/
error-code, -4164 "unless you choose reduce only"), so it is always sent."""

from dataclasses import replace
from decimal import Decimal

import pytest

import trader.exchange_actions as exchange_actions
from tests.engine_world import SYMBOL, long_signal, make_world
from trader.domain import OrderType
from trader.intents import exit_intent
from trader.risk import leg_refusal
from trader.symbol_rules import SymbolRules

D = Decimal
BTC = SymbolRules("BTCUSDT", tick_size=D("0.1"), step_size=D("0.001"), min_qty=D("0.001"),
                  min_notional=D("100"))


def refusal(quantity: str = "0.1", reduce_only: bool = False, available: str | None = "1000",
            leverage: int = 5) -> str:
    return leg_refusal(D(quantity), D("50000"), reduce_only, BTC, leverage,
                       None if available is None else D(available))


def test_a_reduce_only_leg_needs_no_margin_and_no_min_notional() -> None:
    assert refusal(reduce_only=True, available="0") == ""
    assert refusal("0.001", reduce_only=True, available="-50") == ""    # 50 USDT notional


def test_a_leg_that_is_not_reduce_only_needs_its_margin() -> None:
    # 0.1 BTC at 50,000 = 5,000 notional: 1,000 at 5x plus 2.50 taker fee
    assert refusal(available="1002.50") == ""
    text = refusal(available="1002.49")
    assert "-2019" in text and "short by 0.01" in text and "1002.50" in text
    assert refusal(available=None) == "", "an unread balance is not judged"


def test_a_leg_that_is_not_reduce_only_needs_the_min_notional() -> None:
    assert "-4164" in refusal("0.001")                  # 50 < 100
    assert refusal("0.002") == ""                        # exactly 100


def test_below_the_min_quantity_every_leg_is_refused() -> None:
    assert "LOT_SIZE" in leg_refusal(D("0.0005"), D("50000"), True, BTC, 5, D("1000"))


async def stop_gone_by_hand(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    position = world.engine.positions[SYMBOL]
    world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, position.stop.order.client_id,
                                                       world.clock.now()))
    return world


async def test_a_reduce_only_stop_is_re_attached_even_with_no_available_balance(tmp_path) -> None:
    world = await stop_gone_by_hand(tmp_path)
    world.engine.interpreter.runner.available_margin = lambda: D("0")
    await world.step()
    stops = [o for o in await world.open_orders() if o.type is OrderType.STOP_MARKET]
    assert [o.client_id[-3:] for o in stops] == ["sl2"] and stops[0].reduce_only
    assert world.alerts("POSITION_UNPROTECTED") == []


async def test_a_leg_binance_would_refuse_for_margin_is_alerted_once_then_retried(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop that is not reduce-only (what a hedge-mode or closing-order change would
    send): with too little balance it is not sent; one POSITION_UNPROTECTED names the
    shortfall; the retry schedule keeps trying and it is placed once margin is back."""
    world = await stop_gone_by_hand(tmp_path)
    monkeypatch.setattr(exchange_actions, "exit_intent",
                        lambda *args, **kwargs: replace(exit_intent(*args, **kwargs),
                                                        reduce_only=False))
    runner = world.engine.interpreter.runner
    runner.available_margin = lambda: D("10")
    sent_before = world.sent
    await world.step()
    await world.step()
    assert world.sent == sent_before, "nothing the exchange would refuse is sent"
    alerts = world.alerts("POSITION_UNPROTECTED")
    assert len(alerts) == 1 and "short by" in alerts[0] and "-2019" in alerts[0]
    assert world.engine.positions[SYMBOL].stop.failures >= 2, "retried on the schedule"
    runner.available_margin = lambda: D("100000")
    await world.step()
    stops = [o for o in await world.open_orders() if o.type is OrderType.STOP_MARKET]
    assert len(stops) == 1
    assert world.alerts("PROTECTION_RESTORED")
