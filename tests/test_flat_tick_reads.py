"""The flat tick's reads, made cheaper, answer what the longer reads answered: the entry
desk takes a candle exactly when `would_ask` says it would (each new candle once, never
before the warm-up), and the order tracker's kept empty answer for a symbol without
orders is read again without a rescan, and dropped as soon as an order arrives."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.engine_world import make_world
from trader.domain import Candle, Order, OrderStatus, OrderType, Side
from trader.entry import EntryDesk
from trader.exchange.base import CircuitState
from trader.market.history import CandleHistory
from trader.order_tracker import OrderTracker

START = datetime(2024, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)


class Warmup:
    name = "warmup"

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup

    def signal(self, closed):
        return None


def candle(n: int) -> Candle:
    price = Decimal(100)
    return Candle("BTCUSDT", START + STEP * n, STEP, price, price, price, price)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 5), st.lists(st.tuples(st.sampled_from(["BTCUSDT", "ETHUSDT"]),
                                             st.integers(0, 3), st.booleans()), max_size=30))
def test_the_desk_takes_a_candle_exactly_when_would_ask_says_so(
        warmup: int, script: list[tuple[str, int, bool]]) -> None:
    desk = EntryDesk(Warmup(warmup))      # type: ignore[arg-type]
    histories = {"BTCUSDT": CandleHistory(10), "ETHUSDT": CandleHistory(10)}
    added = 0
    for symbol, new, as_window in script:
        history = histories[symbol]
        for _ in range(new):
            history.append(candle(added))
            added += 1
        candles = history.closed() if as_window else list(history)
        expected = desk.would_ask(symbol, candles)
        assert desk.new_candle(symbol, candles) == expected
        assert not desk.would_ask(symbol, candles), "a candle is taken once"
        assert not desk.new_candle(symbol, candles)


def stop(client_id: str, status: OrderStatus) -> Order:
    return Order("BTCUSDT", client_id, Side.SELL, OrderType.STOP_MARKET, status,
                 Decimal("0.01"), trigger_price=Decimal("100"))


def test_an_empty_live_answer_is_kept_until_an_order_arrives(monkeypatch) -> None:
    tracker, scans = OrderTracker(), []
    scan = tracker._live_of
    monkeypatch.setattr(tracker, "_live_of", lambda symbol: scans.append(symbol) or scan(symbol))
    assert not tracker.has_live("BTCUSDT") and tracker.live("BTCUSDT") == []
    assert not tracker.has_live("BTCUSDT")
    assert scans == ["BTCUSDT"], "a symbol without orders is scanned once, not every read"
    tracker.on_order(stop("tb-BTCUSDT-k-sl1", OrderStatus.NEW), START)
    assert tracker.has_live("BTCUSDT") and len(tracker.live("BTCUSDT")) == 1
    tracker.on_order(stop("tb-BTCUSDT-k-sl1", OrderStatus.CANCELED), START)
    assert not tracker.has_live("BTCUSDT") and tracker.live("BTCUSDT") == []
    assert scans == ["BTCUSDT"] * 3


async def test_the_funding_checks_boundary_contains_live_and_ends_a_backtest(tmp_path) -> None:
    """The funding check runs inside its boundary without `contained`'s coroutine: an
    unexpected error is alerted and the later jobs still run; a backtest ends on it."""
    world = await make_world(tmp_path)
    housekeeping = world.engine.housekeeping

    def broken(*args: object) -> None:
        raise ZeroDivisionError("funding")

    # the funding job's own step, whether the rate was pushed or read over REST
    housekeeping._funding_sample = broken    # type: ignore[method-assign]
    housekeeping.due_at.clear()
    await world.step()
    assert any("funding check" in text for text in world.alerts("ERROR"))
    assert "telemetry" in housekeeping.due_at, "the jobs after the failing one still ran"
    world.engine.fail_fast = True
    housekeeping.due_at.clear()
    with pytest.raises(ZeroDivisionError):
        await world.step()


@pytest.mark.parametrize("open_for", [None, -1, 0, 1])
async def test_the_circuit_is_open_exactly_when_its_state_says_so(tmp_path, open_for) -> None:
    """`Executor.circuit_open` skips the clock for a closed circuit: the same answer as
    `CircuitState.is_open(now)` for a closed, an expired, an ending and an open circuit."""
    world = await make_world(tmp_path)
    now = world.clock.now()
    state = CircuitState(None if open_for is None else now + timedelta(seconds=open_for),
                         "429", now)
    world.paper.circuit = lambda: state
    assert world.engine.executor.circuit_open() == state.is_open(now)
    assert world.engine.executor.circuit_open() == (open_for is not None and open_for > 0)
