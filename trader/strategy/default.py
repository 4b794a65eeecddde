"""The default strategy: a trend-filtered Donchian breakout with a strong-body candle.

The rule, on closed candles only (evaluated over the last `window` candles, so the answer
does not depend on how much history the caller holds):

LONG  when the last close breaks above the highest high of the previous `channel`
      candles while the close before it had not broken its own channel (only the
      breakout candle signals, not every candle of the run that follows),
      the fast EMA is above the slow EMA (trend filter), and the breakout candle is a
      real push: its body (close - open) is at least `min_body_atr` x ATR.
SHORT is the mirror image (close below the lowest low, fast EMA below slow EMA, a
      bearish body of at least `min_body_atr` x ATR).

Stop distance is `sl_atr` x ATR as a fraction of the close (risk.py clamps it to
[0.40 %, 2.00 %] after the regime multipliers); the target is `reward_risk` x the stop.
Confidence grows with the body size: body / (2 x ATR), capped at 1.

It is deliberately simple and makes no claim of an edge: on the bundled candles it
signals a few dozen times over ~2000 5-minute candles, not hundreds.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from itertools import islice

from trader.domain import Candle, Side, Signal
from trader.market.candle_window import CandleWindow
from trader.market.indicators import (
    ROUGH_WILDER_ERROR,
    atr,
    ema,
    highest_high,
    lowest_low,
    rough_emas,
    rough_wilder,
)
from trader.strategy.bounds import above, at_least, check_bounds

# `_surely_none`'s margin on the float body test, relative (see there); prices whose floats
# lose digits (outside _SMALLEST.._LARGEST) are left to the exact tests
BODY_MARGIN = 100 * ROUGH_WILDER_ERROR
_SMALLEST, _LARGEST = 1e-100, 1e100
# Members read once: `Side.BUY` goes through 3.11's `EnumType.__getattr__` (~900
# instructions), and an open position's close asks `signal_against` every candle.
_BUY, _SELL = Side.BUY, Side.SELL


@dataclass(frozen=True, slots=True)
class DefaultStrategy:
    name: str = "donchian-ema-breakout"
    channel: int = at_least(30, 1)    # Donchian channel length (previous candles)
    ema_fast: int = at_least(20, 1)
    ema_slow: int = at_least(50, 1)
    atr_period: int = at_least(14, 1)
    min_body_atr: Decimal = at_least(Decimal("0.8"), 0)
    sl_atr: Decimal = above(Decimal("1.5"), 0)
    reward_risk: Decimal = above(Decimal("2"), 0)
    window: int = 120                 # candles every indicator is computed over
    # The longest TRADEBOT_TIME_IN_TRADE_MINUTES allows: the operator's setting decides.
    time_limit: timedelta = timedelta(minutes=60)
    # More pause after a close than TRADEBOT_COOLDOWN_MINUTES (which decides; 0: none more).
    cooldown: timedelta = timedelta(0)
    trail_activation: Decimal = at_least(Decimal("0.006"), 0)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.window < max(self.ema_slow, self.channel + 2, self.atr_period + 1):
            raise ValueError("window must cover the slow EMA, the channel and the ATR")

    @property
    def warmup(self) -> int:
        """Closed candles needed before the first signal."""
        return self.window

    def signal(self, closed: Sequence[Candle]) -> Signal | None:
        """A breakout signal on the last closed candle, or None."""
        return self._breakout(closed, True, True)

    def signal_against(self, side: Side, closed: Sequence[Candle]) -> Signal | None:
        """`signal(closed)` when it is a signal of the other side than `side`, else None:
        what an open position's close asks (trader/entry.py `says_close`), without looking
        at a breakout of its own side (the trend it rides: ~200 us each). The same answer:
        a BUY needs the up breakout and a SELL the down one, and each side's tests read
        only its own breakout (`_surely_none` too); both at once would need the candle
        before the last to have its low above its high, and even then a BUY comes only
        with a rising trend, where a SELL cannot."""
        return self._breakout(closed, side is not _BUY, side is not _SELL)

    def _breakout(self, closed: Sequence[Candle], up_wanted: bool,
                  down_wanted: bool) -> Signal | None:
        """`signal`, with the breakout of a side not wanted taken as absent."""
        if len(closed) < self.window:
            return None
        # The channels straight from `closed` (the window covers them: __post_init__).
        last, before, channel = closed[-1], closed[-2], self.channel
        price = last.close
        # The candle before the last is the first the channel tests look at (channel >= 1):
        # when it already holds the price, neither test needs its generator (most candles).
        breaks_up = (up_wanted and before.high < price
                     and _breaks_up(price, before.close, closed, channel))
        breaks_down = (down_wanted and before.low > price
                       and _breaks_down(price, before.close, closed, channel))
        if not (breaks_up or breaks_down):
            return None   # most candles: no breakout, so the indicators are not needed
        # A history's window carries its candles' closes and true ranges as floats
        # (trader/market/candle_window.py): a third of the breakouts are told apart from a
        # signal by them, without the exact ATR (~100 Decimal steps) nor the exact EMAs.
        floats = closed.floats(self.window) if type(closed) is CandleWindow else None
        if floats is not None \
                and self._surely_none(closed, floats, last, breaks_up, breaks_down):  # type: ignore[arg-type]
            return None
        window = closed[-self.window:]
        # (a history's window: from the true ranges the history kept, not computed again)
        average_range = closed.atr(self.window, self.atr_period) \
            if type(closed) is CandleWindow else atr(window, self.atr_period)
        if average_range is None or average_range <= 0:
            return None
        # The body test before the EMAs: a breakout without a strong body needs no trend.
        body, least = last.close - last.open, self.min_body_atr * average_range
        up, down = breaks_up and body >= least, breaks_down and -body >= least
        if not (up or down):
            return None
        trend = self._trend(window, closed if floats is not None else None)  # type: ignore[arg-type]
        if up and trend > 0:
            return self._signal(Side.BUY, last, body, average_range)
        if down and trend < 0:
            return self._signal(Side.SELL, last, -body, average_range)
        return None

    def _surely_none(self, window: CandleWindow, floats: tuple[list[float], list[float]],
                     last: Candle, breaks_up: bool, breaks_down: bool) -> bool:
        """True when `signal` will surely answer None for this breakout, told from the
        window's float closes and true ranges: the body is short of `min_body_atr` x ATR by
        more than any float error, or the float EMAs (within their proven error:
        trader/market/indicators.py) point against the breakout. False (the exact tests
        decide) whenever float cannot tell.

        The error of the float body test: the float ATR is within ROUGH_WILDER_ERROR x P
        of the exact one (P: the largest |price| of the window's candles; every high and
        low is within its true range of the close before it, so P <= the largest |close|
        + the largest range); the float body within 4u x P of the exact body (two
        conversions and a subtraction, u = 2**-53); float(min_body_atr) within u of its
        Decimal, the products and the comparison's sides within u of theirs. MARGIN x
        (P x (1 + m) + |least|) is over a hundred times their sum."""
        closes, ranges = floats
        average = rough_wilder(ranges[1:], self.atr_period)
        if average is None:
            return False
        opened = float(last.open)
        largest_close = window.largest_close(len(closes))     # (kept for the rough EMAs)
        if largest_close is None:
            return False
        largest = max(largest_close, abs(opened)) + max(ranges)
        if not (_SMALLEST <= largest <= _LARGEST and average > BODY_MARGIN * largest):
            return False    # (a zero ATR, no signal, is the exact test's to tell)
        body, weight = closes[-1] - opened, float(self.min_body_atr)
        least = weight * average
        margin = BODY_MARGIN * (largest * (1 + weight) + abs(least))
        may_up = breaks_up and body >= least - margin
        may_down = breaks_down and -body >= least - margin
        if not (may_up or may_down):
            return True
        rough = window.rough_emas(len(closes), self.ema_fast, self.ema_slow)
        # rough_emas returns False, never True (its hint says bool; to fix once trader/market
        # is free to edit: this ignore then reports itself as unused)
        order = rough.order() if rough else None  # type: ignore[union-attr]
        if order is None:
            return False
        return not ((may_up and order > 0) or (may_down and order < 0))

    def _trend(self, window: list[Candle], closed: CandleWindow | None = None) -> int:
        """1 when the fast EMA of the closes of `window` is above the slow one, -1 below, 0
        equal. From the float EMAs when they are further apart than both their errors
        (nearly every breakout: the exact EMAs cost twice as much), else from the exact
        ones: the same answer. `closed`: the history's window `window` ends, when it kept
        the closes' floats (`float(close)` of each: the same float EMAs, not converted)."""
        rough = closed.rough_emas(len(window), self.ema_fast, self.ema_slow) \
            if closed is not None else False
        closes = None
        if rough is False:
            closes = [candle.close for candle in window]
            rough = rough_emas(closes, self.ema_fast, self.ema_slow)
        # (never True either: the ignore is the one above's)
        order = rough.order() if rough is not None else None  # type: ignore[union-attr]
        if order is not None:
            return order
        if closes is None:
            closes = [candle.close for candle in window]
        fast, slow = ema(closes, self.ema_fast), ema(closes, self.ema_slow)
        if fast is None or slow is None:
            return 0
        return (fast > slow) - (fast < slow)

    def _signal(self, side: Side, last: Candle, body: Decimal, average_range: Decimal) -> Signal:
        sl_pct = self.sl_atr * average_range / last.close
        confidence = min(1.0, float(body / (2 * average_range)))
        return Signal(
            side=side, confidence=confidence, tp_pct=sl_pct * self.reward_risk, sl_pct=sl_pct,
            time_limit=self.time_limit, cooldown=self.cooldown,
            trail_activation=self.trail_activation,
            reason=(f"{self.channel}-candle {'high' if side is Side.BUY else 'low'} broken "
                    f"at {last.close} with EMA{self.ema_fast}/{self.ema_slow} trend"),
        )


