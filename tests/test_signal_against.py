"""An open position's close asks the default strategy only for a signal against its side
(`DefaultStrategy.signal_against`, trader/entry.py `says_close`): the same answer as
`signal` filtered to the other side, on lists and on a history's window (its float
pre-tests), ties and bodies of every size included; a strategy without it is asked
`signal` as before."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_default_strategy_channel import walk
from trader.domain import Candle, OrderRole, Side, Signal
from trader.entry import EntryDesk
from trader.market.history import CandleHistory
from trader.position import Leg, Position, PositionState
from trader.strategy.default import DefaultStrategy

START = datetime(2024, 1, 1, tzinfo=UTC)
FIVE = timedelta(minutes=5)

# small integer moves: highs, lows and closes meet often (the ties the tests turn on)
moves = st.lists(st.tuples(st.integers(-3, 3), st.integers(0, 2), st.integers(0, 2),
                           st.integers(-2, 2)), min_size=8, max_size=60)



def against(signal: Signal | None, side: Side) -> Signal | None:
    return signal if signal is not None and signal.side is not side else None


@settings(max_examples=300, deadline=None)
@given(moves, st.integers(1, 5), st.sampled_from([Decimal(0), Decimal("0.3")]))
def test_the_signal_against_a_side_is_the_signal_of_the_other_side(
        steps: list[tuple[int, int, int, int]], channel: int, min_body_atr: Decimal) -> None:
    strategy = DefaultStrategy(channel=channel, ema_fast=2, ema_slow=3, atr_period=2,
                               window=channel + 3, min_body_atr=min_body_atr)
    candles = walk(steps)
    history = CandleHistory(1000, 5, 99)
    for number, candle in enumerate(candles):
        history.append(candle)
        for closed in (candles[:number + 1], history.closed()):
            signal = strategy.signal(closed)
            for side in Side:
                assert strategy.signal_against(side, closed) == against(signal, side)


def test_a_breakout_of_its_own_side_is_not_a_signal_against_it() -> None:
    """A flat range broken upwards is a BUY: nothing against a long, the BUY against a
    short; broken downwards, the mirror image."""
    strategy = DefaultStrategy(channel=2, ema_fast=2, ema_slow=3, atr_period=2, window=5,
                               min_body_atr=Decimal(0))
    for move, side in ((3, Side.BUY), (-3, Side.SELL)):
        candles = walk([(0, 1, 1, 0)] * 5 + [(move, 0, 0, 0)])
        signal = strategy.signal(candles)
        assert signal is not None and signal.side is side
        assert strategy.signal_against(side, candles) is None
        assert strategy.signal_against(side.opposite, candles) == signal


class AgainstOnly:
    """A strategy that answers `signal_against` and refuses to be asked `signal`."""
    warmup = 1

    def __init__(self, answer: Signal | None) -> None:
        self.answer = answer
        self.asked: list[Side] = []

    def signal(self, candles: list[Candle]) -> Signal | None:
        raise AssertionError("says_close asks signal_against when the strategy has it")

    def signal_against(self, side: Side, candles: list[Candle]) -> Signal | None:
        self.asked.append(side)
        return self.answer


def test_says_close_asks_signal_against_the_positions_side() -> None:
    position = Position(symbol="XRPUSDT", key="k", side=Side.BUY,
                        state=PositionState.PROTECTED, quantity=Decimal(1),
                        entry_price=Decimal(100), leverage=5, opened_at=START,
                        stop=Leg(OrderRole.STOP_LOSS, Decimal(99)),
                        take_profit=Leg(OrderRole.TAKE_PROFIT, Decimal(102)))
    candles = walk([(1, 0, 0, 0)] * 3)
    short = Signal(side=Side.SELL, confidence=1.0, tp_pct=Decimal("0.01"),
                   sl_pct=Decimal("0.005"), reason="r")
    for answer, closes in ((None, False), (short, True), (replace(short, side=Side.BUY), False)):
        strategy = AgainstOnly(answer)
        assert EntryDesk(strategy).says_close(position, candles) is closes  # type: ignore[arg-type]
        assert strategy.asked == [Side.BUY]
