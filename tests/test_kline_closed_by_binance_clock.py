"""A candle is closed, and due, by Binance's clock, never by the host's alone.

GET /fapi/v1/klines answers the kline in progress as its last row ("If startTime and endTime
are not sent, the most recent klines are returned"; the COIN-M page of the same endpoint
names the last row's close "Close (or latest price)"):
https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/
Kline-Candlestick-Data. The kline stream says it with "x" ("Is this kline closed?"; the
Chinese page: whether the next kline has begun):
https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-
streams/Kline-Candlestick-Streams.

Before, the live feed (trader/market/live.py) kept every REST row whose close time had
passed on the HOST's clock and marked it delivered. With the host a few hundred ms ahead of
Binance, a poll just after the host's boundary took the kline still in progress: the engine
dropped it (the codec had it open), the final kline never came (REST and the stream's
x=true were both "seen already"), and 30 s later STALE_DATA blocked entries for a candle.
With the host behind, the candle came as late as the host was behind. The feed watchdog
(trader/market/feed.py) compared candle times (Binance's) with the host's clock: a host
more than its 30 s grace ahead alerted STALE_DATA on every candle, one behind alerted a
real silence that much late. From review7 (test_rv7_kline_still_open)."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest

from tests.fakes.binance_harness import started_exchange
from tests.fakes.binance_server import FakeBinance
from tests.fakes.binance_wire import kline_row
from tests.test_first_command_after_boot import FAST_STREAMS, SYMBOL, Agent, booted
from tests.test_stop_fill_during_ban import alerts
from trader.clock import ManualClock
from trader.domain import Candle
from trader.exchange import binance_codec as codec
from trader.market.live import ExchangeFeed

MINUTE = timedelta(minutes=1)
SKEWS = [-1500, -300, 0, 300, 1500]       # Binance's clock minus the host's, ms
POLL_EVERY = 0.05                         # tighter than the 2 s tick: every moment is tried


def candle(open_time: datetime, close: str, closed: bool = True) -> Candle:
    price = Decimal(close)
    return Candle(SYMBOL, open_time, MINUTE, price, price + 5, price - 5, price, Decimal("10"),
                  closed)


def on_ms(moment: datetime) -> datetime:
    """`moment` to Binance's millisecond (its klines' times)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def seed(fake: FakeBinance, closes_at: datetime, count: int = 60) -> list[Candle]:
    """`count` closed klines before the one that closes at `closes_at` (Binance's time), then
    that one in progress (close 50100 so far) as Binance's last row; the fake's rows."""
    current = closes_at - MINUTE
    rows = fake.endpoints.candles.setdefault(SYMBOL, [])
    rows += [candle(current - MINUTE * k, "50000") for k in range(count, 0, -1)]
    rows.append(candle(current, "50100", closed=False))
    return rows


def binance_closes(rows: list[Candle]) -> None:
    """Binance closes the kline in progress (its final close 49700, not the 50100 it had)
    and opens the next one: what a GET /fapi/v1/klines answers from then on."""
    current = rows[-1].open_time
    rows[-1] = candle(current, "49700")
    rows.append(candle(current + MINUTE, "49700", closed=False))


async def until_binance(fake: FakeBinance, moment: datetime,
                        step: Callable[[], Awaitable[None]]) -> None:
    """Run `step()` every POLL_EVERY s until Binance's clock reads `moment`."""
    while fake.now() < moment:
        await step()
        await asyncio.sleep(POLL_EVERY)


