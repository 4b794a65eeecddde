"""The REST endpoints of the fake Binance USD-M server, on top of the matching simulator.

Each handler takes the request's parameters (strings, as sent) and returns the JSON
Binance would, or raises `ExchangeError` with Binance's code and message (HTTP 400 unless
the error says otherwise). Conditional orders exist only in the Algo Order API: POST
/fapi/v1/order answers -4120 for them, and the plain order endpoints don't see them.
Every simulator event a handler causes is queued as user-data stream JSON
(`take_stream_events`).

`algo_api=False` is a server from before the migration (or a testnet / proxy without the
Algo Order API; FakeBinance then answers 404 on the algo paths): POST /fapi/v1/order takes
STOP_MARKET / TAKE_PROFIT_MARKET with stopPrice, the plain endpoints list, query and cancel
them, and the stream tells of them in ORDER_TRADE_UPDATE ("o" MARKET and "ot" the original
type once triggered) as the pre-migration New Order and Event-Order-Update pages document
(https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api,
.../user-data-streams/Event-Order-Update; parameters transcribed at
https://0xhardman.xlog.app/binance-futures-api-guide?locale=en).
"""

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.fakes import binance_wire as wire
from trader.domain import (
    Candle,
    ClientId,
    Order,
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
    to_ms,
)
from trader.exchange.base import AccountUpdate, ExchangeError, FundingApplied, OrderUpdate
from trader.exchange.sim import SimEvent, Simulator

Json = dict[str, Any]
Params = dict[str, str]
DECIMAL_TEXT = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
CHILD_ORDER_BASE = 1_000_000_000    # order ids of the market orders triggered algo orders spawn
ALGO_ID_BASE = 4_000_000_000
# The types the simulator can match. Binance also takes STOP, TAKE_PROFIT and
# TRAILING_STOP_MARKET; this fake answers -1116 for them (a limit of the fake).
PLACEABLE_TYPES = ("MARKET", "LIMIT", "STOP_MARKET", "TAKE_PROFIT_MARKET")
SWITCH_TO_ALGO = ExchangeError(-4120, "Order type not supported for this endpoint. "
                                      "Please use the Algo Order API.")
# New Order (https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/
# rest-api/New-Order): "LIMIT: timeInForce, quantity, price" are mandatory; GTX is "Good
# Till Crossing (Post Only)": a GTX that would take liquidity is refused with -5022 (the
# simulator's post-only check, error-code page 50xx). IOC, FOK and GTD are Binance's too;
# this fake does not match them and answers -1115 (a limit of the fake).
TIME_IN_FORCE = ("GTC", "GTX")
POST_ONLY = "GTX"


def missing(name: str) -> ExchangeError:
    return ExchangeError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                                f"or malformed.")


def decimal_param(params: Params, name: str, required: bool = True) -> Decimal | None:
    text = params.get(name)
    if text is None or text == "":
        if required:
            raise missing(name)
        return None
    if not DECIMAL_TEXT.fullmatch(text):
        raise ExchangeError(-1100, f"Illegal characters found in parameter '{name}'; legal "
                                   f"range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.")
    return Decimal(text)


def bool_param(params: Params, name: str) -> bool:
    text = params.get(name, "false").lower()
    if text not in ("true", "false"):
        raise ExchangeError(-1130, f"Data sent for parameter '{name}' is not valid.")
    return text == "true"


def required(params: Params, name: str) -> str:
    value = params.get(name)
    if not value:
        raise missing(name)
    return value


class KeepingSimulator(Simulator):
    """The matching simulator, except that resting reduce-only / closePosition orders stay
    when their position goes flat (the plain Simulator expires them).

    Binance's docs are silent on this for our orders: the ALGO_UPDATE page's EXPIRED example
    only names GTE_GTC conditional orders ("closes all positions on that symbol, resulting in
    system-led cancellation"), so FakeBinance(flat_orders=...) offers both behaviours.
    """

    def _expire_orphans(self, symbol: str, now: datetime) -> list[SimEvent]:
        return []


FLAT_ORDER_BEHAVIOURS = {"expire": Simulator, "keep": KeepingSimulator}
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


