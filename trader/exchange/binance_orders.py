"""Our orders on Binance USD-M: place, query, cancel, probe, list the open ones, and read
the fills of /userTrades under their client ids.

Plain orders (MARKET, LIMIT) go to /fapi/v1/order keyed by `newClientOrderId`;
conditional ones (STOP_MARKET, TAKE_PROFIT_MARKET) to the Algo Order API
/fapi/v1/algoOrder keyed by `clientAlgoId` (python-binance would invent a random one:
we always pass ours). Requests go through `BinanceRest` (binance_rest.py); what is sent is
binance_requests.py, what is read binance_order_codec.py.

Where the server has no Algo Order API (HTTP 404 on an algo endpoint:
binance_algo_presence.py) conditional orders go to the classic /fapi/v1/order keyed by
`newClientOrderId`, open orders come from GET /fapi/v1/openOrders only, and protective
client ids are asked there first (then on the Algo API all the same, so an algo order
is found after a passing 404); a -4120 from the classic endpoint, or an answer of an algo
endpoint, switches back. The place refused with the 404 is sent again at once on the
classic endpoint under the same client id (a 404 never reached a matching engine, and one
id cannot make two orders); should that answer -4120, the 404 was a passing one and it goes
to the Algo API once more.

When `place()` cannot know whether the order reached the matching engine it raises
`UnknownOutcome`; then `probe()` asks for the order by client id.

GET /fapi/v1/userTrades rows carry orderId but no client id: the orderId -> client id map
is learnt from every order answer and ORDER_TRADE_UPDATE (`remember_stream_order`).
"""

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Final, TypeVar, cast

from loguru import logger

from trader.domain import ClientId, Fill, Order, OrderRequest, to_ms
from trader.exchange import binance_codec as codec
from trader.exchange import binance_order_codec as order_codec
from trader.exchange import binance_requests
from trader.exchange.base import ExchangeError, MalformedResponse, UnknownOutcome
from trader.exchange.binance_algo_presence import AlgoApiPresence
from trader.exchange.binance_children import AlgoChildren
from trader.exchange.binance_fields import rows_of
from trader.exchange.binance_rest import BinanceRest
from trader.exchange.errors import Outcome, classify

T = TypeVar("T")
# Binance request parameters spread into `BinanceRest.call`. Any: for mypy, a spread dict of
# text could fill `call`'s own `weight` or `timeout` (no Binance parameter is named so)
_Params = dict[str, Any]

# A conditional place goes to the other API after a 404 or -4120, at most twice (a 404 then
# a -4120: the 404 was a passing one); see `_send_conditional`.
SWITCHES_PER_PLACE: Final = 2
# GET /fapi/v1/userTrades: the longest span and the most rows one request serves (`_trades`)
TRADES_WINDOW_MS: Final = 7 * 24 * 3600 * 1000
TRADES_PAGE: Final = 1000


