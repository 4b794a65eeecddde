"""What the fake Binance keeps beside the matching simulator about orders, and the user-data
events it sends about them.

The simulator knows orders by client id; Binance also gives each algo order an algoId, each
triggered algo order a child order (a MARKET order with its own orderId), each trade the
orderId it belongs to, and remembers when an order was created and the timeInForce it was
sent with. `OrderLedger` keeps those and renders the simulator's events as Binance's
user-data stream JSON (ORDER_TRADE_UPDATE, ALGO_UPDATE, ACCOUNT_UPDATE: binance_wire.py),
queued until the server sends them (`take_stream_events`).
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.fakes import binance_wire as wire
from trader.domain import ExchangePosition, Fill, Order, OrderRequest, OrderStatus
from trader.exchange.base import AccountUpdate, ExchangeError, FundingApplied, OrderUpdate
from trader.exchange.sim import SimConfig, SimEvent, Simulator
from trader.exchange.sim_members import EXPIRED
from trader.symbol_rules import SymbolRules

Json = dict[str, Any]
CHILD_ORDER_BASE = 1_000_000_000    # order ids of the market orders triggered algo orders spawn
ALGO_ID_BASE = 4_000_000_000
EVENT_ORDER_PAGE = wire.DOCS + "user-data-streams/Event-Order-Update"
# Binance's own orders (EVENT_ORDER_PAGE, "special client order id"): "autoclose-" a
# liquidation, "adl_autoclose" an auto-deleveraging, "settlement_autoclose-" a settlement
LIQUIDATION_PREFIX, ADL_ID = "autoclose-", "adl_autoclose"
EXCHANGE_ORDER_PREFIXES = (LIQUIDATION_PREFIX, ADL_ID, "settlement_autoclose-")
# USD-M error codes (-4140, -4141) of an order on a symbol not TRADING
SYMBOL_STATUS_PAGE = wire.DOCS + "error-code"
# EVENT_ORDER_PAGE, "Expiry Reason": "5: Order has expired when the account was liquidated"
EXPIRED_BY_LIQUIDATION = "5"
# When the account is liquidated, Binance cancels its open orders (expiry reason 5 above)
# and then closes the position; the page orders neither against the other, and the stream
# orders "messages of the same event type" only (FakeBinance.hold_order_updates), so
# FakeBinance(liquidation_events=...) offers both: "cancels-first" (the default, as the
# liquidation works) and "fill-first" (the open orders' EXPIRED after the fill and its
# ACCOUNT_UPDATE).
LIQUIDATION_EVENT_ORDERS = ("cancels-first", "fill-first")
# The execution type ("x") of an ADL's fill: EVENT_ORDER_PAGE lists "CALCULATED -
# Liquidation Execution", its zh-CN page (https://developers.binance.com/docs/zh-CN/
# derivatives/usds-margined-futures/user-data-streams/Event-Order-Update) "CALCULATED 订单
# ADL 或爆仓" (the order's ADL or liquidation); neither shows an ADL fill, so
# FakeBinance(adl_execution=...) offers CALCULATED (the default) and TRADE.
ADL_EXECUTIONS = ("CALCULATED", "TRADE")
# The client id of a triggered algo order's child (the MARKET order it places in the matching
# engine): Binance documents none. ALGO_UPDATE links the two by the child's order id ("ai",
# https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/
# Event-Algo-Order-Update) and GET algoOrder by "actualOrderId"; FakeBinance(child_client_ids=
# ...) offers "algo" (the child under the algo's clientAlgoId, as nautilus_trader matches
# them) and "own" (a client id of Binance's making, `own_child_client_id`).
CHILD_CLIENT_IDS = ("algo", "own")


def check_undocumented_choices(**chosen: str) -> None:
    """FakeBinance's choices where the docs are silent, each one of its offered values."""
    offered = {"liquidation_events": LIQUIDATION_EVENT_ORDERS, "adl_execution": ADL_EXECUTIONS,
               "child_client_ids": CHILD_CLIENT_IDS}
    for name, value in chosen.items():
        if value not in offered[name]:
            raise ValueError(f"{name} must be one of {offered[name]}")


