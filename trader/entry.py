"""Deciding an entry: the strategy's signal on a closed candle (confirmed by the 5x higher
timeframe), the volatility regime, the trend, and risk sizing (trader/risk.py) give the
position to open, in ENTERING, with both protective legs already planned.

The desk decides once per closed candle per symbol (it remembers the last candle it was
asked about) and performs nothing: the engine sends the entry and feeds the result to the
state machine.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from loguru import logger

from trader.domain import Candle, OrderRole, Signal, SymbolRules, position_key
from trader.position import Leg, Position, PositionState
from trader.risk import EntryPlan, SignalDecision, SizingInput, decide, plan_entry
from trader.strategy.base import Strategy, aggregate, combine
from trader.strategy.regime import adjustment, is_trending, read_regime

HIGHER_TIMEFRAME = 5      # the confirming timeframe, in trading candles (1m -> 5m)


@dataclass(frozen=True, slots=True)
class Account:
    """What sizing needs of the account, as last read from the exchange."""
    equity: Decimal
    free_margin: Decimal
    risk_fraction: Decimal
    open_risk: Decimal                # money at risk in the other open positions


@dataclass(frozen=True, slots=True)
class EntryLimits:
    """The settings that bound an entry (trader/config.py)."""
    leverage: int
    max_heat: Decimal
    max_position_pct: Decimal
    time_in_trade: timedelta
    cooldown: timedelta


class EntryDesk:
    """See the module docstring. `strategy` is the plug-in (TRADEBOT_STRATEGY)."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self._asked: dict[str, datetime] = {}
        self.last_regime: dict[str, str] = {}

    def new_candle(self, symbol: str, candles: Sequence[Candle]) -> bool:
        """True once per closed candle, when there is enough history to ask the strategy."""
        if len(candles) < self.strategy.warmup or not candles:
            return False
        last = candles[-1].open_time
        if self._asked.get(symbol) == last:
            return False
        self._asked[symbol] = last
        return True

    def signal(self, candles: Sequence[Candle]) -> Signal | None:
        """The trading timeframe's signal, unless the higher timeframe (5x) disagrees."""
        signal = self.strategy.signal(candles)
        if signal is None:
            return None
        higher = aggregate(candles, HIGHER_TIMEFRAME)
        if len(higher) < self.strategy.warmup:
            return signal
        combined = combine([signal, self.strategy.signal(higher)])
        if combined is None:
            logger.info("timeframes disagree, no entry symbol={}", candles[-1].symbol)
        return combined

    def says_close(self, position: Position, candles: Sequence[Candle]) -> bool:
        """An opposite signal closes an open position; it never flips it."""
        decision, why = decide(position.side, self.strategy.signal(candles))
        if decision is SignalDecision.CLOSE:
            logger.info("opposite signal closes symbol={} reason={}", position.symbol, why)
            return True
        return False

    def plan(self, symbol: str, signal: Signal, candles: Sequence[Candle], mark: Decimal,
             account: Account, rules: SymbolRules, limits: EntryLimits,
             now: datetime) -> Position | str:
        """The position to open (ENTERING, legs planned), or why not."""
        reading = read_regime(candles)
        if reading is None:
            return "not enough candles for the volatility regime"
        self.last_regime[symbol] = reading.regime.value
        result = plan_entry(SizingInput(
            symbol=symbol, side=signal.side, price=mark, equity=account.equity,
            free_margin=account.free_margin, risk_fraction=account.risk_fraction,
            signal=signal, regime=adjustment(reading), rules=rules, leverage=limits.leverage,
            open_risk=account.open_risk, max_heat=limits.max_heat,
            max_position_pct=limits.max_position_pct, trending=is_trending(candles)))
        if not isinstance(result, EntryPlan):
            return result.reason
        return entering_position(symbol, signal, result, mark, candles[-1].open_time, now,
                                 limits)


def entering_position(symbol: str, signal: Signal, plan: EntryPlan, mark: Decimal,
                      candle_time: datetime, now: datetime, limits: EntryLimits) -> Position:
    """The record of an entry about to be sent: the key from the entry candle (the same
    signal on the same candle always names the same client ids)."""
    return Position(
        symbol=symbol, key=position_key(candle_time), side=signal.side,
        state=PositionState.ENTERING, quantity=plan.quantity, entry_price=mark,
        leverage=limits.leverage, opened_at=now,
        stop=Leg(OrderRole.STOP_LOSS, plan.stop_trigger),
        take_profit=Leg(OrderRole.TAKE_PROFIT, plan.take_profit_trigger),
        initial_quantity=plan.quantity, initial_stop_price=plan.stop_trigger,
        time_limit=min(signal.time_limit, limits.time_in_trade),
        cooldown=max(signal.cooldown, limits.cooldown),
        trail_activation=signal.trail_activation)
