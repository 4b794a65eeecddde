"""The trend tests (the default strategy's fast vs slow EMA, `is_trending`'s EMA gap vs ATR)
are decided from float EMAs only far from their boundary (trader/market/indicators.py
`rough_emas`): the answers are those of the exact Decimal EMAs, on random windows and on
windows built to sit on the boundary (the EMAs equal, or the gap equal to its ATRs, to
1e-12..1e-20 of the price: down to below what the floats can tell (~1e-16), where a wrong
bound answers wrongly)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.exact_strategy import exact_signal
from trader.domain import Candle
from trader.market.indicators import atr, ema, largest_magnitude
from trader.strategy.default import DefaultStrategy
from trader.strategy.regime import is_trending

START = datetime(2024, 1, 1, tzinfo=UTC)
FIVE = timedelta(minutes=5)
STRATEGY = DefaultStrategy()
PRICES = st.sampled_from([Decimal("0.5123"), Decimal("100"), Decimal("43123.4")])
# how close to the boundary, in powers of ten of the price
CLOSENESS = st.sampled_from([-12, -16, -18, -20])


def exact_is_trending(closed: list[Candle]) -> bool:
    """`is_trending` with its default parameters, exact Decimal indicators only."""
    recent = closed[-120:]
    closes = [candle.close for candle in recent]
    fast, slow, average_range = ema(closes, 20), ema(closes, 50), atr(recent, 14)
    if fast is None or slow is None or not average_range:
        return False
    return abs(fast - slow) >= Decimal("0.5") * average_range


def candle(number: int, open_: Decimal, high: Decimal, low: Decimal, close: Decimal) -> Candle:
    return Candle("XRPUSDT", START + number * FIVE, FIVE, open_, high, low, close, Decimal(1))


def trend(price: Decimal, count: int, step: Decimal, noise: list[int]) -> list[Candle]:
    """`count` candles moving by `step` each, with small noise (in steps/5) and wicks."""
    candles, close = [], price
    for number in range(count):
        opened, close = close, close + step + step * noise[number % len(noise)] / 5
        wick = abs(step) / 2
        candles.append(candle(number, opened, max(opened, close) + wick,
                              min(opened, close) - wick, close))
    return candles


def balancing_close(history: list[Candle], nudge: int, closeness: int) -> Decimal:
    """The close after `history` that puts the fast EMA on the slow one (the window is
    `history` and it), rounded to 10**closeness of the price, then moved by `nudge` of
    those."""
    closes = [c.close for c in history]
    with localcontext() as precise:
        precise.prec = 60
        fast, slow = ema(closes, STRATEGY.ema_fast), ema(closes, STRATEGY.ema_slow)
        assert fast is not None and slow is not None
        alpha, beta = Decimal(2) / (STRATEGY.ema_fast + 1), Decimal(2) / (STRATEGY.ema_slow + 1)
        balance = (slow * (1 - beta) - fast * (1 - alpha)) / (alpha - beta)
        unit = history[0].close.scaleb(closeness)
        return (balance / unit).to_integral_value() * unit + nudge * unit


@settings(max_examples=150, deadline=None)
@given(PRICES, st.sampled_from([1, -1]), st.lists(st.integers(-2, 2), min_size=1, max_size=9),
       st.one_of(st.integers(-3, 3), st.none()), CLOSENESS, st.booleans())
def test_a_breakout_signals_as_with_the_exact_emas(
        price: Decimal, direction: int, noise: list[int], nudge: int | None, closeness: int,
        body_on_boundary: bool) -> None:
    """A breakout against a trend of 119 candles, its close where the EMAs meet (`nudge`
    ticks of 10**closeness of the price away) or a plain breakout (`nudge` None)."""
    step = -direction * price / 1000
    history = trend(price, STRATEGY.window - 1, step, noise)
    last_close = history[-1].close
    close = (balancing_close(history, nudge, closeness) if nudge is not None
             else last_close - 40 * step)
    last = candle(len(history), last_close, max(last_close, close), min(last_close, close),
                  close)
    closed = [*history, last]
    strategy = STRATEGY
    if body_on_boundary:     # the body exactly min_body_atr ATRs (the test the EMAs follow)
        average_range = atr(closed, strategy.atr_period)
        assert average_range
        strategy = DefaultStrategy(min_body_atr=abs(close - last_close) / average_range)
    assert strategy.signal(closed) == exact_signal(strategy, closed)


@settings(max_examples=150, deadline=None)
@given(PRICES, st.sampled_from([1, -1]), st.lists(st.integers(-1, 1), min_size=1, max_size=9),
       st.one_of(st.integers(-3, 3), st.none()), CLOSENESS)
def test_is_trending_answers_as_with_the_exact_emas(
        price: Decimal, direction: int, noise: list[int], nudge: int | None,
        closeness: int) -> None:
    """Candles whose true range is 2 x `half` each (wicks of `half` around every close,
    wider than any move): the ATR is 2 x `half`, so `half` equal to the EMAs' gap puts the
    gap at exactly 0.5 ATR; `nudge` ticks of 10**closeness of the price move it off; None: a
    plain half range of 10 steps."""
    step = direction * price / 1000
    closes = [candle.close for candle in trend(price, 120, step, noise)]
    fast, slow = ema(closes, 20), ema(closes, 50)
    assert fast is not None and slow is not None
    unit = price.scaleb(closeness)
    half = (abs(fast - slow) / unit).to_integral_value() * unit + (nudge or 0) * unit
    if nudge is None:
        half = 10 * abs(step)
    closed = [candle(number, close, close + half, close - half, close)
              for number, close in enumerate(closes)]
    assert is_trending(closed) == exact_is_trending(closed)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False) | st.sampled_from([0.0, -0.0]), min_size=1,
                max_size=40))
def test_the_largest_magnitude_is_maxs_of_the_absolute_values(floats: list[float]) -> None:
    """`largest_magnitude` (the float pre-tests' P) equals `max(map(abs, floats))`."""
    assert largest_magnitude(floats) == max(map(abs, floats))


def test_the_largest_magnitude_passes_over_a_nan_as_max_of_abs_does() -> None:
    nan = float("nan")
    for floats in ([1.0, nan, -2.0], [-3.0, nan], [nan, 1.0], [nan]):
        got, wanted = largest_magnitude(floats), max(map(abs, floats))
        assert got == wanted or (got != got and wanted != wanted), floats
