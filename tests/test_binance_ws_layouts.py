"""The streams on both URL layouts Binance documents: the routed paths of the Important
WebSocket Change Notice (/private/ws?listenKey=&events=, /market/stream, /public/stream)
and the old unrouted ones (/ws/<listenKey>, /stream). Through the real adapter against
fake servers that know only one layout, or both: the user-data stream comes up and a
fill arrives, candles and quotes arrive, a forced reconnect uses the path that worked.
Then refusals of other shapes (a socket closed at once, our `events` list rejected, a
fallback that goes silent) and the rules of websocket_paths.PathChooser on their own."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.fakes.binance_harness import (
    SYMBOL,
    captured_logs,
    client_id,
    eventually,
    market,
    started_exchange,
)
from tests.fakes.binance_hub import Upgrade
from tests.fakes.binance_server import FakeBinance
from trader.domain import Candle, OrderRole, Side
from trader.exchange.base import OrderUpdate
from trader.exchange.binance import BinanceExchange
from trader.exchange.binance_streams import StreamOptions
from trader.exchange.websocket_paths import LEGACY, ROUTED, PathChooser, PathOutcome

FAST = StreamOptions(heartbeat_seconds=0.2, silence_seconds=30.0, backoff_initial=0.05,
                     backoff_max=0.2, keepalive_seconds=30.0)
LAYOUTS = ["routed", "legacy", "both"]
EXPECTED_PATH = {"routed": ROUTED, "legacy": LEGACY, "both": ROUTED}   # routed preferred
STREAMS = ("user-data", "market", "book-ticker")
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


@pytest.fixture(params=LAYOUTS)
async def fake(request):
    async with FakeBinance(ws_layout=request.param) as server:
        yield server


def all_live(exchange: BinanceExchange) -> bool:
    streams = exchange.streams
    return streams.user_live and streams.market_live and streams.book_ticker_live


def candle(minute: int = 0, close: str = "50050") -> Candle:
    return Candle(SYMBOL, T0 + timedelta(minutes=minute), timedelta(minutes=1),
                  Decimal("50000"), Decimal("50100"), Decimal("49950"), Decimal(close),
                  Decimal("3"))


async def a_fill_arrives(exchange: BinanceExchange, seq: int = 1) -> None:
    """Place a market entry on the fake; its fill must come back through drain_events()."""
    entry_id = client_id(OrderRole.ENTRY, seq)
    await exchange.place(market(Side.BUY, "0.01", seq=seq))
    events: list = []

    def filled() -> bool:
        events.extend(exchange.drain_events())
        return any(isinstance(e, OrderUpdate) and e.order.client_id == entry_id
                   and e.fill is not None for e in events)

    assert await eventually(filled, timeout=5.0), f"events so far: {events}"


def accepted(fake: FakeBinance, since: int = 0) -> list[Upgrade]:
    return [u for u in fake.hub.upgrades[since:] if u.status == 101]


# --- through the adapter, on each layout -----------------------------------------------------

async def test_user_data_comes_up_on_the_served_path_and_a_fill_arrives(fake):
    async with started_exchange(fake, streams=True, stream_options=FAST) as exchange:
        assert await eventually(lambda: exchange.streaming, timeout=5.0)
        await a_fill_arrives(exchange)

    expected = EXPECTED_PATH[fake.hub.ws_layout]
    assert {u.layout for u in accepted(fake) if u.kind == "user"} == {expected}
    refused = [u for u in fake.hub.upgrades if u.kind == "user" and u.status != 101]
    if expected == ROUTED:
        assert refused == []
    else:       # refused with and without `events`, then the old path, without waiting
        assert refused == [Upgrade("user", ROUTED, 404)] * 2


async def test_the_routed_path_names_every_event_the_agent_decodes(fake):
    async with started_exchange(fake, streams=True, stream_options=FAST) as exchange:
        assert await eventually(lambda: exchange.streaming, timeout=5.0)
        asked = set(fake.hub.user_events.values())
    if EXPECTED_PATH[fake.hub.ws_layout] == LEGACY:
        assert asked == set()                 # the old path has no subscription parameter
    else:
        assert asked == {frozenset({"ORDER_TRADE_UPDATE", "ALGO_UPDATE", "ACCOUNT_UPDATE",
                                    "ACCOUNT_CONFIG_UPDATE", "MARGIN_CALL",
                                    "CONDITIONAL_ORDER_TRIGGER_REJECT",
                                    "listenKeyExpired"})}


async def test_closed_candles_and_quotes_arrive(fake):
    async with started_exchange(fake, streams=True, stream_options=FAST) as exchange:
        assert await eventually(lambda: all_live(exchange), timeout=5.0)
        await fake.push_candle(candle())
        assert await exchange.next_candle(3.0) == candle()

        await fake.move_price(SYMBOL, Decimal("50100"))

        def quoted() -> bool:
            quote = exchange.quote(SYMBOL, timedelta(seconds=5))
            return quote is not None and quote.mark == Decimal("50100")

        assert await eventually(quoted, timeout=3.0)
    expected = EXPECTED_PATH[fake.hub.ws_layout]
    assert {u.layout for u in accepted(fake) if u.kind == "market"} == {expected}


async def test_a_forced_reconnect_goes_straight_to_the_path_that_worked(fake):
    with captured_logs() as logs:
        async with started_exchange(fake, streams=True, stream_options=FAST) as exchange:
            assert await eventually(lambda: all_live(exchange), timeout=5.0)
            await a_fill_arrives(exchange)
            await fake.move_price(SYMBOL, Decimal("50100"))       # book tops and marks flow
            assert await eventually(lambda: exchange.quote(SYMBOL, timedelta(seconds=5))
                                    is not None)
            before = len(fake.hub.upgrades)

            await fake.drop_streams()
            streams = (exchange.streams.user, exchange.streams.market,
                       exchange.streams.book_ticker)
            assert await eventually(lambda: all(s is not None and s.health.connections >= 2
                                                for s in streams) and all_live(exchange),
                                    timeout=5.0)
            await a_fill_arrives(exchange, seq=2)
            await fake.push_candle(candle())
            assert await exchange.next_candle(3.0) == candle()

    expected = EXPECTED_PATH[fake.hub.ws_layout]
    after = fake.hub.upgrades[before:]
    assert after and all(u.status == 101 and u.layout == expected for u in after), after
    for name in STREAMS:            # the choice is logged once, not on every reconnect
        assert sum(f"stream={name} using the {expected} path" in line for line in logs) == 1


async def test_an_expired_listen_key_is_announced_and_replaced_on_either_path(fake):
    """listenKeyExpired must be among the routed path's events, or it never comes."""
    async with started_exchange(fake, streams=True, stream_options=FAST) as exchange:
        assert await eventually(lambda: exchange.streaming, timeout=5.0)
        old_key = exchange.streams.user.listen_key
        await fake.expire_listen_key()
        assert await eventually(lambda: exchange.streaming and exchange.streams.user.listen_key
                                not in (None, old_key), timeout=5.0)
        await a_fill_arrives(exchange)


