"""What a sweep explores: parameters with a list of values (a grid: every combination runs)
or with ranges (an optuna study), the objective that ranks the trials, and how many equity
pictures to draw. Read from a TOML file and/or `tradebot sweep` options.

    objective = "sharpe"              # see OBJECTIVES; max_drawdown_pct ranks low first
    top = 3                           # equity pictures of the best trials

    [grid]                            # 3 x 2 x 4 = 24 trials
    "strategy.channel" = [20, 30, 40]
    "strategy.reward_risk" = [1.5, 2.5]
    TRADEBOT_RISK_BASE = [0.01, 0.015, 0.02, 0.025]

    # or, instead of [grid]:
    [optuna]
    trials = 24
    seed = 7                          # same seed and --workers -> the same trials
    [optuna.params]
    "strategy.channel" = { low = 10, high = 60, step = 5 }     # integers: all three are
    "strategy.sl_atr" = { low = 0.8, high = 3.0 }
    TRADEBOT_RISK_BASE = { low = 0.005, high = 0.03, log = true }
    TRADEBOT_LEVERAGE = [3, 5, 10]    # a list: one of these

Parameter names: a setting by its environment or field name (`TRADEBOT_RISK_BASE`,
`risk_base`), or `strategy.FIELD` for a field of the strategy (trader/sweep_trial.py).
"""

import itertools
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeGuard

from trader.display import plural

ParamValue = int | float | bool | str

# Performance field -> True when higher is better.
OBJECTIVES: dict[str, bool] = {
    "sharpe": True, "sortino": True, "net_pnl": True, "return_pct": True,
    "profit_factor": True, "win_rate": True, "avg_trade": True, "calmar": True, "sqn": True,
    "max_drawdown_pct": False,
}
# Performance field -> how the progress line shows it (trader/metrics.py gives the units:
# win_rate a fraction, *_pct in percent, PnL in USDT; the ratios read to two decimals).
OBJECTIVE_FORMATS: dict[str, str] = {
    "sharpe": "{:.2f}", "sortino": "{:.2f}", "calmar": "{:.2f}", "sqn": "{:.2f}",
    "profit_factor": "{:.2f}", "win_rate": "{:.1%}", "net_pnl": "{:+,.2f} USDT",
    "avg_trade": "{:+,.2f} USDT", "return_pct": "{:+.2f}%", "max_drawdown_pct": "{:.2f}%",
}
DEFAULT_TRIALS = 20


def objective_text(name: str, value: float) -> str:
    """`value` of the objective `name` in its unit's digits: "1.23", "52.9%", "-9.80 USDT"."""
    return OBJECTIVE_FORMATS[name].format(value)


class SweepError(Exception):
    """A sweep that cannot run as asked; the message says what to change."""


@dataclass(frozen=True)
class Span:
    """An optuna range. Integers when low, high and step all are; `log` samples evenly on a
    log scale (optuna does not combine it with a step)."""
    low: int | float
    high: int | float
    step: int | float | None = None
    log: bool = False

    @property
    def integer(self) -> bool:
        return all(isinstance(v, int) and not isinstance(v, bool)
                   for v in (self.low, self.high, self.step or 1))

    @property
    def ends(self) -> tuple[ParamValue, ParamValue]:
        return self.low, self.high


SearchSpace = Span | tuple[ParamValue, ...]


