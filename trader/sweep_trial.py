"""One sweep trial: its parameters turned into Settings and a strategy (in the sweep's own
process, so a bad value stops the sweep before any work), then a full backtest (in a worker
process or a Ray task) summed up as a `TrialResult`.

Parameters are settings (`TRADEBOT_RISK_BASE` or `risk_base`; validated like the
environment, same bounds and messages) or `strategy.FIELD`, a field of the configured
strategy, which must be a dataclass like the default one (`strategy.channel`,
`strategy.sl_atr`, ...). Strategy values are converted to the field's type: Decimal from
the number as written (0.1 -> Decimal("0.1")), whole numbers for int fields, minutes for
timedelta fields.

Trials never touch the network or the operator's secrets: exchange, Telegram and heartbeat
settings are reset to their defaults before a trial's settings leave this process.
"""

import asyncio
import dataclasses
import difflib
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from trader.backtest import run_backtest
from trader.backtest_input import CandleSource
from trader.chart_style import thin_curve
from trader.config import ConfigError, Settings, env_name, load_settings
from trader.config_names import closest_setting
from trader.domain import Candle
from trader.market.replay import FundingSchedule
from trader.metrics import EquityPoint, Performance
from trader.report_chart import MAX_POINTS
from trader.run_settings import CONNECTION, NOT_IN_A_BACKTEST
from trader.strategy.base import Strategy, StrategyLoadError, load_strategy
from trader.strategy.bounds import bound_problem
from trader.sweep_spec import ParamValue, Span, SweepError, SweepSpec

STRATEGY_PREFIX = "strategy."
TIME_LIMIT = f"{STRATEGY_PREFIX}time_limit"    # minutes; capped by TRADEBOT_TIME_IN_TRADE_MINUTES
_NOT_SWEPT = NOT_IN_A_BACKTEST      # set by the backtest itself, or no part of one
# Reset to their defaults before settings are sent to a worker or a cluster.
_KEPT_HOME = CONNECTION - {"binance_testnet", "recv_window_ms", "alerts_silent", "alerts_off"}


@dataclass(frozen=True)
class BacktestData:
    """What every trial replays: candles by symbol (periods that overlap) and funding; the
    candles before --from that warm each symbol up (trader/backtest_warmup.py). A --data
    file's candles are its CandleFile, several files of a symbol their CandleSeries
    (streamed by every trial)."""
    candles: Mapping[str, list[Candle] | CandleSource]
    funding: dict[str, FundingSchedule] | None = None
    warmup: dict[str, list[Candle]] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialPlan:
    number: int                       # 1-based, in the order trials were planned
    params: dict[str, ParamValue]
    settings: Settings
    strategy: Strategy


@dataclass(frozen=True)
class TrialResult:
    number: int
    params: dict[str, ParamValue]
    performance: Performance | None   # None when the trial failed
    seconds: float = 0.0
    curve: list[EquityPoint] = field(default_factory=list)   # thinned to the chart's size
    error: str | None = None
    refused: bool = False             # the strategy refused its values together: never ran

    @property
    def ok(self) -> bool:
        return self.performance is not None

    @property
    def no_trade(self) -> bool:
        """Finished without a single trade: its flat curve scores a Sharpe of 0 and a 0 %
        drawdown, which would beat every trial that traded and lost, so it ranks after them."""
        return self.performance is not None and self.performance.trades == 0

    def objective(self, name: str) -> float | None:
        """The objective's value; a profit factor with no losing trade counts as infinite,
        a failed trial or one without trades has none."""
        if self.performance is None:
            return None
        value = getattr(self.performance, name)
        if value is None and name == "profit_factor" and self.performance.trades:
            return float("inf")
        return None if value is None else float(value)


def setting_field(name: str) -> str:
    """The Settings field a parameter name means (`TRADEBOT_RISK_BASE` or `risk_base`)."""
    lowered = name.lower()
    for field_name, info in Settings.model_fields.items():
        if lowered in (field_name, env_name(field_name, info).lower()):
            if field_name in _NOT_SWEPT or field_name in _KEPT_HOME:
                raise SweepError(f"{name} cannot be swept: the backtest sets it, or it does "
                                 "not change a backtest")
            return field_name
    known = {env_name(field_name, info) for field_name, info in Settings.model_fields.items()
             if field_name not in _NOT_SWEPT | _KEPT_HOME}
    close = closest_setting(name.upper(), known)
    if close:   # the closest name, as the environment check suggests it (trader/config.py)
        raise SweepError(f"unknown parameter {name!r}: did you mean {close}? (a setting, see "
                         ".env.example, or strategy.FIELD)")
    raise SweepError(f"unknown parameter {name!r}: use a setting (e.g. TRADEBOT_RISK_BASE, "
                     "see .env.example) or strategy.FIELD (e.g. strategy.channel)")


