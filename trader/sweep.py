"""`tradebot sweep`: many full backtests over a grid or an optuna study of strategy and risk
settings, ranked by an objective.

    sweep = Sweep(spec, settings)            # validates every parameter before any work
    board = sweep.leaderboard()
    with make_runner(data, workers=None, log_level="ERROR") as runner:
        sweep.run(runner, board)             # progress with ETA on stderr (sweep_progress.py)
    board.ranked()                           # best first; no-trade, then failed ones last

An exception out of `run` (e.g. SweepInterrupted on Ctrl-C) leaves the trials finished so
far in `board`.

A grid plans every combination up front (a bad value stops the sweep before the first
trial); an optuna study plans its ranges' ends the same way, so an end the strategy refuses
whatever the other parameters (a channel past the window) stops it too. An optuna study
asks for as many trials as the runner runs at once, runs them, and tells optuna their
results in trial order, so the same seed and the same number of workers give the same
trials; a trial without a trade, or refused by the strategy, is told to optuna as pruned. Spec format: trader/sweep_spec.py; the trial: trader/sweep_trial.py;
where trials run: trader/sweep_runners.py; the table, CSV and pictures: trader/sweep_report.py.
"""

import dataclasses
import itertools
import math
from collections.abc import Iterator
from typing import Any

from trader.config import Settings
from trader.metrics import EquityPoint
from trader.sweep_progress import sweep_progress
from trader.sweep_runners import TrialRunner
from trader.sweep_spec import (
    ParamValue,
    SearchSpace,
    Span,
    SweepError,
    SweepSpec,
    objective_text,
)
from trader.sweep_trial import (
    InvalidTrial,
    TrialPlan,
    TrialResult,
    check_value,
    format_value,
    one_name_per_setting,
    plan_trial,
    whole_numbers,
)


class Leaderboard:
    """Every trial's result, best first by the objective. Keeps the equity curves of the
    best `pictures` trials only, so memory does not grow with the number of trials."""

    def __init__(self, objective: str, higher_is_better: bool, pictures: int) -> None:
        self.objective = objective
        self._sign = -1.0 if higher_is_better else 1.0
        self._pictures = pictures
        self._results: dict[int, TrialResult] = {}
        self._curves: dict[int, list[EquityPoint]] = {}

    def add(self, result: TrialResult) -> None:
        self._results[result.number] = dataclasses.replace(result, curve=[])
        if result.ok and not result.no_trade and self._pictures:   # a flat line shows nothing
            self._curves[result.number] = result.curve
            if len(self._curves) > self._pictures:
                worst = max(self._curves, key=lambda number: self.rank_key(self._results[number]))
                del self._curves[worst]

    def rank_key(self, result: TrialResult) -> tuple[int, float, int]:
        """Trials that traded with a value by the objective, then those that traded without
        one (e.g. calmar on less than its 7 days), then those that made no trade whatever
        their value (a flat line is no setting to pick), then failed ones; ties by number."""
        if not result.ok:
            return 3, 0.0, result.number
        if result.no_trade:
            return 2, 0.0, result.number
        value = result.objective(self.objective)
        if value is None or math.isnan(value):
            return 1, 0.0, result.number
        return 0, self._sign * value, result.number

    def without_value(self) -> bool:
        """Trials traded, yet none has a value by the objective: the order is by number."""
        traded = [result for result in self._results.values() if result.ok and not result.no_trade]
        return bool(traded) and all(self.rank_key(result)[0] == 1 for result in traded)

    def __len__(self) -> int:
        """Trials finished (failed ones too)."""
        return len(self._results)

    def ranked(self) -> list[TrialResult]:
        return sorted(self._results.values(), key=self.rank_key)

    def best(self) -> TrialResult | None:
        ranked = self.ranked()
        return ranked[0] if ranked and ranked[0].ok else None

    def curve(self, number: int) -> list[EquityPoint]:
        """The equity curve of one of the best `pictures` trials (empty for any other)."""
        return self._curves.get(number, [])

    def progress_text(self) -> str:
        best = self.best()
        failed = sum(1 for result in self._results.values() if not result.ok)
        if best is None:
            text = ""
        elif best.no_trade:
            text = "no trade yet"
        elif (value := best.objective(self.objective)) is None:
            text = f"no {self.objective} yet"
        else:
            text = f"best {self.objective} {objective_text(self.objective, value)} (trial {best.number})"
        return f"{text}, {failed} failed" if failed else text