# The channel tests from a history's float highs and lows (trader/market/candle_window.py):
# float() of a Decimal rounds to the nearest double, which never puts a larger Decimal below
# a smaller one, so a float strictly above (or below) another tells the Decimals' order;
# only equal floats leave a test to the Decimals. (One `max` over 30 floats, ~5,000
# instructions, against a scan of Decimals that reads the whole channel on a breakout.)

def _breaks_up(price: Decimal, before: Decimal, closed: Sequence[Candle], channel: int) -> bool:
    """`price > highest_high(closed[-channel - 1:-1])` and `before <= highest_high(
    closed[-channel - 2:-2])`: `price` (the last close) breaks the channel before it, and
    `before` (the close before it) did not break its own."""
    floats = closed.channel_floats(channel + 2, True) if type(closed) is CandleWindow else None
    if floats is None:
        return (_above_every_high(price, closed, channel)
                and before <= highest_high(closed[-channel - 2:-2]))
    closes, highs = floats
    last, highest = closes[-1], max(highs[1:-1])
    if last < highest or (last == highest and not _above_every_high(price, closed, channel)):
        return False
    before_float, highest = closes[-2], max(highs[:-2])
    if before_float != highest:
        return before_float < highest
    return before <= highest_high(closed[-channel - 2:-2])