@dataclass(frozen=True)
class SweepSpec:
    grid: dict[str, tuple[ParamValue, ...]] = field(default_factory=dict)
    search: dict[str, SearchSpace] = field(default_factory=dict)
    trials: int = DEFAULT_TRIALS      # optuna trials (a grid runs every combination)
    seed: int | None = None           # optuna sampler seed; None = a fresh one each run
    objective: str = "sharpe"
    top: int = 3

    @property
    def mode(self) -> str:
        return "grid" if self.grid else "optuna"

    @property
    def names(self) -> list[str]:
        return list(self.grid or self.search)

    @property
    def trial_count(self) -> int:
        if self.grid:
            count = 1
            for values in self.grid.values():
                count *= len(values)
            return count
        return self.trials

    @property
    def higher_is_better(self) -> bool:
        return OBJECTIVES[self.objective]

    def grid_points(self) -> list[dict[str, ParamValue]]:
        """Every combination of the grid's values, the last parameter varying fastest."""
        names = list(self.grid)
        return [dict(zip(names, values, strict=True))
                for values in itertools.product(*self.grid.values())]

    def without_repeats(self) -> tuple["SweepSpec", list[str]]:
        """This spec with each value listed once per parameter (a repeated grid value would
        run the same trials again), and one note per parameter that repeated any, e.g.
        "strategy.channel: 20 repeated; each value runs once (2 values, not 3)"."""
        notes: list[str] = []
        grid = {name: _distinct(name, values, notes) for name, values in self.grid.items()}
        search = {name: space if isinstance(space, Span) else _distinct(name, space, notes)
                  for name, space in self.search.items()}
        return replace(self, grid=grid, search=search), notes

    def checked(self) -> "SweepSpec":
        """This spec, or SweepError naming what is missing or contradictory."""
        if self.grid and self.search:
            raise SweepError("give either a grid (--grid, [grid]) or an optuna search "
                             "(--search, [optuna]), not both")
        if not self.grid and not self.search:
            raise SweepError("nothing to sweep: give --grid NAME=V1,V2 or --search "
                             "NAME=LOW..HIGH, or a spec file (see README, 'Parameter sweeps')")
        if self.objective not in OBJECTIVES:
            raise SweepError(f"unknown objective {self.objective!r}: one of "
                             f"{', '.join(OBJECTIVES)}")
        for name, values in self.grid.items():
            if not values:
                raise SweepError(f"{name}: the grid needs at least one value")
        for name, space in self.search.items():
            if isinstance(space, Span) and not space.low < space.high:
                raise SweepError(f"{name}: the range needs low < high (got {space.low}..{space.high})")
            if isinstance(space, Span) and space.log and (space.step or space.low <= 0):
                raise SweepError(f"{name}: a log range needs low > 0 and no step")
        if self.trials < 1:
            raise SweepError(f"trials {self.trials}: an optuna study needs at least 1")
        if self.top < 0:
            raise SweepError(f"top {self.top}: the equity pictures of the best trials, 0 or more")
        return self


def read_spec_file(path: Path) -> SweepSpec:
    """A SweepSpec from a TOML file (format in the module docstring); SweepError on bad
    content, naming the file."""
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SweepError(f"{path}: {exc}") from None
    unknown = set(document) - {"objective", "top", "grid", "optuna"}
    optuna = document.get("optuna", {})
    unknown |= {f"optuna.{key}" for key in set(optuna) - {"trials", "seed", "params"}}
    if unknown:
        raise SweepError(f"{path}: unknown keys {', '.join(sorted(unknown))} (expected "
                         "objective, top, [grid], [optuna] with trials, seed, [optuna.params])")
    try:
        grid = {name: _value_list(name, values) for name, values in document.get("grid", {}).items()}
        search = {name: _search_space(name, space)
                  for name, space in optuna.get("params", {}).items()}
    except SweepError as exc:
        raise SweepError(f"{path}: {exc}") from None
    return SweepSpec(grid=grid, search=search, trials=optuna.get("trials", DEFAULT_TRIALS),
                     seed=optuna.get("seed"), objective=document.get("objective", "sharpe"),
                     top=document.get("top", 3))


