"""The strategy interface users implement, and how signals of several timeframes combine.

A strategy is anything with a `name`, a `warmup` (closed candles it needs) and a pure
`signal(closed)` that returns a `Signal` or None. It never sees open candles, positions
or the exchange: sizing, regime and risk are applied after it by the engine.

    class MyStrategy:
        name = "my-rule"
        warmup = 50

        def signal(self, closed: Sequence[Candle]) -> Signal | None:
            ...

Optional: `signal_against(side, closed)`, what `signal(closed)` answers when that is a
signal of the other side than `side`, else None. An open position asks it on each closed
candle (only an opposite signal closes it: trader/entry.py `says_close`), so a strategy can
skip the work of its own side's signal there; without it, `signal` is asked.
"""

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from trader.domain import ZERO, Candle, Side, Signal

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@runtime_checkable
class Strategy(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def warmup(self) -> int: ...      # closed candles needed before signals

    def signal(self, closed: Sequence[Candle]) -> Signal | None: ...


def combine(signals: Sequence[Signal | None]) -> Signal | None:
    """One signal from several timeframes, or None when they conflict.

    Timeframes without a signal abstain. All present signals must agree on the side (a
    1m BUY against a 5m SELL is a conflict: no entry). The first present signal wins
    (callers list the trading timeframe first) with the lowest confidence of the group.
    """
    present = [signal for signal in signals if signal is not None]
    if not present:
        return None
    if any(signal.side is not present[0].side for signal in present[1:]):
        return None
    if len(present) == 1:
        return present[0]
    confidence = min(signal.confidence for signal in present)
    reason = " + ".join(signal.reason for signal in present if signal.reason)
    return replace(present[0], confidence=confidence, reason=reason)


def aggregate(closed: Sequence[Candle], factor: int) -> list[Candle]:
    """Closed candles of a higher timeframe (factor x the interval), aligned on its grid;
    a trailing incomplete group is left out."""
    if factor <= 1 or not closed:
        return list(closed)
    step = closed[0].interval * factor
    groups: dict[int, list[Candle]] = {}   # by the number of whole steps since the epoch
    for candle in closed:
        groups.setdefault((candle.open_time - EPOCH) // step, []).append(candle)
    return [Candle(rows[0].symbol, EPOCH + step * number, step, rows[0].open,
                   max(c.high for c in rows), min(c.low for c in rows), rows[-1].close,
                   sum((c.volume for c in rows), ZERO))
            for number, rows in sorted(groups.items()) if len(rows) == factor]


class StrategyLoadError(Exception):
    """TRADEBOT_STRATEGY names something that is not a usable strategy."""


def load_strategy(reference: str) -> Strategy:
    """Build the configured strategy: "default" or "package.module:ClassName"."""
    import importlib

    if reference == "default":
        from trader.strategy.default import DefaultStrategy
        return DefaultStrategy()
    module_name, _, class_name = reference.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise StrategyLoadError(f"TRADEBOT_STRATEGY={reference}: cannot import it ({exc})") from exc
    except Exception as exc:  # the user's module failed as it ran: name it, not a traceback
        raise StrategyLoadError(f"TRADEBOT_STRATEGY={reference}: its module failed to load: "
                                f"{_described(exc)}") from exc
    try:
        strategy = factory()
    except Exception as exc:  # e.g. an __init__ that needs arguments: we pass none
        raise StrategyLoadError(f"TRADEBOT_STRATEGY={reference}: could not be created with no "
                                f"arguments: {_described(exc)}") from exc
    if not isinstance(strategy, Strategy):
        raise StrategyLoadError(f"TRADEBOT_STRATEGY={reference}: needs name, warmup and "
                                "signal(closed_candles) -> Signal | None")
    warmup = strategy.warmup
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise StrategyLoadError(f"TRADEBOT_STRATEGY={reference}: warmup must be a whole number "
                                f"of candles, 0 or more (it is {warmup!r})")
    return strategy


def _described(exc: Exception) -> str:
    """"SyntaxError: invalid syntax (mystrategies/bad.py, line 3)" or "TypeError: ..."."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({exc.filename}, line {exc.lineno})"
    return f"{type(exc).__name__}: {exc}"


def signal_problem(signal: Signal) -> str:
    """What is wrong with a strategy's Signal ("" when nothing): the fields the sizing and
    the exchange rules compute with must be of their kind (trader/domain.py `Signal`):
    `side` a Side, `tp_pct` and `sl_pct` Decimals of 0 or more (fractions: 0.004 = 0.4 %; a
    `tp_pct` of 0 leaves the target to the reward/risk rule), `confidence` a number."""
    if not isinstance(signal.side, Side):
        return f"side must be Side.BUY or Side.SELL, not {signal.side!r}"
    for name in ("tp_pct", "sl_pct"):
        value = getattr(signal, name)
        if not isinstance(value, Decimal):
            return (f"{name} must be a Decimal (a fraction: Decimal(\"0.004\") = 0.4 %), not "
                    f"{value!r} ({type(value).__name__})")
        if not value.is_finite() or value < 0:
            return f"{name} must be 0 or more, not {value}"
    if not isinstance(signal.confidence, (int, float, Decimal)) \
            or isinstance(signal.confidence, bool):
        return f"confidence must be a number from 0 to 1, not {signal.confidence!r}"
    return ""
