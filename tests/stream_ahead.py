"""A user-data stream that already said more than a later REST read of the same order: the
world of the tests that check a decision is taken from the order tracker's merged order
(trader/order_tracker.py `learned`), never from the REST answer alone.

The fake Binance answers the REST reads (through python-binance); the stream's events are
Binance's documented examples with the values of our orders, decoded by the adapter's own
codec and fed as the engine feeds them (ExchangeView.on_events):
- ORDER_TRADE_UPDATE: https://developers.binance.com/docs/derivatives/usds-margined-futures/
  user-data-streams/Event-Order-Update
- ALGO_UPDATE: .../usds-margined-futures/user-data-streams/Event-Algo-Order-Update
- ACCOUNT_UPDATE: .../usds-margined-futures/user-data-streams/
  Event-Balance-and-Position-Update
The stale REST answers keep the documented shapes of GET /fapi/v1/order (.../trade/rest-api/
Query-Order) and GET /fapi/v1/algoOrder (.../trade/rest-api/Query-Algo-Order), with the
values of a read served from before the events: the order as it was when placed."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.fakes.binance_harness import SYMBOL, settings_for, started_exchange
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import payload
from tests.positions import make
from trader.alerter import Alerter
from trader.clock import SystemClock
from trader.domain import OrderRequest, OrderRole, OrderType, Side, to_ms
from trader.engine import Engine
from trader.exchange.base import OrderUpdate
from trader.exchange.binance import BinanceExchange
from trader.exchange.binance_event_codec import update_from_algo_event, update_from_order_event
from trader.exchange_view import ExchangeView
from trader.executor import Executor
from trader.order_tracker import OrderTracker
from trader.position import Position, PositionState
from trader.trade_store import TradeStore

PRICE = Decimal("50000")


@dataclass
class World:
    fake: FakeBinance
    exchange: BinanceExchange
    store: TradeStore
    executor: Executor
    tracker: OrderTracker
    view: ExchangeView
    clock: SystemClock

    def streamed(self, *updates: OrderUpdate) -> None:
        """The user-data stream pushed these (the engine's path: ExchangeView.on_events)."""
        self.view.on_events(list(updates))

    def restarted(self) -> "World":
        """The agent restarted on the same database and exchange: a new executor, an empty
        tracker and a new view (what the stream said before is gone with the process)."""
        tracker = OrderTracker()
        executor = Executor(self.exchange, self.store, self.clock, tracker)
        return replace(self, executor=executor, tracker=tracker,
                       view=ExchangeView(self.exchange, executor, tracker, self.clock))


@asynccontextmanager
async def a_world(tmp_path: Path, long: Decimal | None = None,
                  stop: OrderRequest | None = None, **exchange: Any) -> AsyncIterator[World]:
    """The fake Binance at PRICE, a LONG of `long` opened by hand and `stop` resting (when
    given), a started BinanceExchange (no streams: the tests feed the stream's events),
    a store, an executor, a tracker and the view over them."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake:
        if long is not None:
            await fake.open_position_by_hand(SYMBOL, Side.BUY, long)
        async with started_exchange(fake, **exchange) as started:
            if stop is not None:
                await started.place(stop)
            clock = SystemClock()
            store, tracker = TradeStore.open(tmp_path / "t.db"), OrderTracker()
            executor = Executor(started, store, clock, tracker)
            try:
                yield World(fake, started, store, executor, tracker,
                            ExchangeView(started, executor, tracker, clock), clock)
            finally:
                store.close()


def stop_request(client_id: str, quantity: Decimal, trigger: Decimal) -> OrderRequest:
    """Our reduce-only stop under a LONG (an algo order)."""
    return OrderRequest(SYMBOL, Side.SELL, OrderType.STOP_MARKET, quantity, client_id,
                        OrderRole.STOP_LOSS, trigger_price=trigger, reduce_only=True)


def _now_ms() -> int:
    return to_ms(SystemClock().now())


def algo_update(client_id: str, quantity: Decimal, trigger: Decimal, status: str,
                executed: str) -> OrderUpdate:
    """The documented ALGO_UPDATE, about our stop under a LONG: `status`, `executed` of it
    filled (its "aq")."""
    event = payload("event_algo_update")
    now = _now_ms()
    event["T"], event["E"] = now, now
    event["o"] |= {"caid": client_id, "o": "STOP_MARKET", "s": SYMBOL, "S": "SELL",
                   "q": str(quantity), "X": status, "ai": "8886774", "ap": "48990",
                   "aq": executed, "act": "MARKET", "tp": str(trigger), "p": "0", "R": True,
                   "rm": "", "tt": now}
    return update_from_algo_event(event)


def order_update(client_id: str, side: Side, order_type: str, quantity: Decimal,
                 status: str, filled: Decimal, price: Decimal = PRICE,
                 limit_price: Decimal | None = None) -> OrderUpdate:
    """The documented ORDER_TRADE_UPDATE about one of our plain orders (MARKET or LIMIT):
    `status` with `filled` of it traded in all, the last trade of it at `price`."""
    event = payload("event_order_trade_update")
    now = _now_ms()
    event["T"], event["E"] = now, now
    traded = filled > 0
    execution = "TRADE" if traded else status
    event["o"] = {key: value for key, value in event["o"].items() if key not in ("AP", "cr")}
    event["o"] |= {"s": SYMBOL, "c": client_id, "S": side.value, "o": order_type,
                   "ot": order_type, "f": "GTX" if order_type == "LIMIT" else "GTC",
                   "q": str(quantity), "p": str(limit_price or 0),
                   "ap": str(price if traded else 0), "sp": "0", "x": execution, "X": status,
                   "l": str(filled), "z": str(filled), "L": str(price if traded else 0),
                   "T": now, "t": 1 if traded else 0, "m": order_type == "LIMIT",
                   "R": False, "ps": "BOTH", "wt": "CONTRACT_PRICE"}
    return update_from_order_event(event)


def account_update(quantity: Decimal, entry: Decimal, at_ms: int) -> dict[str, Any]:
    """The documented ACCOUNT_UPDATE, for this symbol's one-way position."""
    event = payload("event_account_update")
    event["E"], event["T"] = at_ms + 1, at_ms
    event["a"]["P"] = [{"s": SYMBOL, "pa": str(quantity), "ep": str(entry), "bep": str(entry),
                        "cr": "0", "up": "0", "mt": "isolated", "iw": "0", "ps": "BOTH"}]
    return event


def triggered_over_rest(answer: dict[str, Any]) -> dict[str, Any]:
    """GET /fapi/v1/algoOrder while the child order trades: TRIGGERED, no executed
    quantity (the page documents none)."""
    return answer | {"algoStatus": "TRIGGERED"}


def as_placed_over_rest(answer: dict[str, Any]) -> dict[str, Any]:
    """GET /fapi/v1/order served from before the order traded: NEW, nothing executed."""
    return answer | {"status": "NEW", "executedQty": "0", "cumQuote": "0",
                     "avgPrice": "0.00000"}


@dataclass
class EngineOnFake:
    """The engine over the real python-binance client against the fake Binance (REST only:
    the adapter's streams off, so each event is fed by hand), its journal in tmp_path."""
    fake: FakeBinance
    engine: Engine
    store: TradeStore

    def planned_long(self, quantity: Decimal, key: str) -> Position:
        """A LONG of `quantity` at PRICE about to be entered (ENTERING, nothing sent)."""
        return make(state=PositionState.ENTERING, quantity=quantity, entry=PRICE,
                    stop="49500", tp="51000", live_legs=False, seq={},
                    opened_at=self.engine.clock.now(), key=key)


@asynccontextmanager
async def engine_on_fake(tmp_path: Path, **settings: Any) -> AsyncIterator[EngineOnFake]:
    """`settings`: overrides of tests.fakes.binance_harness.settings_for."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake:
        config = settings_for(fake, db_path=tmp_path / "tradebot.db", **settings)
        clock = SystemClock()
        exchange = BinanceExchange(config, clock, streams=False)
        await exchange.start([SYMBOL], config.leverage)
        store = TradeStore.open(config.db_path)
        try:
            yield EngineOnFake(fake, Engine(config, exchange, store, clock, Alerter(store)),
                               store)
        finally:
            store.close()
            await exchange.close()