def own_child_client_id(child_order_id: int | str) -> str:
    """A child's client id that is not the algo order's (its shape is not documented)."""
    return f"autochild-{child_order_id}"


class ExchangeSimulator(Simulator):
    """The matching simulator, with what only the exchange itself does to an order."""

    def __init__(self, config: SimConfig, rules: dict[str, SymbolRules] | None = None) -> None:
        super().__init__(config, rules)
        self.liquidation_cancels_first = True
        # client id -> the expiry reason ("er") of an order the exchange ended (OrderLedger)
        self.expire_reasons: dict[str, str] = {}

    def place(self, request: OrderRequest, now: datetime) -> tuple[Order, list[SimEvent]]:
        """As the simulator, but refused as Binance refuses an order on a symbol whose
        exchangeInfo status is not TRADING (SYMBOL_STATUS_PAGE: -4140 "Invalid symbol status
        for opening position", -4141 "Symbol is closed"). The page names no status for
        either: here a CLOSE symbol refuses every order (-4141), any other status that is
        not TRADING one that would open (-4140); a reduce-only or closePosition order is
        taken there (the code's words limit it to "opening position")."""
        status = self.rules_for(request.symbol).status
        if status == "CLOSE" and not request.client_id.startswith(EXCHANGE_ORDER_PREFIXES):
            raise ExchangeError(-4141, "Symbol is closed.")
        if status != "TRADING" and not (request.reduce_only or request.close_position):
            raise ExchangeError(-4140, "Invalid symbol status for opening position.")
        return super().place(request, now)

    def close_by_exchange(self, symbol: str, now: datetime, client_id: str,
                          quantity: Decimal | None = None) -> list[SimEvent]:
        if not client_id.startswith(LIQUIDATION_PREFIX):
            return super().close_by_exchange(symbol, now, client_id, quantity)
        return self._liquidation(
            symbol, now, lambda: super(ExchangeSimulator, self).close_by_exchange(
                symbol, now, client_id, quantity))

    def _liquidate(self, symbol: str, price: Decimal, now: datetime) -> list[SimEvent]:
        """The price reached the liquidation level (the simulator's own "autoclose-<n>")."""
        return self._liquidation(
            symbol, now, lambda: super(ExchangeSimulator, self)._liquidate(symbol, price, now))

    def _liquidation(self, symbol: str, now: datetime,
                     close: Callable[[], list[SimEvent]]) -> list[SimEvent]:
        """A liquidation: every open order of the symbol expires (reason 5) and the position
        is closed, in the order `liquidation_cancels_first` says."""
        if self.liquidation_cancels_first:
            expired = self._expire_by_liquidation(symbol, now)
            return expired + close()
        ended = [order.client_id for order in self.orders.open_orders(symbol)]
        closed = close()     # the reduce-only ones among them expire with the position
        self.expire_reasons.update(dict.fromkeys(ended, EXPIRED_BY_LIQUIDATION))
        return closed + self._expire_by_liquidation(symbol, now)

    def _expire_by_liquidation(self, symbol: str, now: datetime) -> list[SimEvent]:
        events: list[SimEvent] = []
        for order in self.orders.open_orders(symbol):
            self.expire_reasons[order.client_id] = EXPIRED_BY_LIQUIDATION
            events.append(OrderUpdate(self._finish(order, EXPIRED, now), None, now))
        return events

    def reject_by_exchange(self, symbol: str, client_id: str, now: datetime) -> list[SimEvent]:
        """The exchange ends a resting order REJECTED (a conditional order whose trigger the
        matching engine refused): FakeBinance.reject_trigger."""
        order = self.orders.open_order(symbol, client_id)
        if order is None:
            raise ExchangeError(-2011, "Unknown order sent.")
        rejected = self._finish(order, OrderStatus.REJECTED, now)
        return [OrderUpdate(rejected, None, now)]