# --- refusals of other shapes ------------------------------------------------------------------

async def test_a_server_that_closes_unknown_paths_at_once_is_understood():
    """Accepted, then closed without a message, every time: the streams move to the old
    paths after the second such close and stay there."""
    async with FakeBinance(ws_layout="legacy") as fake:
        fake.hub.refuse_with = "close"
        async with started_exchange(fake, streams=True, stream_options=FAST) as exchange:
            assert await eventually(lambda: all_live(exchange)
                                    and all(s.paths.current == LEGACY for s in (
                                        exchange.streams.user, exchange.streams.market,
                                        exchange.streams.book_ticker)), timeout=5.0)
            await a_fill_arrives(exchange)
            await fake.push_candle(candle())
            assert await exchange.next_candle(3.0) == candle()
    routed = [u for u in fake.hub.upgrades if u.layout == ROUTED]
    # Two closes per routed form, then never again: user data has two (with and without
    # `events`), the market streams one each.
    assert len(routed) == 2 * (len(STREAMS) + 1)


async def test_a_market_stream_stuck_on_the_unrouted_path_goes_back_to_the_routed_one():
    """On a routed server the unrouted path carries /public data only: klines asked for
    there never come. The silence check tries the routed path again."""
    options = StreamOptions(heartbeat_seconds=0.2, silence_seconds=0.5, backoff_initial=0.05,
                            backoff_max=0.2, keepalive_seconds=30.0)
    async with FakeBinance(ws_layout="both") as fake:
        # A passing fault at start, 404 to every routed upgrade: two from the user-data
        # stream (with and without `events`), one from each market stream.
        fake.hub.refuse_upgrades(ROUTED, times=4)
        with captured_logs("WARNING") as logs:
            async with started_exchange(fake, streams=True, stream_options=options) \
                    as exchange:
                market_stream = exchange.streams.market
                assert await eventually(lambda: market_stream.live
                                        and market_stream.paths.current == LEGACY)
                arrived = None
                for minute in range(30):        # bounded: 30 candles, 0.2 s apart at most
                    await fake.push_candle(candle(minute))
                    arrived = await exchange.next_candle(0.2)
                    if arrived is not None:
                        break
                assert arrived is not None and market_stream.paths.current == ROUTED
    assert any("stream=market legacy path silent" in line for line in logs)