class BinanceOrders:
    """The order endpoints of the adapter; `BinanceExchange` delegates to it.

        orders = BinanceOrders(rest)
        order = await orders.place(intent.request())
    """

    def __init__(self, rest: BinanceRest) -> None:
        self._rest = rest
        self._client_ids: dict[str, str] = {}   # orderId -> client id (userTrades omit it)
        self.children = AlgoChildren()          # our triggered algo orders' child orders
        self.algo_api = AlgoApiPresence()

    async def place(self, request: OrderRequest) -> Order:
        """Send one order; the order as Binance answered it.

        Raises ExchangeError for a refusal, UnknownOutcome when the request may have reached
        the matching engine without a readable answer (timeout, 5xx, or an answer that
        cannot be read: the order may exist, so the executor probes by client id).
        """
        context = f"symbol={request.symbol} client_id={request.client_id} role={request.role}"
        try:
            if request.type.conditional:
                raw, algo = await self._send_conditional(request, context)
            else:
                raw, algo = await self._send(request, context, algo=False), False
        except ExchangeError as exc:
            logger.warning("binance place rejected {} code={} msg={}", context, exc.code,
                           exc.message)
            raise
        endpoint = order_codec.NEW_ALGO if algo else order_codec.NEW_ORDER
        try:
            order = order_codec.order_from_algo(raw, endpoint) if algo \
                else order_codec.order_from_plain(raw, endpoint)
        except MalformedResponse as exc:
            logger.error("binance place answer unreadable {}: the order may exist, probing "
                         "error={}", context, exc)
            raise UnknownOutcome(f"{context}: {exc.message}") from exc
        self._remember(order, raw)
        logger.info("binance placed {} status={} filled={}", context, order.status,
                    order.filled_qty)
        return order

    async def _send_conditional(self, request: OrderRequest, context: str) -> tuple[Any, bool]:
        """POST a conditional order on the API the server has (see the module docstring);
        the answer and whether it came from the Algo API. A 404 from the Algo API sends it
        once more on the classic endpoint, a -4120 from the classic endpoint once more on
        the Algo API; both in turn (a passing 404 in front of a server that has the Algo
        API) send it a third time, on the Algo API. Neither answer placed anything, so the
        same client id is safe. Any other refusal, or a third one, is raised (a 5xx or
        timeout is an UnknownOutcome and is never sent again here)."""
        algo = self.algo_api.available
        for _ in range(SWITCHES_PER_PLACE):
            try:
                return await self._send(request, context, algo=algo), algo
            except ExchangeError as exc:
                switched = self.algo_api.missing_after(exc, order_codec.NEW_ALGO) if algo \
                    else self.algo_api.back_after(exc, order_codec.NEW_ORDER)
                if not switched:
                    raise
            algo = not algo
            logger.warning("binance place {} sent again on {}", context,
                           order_codec.NEW_ALGO if algo else order_codec.NEW_ORDER)
        return await self._send(request, context, algo=algo), algo

    async def _send(self, request: OrderRequest, context: str, *, algo: bool) -> Any:
        client = self._rest.client
        if algo:
            params = cast(_Params, binance_requests.algo_params(request))
            return await self._rest.call(f"place algo order {context}",
                                         client.futures_create_algo_order, sending=True,
                                         orders=1, **params)
        if request.type.conditional:
            params = cast(_Params, binance_requests.classic_conditional_params(request))
            return await self._rest.call(f"place order {context}", self._post_classic_order,
                                         sending=True, orders=1, **params)
        params = cast(_Params, binance_requests.order_params(request))
        return await self._rest.call(f"place order {context}", client.futures_create_order,
                                     sending=True, orders=1, **params)

    async def _post_classic_order(self, **params: str) -> Any:
        """POST /fapi/v1/order as sent. python-binance's futures_create_order (1.0.37) sends
        the conditional types to /fapi/v1/algoOrder itself, dropping our newClientOrderId
        for a random clientAlgoId; for a server without the Algo API the request goes one
        level down, as futures_create_order sends plain orders."""
        client = self._rest.client
        return await client._request_futures_api("post", "order", True, data=params)

    def _remember(self, order: Order, raw: dict[str, Any]) -> None:
        if raw.get("orderId"):
            self._client_ids[str(raw["orderId"])] = order.client_id
        if raw.get("actualOrderId"):
            self.remember_child(str(raw["actualOrderId"]), order.client_id)

    def remember_child(self, child_order_id: str, algo_client_id: str) -> None:
        """A triggered algo order's child (ALGO_UPDATE "ai", "actualOrderId"): its trades
        are the algo order's, whatever client id Binance gives the child itself."""
        self.children.learned(child_order_id, algo_client_id)
        if self.children.owner(child_order_id) is not None:
            self._client_ids[child_order_id] = algo_client_id

    def remember_stream_order(self, order: Order) -> None:
        """Learn a plain order's orderId from ORDER_TRADE_UPDATE, for `fills()` (a child
        of an algo order of ours keeps the algo's client id: `remember_child`)."""
        if not order.exchange_id.startswith(order_codec.ALGO_ID_PREFIX) \
                and self.children.owner(order.exchange_id) is None:
            self._client_ids[order.exchange_id] = order.client_id

    def _uses_algo_api(self, client_id: str) -> list[bool]:
        """Which APIs to ask, in order: our ids name their role; others try plain first.
        Where the Algo API counts as absent, a protective id is asked on the classic one
        first and then on the Algo API all the same: were the 404 a passing one (a
        proxy's), our algo stop is found instead of taken for gone and placed twice."""
        parsed = ClientId.parse(client_id)
        if parsed is not None and not parsed.role.protective:
            return [False]              # entries, closes, partials: plain orders
        if parsed is not None and self.algo_api.available:
            return [True]
        return [False, True]            # a stranger's id, or no Algo API seen: classic first

    async def order_by_client_id(self, symbol: str, client_id: str) -> Order | None:
        return await self._one_order("query", symbol, client_id)

    async def cancel(self, symbol: str, client_id: str) -> Order | None:
        """Cancel by client id (one DELETE); the order's state when the answer carries it.

        None when Binance knows no such live order (-2011/-2013), and when it acknowledged
        the cancel without the order's state: DELETE /fapi/v1/algoOrder answers only
        {algoId, clientAlgoId, code, msg} (.../trade/rest-api/Cancel-Algo-Order). Either way
        the caller reads the order back (Executor.cancel_and_verify does). DELETE
        /fapi/v1/order answers the whole order (.../trade/rest-api/Cancel-Order); should
        that answer be unreadable, the cancel still stands and None is returned.
        """
        order = await self._one_order("cancel", symbol, client_id)
        logger.info("binance cancel symbol={} client_id={} result={}", symbol, client_id,
                    order.status if order else "no order state in the answer")
        return order

    async def _one_order(self, verb: str, symbol: str, client_id: str) -> Order | None:
        """GET or DELETE one order on the API its client id names; None if Binance has none.
        A 404 from the Algo API (none here) sends the question to the classic endpoint.

        A query whose 404 came from an Algo API that had answered until then (a passing
        404, or a server losing it: no telling which) raises that 404 when the classic
        endpoint knows no such order either: our algo order may exist, and "none" would
        have the caller take a stop for never placed (a second one) or wait for the
        debounce. The next query asks both APIs."""
        apis = self._uses_algo_api(client_id)
        asked_classic = False
        unanswered: ExchangeError | None = None
        while apis:
            algo = apis.pop(0)
            asked_classic = asked_classic or not algo
            endpoint = order_codec.QUERY_ALGO if verb == "query" else order_codec.CANCEL_ALGO
            try:
                raw = await self._rest.call(f"{verb} order symbol={symbol} "
                                            f"client_id={client_id} algo={algo}",
                                            self._order_method(verb, algo),
                                            **self._order_key(symbol, client_id, algo))
                order = self._read_order(verb, algo, raw)
            except ExchangeError as exc:
                was_available = self.algo_api.available
                if algo and self.algo_api.missing_after(exc, endpoint):
                    unanswered = exc if was_available and verb == "query" else None
                    apis = [] if asked_classic else [False]
                    continue
                if _unknown_order(exc):
                    if algo:                        # "no such order" is the Algo API's word
                        self.algo_api.answered(endpoint)
                    continue
                raise
            if algo:
                self.algo_api.answered(endpoint)
            if order is not None:
                self._remember(order, raw)
                order = await self._finished_as_executed(order, raw)
            return order
        if unanswered is not None:
            raise unanswered
        return None

    async def _finished_as_executed(self, order: Order, raw: Any) -> Order:
        """A FINISHED algo order as what its child executed (binance_order_codec.py): the
        answer names the child ("actualOrderId") but no algo answer tells its executed
        quantity, and FINISHED is "filled or canceled in the matching engine". Read as
        filled, a stop whose MARKET child executed nothing left the position without a
        stop for 10 s, then said it had filled. A child Binance does not find, or whose
        answer cannot be read, leaves the order as read (FILLED: the position read
        decides); any other failure is the read's failure (the caller asks again)."""
        child_id = order_codec.finished_child_id(raw)
        if not child_id:
            return order
        try:
            child_raw = await self._rest.call(
                f"query child order symbol={order.symbol} client_id={order.client_id} "
                f"order_id={child_id}", self._rest.client.futures_get_order,
                symbol=order.symbol, orderId=child_id)
        except ExchangeError as exc:
            if not _unknown_order(exc):
                raise
            logger.warning("binance FINISHED algo order's child not found symbol={} "
                           "client_id={} order_id={}: read as filled error={}", order.symbol,
                           order.client_id, child_id, exc)
            return order
        try:
            child = order_codec.order_from_plain(child_raw)
        except MalformedResponse as exc:
            logger.warning("binance FINISHED algo order's child unreadable client_id={}: "
                           "read as filled error={}", order.client_id, exc)
            return order
        finished = order_codec.finished_by_child(order, child)
        logger.info("binance algo order FINISHED symbol={} client_id={} child={} child_status={} "
                    "executed={} read as {}", order.symbol, order.client_id, child_id,
                    child.status, child.filled_qty, finished.status)
        return finished

    def _order_method(self, verb: str, algo: bool) -> Callable[..., Awaitable[Any]]:
        client = self._rest.client
        if algo:
            return client.futures_get_algo_order if verb == "query" \
                else client.futures_cancel_algo_order
        return client.futures_get_order if verb == "query" else client.futures_cancel_order

    @staticmethod
    def _order_key(symbol: str, client_id: str, algo: bool) -> _Params:
        return {"clientAlgoId": client_id} if algo else {"symbol": symbol,
                                                          "origClientOrderId": client_id}

    @staticmethod
    def _read_order(verb: str, algo: bool, raw: Any) -> Order | None:
        """The order an answer carries; None for a cancel answered without a readable order
        (an acknowledgement: the cancel stands, the caller reads the order back)."""
        if verb == "query":
            return order_codec.order_from_algo(raw) if algo \
                else order_codec.order_from_plain(raw)
        try:
            return order_codec.algo_cancel_result(raw) if algo \
                else order_codec.order_from_plain(raw, order_codec.CANCEL_ORDER)
        except MalformedResponse as exc:
            logger.warning("binance cancel accepted but its answer is unreadable error={}", exc)
            return None

    async def open_orders(self, symbol: str) -> list[Order]:
        """All live orders on the symbol, plain and conditional (the classic list holds the
        conditional ones where there is no Algo API); orders of types this agent
        never places are OrderType.OTHER. A row that cannot be read is logged and left
        out: the sentinel then sees that leg missing and re-protects (never "protected"
        on an order we could not read)."""
        client = self._rest.client
        plain = await self._rest.call("open orders", client.futures_get_open_orders,
                                      symbol=symbol)
        plain_endpoint, algo_endpoint = order_codec.OPEN_ORDERS, order_codec.OPEN_ALGO_ORDERS
        orders = _read_rows(plain, plain_endpoint,
                            lambda raw: order_codec.order_from_plain(raw, plain_endpoint))
        if self.algo_api.available:
            try:
                algos = await self._rest.call("open algo orders",
                                              client.futures_get_open_algo_orders,
                                              symbol=symbol)
            except ExchangeError as exc:
                if not self.algo_api.missing_after(exc, algo_endpoint):
                    raise
            else:
                orders += _read_rows(algos, algo_endpoint,
                                     lambda raw: self._algo_row(raw, algo_endpoint))
        return [order for order in orders if order.status.live]

    def _algo_row(self, raw: Any, endpoint: str) -> Order:
        """An open algo order, its triggered child (actualOrderId) remembered."""
        order = order_codec.order_from_algo(raw, endpoint)
        if isinstance(raw, dict) and raw.get("actualOrderId"):
            self.remember_child(str(raw["actualOrderId"]), order.client_id)
        return order

    async def fills(self, symbol: str, since: datetime) -> list[Fill]:
        """Our trades since `since` (GET /fapi/v1/userTrades). Its rows carry orderId but no
        client id: each fill gets the client id learnt for its orderId; an order not seen
        yet is asked for once (GET /fapi/v1/order?orderId=), which is how the client id of
        an order Binance placed itself ("autoclose-...", "adl_autoclose") reaches the engine
        without the user-data stream. "" when Binance has no such order. Before that, the
        open orders are read once: a triggered algo order of ours names its child there
        ("actualOrderId"), whose client id Binance does not document (binance_children.py)."""
        fills = await self._trades(symbol, to_ms(since))
        unknown = {fill.order_id for fill in fills} - {"", "0"} - self._client_ids.keys()
        if unknown and self.algo_api.available:
            await self.open_orders(symbol)
        for order_id in sorted(unknown - self._client_ids.keys()):
            await self._learn_client_id(symbol, order_id)
        return [replace(fill, client_id=self._client_ids.get(fill.order_id, ""))
                for fill in fills]

    async def _trades(self, symbol: str, start_ms: int) -> list[Fill]:
        """Every trade of `symbol` from `start_ms` to now, oldest first. Binance serves one
        request at most 7 days ("The time between startTime and endTime cannot be longer
        than 7 days") and 1,000 rows (Account-Trade-List, https://developers.binance.com/
        docs/derivatives/usds-margined-futures/trade/rest-api/Account-Trade-List): a
        position held longer, or a window fuller, is read in several requests (weight 5
        each), a full page going on from its last row's time (rows of that millisecond
        read again are kept once, by trade id). Today's position: one request, startTime
        alone, as ever."""
        now_ms = to_ms(self._rest.server_now())
        found: dict[str, Fill] = {}
        while True:
            window_end = start_ms + TRADES_WINDOW_MS - 1
            bounds: _Params = {"startTime": start_ms} | ({"endTime": window_end}
                                                         if window_end < now_ms else {})
            rows = await self._rest.call("user trades", self._rest.client.futures_account_trades,
                                         weight=5, symbol=symbol, limit=TRADES_PAGE, **bounds)
            page = _read_rows(rows, codec.USER_TRADES,
                              lambda raw: codec.fill_from_trade(raw, ""))
            for fill in page:
                found.setdefault(fill.trade_id, fill)
            last_ms = max((to_ms(fill.time) for fill in page), default=start_ms)
            if isinstance(rows, list) and len(rows) >= TRADES_PAGE and last_ms > start_ms:
                start_ms = last_ms                    # more in this window
            elif window_end < now_ms:
                start_ms = window_end + 1             # the next week
            else:
                return list(found.values())

    async def _learn_client_id(self, symbol: str, order_id: str) -> None:
        try:
            raw = await self._rest.call(f"query order symbol={symbol} order_id={order_id}",
                                        self._rest.client.futures_get_order, symbol=symbol,
                                        orderId=order_id)
            client_id = order_codec.order_from_plain(raw).client_id
        except ExchangeError as exc:     # MalformedResponse too: the fill stays anonymous
            if not _unknown_order(exc) and not isinstance(exc, MalformedResponse):
                raise
            logger.warning("binance fill of an order we cannot name symbol={} order_id={} "
                           "error={}", symbol, order_id, exc)
            client_id = ""
        self._client_ids[order_id] = client_id


def _read_rows(rows: Any, where: str, read: Callable[[Any], T]) -> list[T]:
    """Each readable row of an array answer; unreadable rows are logged and skipped."""
    values = []
    for raw in rows_of(rows, where):
        try:
            values.append(read(raw))
        except MalformedResponse as exc:
            logger.warning("binance {} row left out: {}", where, exc)
    return values


def _unknown_order(error: ExchangeError) -> bool:
    """-2011 / -2013: Binance knows no such order (already gone, or never placed)."""
    return classify(error, sending=False).outcome is Outcome.NOOP
