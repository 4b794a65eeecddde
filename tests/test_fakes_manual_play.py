"""The fakes for a person trying `tradebot run` by hand (README, "manual play"): the fake
Binance's market (tests/fakes/binance_manual.py) gives the agent history and streams klines
as Binance does, and the fake Telegram's terminal chat (tests/fakes/telegram_manual.py)
turns typed lines into messages and prints the bot's."""

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from tests.fakes.binance_manual import PlayMarket, path_price, shapes_for
from tests.fakes.binance_server import FakeBinance
from tests.fakes.telegram_manual import TerminalChat
from tests.fakes.telegram_server import FakeTelegram
from trader.domain import Candle, to_ms, utc
from trader.market.replay import load_bundled
from trader.strategy.default import DefaultStrategy

SYMBOL = "BTCUSDT"
# The fields of the documented event, https://developers.binance.com/docs/derivatives/
# usds-margined-futures/websocket-market-streams/Kline-Candlestick-Streams
KLINE_FIELDS = {"t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q",
                "B"}


def market(fake: FakeBinance, history: int = 300) -> PlayMarket:
    shapes = shapes_for("bundled", SYMBOL, Decimal("50000"), history, 7, load_bundled())
    return PlayMarket(fake, [SYMBOL], {SYMBOL: shapes}, history=history)


async def test_the_history_ends_at_the_last_boundary_and_soon_holds_a_default_signal():
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        play = market(fake)
        await play.seed_history()
        rows = fake.endpoints.klines({"symbol": SYMBOL, "limit": "1500"})
        boundary = play.boundary(fake.now())
        # 300 closed, then the kline in progress, as Binance answers (fakes/binance_endpoints.py)
        assert len(rows) == 301 and rows[-2][6] == to_ms(boundary) - 1
        assert rows[-1][0] == to_ms(boundary)
        assert all(row[2] >= max(row[1], row[4]) and row[3] <= min(row[1], row[4])
                   for row in rows)
        upcoming = [play.next_candle(SYMBOL, boundary + timedelta(minutes=n)) for n in range(6)]
        closed = play.candles[SYMBOL]
        strategy = DefaultStrategy()
        signals = [strategy.signal(closed[:len(closed) - len(upcoming) + n + 1])
                   for n in range(len(upcoming))]
        assert any(signals), "the default strategy signals within the first live candles"


async def test_klines_stream_as_binance_documents_them_and_the_price_follows():
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        play = market(fake, history=130)
        await play.seed_history()
        to_boundary = (play.boundary(fake.now()) + timedelta(minutes=1) - fake.now())
        fake.set_clock_skew(int(to_boundary.total_seconds() * 1000) - 2500)  # closes in 2.5 s
        stop = asyncio.Event()
        events = []
        async with aiohttp.ClientSession() as http, \
                http.ws_connect(f"{fake.ws_url}market/stream?streams=btcusdt@kline_1m") as ws:
            running = asyncio.create_task(play.run(stop))
            try:
                async with asyncio.timeout(20):
                    while not events or not events[-1]["data"]["k"]["x"]:
                        events.append(json.loads((await ws.receive()).data))
            finally:
                stop.set()
                await running
        live = play.candles[SYMBOL][130]
        assert {e["stream"] for e in events} == {"btcusdt@kline_1m"}
        assert all(set(e["data"]["k"]) == KLINE_FIELDS and e["data"]["e"] == "kline"
                   for e in events)
        assert [e["data"]["k"]["x"] for e in events] == [False] * (len(events) - 1) + [True]
        last = events[-1]["data"]["k"]
        assert last["t"] == to_ms(live.open_time) and last["T"] == to_ms(live.close_time) - 1
        assert Decimal(last["c"]) == live.close
        assert abs(fake.sim.mark_price(SYMBOL) - live.close) < Decimal("0.1")   # the mark
        closed, current = fake.endpoints.klines({"symbol": SYMBOL, "limit": "2"})
        assert closed[0] == last["t"] and current[0] == last["T"] + 1    # the next in progress


@given(st.integers(1, 10_000), st.integers(-300, 300), st.integers(0, 200),
       st.integers(0, 200), st.floats(0, 1))
def test_the_price_walks_inside_the_candle_from_its_open_to_its_close(open_, move, up, down,
                                                                      done):
    first, last = Decimal(open_), Decimal(open_ + move)
    candle = Candle(SYMBOL, utc(0), timedelta(minutes=1), first, max(first, last) + up,
                    min(first, last) - down, last)
    price = path_price(candle, done)
    assert candle.low <= price <= candle.high
    assert path_price(candle, 0.0) == candle.open and path_price(candle, 1.0) == candle.close


async def test_the_terminal_chat_sends_lines_and_shows_the_bots_messages_and_buttons():
    async with FakeTelegram() as telegram:
        chat = TerminalChat(telegram, 4242)
        assert chat.say("/status\n") == ""
        async with aiohttp.ClientSession() as http:
            api = f"{telegram.api_url}{telegram.token}"
            async with http.post(f"{api}/getUpdates", json={"timeout": 0}) as response:
                update = (await response.json())["result"][0]
            assert update["message"]["text"] == "/status"
            assert update["message"]["chat"]["id"] == 4242
            markup = {"inline_keyboard": [[{"text": "Yes, close", "callback_data": "c:1"},
                                           {"text": "Keep", "callback_data": "c:0"}]]}
            await http.post(f"{api}/sendMessage", json={
                "chat_id": 4242, "text": "<b>Close</b> BTCUSDT?", "parse_mode": "HTML",
                "reply_markup": markup})
            await http.post(f"{api}/sendMessage", json={"chat_id": 99, "text": "elsewhere"})
        news = chat.news()
        assert len(news) == 1 and "Close BTCUSDT?" in news[0] and "<b>" not in news[0]
        assert "[#1] Yes, close" in news[0] and "[#2] Keep" in news[0]
        assert chat.say("#2") == "(pressed Keep)"
        assert telegram._updates[-1]["callback_query"]["data"] == "c:0"
        assert chat.say("#3").startswith("(no button #3")


async def test_the_random_walk_makes_candles_on_the_tick_size_around_the_start_price():
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        shapes = shapes_for("walk", SYMBOL, Decimal("50000"), 300, 7, {})
        play = PlayMarket(fake, [SYMBOL], {SYMBOL: shapes}, history=300)
        await play.seed_history()
        candles = play.candles[SYMBOL]
        assert all(c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close)
                   and c.close % Decimal("0.1") == 0 for c in candles)
        assert Decimal("25000") < candles[-1].close < Decimal("100000")