class BinanceEndpoints:
    """Handlers and the bookkeeping Binance keeps beside the simulator (ids, modes, keys)."""

    def __init__(self, sim: Simulator, now: Callable[[], datetime], symbols: list[str],
                 trigger_events: str = "triggered-first", algo_api: bool = True) -> None:
        """`trigger_events`: the order of a triggered conditional order's events, one of
        TRIGGER_EVENT_ORDERS. `algo_api`: see the module docstring."""
        if trigger_events not in TRIGGER_EVENT_ORDERS:
            raise ValueError(f"trigger_events must be one of {TRIGGER_EVENT_ORDERS}")
        self.sim, self.now, self.symbols = sim, now, symbols
        self.fill_before_trigger = trigger_events == "fill-first"
        self.expire_on_trigger = trigger_events == "expired-first"
        self.algo_api = algo_api
        self.hedge_mode = False
        self.margin_types: dict[str, str] = {}
        self.listen_key: str | None = None
        self.candles: dict[str, list[Candle]] = {}
        self.rate_limits: list[Json] = []
        self._algos: dict[str, AlgoRecord] = {}           # clientAlgoId -> latest algo order
        self._created: dict[tuple[str, str], int] = {}
        self._trade_orders: dict[str, int] = {}           # trade id -> order id
        self._time_in_force: dict[str, str] = {}          # client id -> as sent (LIMIT)
        self._next_algo_id = ALGO_ID_BASE
        self._stream_events: list[Json] = []

    def now_ms(self) -> int:
        return to_ms(self.now())

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
                self._stream_events.append(wire.account_update(
                    list(event.positions), event.balance or self.sim.balance(), event.reason,
                    moment, balance_change=funding if event.reason == "FUNDING_FEE" else None))
                funding = Decimal(0)

    def take_stream_events(self) -> list[Json]:
        events, self._stream_events = self._stream_events, []
        return events

    def _order_events(self, update: OrderUpdate, moment: int) -> list[Json]:
        order = update.order
        self._created.setdefault((order.symbol, order.client_id), moment)
        if not order.type.conditional or not self.algo_api:
            if update.fill is not None:
                self._trade_orders[update.fill.trade_id] = int(order.exchange_id)
            triggered = "MARKET" if order.type.conditional and update.fill else None
            fill = wire.order_trade_update(order, update.fill, int(order.exchange_id), moment,
                                           triggered, time_in_force=self._tif(order))
            first_fill = update.fill is not None and order.filled_qty == update.fill.quantity
            if triggered and self.expire_on_trigger and first_fill:
                return [*self._classic_trigger_events(order, moment), fill]
            return [fill]
        algo_id = self._algo_id(order)
        if order.status is not OrderStatus.FILLED:
            return [wire.algo_update(order, algo_id, wire.ALGO_STATUS[order.status], moment)]
        child = CHILD_ORDER_BASE + int(order.exchange_id)
        if update.fill is not None:
            self._trade_orders[update.fill.trade_id] = child
        triggered = wire.algo_update(order, algo_id, "TRIGGERED", moment, str(child))
        child_fill = wire.order_trade_update(order, update.fill, child, moment, "MARKET")
        first = [child_fill, triggered] if self.fill_before_trigger else [triggered, child_fill]
        return [*first, wire.algo_update(order, algo_id, "FINISHED", moment, str(child))]

    def _classic_trigger_events(self, order: Order, moment: int) -> list[Json]:
        """A classic conditional order's trigger, before its first fill ("expired-first")."""
        waiting = replace(order, status=OrderStatus.NEW, filled_qty=Decimal(0), avg_price=None)
        expired = wire.order_trade_update(replace(waiting, status=OrderStatus.EXPIRED), None,
                                          int(order.exchange_id), moment)
        expired["o"]["er"] = "8"
        market = wire.order_trade_update(waiting, None, int(order.exchange_id), moment, "MARKET")
        return [expired, market]

    def _algo_id(self, order: Order) -> int:
        record = self._algos.get(order.client_id)
        return record.algo_id if record else 0

    # --- market data --------------------------------------------------------------------
    def exchange_info(self, params: Params) -> Json:
        return wire.exchange_info([wire.symbol_info(self.sim.rules_for(s)) for s in self.symbols],
                                  self.rate_limits, self.now_ms())

    def klines(self, params: Params) -> list[list[Any]]:
        candles = self.candles.get(required(params, "symbol"), [])
        limit = int(params.get("limit", "500"))
        if "startTime" in params:
            start = int(params["startTime"])
            return [wire.kline_row(c) for c in candles if to_ms(c.open_time) >= start][:limit]
        return [wire.kline_row(c) for c in candles[-limit:]]

    def book_ticker(self, params: Params) -> Json:
        return wire.book_ticker(self.sim.book(required(params, "symbol")), self.now_ms())

    def premium_index(self, params: Params) -> Json:
        symbol = required(params, "symbol")
        return wire.premium_index(symbol, self.sim.mark_price(symbol),
                                  self.sim.funding_rate(symbol), self.now_ms())

    # --- account settings ------------------------------------------------------------------
    def position_mode(self, params: Params) -> Json:
        return {"dualSidePosition": self.hedge_mode}

    def change_position_mode(self, params: Params) -> Json:
        wanted = bool_param(params, "dualSidePosition")
        if wanted == self.hedge_mode:
            raise ExchangeError(-4059, "No need to change position side.")
        self.hedge_mode = wanted
        return {"code": 200, "msg": "success"}

    def margin_type(self, params: Params) -> Json:
        symbol, wanted = required(params, "symbol"), required(params, "marginType").upper()
        if self.margin_types.get(symbol, "CROSSED") == wanted:
            raise ExchangeError(-4046, "No need to change margin type.")
        if self.sim.position(symbol).quantity != 0:
            raise ExchangeError(-4048, "Margin type cannot be changed if there exists position.")
        self.margin_types[symbol] = wanted
        return {"code": 200, "msg": "success"}

    def leverage(self, params: Params) -> Json:
        symbol, leverage = required(params, "symbol"), int(required(params, "leverage"))
        self.sim.set_leverage(symbol, leverage)
        return {"leverage": leverage, "maxNotionalValue": "1000000", "symbol": symbol}

    # --- listen key ------------------------------------------------------------------------
    def create_listen_key(self, params: Params) -> Json:
        # POST returns the account's active key if there is one, else a new one
        # (https://developers.binance.com/docs/derivatives/usds-margined-futures/
        # user-data-streams/Connect).
        if self.listen_key is None:
            self.listen_key = secrets.token_hex(32)
        return {"listenKey": self.listen_key}

    def keep_alive_listen_key(self, params: Params) -> Json:
        # The USD-M PUT takes no parameter: it extends the account's active key and names
        # it in the answer; -1125 when there is none (.../user-data-streams/
        # Keepalive-User-Data-Stream and .../Connect). A listenKey sent anyway is ignored.
        if self.listen_key is None:
            raise ExchangeError(-1125, "This listenKey does not exist.")
        return {"listenKey": self.listen_key}

    def close_listen_key(self, params: Params) -> Json:
        self.listen_key = None
        return {}

    # --- orders ------------------------------------------------------------------------------
    def _request(self, params: Params, order_type: OrderType, client_id: str,
                 stop_name: str) -> OrderRequest:
        parsed = ClientId.parse(client_id)
        close_position = bool_param(params, "closePosition")
        quantity = decimal_param(params, "quantity", required=not close_position)
        time_in_force = self._time_in_force_param(params, order_type)
        return OrderRequest(
            symbol=required(params, "symbol"), side=Side(required(params, "side")),
            type=order_type, quantity=quantity or Decimal(0), client_id=client_id,
            role=parsed.role if parsed else OrderRole.ENTRY,
            price=decimal_param(params, "price", required=False),
            trigger_price=decimal_param(params, stop_name, required=False),
            reduce_only=bool_param(params, "reduceOnly"), close_position=close_position,
            post_only=time_in_force == POST_ONLY)

    @staticmethod
    def _time_in_force_param(params: Params, order_type: OrderType) -> str | None:
        if order_type is not OrderType.LIMIT:
            return None
        text = required(params, "timeInForce")
        if text not in TIME_IN_FORCE:
            raise ExchangeError(-1115, "Invalid timeInForce.")
        return text

    def _tif(self, order: Order) -> str:
        return self._time_in_force.get(order.client_id, "GTC")

    def _order_type(self, params: Params) -> OrderType:
        text = required(params, "type")
        if text not in PLACEABLE_TYPES:
            raise ExchangeError(-1116, "Invalid orderType.")
        return OrderType(text)

    def new_order(self, params: Params) -> Json:
        order_type = self._order_type(params)
        if order_type.conditional and self.algo_api:
            raise SWITCH_TO_ALGO
        client_id = params.get("newClientOrderId") or f"fake-{secrets.token_hex(8)}"
        request = self._request(params, order_type, client_id, "stopPrice")
        if order_type.conditional and request.trigger_price is None:
            raise missing("stopPrice")
        order, events = self.sim.place(request, self.now())   # -5022: a GTX that would take
        if order_type is OrderType.LIMIT:
            self._time_in_force[client_id] = params["timeInForce"]
        self.publish(events)
        return self._plain_json(order, "new")

    def new_algo_order(self, params: Params) -> Json:
        if params.get("algoType") != "CONDITIONAL":
            raise ExchangeError(-1116, "Invalid algoType.")
        order_type = self._order_type(params)
        if not order_type.conditional:
            raise ExchangeError(-1116, "Invalid orderType.")
        client_id = params.get("clientAlgoId") or f"fake-{secrets.token_hex(8)}"
        request = self._request(params, order_type, client_id, "triggerPrice")
        if request.trigger_price is None:
            raise missing("triggerPrice")
        order, events = self.sim.place(request, self.now())
        self._next_algo_id += 1
        self._algos[client_id] = AlgoRecord(request.symbol, client_id, self._next_algo_id)
        self.publish(events)
        return self._algo_json(order, "new")

    def _plain_json(self, order: Order, answer: str) -> Json:
        created = self._created.setdefault((order.symbol, order.client_id), self.now_ms())
        return wire.plain_order(order, int(order.exchange_id), created, answer, self._tif(order))

    def _algo_json(self, order: Order, answer: str) -> Json:
        created = self._created.setdefault((order.symbol, order.client_id), self.now_ms())
        child = str(CHILD_ORDER_BASE + int(order.exchange_id)) \
            if order.status is OrderStatus.FILLED else ""
        return wire.algo_order(order, self._algo_id(order), created, child, answer)

    def _plain_order(self, params: Params) -> Order:
        symbol = required(params, "symbol")
        client_id = params.get("origClientOrderId")
        order = None
        if client_id:
            order = self.sim.order(symbol, client_id)
        elif params.get("orderId"):
            order = self._order_by_id(params["orderId"])
        else:
            raise missing("orderId")
        if order is None or (order.type.conditional and self.algo_api):
            raise ExchangeError(-2013, "Order does not exist.")
        return order

    def _order_by_id(self, order_id: str) -> Order | None:
        """Any order by its orderId, finished ones too (Query Order answers those); a
        triggered algo order's child is a MARKET order under the algo's client id (the
        fake's assumption, as on the stream)."""
        orders = [*self.sim.orders.live.values(), *self.sim.orders.terminal.values()]
        found = next((o for o in orders if o.exchange_id == order_id), None)
        if found is not None or not order_id.isdigit() or int(order_id) < CHILD_ORDER_BASE:
            return found
        parent = str(int(order_id) - CHILD_ORDER_BASE)
        algo = next((o for o in orders if o.exchange_id == parent and o.type.conditional
                     and o.status is OrderStatus.FILLED), None)
        return replace(algo, type=OrderType.MARKET, exchange_id=order_id) if algo else None

    def _algo_order(self, params: Params) -> Order:
        record = None
        if params.get("clientAlgoId"):
            record = self._algos.get(params["clientAlgoId"])
        elif params.get("algoId"):
            record = next((r for r in self._algos.values()
                           if str(r.algo_id) == params["algoId"]), None)
        else:
            raise missing("algoId")
        order = self.sim.order(record.symbol, record.client_id) if record else None
        if order is None:
            raise ExchangeError(-2013, "Order does not exist.")
        return order

    def query_order(self, params: Params) -> Json:
        return self._plain_json(self._plain_order(params), "query")

    def query_algo_order(self, params: Params) -> Json:
        return self._algo_json(self._algo_order(params), "query")

    def cancel_order(self, params: Params) -> Json:
        try:
            order = self._plain_order(params)
        except ExchangeError:
            raise ExchangeError(-2011, "Unknown order sent.") from None
        cancelled, events = self.sim.cancel(order.symbol, order.client_id, self.now())
        self.publish(events)
        return self._plain_json(cancelled, "cancel")

    def cancel_algo_order(self, params: Params) -> Json:
        try:
            order = self._algo_order(params)
        except ExchangeError:
            raise ExchangeError(-2011, "Unknown order sent.") from None
        cancelled, events = self.sim.cancel(order.symbol, order.client_id, self.now())
        self.publish(events)
        return wire.algo_cancel_ack(cancelled, self._algo_id(cancelled))

    def open_orders(self, params: Params) -> list[Json]:
        return [self._plain_json(o, "open") for o in self.sim.open_orders(params.get("symbol"))
                if not (o.type.conditional and self.algo_api)]

    def open_algo_orders(self, params: Params) -> list[Json]:
        return [self._algo_json(o, "open") for o in self.sim.open_orders(params.get("symbol"))
                if o.type.conditional]

    def cancel_all(self, params: Params, algo: bool) -> Json:
        symbol = required(params, "symbol")
        for order in self.sim.open_orders(symbol):
            if order.type.conditional == algo or not self.algo_api:
                self.publish(self.sim.cancel(symbol, order.client_id, self.now())[1])
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    # --- account ---------------------------------------------------------------------------
    def account(self, params: Params) -> Json:
        positions = [self.sim.position(symbol) for symbol in self.symbols]
        leverage = {symbol: self.sim.leverage(symbol) for symbol in self.symbols}
        return wire.account(self.sim.balance(), positions, leverage, self.now_ms())

    def position_risk(self, params: Params) -> list[Json]:
        symbol = params.get("symbol")
        symbols = [symbol] if symbol else self.symbols
        return [wire.position_risk(self.sim.position(s), self.sim.mark_price(s), self.now_ms())
                for s in symbols if self.sim.position(s).quantity != 0]

    def user_trades(self, params: Params) -> list[Json]:
        symbol = required(params, "symbol")
        start = int(params.get("startTime", "0"))
        fills = [f for f in self.sim.fills(symbol) if to_ms(f.time) >= start]
        limit = int(params.get("limit", "500"))
        return [wire.user_trade(f, self._trade_orders.get(f.trade_id, 0))
                for f in fills[:limit]]