def test_a_klines_row_is_closed_when_binance_began_the_next_or_its_clock_is_well_past_it():
    """Binance's time as the request left: 0.4 s past a close (our offset may be off by up
    to a second: -1021 beyond it)."""
    asked_at = datetime(2026, 12, 2, 6, 30, 0, 400_000, tzinfo=UTC)
    before, current = asked_at.replace(microsecond=0) - 2 * MINUTE, asked_at.replace(
        microsecond=0) - MINUTE
    rows = [kline_row(candle(before, "50000")), kline_row(candle(current, "50100"))]
    last_alone = codec.candles_from_rest(rows, SYMBOL, MINUTE, asked_at)
    assert [c.closed for c in last_alone] == [True, False]
    begun = codec.candles_from_rest(rows + [kline_row(candle(current + MINUTE, "50100"))], SYMBOL,
                              MINUTE, asked_at)
    assert [c.closed for c in begun] == [True, True, False]
    later = codec.candles_from_rest(rows, SYMBOL, MINUTE, current + MINUTE + codec.CLOSE_MARGIN)
    assert [c.closed for c in later] == [True, True]
    assert codec.candles_from_rest([], SYMBOL, MINUTE, asked_at) == []


@pytest.mark.parametrize("skew_ms", SKEWS)
async def test_the_feed_delivers_the_final_kline_once_at_binances_close(skew_ms):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        fake.set_clock_skew(skew_ms)
        async with started_exchange(fake) as exchange:
            closes_at = on_ms(fake.now() + timedelta(seconds=0.6))   # not on a minute: no wait
            rows = seed(fake, closes_at)
            current = rows[-1].open_time
            feed = ExchangeFeed(exchange, [SYMBOL], "1m")
            history = await feed.poll(datetime.now(UTC))
            assert history[-1].open_time == current - MINUTE   # the one in progress left out
            delivered: list[tuple[Candle, datetime]] = []

            async def poll() -> None:
                if fake.now() >= closes_at and rows[-1].open_time == current:
                    binance_closes(rows)
                delivered.extend((c, fake.now()) for c in await feed.poll(datetime.now(UTC)))

            await until_binance(fake, closes_at + timedelta(seconds=0.8), poll)
            got = [(c.open_time, str(c.close), c.closed) for c, _ in delivered]
            assert got == [(current, "49700", True)], (
                f"host clock {-skew_ms:+} ms against Binance's: the feed gave {got} for the "
                "kline closing at " + f"{closes_at:%H:%M:%S.%f} (its final close is 49700)")
            late = (delivered[0][1] - closes_at).total_seconds()
            assert 0 <= late < 0.5, f"delivered {late:.2f} s after Binance closed it"
            assert feed.last_open[SYMBOL] == current     # the next, in progress: not "seen"


@pytest.mark.parametrize("skew_ms", SKEWS)
async def test_the_agent_gets_each_candle_once_at_its_close_from_rest_or_the_stream(
        tmp_path, skew_ms):
    """Booted with the kline stream up (x=true at Binance's close) and REST polled beside
    it, as `tradebot run` has them: the candle reaches the engine (its history, the feed
    watchdog) once, final, at its close."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        fake.set_clock_skew(skew_ms)
        closes_at = on_ms(fake.now() + timedelta(seconds=2.5))   # after the boot
        rows = seed(fake, closes_at)
        current = rows[-1].open_time
        async with booted(fake, tmp_path, stream_options=FAST_STREAMS) as agent:
            engine = agent.engine
            assert engine.candles[SYMBOL][-1].open_time == current - MINUTE
            seen: list[Candle] = []

            async def poll() -> None:
                if fake.now() >= closes_at and rows[-1].open_time == current:
                    rows.pop()                                # the final one, pushed as x=true
                    await fake.push_candle(candle(current, "49700"), walk=False)
                    rows.append(candle(current + MINUTE, "49700", closed=False))
                seen.extend(await agent_poll(agent))

            await until_binance(fake, closes_at + timedelta(seconds=1), poll)
            assert [(c.open_time, str(c.close)) for c in seen] == [(current, "49700")], seen
            assert engine.candles[SYMBOL][-1].open_time == current
            assert engine.candles[SYMBOL][-1].close == Decimal("49700")
            assert engine.housekeeping.feed.last_open(SYMBOL) == current


async def agent_poll(agent: Agent) -> list[Candle]:
    """The live loop's feed poll (trader/agent_loops.py `live_iteration`), returning what it gave."""
    fresh = await agent.feed.poll(agent.engine.clock.now())
    for candle_ in fresh:
        agent.engine.on_candle(candle_)
    return fresh


