"""The shortcuts of a trade's compute give what the plain definitions give, value for value:
the simulator's fills since a moment (bisected while its log is in time order), the
indicators reused for the very same input objects, the default strategy's early answers."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from trader.domain import Fill, Side
from trader.exchange.sim import SimConfig, Simulator

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def fill(number: int, symbol: str, minutes: int) -> Fill:
    return Fill(trade_id=str(number), symbol=symbol, client_id=f"c{number}", side=Side.BUY,
                quantity=D(1), price=D(100), fee=D(0), realized_pnl=D(0),
                time=T0 + timedelta(minutes=minutes))


def plain_fills(log: list[Fill], symbol: str, since: datetime | None) -> list[Fill]:
    """The definition: every kept fill of the symbol at or after `since`."""
    return [f for f in log if f.symbol == symbol and (since is None or f.time >= since)]


@settings(max_examples=200, deadline=None)
@given(kept=st.integers(1, 6),
       steps=st.lists(st.tuples(st.sampled_from(SYMBOLS), st.integers(0, 20)), max_size=25),
       loaded=st.lists(st.tuples(st.sampled_from(SYMBOLS), st.integers(0, 20)), max_size=6),
       since=st.one_of(st.none(), st.integers(-1, 21)))
def test_fills_since_a_moment_are_the_plain_filter(kept: int, steps: list[tuple[str, int]],
                                                   loaded: list[tuple[str, int]],
                                                   since: int | None) -> None:
    """Times in and out of order, a log loaded whole (a restart), fills dropped from a full
    log: the answer is always the plain filter's, in the same order."""
    sim = Simulator(SimConfig(max_fills_kept=kept))
    sim.fill_log = [fill(100 + i, symbol, minute) for i, (symbol, minute) in enumerate(loaded)]
    moment = None if since is None else T0 + timedelta(minutes=since)
    for number, (symbol, minute) in enumerate(steps):
        sim._keep_fill(fill(number, symbol, minute))
        for name in SYMBOLS:
            assert sim.fills(name, moment) == plain_fills(sim.fill_log, name, moment)


def test_fills_in_time_order_are_bisected_not_scanned() -> None:
    """The fast path is taken when the log is in time order (a backtest's, always)."""
    sim = Simulator(SimConfig(max_fills_kept=10))
    for minute in range(20):
        sim._keep_fill(fill(minute, SYMBOLS[minute % 2], minute))
    assert sim._disorder == 0
    assert [f.trade_id for f in sim.fills(SYMBOLS[0], T0 + timedelta(minutes=15))] \
        == ["16", "18"]
    sim._keep_fill(fill(99, SYMBOLS[0], 3))            # a time that went back
    assert sim._disorder == 1
    assert [f.trade_id for f in sim.fills(SYMBOLS[0], T0 + timedelta(minutes=15))] \
        == ["16", "18"]