def capped_notes(spec: SweepSpec, base: Settings) -> list[str]:
    """A note for strategy.time_limit values past TRADEBOT_TIME_IN_TRADE_MINUTES, which act
    as the setting (trader/entry.py `time_limit_for`): their trials would repeat one another
    in silence. Not judged when the sweep varies the setting too."""
    values = spec.grid.get(TIME_LIMIT) or spec.search.get(TIME_LIMIT)
    if not values or any(setting_field(name) == "time_in_trade_minutes"
                         for name in spec.names if not name.startswith(STRATEGY_PREFIX)):
        return []
    cap = base.time_in_trade_minutes
    past = [value for value in (values.ends if isinstance(values, Span) else values)
            if isinstance(value, int | float) and value > cap]
    if not past:
        return []
    act = "act" if len(past) > 1 else "acts"
    return [f"{TIME_LIMIT}: {', '.join(str(value) for value in past)} {act} as {cap}, "
            "TRADEBOT_TIME_IN_TRADE_MINUTES (a strategy may shorten the time in trade, never "
            "lengthen it)"]


def one_name_per_setting(names: list[str]) -> None:
    """SweepError when two of `names` mean one setting (`leverage` and `TRADEBOT_LEVERAGE`):
    one of them would decide every trial while the other's column said otherwise."""
    meant: dict[str, str] = {}
    for name in names:
        if name.startswith(STRATEGY_PREFIX):
            continue
        field_name = setting_field(name)
        if field_name in meant:
            raise SweepError(f"{meant[field_name]} and {name} name one setting; give it once")
        meant[field_name] = name


class InvalidTrial(SweepError):
    """One trial's parameters cannot run; the message names the trial, `reason` does not."""

    def __init__(self, number: int, params: dict[str, ParamValue], reason: str) -> None:
        super().__init__(f"trial {number} ({describe(params)}): {reason}")
        self.reason = reason


def plan_trial(number: int, params: dict[str, ParamValue], base: Settings) -> TrialPlan:
    """Settings and strategy for one trial: `base` with `params` applied, validated.
    Raises InvalidTrial naming the trial and the bad parameter."""
    try:
        return _plan(number, params, base)
    except SweepError as exc:
        raise InvalidTrial(number, params, str(exc)) from None


def check_value(name: str, value: ParamValue, base: Settings) -> None:
    """SweepError unless `value` is a valid value for parameter `name` on its own (a
    setting's bounds, a strategy field's type); rules between several strategy fields are
    checked per trial, when the strategy is built."""
    if name.startswith(STRATEGY_PREFIX):
        _strategy_changes(_plan(0, {}, base).strategy,
                          {name.removeprefix(STRATEGY_PREFIX): value})
    else:
        _plan(0, {name: value}, base)


def whole_numbers(name: str, base: Settings) -> bool:
    """Whether parameter `name` takes whole numbers only (an int setting or strategy field;
    a time limit in minutes): how an optuna range over it is sampled. A range written
    "1..3" over a Decimal field is a range of reals, not of the integers 1, 2 and 3."""
    if name.startswith(STRATEGY_PREFIX):
        current = getattr(_plan(0, {}, base).strategy, name.removeprefix(STRATEGY_PREFIX))
    else:
        current = getattr(base, setting_field(name))
    return isinstance(current, int | timedelta) and not isinstance(current, bool)


def run_trial(plan: TrialPlan, data: BacktestData, scratch_root: Path | None = None) -> TrialResult:
    """The full backtest of one trial in a scratch directory (its database is thrown away)
    inside `scratch_root` (default: the system's temporary folder). Exceptions propagate:
    the runner records them as the trial's failure."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"tradebot-trial-{plan.number}-",
                                     dir=scratch_root) as scratch:
        report = asyncio.run(run_backtest(plan.settings, data.candles, Path(scratch),
                                          progress=False, funding=data.funding,
                                          strategy=plan.strategy, warmup=data.warmup))
    return TrialResult(plan.number, plan.params, report.performance,
                       time.perf_counter() - started, thin_curve(report.curve, MAX_POINTS))


def failed_trial(plan: TrialPlan, error: BaseException | str) -> TrialResult:
    """A trial that produced no result; `error` becomes one line for the table and CSV."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    first_line = next((line for line in text.splitlines() if line.strip()), text)
    return TrialResult(plan.number, plan.params, None, error=first_line.strip())