async def test_a_routed_server_that_rejects_our_events_list_is_asked_for_all_events():
    """The notice names no list of accepted `events`: a 400 for ours is tried again without
    the parameter, on the routed path, before the old one."""
    async with FakeBinance(ws_layout="routed") as fake:
        fake.hub.known_events = frozenset({"ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"})
        with captured_logs() as logs:
            async with started_exchange(fake, streams=True, stream_options=FAST) as exchange:
                assert await eventually(lambda: exchange.streaming, timeout=5.0)
                assert fake.hub.user_events == {}           # no filter: every event
                await a_fill_arrives(exchange)
    user = [u for u in fake.hub.upgrades if u.kind == "user"]
    assert user == [Upgrade("user", ROUTED, 400), Upgrade("user", ROUTED, 101)]
    assert any("stream=user-data using the routed-all-events path" in line for line in logs)


async def test_a_silent_market_stream_on_an_old_server_tries_the_routed_path_and_comes_back():
    """The re-probe after silence finds the routed path refused (404) and returns to the
    unrouted one at once; the silent connection must not count as the routed path working."""
    options = StreamOptions(heartbeat_seconds=0.2, silence_seconds=0.4, backoff_initial=0.05,
                            backoff_max=0.2, keepalive_seconds=30.0,
                            refused_within_seconds=0.1)
    async with FakeBinance(ws_layout="legacy") as fake:
        async with started_exchange(fake, streams=True, stream_options=options) as exchange:
            market_stream = exchange.streams.market
            assert await eventually(lambda: market_stream.health.outages >= 2, timeout=5.0)
            assert await eventually(lambda: market_stream.live
                                    and market_stream.paths.current == LEGACY)
            await fake.push_candle(candle())
            assert await exchange.next_candle(2.0) == candle()
    market_routed = [u for u in fake.hub.upgrades if u.kind == "market" and u.layout == ROUTED]
    assert market_routed and all(u.status == 404 for u in market_routed)


# --- the rules, on their own -------------------------------------------------------------------

def test_a_refused_preferred_path_falls_back_at_once_and_comes_back_after_a_backoff():
    paths = PathChooser("s", (ROUTED, LEGACY))
    assert paths.record(PathOutcome.REFUSED, "HTTP 404") is True          # now, no backoff
    assert paths.current == LEGACY
    assert paths.record(PathOutcome.REFUSED, "HTTP 404") is False         # wait, then retry
    assert paths.current == ROUTED


def test_a_preferred_path_that_worked_is_never_given_up():
    paths = PathChooser("s", (ROUTED, LEGACY))
    paths.record(PathOutcome.WORKED)
    for outcome in (PathOutcome.REFUSED, PathOutcome.CLOSED_AT_ONCE, PathOutcome.FAILED):
        for _ in range(3):
            assert paths.record(outcome) is False
    assert (paths.current, paths.remembered) == (ROUTED, ROUTED)


def test_a_fallback_that_worked_is_kept_until_it_is_refused():
    paths = PathChooser("s", (ROUTED, LEGACY))
    paths.record(PathOutcome.REFUSED, "HTTP 404")
    paths.record(PathOutcome.WORKED)
    for _ in range(3):
        paths.record(PathOutcome.CLOSED_AT_ONCE)
        paths.record(PathOutcome.FAILED)
    assert (paths.current, paths.remembered) == (LEGACY, LEGACY)
    paths.record(PathOutcome.REFUSED, "HTTP 404")           # the server learnt the new paths
    assert (paths.current, paths.remembered) == (ROUTED, None)


def test_only_closes_at_once_in_a_row_before_anything_worked_count_as_a_refusal():
    paths = PathChooser("s", (ROUTED, LEGACY))
    assert paths.record(PathOutcome.CLOSED_AT_ONCE) is False    # one drop: a fault
    paths.record(PathOutcome.FAILED)                            # e.g. a 503: not in a row
    assert paths.record(PathOutcome.CLOSED_AT_ONCE) is False
    assert paths.current == ROUTED
    assert paths.record(PathOutcome.CLOSED_AT_ONCE) is True
    assert paths.current == LEGACY


def test_reprobe_goes_back_to_the_preferred_path():
    paths = PathChooser("s", (ROUTED, LEGACY))
    paths.reprobe("silent")
    assert paths.current == ROUTED
    paths.record(PathOutcome.REFUSED, "HTTP 400")
    paths.record(PathOutcome.WORKED)
    paths.reprobe("silent")
    assert (paths.current, paths.remembered) == (ROUTED, None)
