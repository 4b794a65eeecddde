"""The per-symbol entry breakers checked every tick: a spread wide against its own recent
history (and wider than a few ticks), a crash over the last candles, an EXTREME volatility
regime. The rules are the pure functions of trader/breaker_rules.py; this keeps the spread history
they compare against, and what each symbol's closed candles give (its regime, its crash
reading), read once per candle: a tick between two candles only applies them at its time.
Breakers gate new entries only, never exits or protection.
"""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from trader import breaker_rules
from trader.domain import ZERO, BookTicker, Candle
from trader.guard_book import GuardBook
from trader.guard_state import GuardConfig
from trader.market.history import CandleHistory
from trader.market.indicators import MedianWindow
from trader.strategy.regime import DEFAULT_THRESHOLDS, Regime, classify_ranges, read_regime

SPREAD_HISTORY = 100
SPREADS_KEPT = 1024     # books whose spread is kept (`Breakers.check`): as many as the
                        # simulator keeps per symbol (trader/exchange/sim.py BOOKS_KEPT)
REGIME_RANGES = DEFAULT_THRESHOLDS.lookback - 1     # the ranges read_regime computes
CandlesKey = object    # what identifies a symbol's closed candles (`candles_key`)
# The `regime_state` gauge of each reading: the regime's value, "" before enough candles
# (a dictionary read: `Regime.value` is a Python-level property, read every candle)
GAUGES: dict[Regime | None, str] = {None: "", **{regime: regime.value for regime in Regime}}
# The member read once: `Regime.EXTREME` goes through 3.11's `EnumType.__getattr__` (~900
# instructions), and `check` compares with it every candle.
_EXTREME = Regime.EXTREME


class CandleReading:
    """What one symbol's closed candles (`key`: `candles_key`) give the breakers under
    `config`: the volatility regime of the last one, and the crash move (None: no crash);
    `gauge` is the regime as the `regime_state` gauge shows it ("" before enough candles)."""
    __slots__ = ("key", "config", "regime", "crash", "gauge")

    def __init__(self, key: CandlesKey, config: GuardConfig, regime: Regime | None,
                 crash: str | None) -> None:
        self.key = key
        self.config = config
        self.regime = regime
        self.crash = crash
        self.gauge = GAUGES[regime]


class Breakers:
    def __init__(self, book: GuardBook) -> None:
        self.book = book
        self.spreads: dict[str, MedianWindow] = {}   # the last SPREAD_HISTORY spreads
        self._readings: dict[str, CandleReading] = {}
        # id(book) -> (book, tick size, spread_pct, spread in ticks): see `check`
        self._spread_kept: dict[int, tuple[BookTicker, Decimal, Decimal, Decimal]] = {}

    def check(self, symbol: str, quote: BookTicker | None, tick_size: Decimal,
              candles: Sequence[Candle] | CandleHistory, now: datetime,
              reading: CandleReading | None = None) -> str | None:
        """Run the breakers for one symbol; the regime read, for telemetry. `quote`: the top
        of book (None when there is none this tick: the spread check skips), `tick_size`
        its price grid (the spread floor is in ticks). A CandleHistory gives the regime
        from its float true ranges (exact near a threshold). `reading`: `reading(symbol,
        candles)` when the caller already took it this tick."""
        book = self.book
        config = book.config
        if quote is not None and tick_size > 0:
            # The spread and its width in ticks of this very book (frozen: its bid and ask
            # never change) at this very tick size, made once: the paper exchange hands
            # out one book per price (trader/exchange/sim.py `book`), and prices come back.
            # Kept with the book and the tick size themselves (an id is not reused while
            # its object is held), so a hit is the same Decimal steps' answer.
            kept = self._spread_kept.get(id(quote))
            if kept is not None and kept[0] is quote and kept[1] is tick_size:
                spread_pct, spread_ticks = kept[2], kept[3]
            else:
                spread_pct, spread_ticks = _spread(quote, tick_size)
                if len(self._spread_kept) >= SPREADS_KEPT:
                    self._spread_kept.clear()
                self._spread_kept[id(quote)] = (quote, tick_size, spread_pct, spread_ticks)
            history = self.spreads.get(symbol)
            if history is None:
                history = self.spreads[symbol] = MedianWindow(SPREAD_HISTORY)
            elif history:
                if spread_ticks > config.spread_min_ticks:   # else the rule says nothing
                    book.apply(breaker_rules.check_spread, symbol, spread_pct, spread_ticks,
                               history, now, config)
            history.append(spread_pct)
        if reading is None or reading.config is not config or reading.key != (
                candles.version if type(candles) is CandleHistory    # `candles_key`, inline
                else candles_key(candles)):
            reading = self.reading(symbol, candles)
        if reading.crash is not None:   # the breaker is tripped (or extended) while it lasts
            book.apply(breaker_rules.trip_crash, symbol, reading.crash, now, config)
        regime = reading.regime
        if regime is None:
            return None
        if regime is _EXTREME:          # the only regime `check_regime` acts on
            book.apply(breaker_rules.check_regime, symbol, regime, now, config)
        return reading.gauge

    def regime(self, symbol: str, candles: Sequence[Candle] | CandleHistory) -> Regime | None:
        """The symbol's volatility regime on its last closed candle, read once per candle
        (the breaker, the regime gauge and the open position's legs ask every tick)."""
        return self.reading(symbol, candles).regime

    def reading(self, symbol: str, candles: Sequence[Candle] | CandleHistory) -> CandleReading:
        """What the symbol's closed candles give the breakers, read once per candle."""
        key = candles.version if type(candles) is CandleHistory else candles_key(candles)
        config = self.book.config
        reading = self._readings.get(symbol)
        if reading is None or reading.key != key or reading.config is not config:
            if isinstance(candles, CandleHistory):
                crash = None if no_crash_possible(candles, config) else \
                    breaker_rules.crash_move(candles.tail(config.crash_candles), config)
                # `regime_of`'s float reading, inline (every candle): the same test, the
                # exact reading when the float ranges do not decide
                ranges = candles.ranges
                regime = classify_ranges(ranges) if candles.last_close > 0 and len(ranges) \
                    == min(len(candles) - 1, REGIME_RANGES) else None
                if regime is None:
                    regime = regime_of(candles)
            else:
                crash = breaker_rules.crash_move(candles, config)
                regime = regime_of(candles)
            reading = CandleReading(key, config, regime, crash)
            self._readings[symbol] = reading
        return reading