def _breaks_down(price: Decimal, before: Decimal, closed: Sequence[Candle], channel: int) -> bool:
    """`_breaks_up`'s mirror: `price` below every low of the channel before it, `before` not."""
    floats = closed.channel_floats(channel + 2, False) if type(closed) is CandleWindow else None
    if floats is None:
        return (_below_every_low(price, closed, channel)
                and before >= lowest_low(closed[-channel - 2:-2]))
    closes, lows = floats
    last, lowest = closes[-1], min(lows[1:-1])
    if last > lowest or (last == lowest and not _below_every_low(price, closed, channel)):
        return False
    before_float, lowest = closes[-2], min(lows[:-2])
    if before_float != lowest:
        return before_float > lowest
    return before >= lowest_low(closed[-channel - 2:-2])


def _above_every_high(price: Decimal, closed: Sequence[Candle], count: int) -> bool:
    """`price > highest_high(closed[-count - 1:-1])`, the `count` candles before the last,
    looked at newest first and decided at the first high that is not below `price` (on
    most candles the one before the last already is)."""
    return not any(candle.high >= price for candle in islice(reversed(closed), 1, count + 1))


def _below_every_low(price: Decimal, closed: Sequence[Candle], count: int) -> bool:
    """`price < lowest_low(closed[-count - 1:-1])`, decided the same way."""
    return not any(candle.low <= price for candle in islice(reversed(closed), 1, count + 1))
