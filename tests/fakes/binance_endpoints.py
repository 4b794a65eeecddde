"""The REST endpoints of the fake Binance USD-M server, on top of the matching simulator.

Each handler takes the request's parameters (strings, as sent) and returns the JSON
Binance would, or raises `ExchangeError` with Binance's code and message (HTTP 400 unless
the error says otherwise). Conditional orders exist only in the Algo Order API: POST
/fapi/v1/order answers -4120 for them, and the plain order endpoints don't see them.
Every simulator event a handler causes is queued as user-data stream JSON
(`take_stream_events`); the ids, times and events Binance keeps per order are in
binance_ledger.py, the reading of parameters in binance_params.py.

`algo_api=False` is a server from before the migration (or a testnet / proxy without the
Algo Order API; FakeBinance then answers 404 on the algo paths): POST /fapi/v1/order takes
STOP_MARKET / TAKE_PROFIT_MARKET with stopPrice, the plain endpoints list, query and cancel
them, and the stream tells of them in ORDER_TRADE_UPDATE ("o" MARKET and "ot" the original
type once triggered) as the pre-migration New Order and Event-Order-Update pages document
(https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api,
.../user-data-streams/Event-Order-Update; parameters transcribed at
https://0xhardman.xlog.app/binance-futures-api-guide?locale=en).
"""

