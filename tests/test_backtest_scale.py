"""A long backtest in flat memory and without per-tick scans: candles streamed from their
CSV, the equity curve bounded, the order tracker reading one symbol's recent orders only,
the paper exchange's quote computed once per moment and price."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.engine_world import SYMBOL, make_world
from trader import backtest
from trader.backtest import first_open_time, run_backtest
from trader.backtest_curve import CurveRecorder
from trader.backtest_periods import run_groups
from trader.clock import ManualClock
from trader.config import load_settings
from trader.domain import Candle, Order, OrderStatus, OrderType, Side
from trader.exchange.paper import PaperExchange
from trader.exchange.sim import SimConfig
from trader.market.gaps import span_text
from trader.market.replay import (
    CandleFile,
    ReplayFeed,
    bundled_data_files,
    iter_candles,
    load_bundled,
    load_candles,
)
from trader.metrics import EquityPoint
from trader.order_tracker import FORGET_AFTER, OrderTracker
from trader.trade_store import TradeStore

T0 = datetime(2024, 1, 1, tzinfo=UTC)


# --- streamed candles -----------------------------------------------------------------
def test_iter_candles_streams_the_same_candles_load_candles_reads() -> None:
    for path in bundled_data_files():
        assert list(iter_candles(path)) == load_candles(path)


def test_iter_candles_refuses_a_row_out_of_time_order_when_it_gets_there(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text("open_time,open,high,low,close,volume\n"
                    "1704067260000,1,2,1,1,0\n1704067200000,1,2,1,1,0\n")
    stream = iter_candles(path, interval=timedelta(minutes=1))
    next(stream)
    with pytest.raises(ValueError, match="line 3"):
        next(stream)


async def test_a_streamed_replay_batches_like_a_listed_one() -> None:
    data = load_bundled()
    listed = [[(c.symbol, c.open_time) for c in batch]
              async for batch in ReplayFeed(data, ManualClock(T0))]
    streamed_feed = ReplayFeed({s: iter(rows) for s, rows in data.items()}, ManualClock(T0))
    assert streamed_feed.total is None
    streamed = [[(c.symbol, c.open_time) for c in batch] async for batch in streamed_feed]
    assert streamed == listed and len(listed) == sum(len(rows) for rows in data.values())


async def test_a_backtest_of_streamed_candles_reports_what_the_listed_one_does(
        tmp_path: Path) -> None:
    rows = load_bundled()["BTCUSDT"][:400]
    settings = load_settings(_env_file=None)
    listed = await run_backtest(settings, {"BTCUSDT": rows}, tmp_path / "a", progress=False)
    streamed = await run_backtest(settings, {"BTCUSDT": iter(rows)}, tmp_path / "b",
                                  progress=False)
    assert streamed.candles == listed.candles == 400
    assert streamed.trades == listed.trades
    assert streamed.curve == listed.curve


def test_a_candle_file_streams_what_load_candles_reads_and_knows_its_span() -> None:
    for path in bundled_data_files():
        loaded = load_candles(path)
        streamed = CandleFile(path)
        assert list(streamed) == loaded and list(streamed) == loaded   # re-iterable
        assert len(streamed) == len(loaded)
        assert (streamed[0], streamed[-1]) == (loaded[0], loaded[-1])
        start, end = loaded[10].open_time, loaded[20].open_time
        narrowed = streamed.between(start, end)
        assert list(narrowed) == loaded[10:21] and narrowed[-1] == loaded[20]


def test_a_narrowed_candle_file_stops_reading_at_the_end_of_its_period(tmp_path: Path) -> None:
    """Rows are in time order (checked when opened), so a replay of `--to` stops reading
    there: two days of a 1,000,000-row file were replayed at 236 candles/s instead of
    thousands, and every sweep trial read the whole file again. Shown with a line written
    after the end once the file was opened: it is never read."""
    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text("open_time,open,high,low,close,volume\n" + "".join(
        f"{int(T0.timestamp() * 1000) + m * 60_000},1,2,1,1,0\n" for m in range(10)))
    narrowed = CandleFile(path).between(None, T0 + timedelta(minutes=4))
    with path.open("a") as more:
        more.write("not a row\n")
    assert [candle.open_time for candle in narrowed] == [
        T0 + timedelta(minutes=m) for m in range(5)]


def test_narrowing_a_candle_file_reads_it_only_up_to_the_end_of_the_period(
        tmp_path: Path) -> None:
    """The whole file was checked when it was opened: `between` (--from/--to) reads it again
    only up to the period's end. A 1,000,000-row file took 7 s to open and 7 s more to narrow
    to two days at its start."""
    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text("open_time,open,high,low,close,volume\n" + "".join(
        f"{int(T0.timestamp() * 1000) + m * 60_000},1,2,1,1,0\n" for m in range(10)))
    whole = CandleFile(path)
    with path.open("a") as more:
        more.write("not a row\n")
    narrowed = whole.between(T0 + timedelta(minutes=1), T0 + timedelta(minutes=4))
    assert (len(narrowed), narrowed[0].open_time, narrowed[-1].open_time) == (
        4, T0 + timedelta(minutes=1), T0 + timedelta(minutes=4))


def test_a_candle_file_reports_a_bad_row_before_any_work(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text("open_time,open,high,low,close,volume\n"
                    "1704067260000,1,2,1,1,0\n1704067200000,1,2,1,1,0\n1704067320000,x,2,1,1,0\n")
    with pytest.raises(ValueError, match="line 4: a price"):
        CandleFile(path)


def test_a_candle_file_counts_the_gaps_of_its_period(tmp_path: Path) -> None:
    minutes = [0, 1, 2, 5, 6, 30, 31]         # 2 missing, then 23 missing
    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text("open_time,open,high,low,close,volume\n" + "".join(
        f"{int(T0.timestamp() * 1000) + m * 60_000},1,2,1,1,0\n" for m in minutes))
    whole = CandleFile(path)
    assert (whole.gaps.count, whole.gaps.largest) == (2, timedelta(minutes=23))
    assert whole.gaps.warning("BTCUSDT") == (
        "BTCUSDT: 2 gaps in the data, the largest 23 min at 2024-01-01 00:07; the engine "
        "trades across it")
    before_the_big_one = whole.between(None, T0 + timedelta(minutes=6))
    assert before_the_big_one.gaps.count == 1
    assert whole.between(T0 + timedelta(minutes=30), None).gaps.warning("BTCUSDT") is None


def test_gaps_are_told_in_days_hours_and_minutes() -> None:
    assert span_text(timedelta(hours=16, minutes=40)) == "16 h 40 min"
    assert span_text(timedelta(days=1, minutes=5)) == "1 day 5 min"
    assert span_text(timedelta(days=3, hours=2)) == "3 days 2 h"


def test_the_first_candle_of_a_stream_is_put_back() -> None:
    rows = [Candle("BTCUSDT", T0 + timedelta(minutes=n), timedelta(minutes=1), Decimal(1),
                   Decimal(2), Decimal(1), Decimal(1)) for n in range(3)]
    start, replay = first_open_time({"BTCUSDT": iter(rows), "ETHUSDT": rows[1:]})
    assert start == T0
    assert list(replay["BTCUSDT"]) == rows


# --- the equity curve -------------------------------------------------------------------
def point(minute: int, equity: int) -> EquityPoint:
    return EquityPoint(T0 + timedelta(minutes=minute), Decimal(equity))


def test_the_curve_is_exact_up_to_its_limit() -> None:
    recorder = CurveRecorder(limit=100)
    points = [point(n, 1000 + (n * 37) % 101) for n in range(100)]
    for each in points:
        recorder.add(each)
    assert recorder.points() == points


def test_a_long_curve_stays_bounded_in_time_order_and_keeps_its_extremes() -> None:
    recorder = CurveRecorder(limit=100)
    points = [point(n, 10_000 + (n * 7919) % 5003 - (n // 50)) for n in range(20_000)]
    for each in points:
        recorder.add(each)
        assert len(recorder) <= 100
    kept = recorder.points()
    assert kept == sorted(kept, key=lambda p: p.at)
    assert len(kept) >= 25 and recorder.seen == 20_000
    assert max(p.equity for p in kept) == max(p.equity for p in points)
    assert min(p.equity for p in kept) == min(p.equity for p in points)


# --- the order tracker ---------------------------------------------------------------------
def order(client_id: str, symbol: str, status: OrderStatus) -> Order:
    return Order(client_id=client_id, symbol=symbol, side=Side.SELL, type=OrderType.STOP_MARKET,
                 quantity=Decimal("0.01"), status=status, trigger_price=Decimal("100"))


def test_the_tracker_reads_one_symbols_orders_and_forgets_old_finished_ones() -> None:
    tracker = OrderTracker()
    tracker.on_order(order("tb-BTCUSDT-k1-sl1", "BTCUSDT", OrderStatus.NEW), T0)
    tracker.on_order(order("tb-ETHUSDT-k1-sl1", "ETHUSDT", OrderStatus.NEW), T0)
    tracker.on_order(order("tb-BTCUSDT-k0-sl1", "BTCUSDT", OrderStatus.CANCELED), T0)
    assert [o.client_id for o in tracker.live("BTCUSDT")] == ["tb-BTCUSDT-k1-sl1"]
    assert set(tracker.for_symbol("BTCUSDT")) == {"tb-BTCUSDT-k1-sl1", "tb-BTCUSDT-k0-sl1"}
    tracker.on_order(order("tb-BTCUSDT-k1-sl1", "BTCUSDT", OrderStatus.FILLED), T0)
    assert tracker.live("BTCUSDT") == []                # the cached list follows the change
    assert tracker.forget_finished(T0 + FORGET_AFTER + timedelta(seconds=1)) == 2
    assert tracker.for_symbol("BTCUSDT") == {}
    assert [o.client_id for o in tracker.live("ETHUSDT")] == ["tb-ETHUSDT-k1-sl1"]


async def test_housekeeping_forgets_the_trackers_old_finished_orders(tmp_path: Path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up()
    tracker = world.engine.tracker
    tracker.on_order(order(f"tb-{SYMBOL}-old-sl1", SYMBOL, OrderStatus.CANCELED),
                     world.clock.now() - FORGET_AFTER - timedelta(minutes=1))
    world.engine.housekeeping.due_at.pop("cleanup", None)    # the 30-min job is due
    await world.engine.tick()
    assert tracker.get(f"tb-{SYMBOL}-old-sl1") is None


# --- the paper exchange's quote ------------------------------------------------------------
async def test_the_quote_is_reused_within_a_moment_and_follows_the_price(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    store = TradeStore.open(tmp_path / "paper.db")
    paper = PaperExchange(store, clock, SimConfig(seed=1), persist_every=0, save_state=False)
    await paper.start(["BTCUSDT"], 5)
    paper.sim.set_price("BTCUSDT", Decimal("100"), clock.now())
    first = paper.quote("BTCUSDT", timedelta(seconds=10))
    assert first is not None and paper.quote("BTCUSDT", timedelta(seconds=10)) is first
    paper.sim.set_price("BTCUSDT", Decimal("101"), clock.now())
    moved = paper.quote("BTCUSDT", timedelta(seconds=10))
    assert moved is not None and moved.mark == Decimal("101") and moved.bid > first.bid
    clock.set(T0 + timedelta(minutes=1))
    later = paper.quote("BTCUSDT", timedelta(seconds=10))
    assert later is not None and later.at == clock.now()
    store.close()


# --- several symbols ---------------------------------------------------------------------
def shifted(rows: list[Candle], days: int) -> list[Candle]:
    return [replace(c, open_time=c.open_time + timedelta(days=days)) for c in rows]


def test_symbols_of_one_period_are_said_to_be_coupled_and_run_in_one_engine(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = load_bundled()["BTCUSDT"][:150]
    group = {"BTCUSDT": rows, "ETHUSDT": [replace(c, symbol="ETHUSDT") for c in rows]}
    [report] = run_groups(load_settings(_env_file=None), [group], tmp_path, progress=False)
    assert "BTCUSDT, ETHUSDT: same period, one account" in capsys.readouterr().out
    assert report.symbols == ["BTCUSDT", "ETHUSDT"]


async def test_a_backtest_keeps_its_alerts_on_replay_time(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The alerter reads the engine's clock (the replayed candles' time), as `tradebot run`'s
    does: on the system clock, a breaker trip held for its clear was released at once,
    its window measured from a time years after the replayed one."""
    clocks = []

    class RecordingAlerter(backtest.Alerter):
        def __init__(self, store, clock=None, *args, **kwargs) -> None:
            super().__init__(store, clock, *args, **kwargs)
            clocks.append(self.clock)

    monkeypatch.setattr(backtest, "Alerter", RecordingAlerter)
    rows = load_bundled()["BTCUSDT"][:50]
    await run_backtest(load_settings(_env_file=None), {"BTCUSDT": rows}, tmp_path, progress=False)
    assert len(clocks) == 1 and isinstance(clocks[0], ManualClock)
    assert clocks[0].now() >= rows[-1].open_time


def test_a_recorded_point_is_the_equity_point_added() -> None:
    """`record(at, equity)` (built on the filler, every candle) keeps what
    `add(EquityPoint(at, equity))` keeps: equal points of the class itself, also past the
    limit where buckets keep their extremes."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    added, recorded = CurveRecorder(limit=8), CurveRecorder(limit=8)
    for minute in range(40):
        at, equity = start + timedelta(minutes=minute), Decimal(1000 + (minute * 7) % 11)
        added.add(EquityPoint(at, equity))
        recorded.record(at, equity)
    points = recorded.points()
    assert points == added.points()
    assert all(type(point) is EquityPoint for point in points)
    assert hash(points[0]) == hash(EquityPoint(points[0].at, points[0].equity))
