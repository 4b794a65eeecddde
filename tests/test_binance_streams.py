"""The user-data and market streams against the fake Binance server's websockets: events
decoded into OrderUpdate / AccountUpdate (ALGO_UPDATE of a triggered stop included),
stream loss -> streaming False -> REST still answers -> reconnect -> streaming True,
listenKey expiry (with the event, or silent) and keepalive, half-open sockets, silent
market data, bad messages and failed loop rounds contained, bounded queues, backoff."""

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from loguru import logger

from tests.fakes.binance_harness import (
    SYMBOL,
    captured_logs,
    client_id,
    eventually,
    market,
    settings_for,
    started_exchange,
    stop_loss,
)
from tests.fakes.binance_hub import MarketSubscription
from tests.fakes.binance_server import FakeBinance
from trader.clock import ManualClock, SystemClock
from trader.domain import Candle, OrderRole, OrderStatus, OrderType, Side
from trader.exchange.base import AccountUpdate, OrderUpdate
from trader.exchange.binance import BinanceExchange
from trader.exchange.binance_streams import BoundedQueue, StreamOptions
from trader.exchange.websocket_stream import ReconnectBackoff

FAST = StreamOptions(heartbeat_seconds=0.2, silence_seconds=30.0, backoff_initial=0.05,
                     backoff_max=0.2, keepalive_seconds=30.0)
QUIET_CHECK = replace(FAST, user_silence_seconds=0.3)   # check the key after 0.3 s of silence


@pytest.fixture
async def fake():
    async with FakeBinance() as server:
        yield server


async def streaming_exchange(fake: FakeBinance, options: StreamOptions = FAST,
                             symbols: tuple[str, ...] = (SYMBOL,)):
    return started_exchange(fake, streams=True, stream_options=options, symbols=symbols)


@pytest.fixture
async def exchange(fake):
    async with await streaming_exchange(fake) as started:
        assert await eventually(lambda: started.streaming and started.streams.market_live)
        yield started


async def collect(exchange: BinanceExchange, until, timeout: float = 3.0) -> list:
    """Drain events until `until(events)` holds."""
    events: list = []

    def arrived() -> bool:
        events.extend(exchange.drain_events())
        return until(events)

    assert await eventually(arrived, timeout), f"events so far: {events}"
    return events


def updates_of(events: list, cid: str) -> list[OrderUpdate]:
    return [e for e in events if isinstance(e, OrderUpdate) and e.order.client_id == cid]


# --- events ----------------------------------------------------------------------------------

async def test_fills_and_a_triggered_stop_arrive_as_order_and_account_updates(fake, exchange):
    entry_id, stop_id = client_id(OrderRole.ENTRY), client_id(OrderRole.STOP_LOSS)
    await exchange.place(market(Side.BUY, "0.01"))
    await exchange.place(stop_loss(Side.SELL, "49000"))
    await fake.move_price(SYMBOL, Decimal("48900"))

    events = await collect(exchange, lambda evs: any(
        u.order.status is OrderStatus.FILLED and u.order.exchange_id.startswith("algo:")
        for u in updates_of(evs, stop_id)))

    entry = updates_of(events, entry_id)
    assert [u.order.status for u in entry] == [OrderStatus.NEW, OrderStatus.FILLED]
    assert entry[-1].fill is not None and entry[-1].fill.quantity == Decimal("0.01")
    stop = updates_of(events, stop_id)
    assert stop[0].order.status is OrderStatus.NEW and stop[0].order.exchange_id.startswith(
        "algo:")                                                    # ALGO_UPDATE NEW
    child_fill = next(u.fill for u in stop if u.fill is not None)   # ORDER_TRADE_UPDATE
    assert child_fill.side is Side.SELL and child_fill.quantity == Decimal("0.01")
    assert child_fill.realized_pnl < 0 and child_fill.fee > 0
    assert stop[-1].order.type is OrderType.STOP_MARKET             # ALGO_UPDATE FINISHED
    positions = [e.positions[0] for e in events if isinstance(e, AccountUpdate)]
    assert [p.quantity for p in positions] == [Decimal("0.01"), Decimal("0")]
    assert positions[0].leverage == 5 and positions[0].entry_price > 0