import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.fakes import binance_wire as wire
from tests.fakes.binance_ledger import (
    CHILD_ORDER_BASE,
    FLAT_ORDER_BEHAVIOURS,
    TRIGGER_EVENT_ORDERS,
    AlgoRecord,
    OrderLedger,
)
from tests.fakes.binance_params import Params, bool_param, decimal_param, missing, required
from trader.domain import (
    ZERO,
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
from trader.exchange.base import ExchangeError
from trader.exchange.sim import SimEvent, Simulator

__all__ = ["FLAT_ORDER_BEHAVIOURS", "TRIGGER_EVENT_ORDERS", "BinanceEndpoints"]
Json = dict[str, Any]
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
BNB_SYMBOL = "BNBUSDT"      # what fees in BNB are priced with (BinanceExchange.asset_price)
POST_ONLY = "GTX"


class BinanceEndpoints:
    """Handlers and the account's settings (modes, margin types, listen key); per-order ids
    and the stream events are kept in `self.ledger` (binance_ledger.OrderLedger)."""

    def __init__(self, sim: Simulator, now: Callable[[], datetime], symbols: list[str],
                 trigger_events: str = "triggered-first", algo_api: bool = True) -> None:
        """`trigger_events`: the order of a triggered conditional order's events, one of
        TRIGGER_EVENT_ORDERS. `algo_api`: see the module docstring."""
        self.sim, self.now, self.symbols = sim, now, symbols
        self.ledger = OrderLedger(sim, self.now_ms, trigger_events, algo_api)
        self.algo_api = algo_api
        self.hedge_mode = False
        self.multi_assets = False       # the account's Multi-Assets mode (asset mode)
        self.margin_types: dict[str, str] = {}
        self.ledger.margin_types = self.margin_types   # each ACCOUNT_UPDATE row's "mt"
        self.listen_key: str | None = None
        self.candles: dict[str, list[Candle]] = {}
        self.rate_limits: list[Json] = []

    def now_ms(self) -> int:
        return to_ms(self.now())

    def publish(self, events: list[SimEvent]) -> None:
        """Queue the user-data events of what the simulator did (OrderLedger.publish)."""
        self.ledger.publish(events)

    def take_stream_events(self) -> list[Json]:
        return self.ledger.take_stream_events()

    # --- market data --------------------------------------------------------------------
    def exchange_info(self, params: Params) -> Json:
        return wire.exchange_info([wire.symbol_info(self.sim.rules_for(s)) for s in self.symbols],
                                  self.rate_limits, self.now_ms())

    def klines(self, params: Params) -> list[list[Any]]:
        """The candles pushed so far and, as on Binance, the kline in progress as the last
        row: "If startTime and endTime are not sent, the most recent klines are returned"
        (https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/
        rest-api/Kline-Candlestick-Data; the COIN-M page of the same endpoint names the
        last row's close "Close (or latest price)"). The fake knows that kline only in the
        interval after the last candle pushed: it opened at that candle's close, its close
        so far is the mark price."""
        symbol = required(params, "symbol")
        candles = self.candles.get(symbol, [])
        current = self._kline_in_progress(symbol, candles)
        if current is not None:
            candles = [*candles, current]
        limit = int(params.get("limit", "500"))
        if "startTime" in params:
            start = int(params["startTime"])
            return [wire.kline_row(c) for c in candles if to_ms(c.open_time) >= start][:limit]
        return [wire.kline_row(c) for c in candles[-limit:]]

    def _kline_in_progress(self, symbol: str, candles: list[Candle]) -> Candle | None:
        if not candles or not candles[-1].closed:
            return None       # none pushed, or the test put the one in progress there itself
        last, now = candles[-1], self.now()
        if not last.close_time <= now < last.close_time + last.interval:
            return None
        price = self.sim.mark_price(symbol)
        return Candle(symbol, last.close_time, last.interval, last.close,
                      max(last.close, price), min(last.close, price), price, Decimal(0),
                      closed=False)

    def book_ticker(self, params: Params) -> Json:
        return wire.book_ticker(self.sim.book(self._listed(params)), self.now_ms())

    def premium_index(self, params: Params) -> Json:
        symbol = required(params, "symbol")
        bnb = self.ledger.bnb_price
        if symbol == BNB_SYMBOL and bnb is not None and symbol not in self.symbols:
            # BNBUSDT, listed on Binance, not traded here: its price while fees are in BNB
            return wire.premium_index(symbol, bnb, ZERO, self.now_ms())
        symbol = self._listed(params)
        return wire.premium_index(symbol, self.sim.mark_price(symbol),
                                  self.sim.funding_rate(symbol), self.now_ms())

    def _listed(self, params: Params) -> str:
        """The request's symbol, one the fake lists; -1121 BAD_SYMBOL "Invalid symbol."
        otherwise (DOCS + "error-code")."""
        symbol = required(params, "symbol")
        if symbol not in self.symbols:
            raise ExchangeError(-1121, "Invalid symbol.")
        return symbol

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
        if self.multi_assets and wanted == "ISOLATED":
            # Multi-Assets mode: every symbol on cross margin (Change Multi-Assets Mode,
            # https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/
            # rest-api/Change-Multi-Assets-Mode). The code and text are those of Binance's
            # USD-M error-code list (-4168), which the stored docs here do not hold: the
            # agent reads the code only, so a reworded message changes nothing.
            raise ExchangeError(-4168, "Unable to adjust to isolated-margined mode under the "
                                "Multi-Assets mode.")
        if self.margin_types.get(symbol, "CROSSED") == wanted:
            raise ExchangeError(-4046, "No need to change margin type.")
        if self.sim.position(symbol).quantity != 0:
            raise ExchangeError(-4048, "Margin type cannot be changed if there exists position.")
        self.margin_types[symbol] = wanted
        return {"code": 200, "msg": "success"}

    def multi_assets_margin(self, params: Params) -> Json:
        """GET /fapi/v1/multiAssetsMargin: the page's answer, {"multiAssetsMargin": true}
        for Multi-Assets mode (https://developers.binance.com/docs/derivatives/
        usds-margined-futures/account/rest-api/Get-Current-Multi-Assets-Mode)."""
        return {"multiAssetsMargin": self.multi_assets}

    def leverage(self, params: Params) -> Json:
        symbol, leverage = required(params, "symbol"), int(required(params, "leverage"))
        self.sim.set_leverage(symbol, leverage)
        return {"leverage": leverage, "maxNotionalValue": "1000000", "symbol": symbol}

    def symbol_config(self, params: Params) -> list[Json]:
        """GET /fapi/v1/symbolConfig: the account's margin type and leverage, one row per
        symbol (tests/fixtures/binance/symbol_config.json)."""
        symbol = params.get("symbol")
        return [{"symbol": s, "marginType": self.margin_types.get(s, "CROSSED"),
                 "isAutoAddMargin": "false", "leverage": self.sim.leverage(s),
                 "maxNotionalValue": "1000000"} for s in ([symbol] if symbol else self.symbols)]

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
            self.ledger.time_in_force[client_id] = params["timeInForce"]
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
        self.ledger.new_algo(request.symbol, client_id)
        self.publish(events)
        return self._algo_json(order, "new")

    def _plain_json(self, order: Order, answer: str) -> Json:
        return wire.plain_order(order, int(order.exchange_id), self.ledger.created_ms(order),
                                answer, self.ledger.tif(order))

    def _algo_json(self, order: Order, answer: str) -> Json:
        # the child's order id once the order triggered (TRIGGERED: "placed into the
        # matching engine", as ALGO_UPDATE's "ai" names it: binance_ledger), "" before
        triggered = order.status in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED)
        child = str(CHILD_ORDER_BASE + int(order.exchange_id)) if triggered else ""
        shown = wire.algo_order(self.ledger.shown(order), self.ledger.algo_id(order),
                                self.ledger.created_ms(order), child, answer)
        if order.client_id in self.ledger.stuck and order.status is OrderStatus.NEW:
            shown["algoStatus"] = "TRIGGERING"          # FakeBinance.stick_trigger
        return shown

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
        triggered algo order's child is a MARKET order under the client id the stream gives
        it (`OrderLedger.child_of`: the docs name none)."""
        orders = [*self.sim.orders.live.values(), *self.sim.orders.terminal.values()]
        found = next((o for o in orders if o.exchange_id == order_id), None)
        if found is not None or not order_id.isdigit() or int(order_id) < CHILD_ORDER_BASE:
            return found
        parent = str(int(order_id) - CHILD_ORDER_BASE)
        algo = next((o for o in orders if o.exchange_id == parent and o.type.conditional
                     and (o.filled_qty > 0 or o.status is OrderStatus.FILLED)), None)
        return _child_of(self.ledger.child_of(algo, order_id), order_id) if algo else None

    def _algo_order(self, params: Params) -> Order:
        record: AlgoRecord | None = None
        if params.get("clientAlgoId"):
            record = self.ledger.algos.get(params["clientAlgoId"])
        elif params.get("algoId"):
            record = next((r for r in self.ledger.algos.values()
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
        if order.client_id in self.ledger.stuck:
            # An order stuck TRIGGERING has left the Algo Service: cancelling it "returned
            # -2011 Unknown order sent" on Binance's demo venue, while GET algoOrder kept
            # answering TRIGGERING (github.com/nautechsystems/nautilus_trader/discussions/5378)
            raise ExchangeError(-2011, "Unknown order sent.")
        cancelled, events = self.sim.cancel(order.symbol, order.client_id, self.now())
        self.publish(events)
        return wire.algo_cancel_ack(cancelled, self.ledger.algo_id(cancelled))

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
        changed = {p.symbol: self.ledger.position_changed_ms(p) for p in positions}
        return wire.account(self.sim.balance(), positions, leverage, self.now_ms(),
                            multi_assets=self.multi_assets, changed_ms=changed)

    def position_risk(self, params: Params) -> list[Json]:
        symbol = params.get("symbol")
        symbols = [symbol] if symbol else self.symbols
        return [wire.position_risk(position, self.sim.mark_price(position.symbol),
                                   self.ledger.position_changed_ms(position))
                for position in map(self.sim.position, symbols) if position.quantity != 0]

    def user_trades(self, params: Params) -> list[Json]:
        """DOCS + "trade/rest-api/Account-Trade-List": "If startTime and endTime are both not
        sent, then the last 7 days' data will be returned. The time between startTime and
        endTime cannot be longer than 7 days." With one of them only, the 7 days from it
        (or up to it): the docs do not say, and that reading is the narrower one. Longer:
        -1127 (error-code page: "More than %s hours between startTime and endTime.")."""
        symbol = required(params, "symbol")
        week = 7 * 24 * 3600 * 1000
        start, end = params.get("startTime"), params.get("endTime")
        if start is None and end is None:
            end_ms = self.now_ms()
            start_ms = end_ms - week
        elif end is None:
            start_ms = int(start)
            end_ms = start_ms + week
        elif start is None:
            end_ms = int(end)
            start_ms = end_ms - week
        else:
            start_ms, end_ms = int(start), int(end)
            if end_ms - start_ms > week:
                raise ExchangeError(-1127, "More than 168 hours between startTime and endTime.")
        fills = [f for f in self.sim.fills(symbol) if start_ms <= to_ms(f.time) <= end_ms]
        limit = min(int(params.get("limit", "500")), 1000)
        return [wire.user_trade(f, self.ledger.trade_orders.get(f.trade_id, 0),
                                self.ledger.bnb_price) for f in fills[:limit]]


def _child_of(algo: Order, order_id: str) -> Order:
    """The MARKET child of a triggered algo order (one the simulator ended FILLED is
    FINISHED, "filled or canceled in the matching engine": DOCS of binance_wire, "user-data-
    streams/Event-Algo-Order-Update"): FILLED when it executed the whole order; a child
    that executed less, or nothing, ended EXPIRED with what it executed ("Market order
    could not be filled completely", "knocked out by another higher priority RO (market)
    order": the expiry reasons of "user-data-streams/Event-Order-Update"). Still trading,
    it is as live as its algo order."""
    child = replace(algo, type=OrderType.MARKET, exchange_id=order_id)
    if algo.status is not OrderStatus.FILLED:
        return child
    complete = algo.filled_qty > 0 and (algo.close_position or algo.filled_qty >= algo.quantity)
    return child if complete else replace(child, status=OrderStatus.EXPIRED)
