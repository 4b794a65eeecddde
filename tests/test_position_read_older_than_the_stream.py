"""A REST position read that is older than what the user-data stream already pushed does not
replace it: the tick's view keeps the streamed position, and no size change is observed
that the exchange has left behind.

GET /fapi/v3/positionRisk carries "updateTime", when the position last changed
(https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/
Position-Information-V3); ACCOUNT_UPDATE carries "T", the transaction time of its change
(https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/
Event-Balance-and-Position-Update). A read whose last change is older than a change the
stream reported was answered from a state before it (a lagging read): its size is not the
position's. The tracker took every REST read as the newest, so a LONG the stream had seen
reduced from 0.010 to 0.006 read 0.010 again: PositionSizeChanged(0.010), the legs resized
to a quantity the position no longer has.

Through python-binance against the fake Binance (the read reshaped to its older state); the
stream's event is the documented example with this position's values, decoded by the
adapter's own codec and fed as the engine feeds it (ExchangeView.on_events)."""

from decimal import Decimal
from typing import Any

from tests.fakes.binance_harness import SYMBOL, started_exchange
from tests.fakes.binance_server import FakeBinance
from tests.positions import make
from tests.stream_ahead import account_update
from trader.clock import SystemClock
from trader.domain import Side, to_ms
from trader.events import PositionSizeChanged
from trader.exchange.binance_event_codec import update_from_account_event
from trader.exchange_view import ExchangeView
from trader.executor import Executor
from trader.observe import observe
from trader.order_tracker import OrderTracker
from trader.position import PositionState
from trader.trade_store import TradeStore

OPENED, LEFT = Decimal("0.010"), Decimal("0.006")


async def test_a_position_read_older_than_the_streamed_change_is_not_the_view(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await fake.open_position_by_hand(SYMBOL, Side.BUY, OPENED)
        async with started_exchange(fake) as exchange:
            opened = await exchange.position(SYMBOL)
            assert opened.updated_at is not None
            await fake.close_position_by_hand(SYMBOL, OPENED - LEFT)
            store, clock, tracker = TradeStore.open(tmp_path / "t.db"), SystemClock(), \
                OrderTracker()
            try:
                view = ExchangeView(exchange, Executor(exchange, store, clock, tracker),
                                    tracker, clock)
                reduced_at = to_ms(clock.now())
                view.on_events([update_from_account_event(
                    account_update(LEFT, opened.entry_price, reduced_at))])

                def as_before_the_reduction(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
                    return [row | {"positionAmt": str(OPENED),
                                   "updateTime": to_ms(opened.updated_at)} for row in rows]
                fake.reshape_answers("GET /fapi/v3/positionRisk", as_before_the_reduction)

                seen = await view.view(SYMBOL, fresh=True)

                assert fake.requests("GET /fapi/v3/positionRisk"), "nothing was read"
                assert seen.position.quantity == LEFT
                record = make(SYMBOL, Side.BUY, PositionState.PROTECTED, LEFT,
                              opened.entry_price, "49000", "51000")
                assert not [e for e in observe(record, seen)
                            if isinstance(e, PositionSizeChanged)]
            finally:
                store.close()