async def test_a_stop_cancelled_by_hand_in_the_app_arrives_as_a_cancelled_update(fake,
                                                                                 exchange):
    stop_id = client_id(OrderRole.STOP_LOSS)
    await exchange.place(market(Side.BUY, "0.01"))
    await exchange.place(stop_loss(Side.SELL, "49000"))
    await fake.cancel_order_by_hand(SYMBOL, stop_id)

    events = await collect(exchange, lambda evs: any(
        u.order.status is OrderStatus.CANCELED for u in updates_of(evs, stop_id)))
    assert updates_of(events, stop_id)[-1].order.exchange_id.startswith("algo:")
    assert await exchange.open_orders(SYMBOL) == []


async def test_wait_for_event_wakes_on_an_event_and_times_out_without_one(exchange):
    assert await exchange.wait_for_event(0.05) is False
    await exchange.place(market(Side.BUY, "0.01"))
    assert await exchange.wait_for_event(2.0) is True
    assert exchange.drain_events() and exchange.drain_events() == []


async def test_streams_subscribe_through_their_urls(fake):
    async with await streaming_exchange(fake, symbols=("BTCUSDT", "ETHUSDT")) as exchange:
        assert await eventually(lambda: exchange.streaming and exchange.streams.market_live)
        assert await eventually(lambda: exchange.streams.book_ticker_live)
        klines_and_marks = {"btcusdt@kline_1m", "ethusdt@kline_1m", "btcusdt@markPrice@1s",
                            "ethusdt@markPrice@1s"}
        assert set(fake.hub.market.values()) == {   # each on its documented route
            MarketSubscription("market", frozenset(klines_and_marks)),
            MarketSubscription("public", frozenset({"btcusdt@bookTicker", "ethusdt@bookTicker"}))}
        assert list(fake.hub.user.values()) == [exchange.streams.user.listen_key]
        assert {u.layout for u in fake.hub.upgrades} == {"routed"}   # the preferred paths


# --- losing the stream -----------------------------------------------------------------------

async def test_a_dropped_stream_falls_back_to_rest_and_recovers_saying_so_once(fake, exchange):
    reconnects: list[bool] = []

    def broken_listener() -> None:
        raise RuntimeError("a listener's bug")

    exchange.streams.on_reconnect.extend([broken_listener,
                                          lambda: reconnects.append(exchange.streaming)])
    with captured_logs() as logs:
        await fake.drop_streams(refuse_for=0.5)
        assert await eventually(lambda: not exchange.streaming)
        assert (await exchange.position(SYMBOL)).quantity == 0      # polling REST still works
        assert await eventually(lambda: exchange.streaming, timeout=5.0)

    user_lines = [line for line in logs if "stream=user-data" in line]
    assert sum("down, polling REST" in line for line in user_lines) == 1
    assert sum("recovered" in line for line in user_lines) == 1
    assert sum("reconnect callback failed" in line for line in user_lines) == 1
    assert reconnects == [True]         # once, after the outage, with the stream already up
    health = exchange.streams.user.health
    assert (health.outages, health.connections) == (1, 2)
    await exchange.place(market(Side.BUY, "0.01"))                  # events flow again
    await collect(exchange, lambda evs: any(isinstance(e, OrderUpdate) for e in evs))


async def test_a_half_open_socket_is_caught_by_the_heartbeat(fake, exchange):
    fake.freeze_streams()
    assert await eventually(lambda: not exchange.streaming, timeout=2.0)
    fake.freeze_streams(False)
    assert await eventually(lambda: exchange.streaming, timeout=3.0)


async def test_silent_market_data_forces_a_reconnect(fake):
    """Pongs are not market data: a heartbeat shorter than the silence (30 s vs 90 s in
    production) must not hide it."""
    options = StreamOptions(heartbeat_seconds=0.05, silence_seconds=0.3,
                            backoff_initial=0.05, backoff_max=0.1)
    with captured_logs("WARNING") as logs:
        async with await streaming_exchange(fake, options) as exchange:
            assert await eventually(lambda: exchange.streams.market.health.outages >= 1)
    assert any("stream=market silent" in line for line in logs)


# --- the listen key --------------------------------------------------------------------------

@pytest.mark.parametrize("close_socket", [False, True], ids=["socket-stays-open",
                                                             "socket-closed"])