class KeepingSimulator(ExchangeSimulator):
    """The matching simulator, except that resting reduce-only / closePosition orders stay
    when their position goes flat (the plain Simulator expires them).

    Binance's docs are silent on this for our orders: the ALGO_UPDATE page's EXPIRED example
    only names GTE_GTC conditional orders ("closes all positions on that symbol, resulting in
    system-led cancellation"), so FakeBinance(flat_orders=...) offers both behaviours.
    """

    def _expire_orphans(self, symbol: str, now: datetime) -> list[SimEvent]:
        return []


FLAT_ORDER_BEHAVIOURS = {"expire": ExchangeSimulator, "keep": KeepingSimulator}
# When a conditional order triggers, Binance's docs do not say whether the child order's
# ORDER_TRADE_UPDATE fill comes before or after ALGO_UPDATE TRIGGERED (nautilus_trader
# issue #3664 reports the fill first); ALGO_UPDATE FINISHED comes last either way.
# "expired-first" (algo_api=False only, otherwise as "triggered-first"): a classic
# STOP_MARKET / TAKE_PROFIT_MARKET that triggers first says EXPIRED with expire reason 8,
# "The initial order has expired after the stop order is triggered" (Event-Order-Update,
# "Expire Reason"), then NEW as "o" MARKET, then its fill, all under the same ids.
TRIGGER_EVENT_ORDERS = ("triggered-first", "fill-first", "expired-first")


@dataclass(slots=True)
class AlgoRecord:
    symbol: str
    client_id: str
    algo_id: int