class Sweep:
    """A validated sweep: `Sweep(spec, base)` raises SweepError for any bad parameter, value
    or range (and when optuna is needed but not installed), before anything runs. A value
    listed twice for a parameter runs once (`SweepSpec.without_repeats` says so in words)."""

    def __init__(self, spec: SweepSpec, base: Settings) -> None:
        self.spec = spec = spec.without_repeats()[0].checked()
        one_name_per_setting(spec.names)
        self.base = base
        self._grid_plans: list[TrialPlan] = []
        self._optuna: Any = None
        # Each value on its own first (named without a trial: it is wrong in every one);
        # an optuna range at both ends, and the rules between fields per planned trial.
        for name, values in (spec.grid or spec.search).items():
            for value in (values.ends if isinstance(values, Span) else values):
                check_value(name, value, base)
        if spec.mode == "grid":
            self._grid_plans = [plan_trial(number, params, base)
                                for number, params in enumerate(spec.grid_points(), start=1)]
        else:
            self._optuna = import_optuna()
            refuse_dead_ends(spec.search, base)
            self.spec = spec = dataclasses.replace(spec, search={
                name: _sampled_as(space, whole_numbers(name, base))
                for name, space in spec.search.items()})

    def leaderboard(self) -> Leaderboard:
        return Leaderboard(self.spec.objective, self.spec.higher_is_better, self.spec.top)

    def run(self, runner: TrialRunner, board: Leaderboard, *, progress: bool = True) -> None:
        """Every trial, each result added to `board` as it finishes."""
        results = runner.run(self._grid_plans) if self._grid_plans else self._study(runner)
        total = self.spec.trial_count
        with sweep_progress(total, min(runner.slots, total), shown=progress) as shown:
            for result in results:
                board.add(result)
                shown.finished(board.progress_text())

    def _study(self, runner: TrialRunner) -> Iterator[TrialResult]:
        spec, optuna = self.spec, self._optuna
        study = optuna.create_study(
            direction="maximize" if spec.higher_is_better else "minimize",
            # constant_liar: trials still running count as poor, so one batch spreads out
            sampler=optuna.samplers.TPESampler(seed=spec.seed, constant_liar=True))
        while len(study.trials) < spec.trials:
            batch = [study.ask() for _ in range(min(runner.slots, spec.trials - len(study.trials)))]
            plans, results = self._plan_batch(batch)
            yield from results.values()
            for result in runner.run(plans):
                results[result.number] = result
                yield result
            for trial in batch:   # in trial order: the same seed gives the same next batch
                _tell(study, trial, results[trial.number + 1], spec.objective, optuna)

    def _plan_batch(self, batch: list[Any]) -> tuple[list[TrialPlan], dict[int, TrialResult]]:
        """Plans for optuna's trials (numbered from 1), and failed results, by number, for
        those whose values the strategy refuses together (e.g. a window under the slow EMA)."""
        plans: list[TrialPlan] = []
        refused: dict[int, TrialResult] = {}
        for trial in batch:
            params = {name: _suggest(trial, name, space) for name, space in self.spec.search.items()}
            try:
                plans.append(plan_trial(trial.number + 1, params, self.base))
            except InvalidTrial as exc:
                refused[trial.number + 1] = TrialResult(trial.number + 1, params, None,
                                                        error=exc.reason, refused=True)
        return plans, refused


CORNERS_CHECKED = 256   # combinations of range ends planned up front (a few ms each)


def refuse_dead_ends(search: dict[str, SearchSpace], base: Settings) -> None:
    """SweepError, before any trial, for a range end (or a choice) that the strategy's
    rules between fields refuse whatever the other parameters take at their ends, as a grid
    refuses such a value before it starts: e.g. strategy.channel=10..200 with a window of
    120 would fail every trial optuna draws past the window. Ends refused only together
    with some other parameter's end are left to the study (told to optuna as pruned)."""
    names = list(search)
    choices = [_reachable_ends(search[name]) for name in names]
    if math.prod(len(values) for values in choices) > CORNERS_CHECKED:
        return
    refused: dict[tuple[str, ParamValue], list[str]] = {}
    accepted: set[tuple[str, ParamValue]] = set()
    for corner in itertools.product(*choices):
        params = dict(zip(names, corner, strict=True))
        try:
            plan_trial(0, params, base)
        except InvalidTrial as exc:
            for item in params.items():
                refused.setdefault(item, []).append(exc.reason)
        else:
            accepted.update(params.items())
    for (name, value), reasons in refused.items():
        if (name, value) not in accepted:
            space = search[name]
            where = (f"an end of its range {format_value(space.low)}..{format_value(space.high)}"
                     if isinstance(space, Span) else "one of its choices")
            raise SweepError(f"{name}={format_value(value)} ({where}): {reasons[0]}; "
                             "narrow it, or change the other parameters")


def _reachable_ends(space: SearchSpace) -> tuple[ParamValue, ...]:
    """A range's lowest and highest value optuna can draw (a step may stop short of high);
    every choice of a list."""
    if not isinstance(space, Span):
        return tuple(space)
    high = space.high
    if space.step and space.integer:   # floats: high as given (a step's rounding is noise)
        high = space.low + (space.high - space.low) // space.step * space.step
    return space.low, high


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise SweepError("a search over ranges (--search, [optuna]) needs optuna: "
                         "pip install 'tradebot[optuna]' (or use --grid)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)   # the progress bar speaks
    # optuna writes to stderr through a handler of its own: its lines go through the
    # standard logging into loguru instead (masked, and JSON with LOG_JSON=1).
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    return optuna


def _sampled_as(space: SearchSpace, whole: bool) -> SearchSpace:
    """A range written with whole numbers over a parameter of reals ("1..3" over a Decimal
    field) sampled as reals: optuna's suggest_int would only ever draw 1, 2 and 3."""
    if not isinstance(space, Span) or whole or not space.integer:
        return space
    return Span(float(space.low), float(space.high),
                None if space.step is None else float(space.step), space.log)


def _suggest(trial: Any, name: str, space: SearchSpace) -> ParamValue:
    if not isinstance(space, Span):
        return trial.suggest_categorical(name, list(space))
    if space.integer:
        return trial.suggest_int(name, space.low, space.high, step=space.step or 1,
                                 log=space.log)
    return trial.suggest_float(name, space.low, space.high, step=space.step, log=space.log)


def _tell(study: Any, trial: Any, result: TrialResult, objective: str, optuna: Any) -> None:
    """A trial without trades, or one whose values the strategy refused together, is told
    PRUNED: optuna's TPE sampler counts pruned trials as worse than every complete one
    (optuna/samplers/_tpe/sampler.py, _split_trials), so it steers away from them; a value
    of 0 steered towards not trading, and FAIL, which the sampler leaves out, let it draw
    refused values again. A trial that failed otherwise, or has no value, is told FAIL."""
    if result.no_trade or result.refused:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return
    value = result.objective(objective)
    if value is None or math.isnan(value):
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    else:
        study.tell(trial, value)