async def test_an_expired_listen_key_is_recreated_and_events_flow_on_the_new_one(
        fake, exchange, close_socket):
    """The documented listenKeyExpired event; the docs do not say whether the socket closes."""
    old_key = exchange.streams.user.listen_key
    await fake.expire_listen_key(close_socket=close_socket)

    assert await eventually(lambda: exchange.streaming
                            and exchange.streams.user.listen_key not in (None, old_key))
    assert exchange.streams.user.listen_keys_created == 2
    await exchange.place(market(Side.BUY, "0.01"))
    await collect(exchange, lambda evs: any(isinstance(e, OrderUpdate) for e in evs))


async def test_a_silently_expired_listen_key_is_noticed_and_fills_arrive_on_a_new_one(fake):
    """No event, socket open and answering pings: only the silence check can tell."""
    async with await streaming_exchange(fake, QUIET_CHECK) as exchange:
        assert await eventually(lambda: exchange.streaming)
        user = exchange.streams.user
        old_key = user.listen_key
        reconnected_on: list[str | None] = []
        exchange.streams.on_reconnect.append(lambda: reconnected_on.append(user.listen_key))

        await fake.expire_listen_key(silent=True)
        assert old_key in fake.hub.user.values()                  # the old socket is still open
        # Down within the silence (0.3 s) plus one PUT; down and back up can take only a few
        # milliseconds here, too fast to poll `streaming`: the outage counter records it.
        assert await eventually(lambda: user.health.outages == 1, timeout=2.0)
        assert fake.requests("PUT /fapi/v1/listenKey")            # the check that found it gone
        assert await eventually(lambda: exchange.streaming, timeout=3.0)

        assert user.listen_key not in (None, old_key) and user.listen_keys_created == 2
        assert reconnected_on == [user.listen_key]
        entry_id = client_id(OrderRole.ENTRY)
        await exchange.place(market(Side.BUY, "0.01"))
        events = await collect(exchange, lambda evs: any(
            u.fill is not None for u in updates_of(evs, entry_id)))
        assert next(u.fill for u in updates_of(events, entry_id) if u.fill).quantity == \
            Decimal("0.01")
        assert exchange.streams.last_user_event_at is not None


async def test_a_quiet_account_with_a_valid_key_keeps_its_stream_up(fake):
    """Silence is checked with a PUT; answered, the stream stays up and is not reconnected."""
    async with await streaming_exchange(fake, replace(FAST, user_silence_seconds=0.1)) \
            as exchange:
        assert await eventually(lambda: exchange.streaming)
        down_seen: list[bool] = []

        def checked_three_times() -> bool:
            down_seen.append(not exchange.streaming)
            return len(fake.requests("PUT /fapi/v1/listenKey")) >= 3

        assert await eventually(checked_three_times, timeout=3.0)
        user = exchange.streams.user
        assert not any(down_seen) and exchange.streaming
        assert (user.health.outages, user.health.connections, user.listen_keys_created) == \
            (0, 1, 1)
        assert exchange.streams.last_user_event_at is None        # checks are not events


async def test_a_keepalive_that_extends_another_key_counts_as_ours_gone(fake):
    """The USD-M PUT takes no parameter and names the key it extended: if another process
    made a new key after ours expired, the answer names that one and ours stays silent."""
    async with await streaming_exchange(fake, QUIET_CHECK) as exchange:
        assert await eventually(lambda: exchange.streaming)
        await fake.expire_listen_key(silent=True)
        other_key = fake.endpoints.create_listen_key({})["listenKey"]
        assert await eventually(lambda: exchange.streams.user.listen_key == other_key
                                and exchange.streams.user.health.outages == 1, timeout=2.0)


async def test_listen_key_is_kept_alive_and_recreated_after_1125(fake):
    options = StreamOptions(heartbeat_seconds=1.0, silence_seconds=30.0, keepalive_seconds=0.1,
                            backoff_initial=0.05, backoff_max=0.1)
    async with await streaming_exchange(fake, options) as exchange:
        assert await eventually(lambda: len(fake.requests("PUT /fapi/v1/listenKey")) >= 2)
        first_key = exchange.streams.user.listen_key
        fake.endpoints.listen_key = None           # Binance forgot it: PUT answers -1125
        assert await eventually(lambda: exchange.streams.user.listen_keys_created == 2
                                and exchange.streaming)
        assert exchange.streams.user.listen_key not in (None, first_key)


