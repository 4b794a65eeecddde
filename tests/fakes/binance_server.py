"""A fake Binance USD-M futures server on 127.0.0.1 for integration tests and manual runs.

It speaks Binance's wire format (signed requests checked with HMAC-SHA256, recvWindow,
error JSON with HTTP statuses, usage headers, user-data and kline websockets) on top of
the matching simulator, so the real python-binance client can be pointed at it:

    async with FakeBinance() as fake:
        settings = Settings(binance_futures_url=fake.url, binance_futures_ws_url=fake.ws_url,
                            binance_api_key=fake.api_key, binance_api_secret=fake.api_secret)
        await fake.move_price("BTCUSDT", Decimal("50100"))
        fake.inject_fault("POST /fapi/v1/order", code=-2019, times=1)

The same controls are served as JSON under /_control/<name> for a server running in
another process (`python -m tests.fakes.binance_server --port 8765`: binance_manual.py, the
server for a person, with candles that move).
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web
from loguru import logger

from tests.fakes import binance_control
from tests.fakes.binance_acts import AccountActs
from tests.fakes.binance_auth import KEYED, PUBLIC, SIGNED, Admission, parse_form
from tests.fakes.binance_endpoints import FLAT_ORDER_BEHAVIOURS, BinanceEndpoints
from tests.fakes.binance_fault_controls import FaultControls
from tests.fakes.binance_faults import (
    Fault,
    FaultBook,
    RetryAfterWatch,
    Usage,
    error_response,
)
from tests.fakes.binance_hub import StreamHub
from tests.fakes.binance_income import IncomeLedger
from tests.fakes.binance_ledger import check_undocumented_choices
from tests.fakes.binance_wire import kline_event
from trader.domain import Candle, to_ms
from trader.exchange.base import ExchangeError
from trader.exchange.sim import SimConfig, SimEvent

Json = dict[str, Any]
Handler = Callable[[dict[str, str]], Any]
DEFAULT_PRICES = {"BTCUSDT": Decimal("50000"), "ETHUSDT": Decimal("3000"),
                  "XRPUSDT": Decimal("0.5"), "SOLUSDT": Decimal("150"),
                  "BNBUSDT": Decimal("600")}
# The user-data events about orders, which `hold_order_updates` can keep back
ORDER_EVENTS = frozenset({"ORDER_TRADE_UPDATE", "ALGO_UPDATE"})


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    method: str
    path: str
    params: dict[str, str]


class FakeBinance(FaultControls, AccountActs):
    """See the module docstring. Control methods are async: they push stream events."""

    def __init__(self, *, api_key: str = "fake-api-key-0123456789",
                 api_secret: str = "fake-api-secret-0123456789",
                 prices: dict[str, Decimal] | None = None, sim_config: SimConfig | None = None,
                 host: str = "127.0.0.1", port: int = 0, flat_orders: str = "expire",
                 trigger_events: str = "triggered-first", ws_layout: str = "both",
                 algo_api: bool = True, fees_in_bnb: Decimal | None = None,
                 liquidation_events: str = "cancels-first",
                 adl_execution: str = "CALCULATED", child_client_ids: str = "algo") -> None:
        """`flat_orders`: what happens to resting reduce-only / closePosition orders when
        their position goes flat, "expire" or "keep" (Binance's docs are silent; see
        binance_ledger.KeepingSimulator). `trigger_events`: "triggered-first" or
        "fill-first", the order of ALGO_UPDATE TRIGGERED and the child order's fill when a
        conditional order triggers (the docs are silent; binance_ledger.
        TRIGGER_EVENT_ORDERS); "expired-first" (with algo_api=False) a classic one's
        EXPIRED (expire reason 8) before it trades. `ws_layout`: the websocket paths served, "routed" (Binance's
        /private, /public, /market), "legacy" (/ws/<listenKey>, /stream) or "both"
        (binance_hub.py). `algo_api=False`: no Algo Order API, HTTP 404 on its paths and
        conditional orders on /fapi/v1/order (binance_endpoints.py). `fees_in_bnb`: BNB's
        price in USDT, and every commission charged in BNB as "BNB burn" does ("N" /
        "commissionAsset" BNB: binance_wire.commission), BNBUSDT's premiumIndex at that
        price; None (default): in USDT, as with "feeBurn" on and no BNB in the wallet.
        Where the docs leave Binance's behaviour open, both ways (binance_ledger.py):
        `liquidation_events` "cancels-first" / "fill-first", `adl_execution` "CALCULATED" /
        "TRADE", `child_client_ids` "algo" / "own"."""
        check_undocumented_choices(liquidation_events=liquidation_events,
                                   adl_execution=adl_execution, child_client_ids=child_client_ids)
        self.api_key, self.api_secret, self.host, self.port = api_key, api_secret, host, port
        prices = prices or DEFAULT_PRICES
        self.flat_orders = flat_orders
        self.sim = FLAT_ORDER_BEHAVIOURS[flat_orders](sim_config or SimConfig())
        self.clock_skew_ms = 0
        for symbol, price in prices.items():
            self.sim.set_price(symbol, price, self.now())
        self.endpoints = BinanceEndpoints(self.sim, self.now, list(prices), trigger_events,
                                          algo_api)
        self.endpoints.ledger.bnb_price = fees_in_bnb
        self.endpoints.ledger.adl_execution = adl_execution
        self.endpoints.ledger.child_client_ids = child_client_ids
        self.sim.liquidation_cancels_first = liquidation_events == "cancels-first"
        self.sim.expire_reasons = self.endpoints.ledger.expire_reasons
        self.hub = StreamHub(ws_layout)
        self.usage = Usage()
        self.endpoints.rate_limits = self.usage.rate_limits()
        self.admission = Admission(api_key, api_secret, self.usage, lambda: to_ms(self.now()))
        self.request_log: list[LoggedRequest] = []
        self.income = IncomeLedger(lambda: to_ms(self.now()))     # GET /fapi/v1/income
        self.accepted_orders: list[str] = []
        self.fault_book = FaultBook()
        self.retry_after_watch = RetryAfterWatch(server_ms=lambda: to_ms(self.now()))
        self._reshapes: dict[tuple[str, str], list[Callable[[Any], Any]]] = {}
        # The order events held back by `hold_order_updates`; None: sent as they come.
        self._held_order_events: list[Json] | None = None
        self._held_kinds: frozenset[str] = ORDER_EVENTS     # the event types held back
        self._routes = self._route_table()
        self._runner: web.AppRunner | None = None
        # Set by stop(): a held answer (a fault's `delay`) ends there, its connection dropped,
        # instead of holding the server's shutdown until the delay is over (aiohttp waits
        # for running handlers: up to 25 s more in the tests of a hanging Binance).
        self._stopping = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(milliseconds=self.clock_skew_ms)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/_control/{name}", self._control)
        app.router.add_get("/ws/{listen_key}", self._user_socket)
        app.router.add_get("/private/ws", self._user_socket)
        app.router.add_get("/private/ws/{listen_key}", self._user_socket)
        app.router.add_get("/stream", self._market_socket)
        app.router.add_get("/{route:public|market}/stream", self._market_socket)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        logger.info("fake binance listening url={}", self.url)

    async def stop(self) -> None:
        self._stopping.set()
        await self.hub.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> "FakeBinance":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- request pipeline ---------------------------------------------------------------
    def _route_table(self) -> dict[tuple[str, str], tuple[str, int, Handler]]:
        e = self.endpoints
        v1 = "/fapi/v1/"
        routes = {
            ("GET", v1 + "ping"): (PUBLIC, 1, lambda p: {}),
            ("GET", v1 + "time"): (PUBLIC, 1, lambda p: {"serverTime": e.now_ms()}),
            ("GET", v1 + "exchangeInfo"): (PUBLIC, 1, e.exchange_info),
            ("GET", v1 + "klines"): (PUBLIC, 2, e.klines),
            ("GET", v1 + "ticker/bookTicker"): (PUBLIC, 2, e.book_ticker),
            ("GET", v1 + "premiumIndex"): (PUBLIC, 1, e.premium_index),
            ("POST", v1 + "listenKey"): (KEYED, 1, e.create_listen_key),
            ("PUT", v1 + "listenKey"): (KEYED, 1, e.keep_alive_listen_key),
            ("DELETE", v1 + "listenKey"): (KEYED, 1, e.close_listen_key),
            ("GET", v1 + "positionSide/dual"): (SIGNED, 30, e.position_mode),
            ("POST", v1 + "positionSide/dual"): (SIGNED, 1, e.change_position_mode),
            ("POST", v1 + "marginType"): (SIGNED, 1, e.margin_type),
            ("GET", v1 + "multiAssetsMargin"): (SIGNED, 30, e.multi_assets_margin),
            ("POST", v1 + "leverage"): (SIGNED, 1, e.leverage),
            ("GET", v1 + "symbolConfig"): (SIGNED, 5, e.symbol_config),
            ("POST", v1 + "order"): (SIGNED, 0, e.new_order),
            ("GET", v1 + "order"): (SIGNED, 1, e.query_order),
            ("DELETE", v1 + "order"): (SIGNED, 1, e.cancel_order),
            ("GET", v1 + "openOrders"): (SIGNED, 1, e.open_orders),
            ("DELETE", v1 + "allOpenOrders"): (SIGNED, 1, lambda p: e.cancel_all(p, False)),
            ("GET", "/fapi/v2/account"): (SIGNED, 5, e.account),
            ("GET", "/fapi/v3/positionRisk"): (SIGNED, 5, e.position_risk),
            ("GET", v1 + "userTrades"): (SIGNED, 5, e.user_trades),
            ("GET", v1 + "income"): (SIGNED, 30, self.income.history),
        }
        if e.algo_api:
            return routes | {
                ("POST", v1 + "algoOrder"): (SIGNED, 0, e.new_algo_order),
                ("GET", v1 + "algoOrder"): (SIGNED, 1, e.query_algo_order),
                ("DELETE", v1 + "algoOrder"): (SIGNED, 1, e.cancel_algo_order),
                ("GET", v1 + "openAlgoOrders"): (SIGNED, 1, e.open_algo_orders),
                ("DELETE", v1 + "algoOpenOrders"): (SIGNED, 1, lambda p: e.cancel_all(p, True)),
            }
        return routes   # without the Algo API its paths answer 404 as unknown paths do

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.retry_after_watch.note_request(request.method, request.path,
                                            request.query.get("timestamp"))
        response = await self._answer(request)
        self.retry_after_watch.note_answer(request.method, request.path, response)
        return response

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        params = dict(request.query)
        params = {**dict(parse_form(body)), **params}   # the query string wins, as on Binance
        self.request_log.append(LoggedRequest(request.method, request.path,
                                              {k: v for k, v in params.items()
                                               if k != "signature"}))
        route = self._routes.get((request.method, request.path))
        if route is None:
            return error_response(ExchangeError(-1, f"Path {request.path} not found", 404))
        security, weight, handler = route
        handler = self._reshaped(request.method, request.path, handler)
        try:
            self.admission.authenticate(request.headers.get("X-MBX-APIKEY"), security,
                                        request.query_string, body)
            headers = self.admission.count_usage(request.path, request.method, weight)
        except ExchangeError as exc:
            return error_response(exc)
        fault = self.fault_book.take(request.method, request.path, params)
        if fault is not None:
            return await self._apply_fault(request, fault, handler, params, headers)
        return await self._respond(handler, params, headers, request.method)

    async def _respond(self, handler: Handler, params: dict[str, str],
                       headers: dict[str, str], method: str = "GET") -> web.Response:
        try:
            result = handler(params)
        except ExchangeError as exc:
            await self._flush_stream_events()
            return error_response(exc, headers)
        except (ValueError, KeyError) as exc:
            logger.info("fake binance: bad parameter params={} error={!r}", params, exc)
            return error_response(ExchangeError(-1100, f"Illegal characters found in a parameter: "
                                               f"{exc}"), headers)
        await self._flush_stream_events()
        placed = params.get("newClientOrderId") or params.get("clientAlgoId")
        if method == "POST" and placed and isinstance(result, dict) \
                and ("orderId" in result or "algoId" in result):
            self.accepted_orders.append(placed)   # the matching engine took this client id
        return web.json_response(result, headers=headers)

    async def _flush_stream_events(self) -> None:
        events = self.endpoints.take_stream_events()
        held = self._held_order_events
        if held is not None:
            kinds = self._held_kinds
            held += [e for e in events if e.get("e") in kinds]
            events = [e for e in events if e.get("e") not in kinds]
        if events:
            await self.hub.send_user(events, self.endpoints.listen_key)

    def hold_order_updates(self, account_updates: bool = False) -> None:
        """From now on the user-data stream sends what happened to orders (ORDER_TRADE_UPDATE,
        ALGO_UPDATE) only at `release_order_updates`; the ACCOUNT_UPDATE of the same fill
        goes at once (unless `account_updates`: held back too), and the REST reads
        (userTrades, the order, positionRisk) know the trade already: the order's REST
        answer is given by the matching engine, the stream's events by another service,
        with no promise of when (the ACCOUNT_UPDATE page, .../user-data-streams/
        Event-Balance-and-Position-Update, says the event "will be pushed" when a position
        changes, nothing of how soon, nor of the REST answer; the "Message Ordering
        Guarantee" orders events of one type against each other only).
        Binance does not order the two events of one fill: the USD-M pages
        (https://developers.binance.com/docs/derivatives/usds-margined-futures/
        user-data-streams/Event-Balance-and-Position-Update and .../Event-Order-Update)
        describe each alone, and the user-data streams' "Message Ordering Guarantee"
        (e.g. https://developers.binance.com/docs/derivatives/coin-futures/
        user-data-streams) covers "messages of the same event type" only, telling to
        compare "E" across types."""
        if self._held_order_events is None:
            self._held_order_events = []
        self._held_kinds = ORDER_EVENTS | {"ACCOUNT_UPDATE"} if account_updates \
            else ORDER_EVENTS

    async def release_order_updates(self, lost: bool = False) -> None:
        """Send the order events `hold_order_updates` kept, in their order (`lost`: never,
        gone while the socket stayed up); stop holding."""
        held, self._held_order_events = self._held_order_events or [], None
        self._held_kinds = ORDER_EVENTS
        if held and not lost:
            await self.hub.send_user(held, self.endpoints.listen_key)

    async def _apply_fault(self, request: web.Request, fault: Fault, handler: Handler,
                           params: dict[str, str], headers: dict[str, str]) -> web.StreamResponse:
        response = None
        if fault.execute:
            response = await self._respond(handler, params, headers, request.method)
        stopped = bool(fault.delay) and not await self._held_for(fault.delay or 0.0)
        if fault.drop_connection or fault.raw_answer is not None or stopped:
            if request.transport is not None:
                if fault.raw_answer is not None:
                    request.transport.write(fault.raw_answer)
                request.transport.close()
            raise asyncio.CancelledError
        if fault.body is not None and fault.http_status is not None:
            return web.Response(status=fault.http_status, body=fault.body, headers=headers,
                                content_type="application/json" if fault.body else "text/plain")
        if fault.http_status is not None:
            return error_response(self.fault_book.error(fault), headers)
        return response or await self._respond(handler, params, headers, request.method)

    async def _held_for(self, seconds: float) -> bool:
        """Hold an answer `seconds`; False if the server stopped first."""
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({stopping}, timeout=seconds)
        finally:
            stopping.cancel()
        return not done

    # --- websockets ---------------------------------------------------------------------
    async def _user_socket(self, request: web.Request) -> web.StreamResponse:
        routed = request.path.startswith("/private/")
        key = request.match_info.get("listen_key") or request.query.get("listenKey", "")
        events = request.query.get("events")
        return await self.hub.serve_user(
            request, "routed" if routed else "legacy", key,
            valid=key == self.endpoints.listen_key,
            events=None if events is None else frozenset(events.split("/")))

    async def _market_socket(self, request: web.Request) -> web.StreamResponse:
        streams = set(filter(None, request.query.get("streams", "").split("/")))
        return await self.hub.serve_market(request, request.match_info.get("route", ""),
                                           streams)

    # --- test controls (also served under /_control/<name>) -------------------------------
    async def _publish(self, events: list[SimEvent]) -> None:
        self.income.book(events)     # kept whether or not a socket hears the event
        self.endpoints.publish(events)
        await self._flush_stream_events()

    async def move_price(self, symbol: str, price: Decimal) -> None:
        """The price jumps; user-data events of what it triggered, then the new quote."""
        await self._publish(self.sim.set_price(symbol, price, self.now()))
        await self._push_quote(symbol)

    async def push_candle(self, candle: Candle, walk: bool = True) -> None:
        """A closed candle: the simulator walks its path (`walk`; else the price only goes
        to the close: the caller moved it along the candle already); kline subscribers get
        it, quote subscribers the price it closed at."""
        self.endpoints.candles.setdefault(candle.symbol, []).append(candle)
        await self._publish(self.sim.on_candle(candle) if walk
                            else self.sim.set_price(candle.symbol, candle.close, self.now()))
        event = kline_event(candle, to_ms(self.now()))
        await self.hub.send_market(event["stream"], event)
        await self._push_quote(candle.symbol)

    async def _push_quote(self, symbol: str) -> None:
        await self.hub.send_quote(self.sim.book(symbol), self.sim.mark_price(symbol),
                                  self.sim.funding_rate(symbol), to_ms(self.now()))

    async def drop_streams(self, refuse_for: float = 0.0) -> None:
        await self.hub.drop_all(refuse_for)

    def freeze_streams(self, frozen: bool = True) -> None:
        """Half-open sockets: nothing sent, pings unanswered, new sockets refused."""
        self.hub.frozen = frozen

    def set_hedge_mode(self, enabled: bool) -> None:
        self.endpoints.hedge_mode = enabled

    def set_multi_assets_mode(self, enabled: bool) -> None:
        """The account's asset mode: Multi-Assets (cross margin only) or Single-Asset."""
        self.endpoints.multi_assets = enabled

    async def expire_listen_key(self, silent: bool = False, close_socket: bool = False) -> None:
        """The listenKey expires: PUT answers -1125, POST makes a new key, and its sockets
        get no user-data event any more. Documented: Binance pushes `listenKeyExpired`
        first, "not related to the websocket disconnection" (example payload, E as a
        string, from https://developers.binance.com/docs/derivatives/usds-margined-futures/
        user-data-streams/Event-User-Data-Stream-Expired). The docs neither promise the
        event nor say whether the socket closes: `silent` skips the event (the socket stays
        open, answers pings, receives nothing), `close_socket` closes it after."""
        key = self.endpoints.listen_key
        if key is None:
            return
        self.endpoints.listen_key = None
        if not silent:
            await self.hub.send_user([{"e": "listenKeyExpired", "E": str(to_ms(self.now())),
                                       "listenKey": key}], key)
        self.hub.expire_user(key)
        if close_socket:
            await self.hub.close_user(key)

    def set_clock_skew(self, milliseconds: int) -> None:
        self.clock_skew_ms = milliseconds

    def add_used_weight(self, weight: int) -> None:
        """Weight used by someone else on our IP this minute (to test client-side pacing)."""
        self.usage.add("weight", 60, weight, to_ms(self.now()))

    def requests(self, endpoint: str) -> list[LoggedRequest]:
        """Logged requests to "METHOD /path" (or any method when only the path is given)."""
        method, _, path = endpoint.rpartition(" ")
        return [r for r in self.request_log if r.path == path and method in ("", r.method)]

    def clear_request_log(self) -> None:
        self.request_log.clear()

    async def _control(self, request: web.Request) -> web.Response:
        return await binance_control.handle(self, request)


if __name__ == "__main__":      # the server for a person, with a market that moves
    from tests.fakes.binance_manual import main
    main()