def _spread(quote: BookTicker, tick_size: Decimal) -> tuple[Decimal, Decimal]:
    """`quote.spread_pct` (and its `mid`), inline: the same Decimal steps; and the spread
    in ticks of `tick_size`."""
    bid, ask = quote.bid, quote.ask
    width, mid = ask - bid, (bid + ask) / 2
    return (width / mid if mid else ZERO), width / tick_size


_crash_limits: list[tuple[Decimal, float]] = []   # the last setting's: [(crash_move, limit)]


def _crash_limit(crash_move: Decimal) -> float:
    """float(crash_move) x 0.999 (`no_crash_possible`'s slack), made once per setting: kept
    with the very Decimal it was made of (an identity test, not the Decimal's hash that an
    lru_cache takes every candle)."""
    kept = _crash_limits[0] if _crash_limits else None
    if kept is not None and kept[0] is crash_move:
        return kept[1]
    limit = float(crash_move) * 0.999
    _crash_limits[:] = [(crash_move, limit)]
    return limit


def no_crash_possible(history: CandleHistory, config: GuardConfig) -> bool:
    """True when the last `crash_candles` candles cannot be a crash (`breaker_rules.crash_move`
    None), told from the history's float true ranges without a Decimal comparison (the
    exact reading makes eight, every candle). Their highs and lows lie within a span no
    wider than the sum S of their true ranges (each true range covers its candle and the
    close before it, which lies in the candle before: the ranges chain up), so the lowest
    low is at least close - S and the move (high - low) / low at most S / (close - S).
    Slack of 1e-9 x close on S and 0.1 % on the threshold cover every float rounding
    (about 1e-15 relative) by far. False (ask the exact reading) when unsure."""
    count, ranges = config.crash_candles, history.ranges
    kept, preceded = len(ranges), len(history) - 1      # min(preceded, ranges.size), inline
    if count < 1 or kept < count or kept != (preceded if preceded < ranges.size else ranges.size):
        return False
    close = history.last_close      # float(history[-1].close), made once per candle
    span = history.last_ranges_sum(count) + 1e-9 * close
    floor = close * (1 - 1e-12) - span
    if not floor > 0:
        return False
    limit = _crash_limits[0] if _crash_limits else None     # `_crash_limit`, inline
    if limit is None or limit[0] is not config.crash_move:
        return span < _crash_limit(config.crash_move) * floor
    return span < limit[1] * floor


def candles_key(candles: Sequence[Candle] | CandleHistory) -> CandlesKey:
    """Equal for the same closed candles: a CandleHistory's version (it changes with every
    candle added, a backfill included), else the last candle's open time."""
    if isinstance(candles, CandleHistory):
        return candles.version
    return candles[-1].open_time if len(candles) else None


def regime_of(candles: Sequence[Candle] | CandleHistory) -> Regime | None:
    """`read_regime(candles).regime`; from the history's float ranges when they decide it."""
    if isinstance(candles, CandleHistory):
        # `last_close > 0` only when the close is (a float keeps the Decimal's sign; a
        # positive close too small for a float reads 0.0 and goes to the exact reading)
        ranges = candles.ranges
        if candles.last_close > 0 and len(ranges) == min(len(candles) - 1, REGIME_RANGES):
            regime = classify_ranges(ranges)
            if regime is not None:
                return regime
        candles = candles.closed()
    reading = read_regime(candles)
    return reading.regime if reading is not None else None