# --- containment -------------------------------------------------------------------------------

ORDER_EVENT = {"e": "ORDER_TRADE_UPDATE", "E": 1700000000000, "T": 1700000000000,
               "o": {"s": SYMBOL, "c": "x-1", "S": "BUY", "o": "MARKET", "q": "0.01",
                     "x": "TRADE", "X": "FILLED", "l": "0.01", "L": "50000", "i": 7}}
BAD_USER_MESSAGES = [
    "{not json",
    "[1, 2, 3]",                                                    # a list, not an object
    '"ORDER_TRADE_UPDATE"',
    "null",
    json.dumps({**ORDER_EVENT, "o": [1, 2]}),                       # a list for a dict
    json.dumps({**ORDER_EVENT, "o": {**ORDER_EVENT["o"], "l": "abc"}}),   # not a number
    json.dumps({**ORDER_EVENT, "o": {**ORDER_EVENT["o"], "l": "NaN"}}),
    json.dumps({**ORDER_EVENT, "T": 10 ** 30}),                     # a time past year 9999
    json.dumps(ORDER_EVENT).replace('"T": 1700000000000', '"T": 1e999', 1),   # infinity
    json.dumps({**ORDER_EVENT, "o": {**ORDER_EVENT["o"], "S": "SIDEWAYS"}}),
    json.dumps({"e": ["ORDER_TRADE_UPDATE"]}),                      # unhashable event type
    json.dumps({"e": "ACCOUNT_UPDATE", "E": 1, "a": {"P": [["BTCUSDT", "0.01"]]}}),
    json.dumps({"e": "ACCOUNT_UPDATE", "E": 1, "a": "x" * 100_000}),   # huge, and a string
]
IGNORED_USER_MESSAGES = [json.dumps({"e": "TRADE_LITE", "E": 1}),   # not ours to decode
                         json.dumps({"e": "SOMETHING_NEW_IN_2027"}), json.dumps({"E": 1})]


async def test_bad_messages_are_counted_logged_and_the_streams_read_on(fake, exchange):
    records: list[dict] = []
    sink = logger.add(lambda message: records.append(message.record), level="ERROR")
    try:
        await fake.hub.send_user_text(BAD_USER_MESSAGES + IGNORED_USER_MESSAGES)
        await fake.hub.send_market_text("btcusdt@kline_1m", json.dumps(
            {"stream": "btcusdt@kline_1m", "data": [1]}))
        await fake.hub.send_market_text("btcusdt@kline_1m", "{}}")
        user, market_data = exchange.streams.user.health, exchange.streams.market.health
        assert await eventually(lambda: user.decode_errors == len(BAD_USER_MESSAGES)
                                and market_data.decode_errors == 2)
    finally:
        logger.remove(sink)

    failures = [r for r in records if "cannot handle message" in r["message"]]
    assert len(failures) == len(BAD_USER_MESSAGES) + 2
    assert all(r["exception"] is not None for r in failures)        # with the traceback
    assert max(len(r["message"]) for r in failures) < 1_000         # payload truncated
    assert exchange.streaming and exchange.streams.market_live
    assert (user.connections, user.outages, market_data.connections) == (1, 0, 1)
    await exchange.place(market(Side.BUY, "0.01"))                  # good events still arrive
    await collect(exchange, lambda evs: any(isinstance(e, OrderUpdate) for e in evs))
    candle = Candle(SYMBOL, datetime(2026, 1, 1, 12, tzinfo=UTC), timedelta(minutes=1),
                    Decimal("50000"), Decimal("50100"), Decimal("49950"), Decimal("50050"),
                    Decimal("3"))
    await fake.push_candle(candle)
    assert await exchange.next_candle(2.0) == candle


async def test_an_unexpected_error_while_connecting_is_logged_and_retried(fake):
    # A 200 whose body lacks "listenKey": python-binance raises KeyError, which is none of
    # the errors a connection attempt expects.
    fake.inject_fault("POST /fapi/v1/listenKey", code=-1000, http_status=200, times=1)
    with captured_logs("ERROR") as logs:
        async with await streaming_exchange(fake) as exchange:
            assert await eventually(lambda: exchange.streaming, timeout=3.0)
            assert exchange.streams.user.listen_keys_created == 1
    assert len(fake.requests("POST /fapi/v1/listenKey")) == 2
    assert any("stream=user-data unexpected error" in line for line in logs)