class OrderLedger:
    """Ids and times Binance keeps per order, and the user-data events not yet sent."""

    def __init__(self, sim: Simulator, now_ms: Callable[[], int], trigger_events: str,
                 algo_api: bool) -> None:
        """`trigger_events`: one of TRIGGER_EVENT_ORDERS. `algo_api`: conditional orders live
        on the Algo Order API (ALGO_UPDATE events) or, False, on the classic endpoints."""
        if trigger_events not in TRIGGER_EVENT_ORDERS:
            raise ValueError(f"trigger_events must be one of {TRIGGER_EVENT_ORDERS}")
        self.sim, self.now_ms, self.algo_api = sim, now_ms, algo_api
        self.adl_execution = "CALCULATED"        # one of ADL_EXECUTIONS
        self.child_client_ids = "algo"           # one of CHILD_CLIENT_IDS
        # client id -> "er" of an order the exchange ended (ExchangeSimulator.expire_reasons)
        self.expire_reasons: dict[str, str] = {}
        # BNB's price in USDT while the account pays its fees in BNB (FakeBinance's
        # `fees_in_bnb`; wire.commission), None: in USDT
        self.bnb_price: Decimal | None = None
        self.fill_before_trigger = trigger_events == "fill-first"
        self.expire_on_trigger = trigger_events == "expired-first"
        self.algos: dict[str, AlgoRecord] = {}            # clientAlgoId -> latest algo order
        self.trade_orders: dict[str, int] = {}            # trade id -> order id
        self.time_in_force: dict[str, str] = {}           # client id -> as sent (LIMIT)
        self.reject_reasons: dict[str, str] = {}          # client id -> a trigger's reject
        # client id -> the trigger of an algo order stuck TRIGGERING (FakeBinance's
        # `stick_trigger`); the simulator holds it parked where no price reaches
        self.stuck: dict[str, Decimal] = {}
        self._created: dict[tuple[str, str], int] = {}
        # symbol -> (size, entry price, ms) of the last position change an ACCOUNT_UPDATE
        # carried: GET /fapi/v3/positionRisk's `updateTime` (`position_changed_ms`)
        self._position_changes: dict[str, tuple[Decimal, Decimal, int]] = {}
        self._next_algo_id = ALGO_ID_BASE
        self._stream_events: list[Json] = []
        # symbol -> "ISOLATED" / "CROSSED": the account's margin types (the endpoints' own
        # dict), each position row's "mt"
        self.margin_types: dict[str, str] = {}

    # --- ids and times --------------------------------------------------------------------
    def new_algo(self, symbol: str, client_id: str) -> None:
        """A new algo order under `client_id`: it gets the next algoId."""
        self._next_algo_id += 1
        self.algos[client_id] = AlgoRecord(symbol, client_id, self._next_algo_id)

    def algo_id(self, order: Order) -> int:
        record = self.algos.get(order.client_id)
        return record.algo_id if record else 0

    def shown(self, order: Order) -> Order:
        """`order` as Binance shows it: one stuck TRIGGERING at its own trigger price, not
        where the simulator parks it."""
        level = self.stuck.get(order.client_id)
        return order if level is None else replace(order, trigger_price=level)

    def tif(self, order: Order) -> str:
        return self.time_in_force.get(order.client_id, "GTC")

    def created_ms(self, order: Order) -> int:
        """When the exchange first saw `order` (ms), now if it is new to the ledger."""
        return self._created.setdefault((order.symbol, order.client_id), self.now_ms())

    # --- events ------------------------------------------------------------------------
    def publish(self, events: list[SimEvent]) -> None:
        moment = self.now_ms()
        funding = Decimal(0)     # the simulator's FundingApplied precedes its ACCOUNT_UPDATE
        for event in events:
            if isinstance(event, OrderUpdate):
                self._stream_events += self._order_events(event, moment)
            elif isinstance(event, FundingApplied):
                funding += event.amount
            elif isinstance(event, AccountUpdate):
                # the wallet after the whole operation (an AccountUpdate carries no Balance;
                # the agent reads only the positions and "bc" of the wire event)
                self._stream_events.append(wire.account_update(
                    list(event.positions), self.sim.balance(), event.reason,
                    moment, balance_change=funding if event.reason == "FUNDING_FEE" else None,
                    margin_types=self.margin_types))
                funding = Decimal(0)
                for position in event.positions:
                    self._position_changed(position, moment)

    def _position_changed(self, position: ExchangePosition, moment: int) -> None:
        known = self._position_changes.get(position.symbol)
        if known is None or known[:2] != (position.quantity, position.entry_price):
            self._position_changes[position.symbol] = (position.quantity,
                                                       position.entry_price, moment)

    def position_changed_ms(self, position: ExchangePosition) -> int:
        """`updateTime` of the position's row in GET /fapi/v3/positionRisk ("更新时间",
        update time): when it last changed, as its last ACCOUNT_UPDATE said, not the time of
        the read (DOCS + "trade/websocket-api/Position-Information": the example answers a
        request signed at 1702920680303 with "updateTime": 1625474304765, years before it);
        now for a change no event told (a test that set the simulator's position directly)."""
        known = self._position_changes.get(position.symbol)
        if known is not None and known[:2] == (position.quantity, position.entry_price):
            return known[2]
        return self.now_ms()

    def take_stream_events(self) -> list[Json]:
        events, self._stream_events = self._stream_events, []
        return events

    def _order_events(self, update: OrderUpdate, moment: int) -> list[Json]:
        order = self.shown(update.order)
        self._created.setdefault((order.symbol, order.client_id), moment)
        reason = self.reject_reasons.get(order.client_id) \
            if order.status is OrderStatus.REJECTED else None
        if reason is not None and not self.algo_api:
            # The page of ORDER_TRADE_UPDATE lists no REJECTED status: a classic conditional
            # order whose trigger was refused is told by CONDITIONAL_ORDER_TRIGGER_REJECT.
            return [wire.conditional_order_trigger_reject(order, int(order.exchange_id),
                                                          reason, moment)]
        if not order.type.conditional or not self.algo_api:
            if update.fill is not None:
                self.trade_orders[update.fill.trade_id] = int(order.exchange_id)
            triggered = "MARKET" if order.type.conditional and update.fill else None
            liquidation = self._exchange_order_type(order)
            fill = wire.order_trade_update(order, update.fill, int(order.exchange_id), moment,
                                           triggered or liquidation,
                                           time_in_force=self.tif(order),
                                           bnb_price=self.bnb_price,
                                           execution=self._fill_execution(order),
                                           expire_reason=self._expire_reason(order),
                                           original_type=liquidation)
            first_fill = update.fill is not None and order.filled_qty == update.fill.quantity
            if triggered and self.expire_on_trigger and first_fill:
                return [*self._classic_trigger_events(order, moment), fill]
            return [fill]
        algo_id = self.algo_id(order)
        if order.status is not OrderStatus.FILLED and update.fill is not None:
            return self._child_traded_in_part(order, update.fill, algo_id, moment)
        if order.status is not OrderStatus.FILLED:
            # ALGO_UPDATE REJECTED: "denied by the matching engine, such as in scenarios of
            # margin check failures", its "rm" the reason (Event-Algo-Order-Update)
            return [wire.algo_update(order, algo_id, wire.ALGO_STATUS[order.status], moment,
                                     reject_reason=reason or "")]
        child = CHILD_ORDER_BASE + int(order.exchange_id)
        if update.fill is not None:
            self.trade_orders[update.fill.trade_id] = child
        triggered = wire.algo_update(order, algo_id, "TRIGGERED", moment, str(child))
        child_fill = wire.order_trade_update(self.child_of(order, child), update.fill, child,
                                             moment, "MARKET", bnb_price=self.bnb_price)
        first = [child_fill, triggered] if self.fill_before_trigger else [triggered, child_fill]
        return [*first, wire.algo_update(order, algo_id, "FINISHED", moment, str(child))]

    @staticmethod
    def _exchange_order_type(order: Order) -> str | None:
        """A liquidation order's type is LIQUIDATION (EVENT_ORDER_PAGE, "Order Type"); an
        ADL's or a settlement's the page does not name: MARKET, as the simulator placed it."""
        return "LIQUIDATION" if order.client_id.startswith(LIQUIDATION_PREFIX) else None

    def _fill_execution(self, order: Order) -> str:
        """"x" of a fill: CALCULATED ("Liquidation Execution") for a liquidation, the
        chosen one of ADL_EXECUTIONS for an ADL, TRADE otherwise."""
        if order.client_id.startswith(LIQUIDATION_PREFIX):
            return "CALCULATED"
        return self.adl_execution if order.client_id == ADL_ID else "TRADE"

    def _expire_reason(self, order: Order) -> str:
        if order.status is not OrderStatus.EXPIRED:
            return "0"
        return self.expire_reasons.get(order.client_id, "0")

    def _child_traded_in_part(self, order: Order, fill: Fill, algo_id: int,
                              moment: int) -> list[Json]:
        """A triggered algo order whose child (the MARKET order it placed in the matching
        engine) traded only part so far: ALGO_UPDATE TRIGGERED, "the order has been
        successfully placed into the matching engine", with "ai" the child's order id
        (DOCS + "user-data-streams/Event-Algo-Order-Update"), and the child's own trade as
        ORDER_TRADE_UPDATE PARTIALLY_FILLED. Its row in GET /fapi/v1/userTrades carries the
        child's orderId, the order that traded (DOCS + "trade/rest-api/Account-Trade-List"),
        never 0."""
        child = CHILD_ORDER_BASE + int(order.exchange_id)
        self.trade_orders[fill.trade_id] = child
        return [wire.algo_update(order, algo_id, "TRIGGERED", moment, str(child)),
                wire.order_trade_update(self.child_of(order, child), fill, child, moment,
                                        "MARKET", bnb_price=self.bnb_price)]

    def child_of(self, algo: Order, child_order_id: int | str) -> Order:
        """The algo order's child as the stream and Query Order tell it: under the algo's
        client id, or its own (`child_client_ids`)."""
        if self.child_client_ids == "algo":
            return algo
        return replace(algo, client_id=own_child_client_id(child_order_id))

    def _classic_trigger_events(self, order: Order, moment: int) -> list[Json]:
        """A classic conditional order's trigger, before its first fill ("expired-first")."""
        waiting = replace(order, status=OrderStatus.NEW, filled_qty=Decimal(0), avg_price=None)
        expired = wire.order_trade_update(replace(waiting, status=OrderStatus.EXPIRED), None,
                                          int(order.exchange_id), moment)
        expired["o"]["er"] = "8"
        market = wire.order_trade_update(waiting, None, int(order.exchange_id), moment, "MARKET")
        return [expired, market]
