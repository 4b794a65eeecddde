"""Deciding an entry: the strategy's signal on a closed candle (confirmed by the 5x higher
timeframe), the volatility regime, the trend, and risk sizing (trader/risk.py) give the
position to open, in ENTERING, with both protective legs already planned.

The desk decides once per closed candle per symbol (it remembers the last candle it was
asked about) and performs nothing: the engine sends the entry and feeds the result to the
state machine.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from loguru import logger

from trader.breakers import REGIME_RANGES, regime_of
from trader.correlation import Cluster, correlated_cluster
from trader.domain import Candle, OrderRole, Side, Signal, position_key
from trader.fast_init import fast_init
from trader.management import FirstTarget, with_exit_plan
from trader.market.history import CandleHistory
from trader.market.indicators import atr
from trader.position import Leg, Position, PositionState
from trader.regime_adjust import anchor, with_first_target
from trader.risk import EntryPlan, SignalDecision, SizingInput, decide, plan_entry
from trader.strategy.base import Strategy, aggregate, combine, signal_problem
from trader.strategy.regime import (
    DEFAULT_THRESHOLDS,
    FLOAT_MARGIN,
    Regime,
    RegimeAdjustment,
    RegimeReading,
    adjustment,
    is_trending,
    read_regime,
)
from trader.symbol_rules import SymbolRules

HIGHER_TIMEFRAME = 5      # the confirming timeframe, in trading candles (1m -> 5m)
HigherTimeframe = Callable[[], Sequence[Candle] | None]
MANUAL_ATR_PERIOD = 14
MANUAL_SL_ATR = Decimal("1.5")          # the default strategy's stop: 1.5 x ATR
MANUAL_SL_PCT = Decimal("0.01")         # without enough candles for an ATR


@fast_init          # one per entry looked at
@dataclass(frozen=True, slots=True)
class Account:
    """What sizing needs of the account, as last read from the exchange."""
    equity: Decimal
    free_margin: Decimal
    risk_fraction: Decimal
    # money at risk in the other positions, held or entering (trader/entry_sender.py
    # `account`: each at what it may hold, a working entry at its planned size)
    open_risk: Decimal
    positions: tuple[Position, ...] = ()   # those positions (correlated heat)


@dataclass(frozen=True, slots=True)
class EntryLimits:
    """The settings that bound an entry (trader/config.py)."""
    leverage: int
    max_heat: Decimal
    max_position_pct: Decimal
    time_in_trade: timedelta
    cooldown: timedelta
    correlation_threshold: Decimal = Decimal(1)   # 1 = correlation-aware heat off
    correlation_window: int = 100                 # closed candles of returns
    confidence_floor: Decimal | None = None       # confidence sizing: None = off
    first_target: FirstTarget | None = None    # the two-TP plan's TP1; None: one TP


@dataclass
class EntryRefusals:
    """Entry signals that did not become an entry, per symbol: how many, and the last reason
    (a risk or guard refusal, the higher timeframe disagreeing, no book to quote at). Read
    by the backtest report's notes ("every one of the 10 entry signals was refused: ...")."""
    count: dict[str, int] = field(default_factory=dict)
    last: dict[str, str] = field(default_factory=dict)

    def record(self, symbol: str, reason: str) -> None:
        self.count[symbol] = self.count.get(symbol, 0) + 1
        self.last[symbol] = reason