async def test_a_keepalive_round_that_raises_does_not_end_the_keepalives(fake, monkeypatch):
    async with await streaming_exchange(fake, replace(FAST, keepalive_seconds=0.1)) \
            as exchange:
        real_keep_alive = exchange.keep_alive_listen_key
        rounds: list[str] = []

        async def fails_once(listen_key: str) -> None:     # a bug in one round, not Binance
            rounds.append(listen_key)
            if len(rounds) == 1:
                raise RuntimeError("unexpected")
            await real_keep_alive(listen_key)

        monkeypatch.setattr(exchange, "keep_alive_listen_key", fails_once)
        assert await eventually(lambda: len(fake.requests("PUT /fapi/v1/listenKey")) >= 2)
        assert exchange.streaming and exchange.streams.user.listen_keys_created == 1


# --- klines ----------------------------------------------------------------------------------

async def test_closed_candles_arrive_on_the_candle_queue(fake, exchange):
    candle = Candle(SYMBOL, datetime(2026, 1, 1, 12, tzinfo=UTC), timedelta(minutes=1),
                    Decimal("50000"), Decimal("50100.5"), Decimal("49950"), Decimal("50050.1"),
                    Decimal("3.25"))
    await fake.push_candle(candle)

    assert await exchange.next_candle(2.0) == candle
    assert await exchange.next_candle(0.05) is None
    await fake.push_candle(candle)
    assert await eventually(lambda: len(exchange.streams.candles) == 1)
    assert exchange.drain_candles() == [candle]


# --- configuration ---------------------------------------------------------------------------

async def test_stream_and_rest_bases_default_to_testnet_unless_told_otherwise(fake):
    testnet = BinanceExchange(settings_for(fake, binance_futures_ws_url=None,
                                           binance_futures_url=None), SystemClock())
    mainnet = BinanceExchange(settings_for(fake, binance_futures_ws_url=None,
                                           binance_futures_url=None, binance_testnet=False),
                              SystemClock())
    assert testnet.stream_base_url == "wss://fstream.binancefuture.com/"
    assert mainnet.stream_base_url == "wss://fstream.binance.com/"
    client = testnet._make_client()
    assert client._create_futures_api_uri("order") == \
        "https://testnet.binancefuture.com/fapi/v1/order"
    await client.close_connection()
    overridden = BinanceExchange(settings_for(fake), SystemClock())._make_client()
    assert overridden._create_futures_api_uri("positionRisk", 3) == \
        f"{fake.url}/fapi/v3/positionRisk"
    await overridden.close_connection()


# --- pure parts --------------------------------------------------------------------------------

def test_a_full_queue_drops_the_oldest_and_logs_the_overflow():
    queue: BoundedQueue[int] = BoundedQueue("test", maxlen=3)
    with captured_logs("WARNING") as logs:
        for item in range(5):
            queue.push(item)
    assert queue.drain() == [2, 3, 4]
    assert queue.dropped == 2 and len(logs) == 1 and "queue=test full" in logs[0]


async def test_reconnect_backoff_doubles_to_the_cap_with_bounded_jitter_on_the_clock():
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    backoff = ReconnectBackoff(initial=1.0, cap=8.0, jitter=0.2, sleep=clock.sleep)
    for _ in range(50):                     # the jitter is random: many outages
        backoff.reset()
        started = clock.now()
        delays = [await backoff.pause() for _ in range(6)]
        for delay, base in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
            assert base * 0.8 <= delay <= base * 1.2
        slept = (clock.now() - started).total_seconds()
        assert slept == pytest.approx(sum(delays), abs=1e-3)   # on the injected clock
    assert backoff.attempt == 6
    backoff.reset()
    assert backoff.attempt == 0 and backoff.next_delay() <= 1.2


async def test_queue_next_waits_for_an_item():
    queue: BoundedQueue[str] = BoundedQueue("test", maxlen=10)
    asyncio.get_running_loop().call_later(0.02, queue.push, "candle")
    assert await queue.next(1.0) == "candle"
    assert await queue.next(0.01) is None