def with_options(spec: SweepSpec, *, grid: list[str], search: list[str],
                 **scalars: Any) -> SweepSpec:
    """`spec` with command-line options on top: `grid` items like "NAME=V1,V2,V3" (values
    add to the file's or an earlier option's for that name),
    `search` items like "NAME=LOW..HIGH", "NAME=LOW..HIGH:STEP", "NAME=LOW..HIGH:log" or
    "NAME=V1,V2"; scalars (trials, seed, objective, top) that are None are left alone."""
    grid_values = dict(spec.grid)
    for item in grid:         # a name given again adds its values (the file's, or an option's)
        name, text = _split_option(item, "--grid")
        grid_values[name] = grid_values.get(name, ()) + tuple(
            parse_value(part) for part in _parts(name, text))
    search_spaces = dict(spec.search)
    for item in search:
        name, text = _split_option(item, "--search")
        if name in search_spaces:
            raise SweepError(f"{name}: given twice (--search, or --search and the spec file); "
                             "give one range or one list")
        search_spaces[name] = _range_text(name, text) if ".." in text else \
            tuple(parse_value(part) for part in _parts(name, text))
    given = {key: value for key, value in scalars.items() if value is not None}
    return replace(spec, grid=grid_values, search=search_spaces, **given)


def parse_value(text: str) -> ParamValue:
    """An option's word as the value it spells: 20 -> int, 0.5 -> float, true -> bool,
    anything else stays text (e.g. a strategy reference)."""
    word = text.strip()
    if word.lower() in ("true", "false"):
        return word.lower() == "true"
    for kind in (int, float):
        try:
            return kind(word)
        except ValueError:
            continue
    return word


def _split_option(item: str, option: str) -> tuple[str, str]:
    name, equals, text = item.partition("=")
    if not equals or not name.strip() or not text.strip():
        raise SweepError(f"{option} {item!r}: expected NAME=VALUES, e.g. {option} "
                         "strategy.channel=20,30,40")
    return name.strip(), text.strip()


def _parts(name: str, text: str) -> list[str]:
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise SweepError(f"{name}: no values")
    return parts


def _range_text(name: str, text: str) -> Span:
    bounds, _, option = text.partition(":")
    low_text, _, high_text = bounds.partition("..")
    low, high = parse_value(low_text), parse_value(high_text)
    if not _is_number(low) or not _is_number(high):
        raise SweepError(f"{name}={text}: expected LOW..HIGH[:STEP|:log], e.g. 0.005..0.03:log")
    if option.strip().lower() == "log":
        return Span(low, high, log=True)
    step = parse_value(option) if option else None
    if step is not None and not _is_number(step):
        raise SweepError(f"{name}={text}: the step {option!r} is not a number")
    return Span(low, high, step)


def _value_list(name: str, values: Any) -> tuple[ParamValue, ...]:
    if not isinstance(values, list) or not all(_is_scalar(v) for v in values):
        raise SweepError(f"grid.{name}: expected a list of values, e.g. [20, 30, 40]")
    return tuple(values)


def _search_space(name: str, space: Any) -> SearchSpace:
    if isinstance(space, list):
        return _value_list(name, space)
    if isinstance(space, dict) and {"low", "high"} <= set(space) <= {"low", "high", "step", "log"}:
        if all(_is_number(space.get(key, 1)) for key in ("low", "high", "step")):
            return Span(space["low"], space["high"], space.get("step"), bool(space.get("log")))
    raise SweepError(f"optuna.params.{name}: expected {{ low = .., high = .. }} with optional "
                     "step or log = true, or a list of values")


def _distinct(name: str, values: tuple[ParamValue, ...],
              notes: list[str]) -> tuple[ParamValue, ...]:
    """`values` in their order, each once (1.5 and 1.50 are one value; True and 1 two)."""
    first: dict[tuple[bool, ParamValue], ParamValue] = {}
    repeated: dict[tuple[bool, ParamValue], ParamValue] = {}
    for value in values:
        key = (isinstance(value, bool), value)
        if key in first:
            repeated.setdefault(key, first[key])
        else:
            first[key] = value
    if repeated:
        shown = ", ".join(str(value) for value in repeated.values())
        notes.append(f"{name}: {shown} repeated; each value runs once "
                     f"({plural(len(first), 'value')}, not {len(values)})")
    return tuple(first.values())


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, int | float | bool | str)