class EntryDesk:
    """See the module docstring. `strategy` is the plug-in (TRADEBOT_STRATEGY)."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self._asked: dict[str, datetime] = {}
        self.last_regime: dict[str, str] = {}
        self.refusals = EntryRefusals()
        # every symbol's closed candles (the engine's), for the correlation of positions
        self.history: Mapping[str, CandleHistory] = {}

    def new_candle(self, symbol: str, candles: Sequence[Candle]) -> bool:
        """True once per closed candle, when there is enough history to ask the strategy:
        `would_ask`, then the candle taken (inline, every candle: a CandleWindow's `len` and
        `[-1]` are calls, each read once here). The engine's candles (its history's window
        as the history is now: `closed()` hands out the same window until the history
        changes, and it only changes by `append`/`clear`, which drop that window) are read
        on the history itself, a deque whose `len` and `[-1]` are C: the same candles."""
        history = self.history.get(symbol)
        if type(history) is CandleHistory and history.closed() is candles:
            candles = history
        count = len(candles)
        if count == 0 or count < self.strategy.warmup:
            return False
        opened = candles[-1].open_time
        if self._asked.get(symbol) == opened:
            return False
        self._asked[symbol] = opened
        return True

    def would_ask(self, symbol: str, candles: Sequence[Candle]) -> bool:
        """What `new_candle` would answer now, without taking the candle."""
        return (len(candles) >= self.strategy.warmup and len(candles) > 0
                and self._asked.get(symbol) != candles[-1].open_time)

    def take(self, symbol: str, candles: Sequence[Candle]) -> None:
        """Take the last candle: what `new_candle` does once `would_ask(symbol, candles)`
        said True and nothing changed since (it would answer True; its tests not made
        twice: the engine's flat tick, every candle)."""
        self._asked[symbol] = candles[-1].open_time

    def signal(self, candles: Sequence[Candle],
               higher_timeframe: HigherTimeframe | None = None) -> Signal | None:
        """The trading timeframe's signal, unless the higher timeframe (5x) disagrees.
        `higher_timeframe`: gives `aggregate(candles, HIGHER_TIMEFRAME)` (or None) when the
        caller keeps it as candles close; asked only when the trading timeframe signals."""
        signal = self._ask(candles)
        if signal is None:
            return None
        higher = higher_timeframe() if higher_timeframe is not None else None
        if higher is None:
            higher = aggregate(candles, HIGHER_TIMEFRAME)
        if len(higher) < self.strategy.warmup:
            return signal
        combined = combine([signal, self._ask(higher)])
        if combined is None:
            logger.info("timeframes disagree, no entry symbol={}", candles[-1].symbol)
            self.refusals.record(candles[-1].symbol, "the higher timeframe (5x) disagreed")
        return combined

    def _ask(self, candles: Sequence[Candle], against: Side | None = None) -> Signal | None:
        """The strategy's answer (`against`: only a signal against that side is wanted).
        Raises TypeError naming the strategy when it is neither a Signal nor None (a
        plug-in returning "BUY" would otherwise fail far from its cause)."""
        strategy = self.strategy
        signal_against = None if against is None else getattr(strategy, "signal_against", None)
        answer = strategy.signal(candles) if signal_against is None \
            else signal_against(against, candles)
        if answer is None:
            return answer
        name = getattr(self.strategy, 'name', type(self.strategy).__name__)
        if not isinstance(answer, Signal):
            raise TypeError(f"strategy {name!r} returned {answer!r} ({type(answer).__name__}) "
                            "from signal(): it must return a trader.domain.Signal or None")
        problem = signal_problem(answer)
        if problem:
            raise ValueError(f"strategy {name!r} returned a Signal whose {problem}")
        return answer

    def says_close(self, position: Position, candles: Sequence[Candle]) -> bool:
        """An opposite signal closes an open position; it never flips it. A strategy with
        a `signal_against(side, closed)` (trader/strategy/base.py) is asked that: only an
        opposite signal matters here."""
        signal = self._ask(candles, against=position.side)
        if signal is None:
            return False        # most candles: `decide` holds without a signal
        decision, why = decide(position.side, signal)
        if decision is SignalDecision.CLOSE:
            logger.info("opposite signal closes symbol={} reason={}", position.symbol, why)
            return True
        return False

    def plan(self, symbol: str, signal: Signal, candles: Sequence[Candle], mark: Decimal,
             account: Account, rules: SymbolRules, limits: EntryLimits,
             now: datetime) -> Position | str:
        """The position to open (ENTERING, legs planned), or why not."""
        regime = self.regime_adjustment(symbol, candles)
        if regime is None:
            return "not enough candles for the volatility regime"
        self.last_regime[symbol] = regime.regime.value
        cluster = self.cluster(symbol, signal.side, candles, account, limits)
        result = plan_entry(SizingInput(
            symbol=symbol, side=signal.side, price=mark, equity=account.equity,
            free_margin=account.free_margin, risk_fraction=account.risk_fraction,
            signal=signal, regime=regime, rules=rules, leverage=limits.leverage,
            open_risk=account.open_risk, max_heat=limits.max_heat,
            max_position_pct=limits.max_position_pct,
            # a regime that refuses is risk._precheck's first refusal: the trend (~47,000
            # instructions) is never read then
            trending=regime.allow_entry and is_trending(candles),
            cluster_risk=cluster.risk, cluster_with=cluster.symbols,
            confidence_floor=limits.confidence_floor))
        if not isinstance(result, EntryPlan):
            return result.reason
        planned = with_exit_plan(entering_position(symbol, signal, result, mark,
                                                   candles[-1].open_time, now, limits,
                                                   regime.regime), limits.first_target, rules)
        return with_first_target(planned)      # TP1 follows the regime too

    def regime_adjustment(self, symbol: str, candles: Sequence[Candle]) -> RegimeAdjustment | None:
        """`adjustment(read_regime(candles))`, None without enough candles: how the regime
        of the last closed candle changes the entry.

        The exact reading (Decimal Wilder averages over the regime's window: ~40 % of a
        plan) is skipped when the candles are the engine's history (`history[symbol]
        .closed()`, the window it hands out until a candle arrives) and its float true
        ranges tell a NORMAL or HIGH regime (`regime_of`: read_regime's regime, the
        breakers' own reading, None where float cannot decide). For those two regimes the
        adjustment does not depend on the reading but in its `reason` text, which nothing
        reads while `allow_entry` is True (trader/risk.py `_precheck` reads it to refuse):
        `READING_FREE` holds their adjustments, equal to `adjustment`'s in every other
        field (tests/test_entry_regime_fast_path.py). LOW is told from the float ranges too
        where they decide it (`low_from_floats`: its ATR floor, and a refusal's figures as
        the reason shows them). EXTREME (refused, the reason shows its figures) and
        anything float does not decide take the exact reading (~680,000 instructions, most
        of a refused entry's cost)."""
        history = self.history.get(symbol)
        if isinstance(history, CandleHistory) and history.closed() is candles:
            regime = regime_of(history)
            free = READING_FREE.get(regime)
            if free is not None:
                return free
            if regime is _LOW:
                low = low_from_floats(history)
                if low is not None:
                    return low
        reading = read_regime(candles)
        return adjustment(reading) if reading is not None else None


    def cluster(self, symbol: str, side: Side, candles: Sequence[Candle], account: Account,
                limits: EntryLimits) -> Cluster:
        """The open positions that are one bet with this entry (trader/correlation.py)."""
        if limits.correlation_threshold >= 1 or not account.positions:
            return Cluster()
        closed = {name: history.closed() for name, history in self.history.items()
                  if any(p.symbol == name for p in account.positions)}
        return correlated_cluster(symbol, side, account.positions, {**closed, symbol: candles},
                                  limits.correlation_threshold, limits.correlation_window)


def _reading_free(regime: Regime) -> RegimeAdjustment:
    """`adjustment` in `regime` (NORMAL or HIGH: allowed, its multipliers fixed), with a
    reason that names no volatility ratio (never read: `EntryDesk.regime_adjustment`)."""
    stand_in = RegimeReading(regime, Decimal(0), Decimal(0), Decimal(0), Decimal(0))
    return replace(adjustment(stand_in), reason=f"{regime.value} volatility")


# (keyed by `Regime | None`: looked up with a reading that may be None, found nowhere)
READING_FREE: dict[Regime | None, RegimeAdjustment] = {
    regime: _reading_free(regime) for regime in (Regime.NORMAL, Regime.HIGH)}
_LOW = Regime.LOW
_LOW_READING = RegimeReading(_LOW, Decimal(0), Decimal(0), Decimal(0), Decimal(1))
# `adjustment` of a LOW reading whose ATR% passes the floor (the stand-in's 1 does), with a
# reason that names no figure (never read while the entry is allowed)
LOW_FREE = replace(adjustment(_LOW_READING), reason="LOW volatility")
_FLOOR = float(DEFAULT_THRESHOLDS.min_atr_pct)


def low_from_floats(history: CandleHistory) -> RegimeAdjustment | None:
    """`adjustment(read_regime(history.closed()))` in a LOW regime (`regime_of` told it),
    from the history's float ranges when they are the reading's window (as `regime_of`
    requires to read them) and decide it; None when they do not (the exact reading does).

    The reading's ATR% is the fast Wilder average / the last close, VR the fast average /
    the slow one; their floats stay within ~1e-13 relative of the exact figures
    (trader/strategy/regime.py `RangeWindow`), far inside FLOAT_MARGIN. An ATR% above the
    floor by more than the margin: allowed (`LOW_FREE`). Below it by more: refused, and the
    reason shows VR to 2 places and ATR% to 3 (`_shown`: the text both ends of the margin
    round to, so the exact figure's too), given to `adjustment` as a stand-in reading with
    those very figures: the same adjustment, reason and all."""
    ranges, close = history.ranges, history.last_close
    if not close > 0 or len(ranges) != min(len(history) - 1, REGIME_RANGES):
        return None
    fast = ranges.wilder(DEFAULT_THRESHOLDS.fast)
    vr = ranges.ratio(DEFAULT_THRESHOLDS.fast, DEFAULT_THRESHOLDS.slow)
    if fast is None or vr is None:
        return None
    atr_pct = fast / close
    if atr_pct > _FLOOR * (1 + FLOAT_MARGIN):
        return LOW_FREE
    if not atr_pct < _FLOOR * (1 - FLOAT_MARGIN):
        return None
    vr_text, pct_text = _shown(vr, ".2f"), _shown(atr_pct, ".3%")
    if vr_text is None or pct_text is None:
        return None
    shown_pct = Decimal(pct_text[:-1]) / 100       # "0.153%" -> 0.00153: it shows so
    if not shown_pct < DEFAULT_THRESHOLDS.min_atr_pct:
        return None     # rounds up onto the floor: the stand-in would pass it
    return adjustment(replace(_LOW_READING, vr=Decimal(vr_text), atr_pct=shown_pct))


def _shown(value: float, spec: str) -> str | None:
    """How a Decimal within FLOAT_MARGIN of `value` (> 0) is formatted with `spec`, when
    every one is formatted alike (rounding is monotone: both ends of the margin agree);
    None when the margin straddles a rounding boundary."""
    low = format(Decimal(value * (1 - FLOAT_MARGIN)), spec)
    return low if low == format(Decimal(value * (1 + FLOAT_MARGIN)), spec) else None


def entering_position(symbol: str, signal: Signal, plan: EntryPlan, mark: Decimal,
                      candle_time: datetime, now: datetime, limits: EntryLimits,
                      regime: Regime | None = None) -> Position:
    """The record of an entry about to be sent: the key from the entry candle (the same
    signal on the same candle always names the same client ids). `regime`: the one its legs
    were planned in (they follow its changes: trader/regime_adjust.py)."""
    return Position(
        symbol=symbol, key=position_key(candle_time), side=signal.side,
        state=PositionState.ENTERING, quantity=plan.quantity, entry_price=mark,
        leverage=limits.leverage, opened_at=now,
        stop=Leg(OrderRole.STOP_LOSS, plan.stop_trigger),
        take_profit=Leg(OrderRole.TAKE_PROFIT, plan.take_profit_trigger),
        initial_quantity=plan.quantity, initial_stop_price=plan.stop_trigger,
        risk_budget=plan.risk_amount, time_limit=time_limit_for(signal, limits.time_in_trade),
        cooldown=max(signal.cooldown, limits.cooldown),
        trail_activation=signal.trail_activation,
        regime=None if regime is None else anchor(regime, plan.stop_trigger,
                                                  plan.take_profit_trigger))


def time_limit_for(signal: Signal, setting: timedelta) -> timedelta:
    """How long the position may stay open: the operator's TRADEBOT_TIME_IN_TRADE_MINUTES
    (20..60), unless the strategy explicitly asks for a shorter stay (`Signal.time_limit`);
    a strategy never makes it longer than the setting."""
    if signal.time_limit is None:
        return setting
    return min(signal.time_limit, setting)


def manual_signal(side: Side, candles: Sequence[Candle], reason: str) -> Signal:
    """The signal behind an operator's /long or /short: a stop 1.5 x ATR(14) away (1 %
    without the candles), the target left to the reward/risk rule; trader/risk.py clamps
    and sizes it exactly like a strategy's signal."""
    average_range = atr(candles[-(MANUAL_ATR_PERIOD * 3):], MANUAL_ATR_PERIOD)
    close = candles[-1].close if candles else Decimal(0)
    sl_pct = MANUAL_SL_ATR * average_range / close \
        if average_range is not None and average_range > 0 and close > 0 else MANUAL_SL_PCT
    return Signal(side=side, confidence=1.0, tp_pct=Decimal(0), sl_pct=sl_pct, reason=reason)
