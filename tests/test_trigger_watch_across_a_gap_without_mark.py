"""The stuck-stop watch (trader/stuck_trigger.py) across ticks with no mark: the grace
(TRADEBOT_TRIGGER_GRACE_SECONDS) is Binance's time to execute its own trigger, and while no
mark can be had (none pushed, GET /fapi/v1/premiumIndex failing: trader/exchange_view.py
`mark`) nothing is known of the price: it may have come back and passed the stop again a
moment ago. The time the stop was first seen passed was kept through such a gap, so the
first mark past the stop after it closed the position at market at once, racing a trigger
Binance may be executing. Now a tick with no mark ends the watch: the grace starts again at
the first tick whose mark is past the stop."""

import asyncio
from datetime import timedelta
from decimal import Decimal

from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.positions import OPENED, make
from tests.test_binance_protection import PRICE, SYMBOL, running_agent
from tests.test_mark_is_binances_mark import (
    PREMIUM_INDEX,
    held,
    market_closes,
    market_stream_down,
    short_quote_age,  # noqa: F401  (a fixture)
    stop_level,
    unprotected,
)
from trader.alerts import AlertName
from trader.domain import CloseReason, Side
from trader.events import Flatten, Policy, Tick
from trader.evolve import evolve
from trader.lifecycle import step
from trader.position import PositionState
from trader.symbol_rules import SymbolRules

RULES = SymbolRules("BTCUSDT", Decimal("0.1"), Decimal("0.001"), Decimal("0.001"), Decimal("5"))
POLICY = Policy(trigger_grace_seconds=10.0)


def at(seconds: float):  # type: ignore[no-untyped-def]
    return OPENED + timedelta(minutes=1, seconds=seconds)


def tick(position, seconds: float, mark: str | None):  # type: ignore[no-untyped-def]
    price = Decimal(mark) if mark is not None else None
    return step(position, Tick(at(seconds), price, RULES), at(seconds), POLICY)


def closes(result) -> list[Flatten]:  # type: ignore[no-untyped-def]
    return [a for a in result.actions if isinstance(a, Flatten)]


def long_position():  # type: ignore[no-untyped-def]
    return make(side=Side.BUY, quantity="0.5", entry="50000", stop="49000", tp="52000")


def test_a_tick_without_a_mark_ends_the_watch_and_the_grace_starts_again():
    """Seen past at 0, no mark from 1 to 30 s, past again at 31: not closed at 31 (it
    was before: 31 s "past"), closed one grace later."""
    watched = tick(long_position(), 0, "48000").position
    assert watched.stop.order.passed_since == at(0)
    gap = tick(watched, 1, None)
    assert gap.position.stop.order.passed_since is None and not gap.actions
    gap = tick(gap.position, 30, None)
    back = tick(gap.position, 31, "48000")
    assert not closes(back) and back.position.state is PositionState.PROTECTED
    assert back.position.stop.order.passed_since == at(31)
    almost = tick(back.position, 40.9, "48000")
    assert not closes(almost)
    later = tick(almost.position, 41, "48000")
    [close] = closes(later)
    assert close.reason is CloseReason.STOP_LOSS and later.position.state is PositionState.CLOSING


def test_a_mark_past_the_stop_on_every_tick_closes_after_one_grace_as_before():
    """Negative: no gap, the watch runs on: closed at the grace, not one later."""
    position = tick(long_position(), 0, "48000").position
    for seconds in (2, 4, 6, 8):
        result = tick(position, seconds, "48000")
        assert not closes(result)
        position = result.position
    assert position.stop.order.passed_since == at(0)
    assert closes(tick(position, 10, "48000"))


def test_a_stuck_stop_keeps_its_watch_through_a_gap():
    """Negative: a stop already judged stuck whose close failed (the position handed back
    PROTECTED) is owed no grace again: its trigger failed to execute; the first mark past
    it after a gap closes at once."""
    first = tick(long_position(), 0, "48000")
    closing = tick(first.position, 10, "48000").position
    assert closing.stop.order.stuck
    reopened = evolve(closing, state=PositionState.PROTECTED, closing_reason=None)
    gap = tick(reopened, 11, None).position
    assert gap.stop.order.passed_since == at(0)
    assert closes(tick(gap, 12, "48000"))


def test_a_tick_without_a_mark_and_nothing_watched_changes_nothing():
    position = long_position()
    assert tick(position, 0, None).position is position


# --- through the engine's loop against FakeBinance ----------------------------------------

GRACE = 2.0       # TRADEBOT_TRIGGER_GRACE_SECONDS here
GAP = 4.0         # premiumIndex failing (longer than the grace)


async def test_after_a_gap_without_mark_longer_than_the_grace_the_close_waits_a_fresh_grace(
        tmp_path, short_quote_age):  # noqa: F811
    """The market stream down, the stop stuck TRIGGERING, premiumIndex's mark 2 % past it:
    seen passed, then premiumIndex fails for GAP (> GRACE), then answers again. The
    position is still open one second after the first mark read again, and closed at market
    as STOP_LOSS after a fresh grace, the alert counting the time from that read."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            running_agent(fake, tmp_path, streams=True, trigger_grace_seconds=GRACE) as engine:
        await market_stream_down(fake, engine)
        stop = engine.positions[SYMBOL].stop.order
        assert stop is not None
        await fake.stick_trigger(SYMBOL, stop.client_id)
        past = (stop_level(engine) * Decimal("0.98")).quantize(Decimal("0.1"))
        await fake.move_price(SYMBOL, past)        # pushed to no socket: premiumIndex says it

        def watched() -> bool:
            order = engine.positions[SYMBOL].stop.order
            return order is not None and order.passed_since is not None
        assert await eventually(watched, 3.0), "the mark past the stop was never seen"
        fake.inject_fault(PREMIUM_INDEX, code=-1000, http_status=400, times=10_000,
                          msg="An unknown error occured while processing the request.")
        await asyncio.sleep(GAP)
        assert held(fake) == Decimal("0.100") and market_closes(fake) == []
        fake.clear_faults()
        fake.clear_request_log()
        assert await eventually(lambda: fake.requests(PREMIUM_INDEX), 3.0)
        await asyncio.sleep(1.0)
        assert held(fake) == Decimal("0.100"), (
            f"closed at once after the gap, no fresh grace: {unprotected(engine)}")
        assert await eventually(lambda: held(fake) == 0, GRACE + 4), "never closed"
        # the alert is stored once the close's answer is handled, a moment after the fill
        assert await eventually(lambda: unprotected(engine), 5.0)
        [text] = unprotected(engine)
        assert "has been past it for 2 s" in text or "has been past it for 3 s" in text, text
        assert len(market_closes(fake)) == 1
        assert await eventually(lambda: [p.close_reason for p in
                                         engine.store.closed_positions()]
                                == [CloseReason.STOP_LOSS], 5.0)
        assert [a for a in engine.store.recent_alerts(50)
                if a.name == AlertName.POSITION_UNPROTECTED]