@asynccontextmanager
async def agent_on_a_still_clock(tmp_path: Path, skew_ms: int
                                 ) -> AsyncIterator[tuple[Agent, ManualClock, datetime]]:
    """An agent booted on a fake whose clock is `skew_ms` off the host's, the engine on a
    ManualClock at the host's time; its history's last candle closed at the returned moment
    (Binance's time, on a minute), the next one in progress."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        fake.set_clock_skew(skew_ms)
        closes_at = fake.now().replace(second=0, microsecond=0) + MINUTE
        seed(fake, closes_at)
        clock = ManualClock(datetime.now(UTC))
        async with booted(fake, tmp_path, clock=clock) as agent:
            yield agent, clock, closes_at - MINUTE


@pytest.mark.parametrize("skew_ms", [-45_000, -1500, 0, 1500, 45_000])
async def test_stale_data_is_said_30_s_after_the_candle_was_due_on_binances_clock(
        tmp_path, skew_ms):
    """The next candle is due at its close, Binance's time: STALE_DATA only once it is 30 s
    late there, whatever the host's clock says (45 s is past the grace either way)."""
    async with agent_on_a_still_clock(tmp_path, skew_ms) as (agent, clock, last_close):
        engine = agent.engine
        skew = timedelta(milliseconds=skew_ms)
        due = last_close + MINUTE                              # the next candle's close
        clock.set(due + timedelta(seconds=29) - skew)          # the host's time then
        await engine.tick()
        assert alerts(engine, "STALE_DATA") == [], "STALE_DATA before the candle was late"
        assert engine.entry_allowed(SYMBOL)
        clock.set(due + timedelta(seconds=31) - skew)
        await engine.tick()
        [stale] = alerts(engine, "STALE_DATA")
        assert f"due at {due:%H:%M} UTC" in stale, stale
        assert not engine.entry_allowed(SYMBOL)


@pytest.mark.parametrize("skew_ms", SKEWS)
async def test_a_gap_is_backfilled_with_closed_candles_only_whatever_the_clock_skew(
        tmp_path, skew_ms):
    """15 candles missed (more than one poll's 10 rows): the poll gives the last 9 closed
    ones, the watchdog reports the 6 before as a gap, the backfill reads them: the history
    is whole, each candle once, and the kline in progress is not in it."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        fake.set_clock_skew(skew_ms)
        current = fake.now().replace(second=0, microsecond=0)
        rows = seed(fake, current - 14 * MINUTE)
        rows.pop()                                            # 15 min ago nothing in progress
        async with booted(fake, tmp_path) as agent:
            engine = agent.engine
            rows += [candle(current - MINUTE * k, "50000") for k in range(15, 0, -1)]
            rows.append(candle(current, "50100", closed=False))
            await agent_poll(agent)
            await engine.tick()                               # the watchdog backfills
            times = [c.open_time for c in engine.candles[SYMBOL]]
            assert times[-1] == current - MINUTE, times[-3:]
            assert all(later - earlier == MINUTE for earlier, later in pairwise(times))
            assert len(times) == 60 + 15 and all(c.closed for c in engine.candles[SYMBOL])


async def test_the_fake_answers_the_kline_in_progress_as_its_last_row_as_binance_does():
    """tests/fakes/binance_endpoints.py `klines`: after the last candle pushed, the one in
    progress (its close so far: the mark price) is the last row; the candle pushed is then
    closed on Binance's word (the next one begun) as soon as it is pushed."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        async with started_exchange(fake) as exchange:
            pushed = candle(on_ms(fake.now() - MINUTE), "50000")
            await fake.push_candle(pushed, walk=False)
            candles = await exchange.klines(SYMBOL, "1m", None, 10)
            assert [(c.open_time, c.closed) for c in candles] == [
                (pushed.open_time, True), (pushed.close_time, False)]
            assert candles[-1].close == fake.sim.mark_price(SYMBOL)