def describe(params: dict[str, ParamValue]) -> str:
    return " ".join(f"{name}={format_value(value)}" for name, value in params.items())


def format_value(value: ParamValue) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _plan(number: int, params: dict[str, ParamValue], base: Settings) -> TrialPlan:
    changed = {setting_field(name): value for name, value in params.items()
               if not name.startswith(STRATEGY_PREFIX)}
    settings = _trial_settings(base, changed)
    try:
        strategy = load_strategy(settings.strategy)
    except StrategyLoadError as exc:
        raise SweepError(str(exc)) from None
    strategy_values = {name.removeprefix(STRATEGY_PREFIX): value for name, value in params.items()
                       if name.startswith(STRATEGY_PREFIX)}
    return TrialPlan(number, dict(params), settings, _trial_strategy(strategy, strategy_values))


def _trial_settings(base: Settings, changed: dict[str, ParamValue]) -> Settings:
    values: dict[str, Any] = {name: getattr(base, name) for name in Settings.model_fields}
    kept_home = _KEPT_HOME | {name for name, value in values.items()
                              if isinstance(value, SecretStr)}   # any secret added later too
    values |= {name: Settings.model_fields[name].default for name in kept_home}
    values |= changed
    try:
        return load_settings(_env_file=None, **values)
    except ConfigError as exc:
        raise SweepError("; ".join(exc.problems)) from None


def _trial_strategy(strategy: Strategy, values: dict[str, ParamValue]) -> Strategy:
    if not values:
        return strategy
    try:   # the strategy's own rules (e.g. the window covers the slow EMA) run here
        # (ignore: `_strategy_changes` refuses a strategy that is no dataclass first)
        return dataclasses.replace(strategy,  # type: ignore[type-var]
                                   **_strategy_changes(strategy, values))
    except (TypeError, ValueError) as exc:
        raise SweepError(str(exc)) from None


def _strategy_changes(strategy: Strategy, values: dict[str, ParamValue]) -> dict[str, Any]:
    """Field -> value converted to the field's type; SweepError for a strategy that is not
    a dataclass, an unknown field or a value of the wrong kind."""
    if not dataclasses.is_dataclass(strategy) or isinstance(strategy, type):
        raise SweepError(f"the strategy {strategy.name!r} is not a dataclass, so "
                         "strategy.* parameters cannot be set on it")
    known = {item.name for item in dataclasses.fields(strategy) if item.init} - {"name"}
    unknown = sorted(set(values) - known)
    if unknown:
        guesses = [f"strategy.{close[0]}" for name in unknown
                   if (close := difflib.get_close_matches(name, known, n=1))]
        guess = f"did you mean {', '.join(guesses)}? " if guesses else ""
        raise SweepError(f"the strategy {strategy.name!r} has no field "
                         f"{', '.join(unknown)}; {guess}its fields: {', '.join(sorted(known))}")
    declared = {item.name: item for item in dataclasses.fields(strategy)}
    changes = {}
    for name, value in values.items():
        changes[name] = _as_type_of(getattr(strategy, name), value, f"strategy.{name}")
        problem = bound_problem(declared[name], changes[name])   # the strategy's own bounds
        if problem:
            raise SweepError(f"strategy.{name}={format_value(value)}: {problem}")
    return changes


def _as_type_of(current: Any, value: ParamValue, name: str) -> Any:
    """`value` converted to the type of the field's current value; SweepError if it cannot be."""
    converted = _converted(current, value)
    if converted is None:
        raise SweepError(f"{name}={value!r}: expected {type(current).__name__}, like {current!r}")
    return converted


def _converted(current: Any, value: ParamValue) -> Any:
    if isinstance(current, bool) or isinstance(value, bool):
        return value if isinstance(current, bool) and isinstance(value, bool) else None
    if isinstance(current, str):
        return str(value)
    if isinstance(value, str):
        return None
    if isinstance(current, int):
        return int(value) if float(value).is_integer() else None
    if isinstance(current, Decimal):
        return Decimal(str(value))
    if isinstance(current, float):
        return float(value)
    if isinstance(current, timedelta):
        return timedelta(minutes=value)
    return None
