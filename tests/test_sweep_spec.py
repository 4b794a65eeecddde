"""What a sweep runs, decided before any trial: the spec file and options, parameter names,
values turned into settings and strategy fields, and how finished trials are ranked."""

import dataclasses
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from trader.config import load_settings
from trader.metrics import EquityPoint, performance
from trader.strategy.default import DefaultStrategy
from trader.sweep import Leaderboard, Sweep
from trader.sweep_runners import _local_outcome
from trader.sweep_spec import Span, SweepError, SweepSpec, read_spec_file, with_options
from trader.sweep_trial import TrialResult, capped_notes, plan_trial, setting_field

SPEC_GRID = """
objective = "net_pnl"
top = 2

[grid]
"strategy.channel" = [20, 30, 40]
"strategy.reward_risk" = [1.5, 2.5]
TRADEBOT_RISK_BASE = [0.01, 0.015, 0.02, 0.025]
"""
SPEC_OPTUNA = """
[optuna]
trials = 12
seed = 7
[optuna.params]
"strategy.channel" = { low = 10, high = 60, step = 5 }
"strategy.sl_atr" = { low = 0.8, high = 3.0 }
TRADEBOT_RISK_BASE = { low = 0.005, high = 0.03, log = true }
TRADEBOT_LEVERAGE = [3, 5, 10]
"""


@pytest.fixture
def base():
    return load_settings(_env_file=None)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_grid_file_runs_every_combination(tmp_path: Path) -> None:
    spec = read_spec_file(write(tmp_path, SPEC_GRID)).checked()
    assert (spec.mode, spec.trial_count, spec.objective, spec.top) == ("grid", 24, "net_pnl", 2)
    points = spec.grid_points()
    assert len({tuple(point.items()) for point in points}) == 24
    assert points[0] == {"strategy.channel": 20, "strategy.reward_risk": 1.5,
                         "TRADEBOT_RISK_BASE": 0.01}


def test_an_optuna_file_gives_ranges_and_choices(tmp_path: Path) -> None:
    spec = read_spec_file(write(tmp_path, SPEC_OPTUNA)).checked()
    assert (spec.mode, spec.trial_count, spec.seed) == ("optuna", 12, 7)
    assert spec.search["strategy.channel"] == Span(10, 60, 5)
    assert spec.search["strategy.channel"].integer
    assert not spec.search["strategy.sl_atr"].integer
    assert spec.search["TRADEBOT_RISK_BASE"] == Span(0.005, 0.03, None, True)
    assert spec.search["TRADEBOT_LEVERAGE"] == (3, 5, 10)


def test_a_typo_in_the_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="unknown keys objectiv"):
        read_spec_file(write(tmp_path, 'objectiv = "sharpe"\n[grid]\nx = [1]\n'))


def test_options_add_to_the_file_and_override_its_scalars(tmp_path: Path) -> None:
    spec = with_options(read_spec_file(write(tmp_path, SPEC_GRID)),
                        grid=["TRADEBOT_LEVERAGE=3,5"], search=[], objective="sharpe",
                        top=None, trials=None, seed=None).checked()
    assert spec.trial_count == 48 and spec.objective == "sharpe" and spec.top == 2


def test_search_options_spell_ranges_steps_logs_and_choices() -> None:
    spec = with_options(SweepSpec(), grid=[], search=[
        "strategy.channel=10..60:5", "TRADEBOT_RISK_BASE=0.005..0.03:log",
        "strategy.sl_atr=1..2", "TRADEBOT_LEVERAGE=3,5"], trials=8).checked()
    assert spec.search == {"strategy.channel": Span(10, 60, 5),
                           "TRADEBOT_RISK_BASE": Span(0.005, 0.03, log=True),
                           "strategy.sl_atr": Span(1, 2), "TRADEBOT_LEVERAGE": (3, 5)}


@pytest.mark.parametrize(("options", "message"), [
    ({"grid": [], "search": []}, "nothing to sweep"),
    ({"grid": ["a=1"], "search": ["b=1..2"]}, "not both"),
    ({"grid": ["a"], "search": []}, "expected NAME=VALUES"),
    ({"grid": [], "search": ["b=2..1"]}, "low < high"),
    ({"grid": [], "search": ["b=x..y"]}, "LOW..HIGH"),
    ({"grid": ["a=1"], "search": [], "objective": "luck"}, "unknown objective 'luck'"),
])
def test_a_spec_that_cannot_run_says_why(options: dict, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        with_options(SweepSpec(), **options).checked()


def test_settings_are_named_by_env_or_field_name() -> None:
    assert setting_field("TRADEBOT_RISK_BASE") == "risk_base"
    assert setting_field("risk_base") == "risk_base"
    assert setting_field("tradebot_leverage") == "leverage"


@pytest.mark.parametrize("name", ["TRADEBOT_SYMBOLS", "TRADEBOT_DB", "BINANCE_API_KEY",
                                  "TELEGRAM_BOT_TOKEN", "TRADEBOT_EXCHANGE"])
def test_settings_a_backtest_sets_or_ignores_cannot_be_swept(name: str) -> None:
    with pytest.raises(SweepError, match=f"{name} cannot be swept"):
        setting_field(name)


def test_an_unknown_parameter_says_what_names_exist() -> None:
    with pytest.raises(SweepError, match="unknown parameter 'risk'.*strategy.FIELD"):
        setting_field("risk")


def test_a_trial_gets_its_settings_and_strategy_fields_typed(base) -> None:
    plan = plan_trial(3, {"TRADEBOT_RISK_BASE": 0.01, "strategy.channel": 20.0,
                          "strategy.min_body_atr": 0.5, "strategy.time_limit": 30}, base)
    assert plan.settings.risk_base == Decimal("0.01")
    assert plan.strategy.channel == 20 and isinstance(plan.strategy.channel, int)
    assert plan.strategy.min_body_atr == Decimal("0.5")
    assert plan.strategy.time_limit == timedelta(minutes=30)
    assert plan.strategy.ema_slow == 50, "fields not swept keep the strategy's defaults"


@pytest.mark.parametrize(("params", "message"), [
    ({"strategy.channel": 2.5}, r"strategy.channel=2.5: expected int, like 30"),
    ({"strategy.chanel": 20}, "has no field chanel; did you mean strategy.channel\\? its "
                              "fields: .*channel"),
    ({"strategy.window": 40}, "window must cover"),
    ({"TRADEBOT_LEVERAGE": 500}, "trial 1 .*TRADEBOT_LEVERAGE: Input should be less"),
])
def test_a_bad_trial_value_is_named(base, params: dict, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        plan_trial(1, params, base)


@pytest.mark.parametrize(("grid", "message"), [
    ("strategy.channel=20,-5", "strategy.channel=-5: must be at least 1"),
    ("strategy.channel=0", "strategy.channel=0: must be at least 1"),
    ("strategy.sl_atr=1.5,0", "strategy.sl_atr=0: must be above 0"),
    ("strategy.min_body_atr=-0.1", "strategy.min_body_atr=-0.1: must be at least 0"),
])
def test_a_value_outside_the_strategys_bounds_stops_the_sweep_up_front(base, grid: str,
                                                                       message: str) -> None:
    """The bound the strategy declares, named without a trial: it is wrong in every one."""
    spec = with_options(SweepSpec(), grid=[grid, "TRADEBOT_RISK_BASE=0.01,0.02"], search=[])
    with pytest.raises(SweepError) as refused:
        Sweep(spec, base)
    assert str(refused.value) == message


def test_the_strategy_refuses_a_value_outside_its_bounds_itself() -> None:
    """channel=0 would make every tick raise (an empty channel): refused when built."""
    with pytest.raises(ValueError, match="channel=0: must be at least 1"):
        DefaultStrategy(channel=0)


def test_an_optuna_range_reaching_outside_the_strategys_bounds_is_refused(base) -> None:
    pytest.importorskip("optuna", reason="optuna is an optional extra: pip install '.[optuna]'")
    spec = with_options(SweepSpec(), grid=[], search=["strategy.channel=0..40:5"])
    with pytest.raises(SweepError, match="strategy.channel=0: must be at least 1"):
        Sweep(spec, base)


def test_a_misspelt_setting_gets_the_closest_name() -> None:
    with pytest.raises(SweepError, match="'TRADEBOT_LEVERAG': did you mean TRADEBOT_LEVERAGE?"):
        setting_field("TRADEBOT_LEVERAG")
    with pytest.raises(SweepError, match="'risk_bse': did you mean TRADEBOT_RISK_BASE?"):
        setting_field("risk_bse")


def test_trials_never_carry_the_operators_secrets_or_live_settings() -> None:
    live = load_settings(_env_file=None, exchange="binance", binance_api_key="key-123456",
                         binance_api_secret="secret-123456", telegram_bot_token="1:tok-abcdef",
                         telegram_allowed_chat_ids="42", heartbeat_url="https://example.org/ping")
    plan = plan_trial(1, {"TRADEBOT_LEVERAGE": 3}, live)
    assert plan.settings.exchange == "paper"
    assert plan.settings.binance_api_key is None and plan.settings.binance_api_secret is None
    assert plan.settings.telegram_bot_token is None and plan.settings.heartbeat_url is None
    assert plan.settings.leverage == 3


def test_a_bad_grid_value_stops_the_whole_sweep_up_front(base) -> None:
    spec = with_options(SweepSpec(), grid=["strategy.channel=20,30", "strategy.window=40,120"],
                        search=[])
    with pytest.raises(SweepError, match=r"trial 1 \(strategy.channel=20 strategy.window=40\)"):
        Sweep(spec, base)


def test_an_optuna_range_is_checked_at_both_ends(base) -> None:
    pytest.importorskip("optuna", reason="optuna is an optional extra: pip install '.[optuna]'")
    spec = with_options(SweepSpec(), grid=[], search=["TRADEBOT_RISK_BASE=0.01..0.5"])
    with pytest.raises(SweepError, match="TRADEBOT_RISK_BASE: Input should be less"):
        Sweep(spec, base)


def result(number: int, *, sharpe: float = 0.0, drawdown: float = 0.0,
           failed: bool = False) -> TrialResult:
    if failed:
        return TrialResult(number, {"strategy.channel": number}, None, error="RuntimeError: x")
    stats = dataclasses.replace(performance([], []), trades=10, sharpe=sharpe,
                                max_drawdown_pct=drawdown)
    start = datetime(2021, 11, 16, tzinfo=UTC)
    curve = [EquityPoint(start + timedelta(minutes=5 * i), Decimal(10000 + i)) for i in range(3)]
    return TrialResult(number, {"strategy.channel": number}, stats, 1.0, curve)


def test_the_leaderboard_ranks_by_the_objective_with_failures_last() -> None:
    board = Leaderboard("sharpe", higher_is_better=True, pictures=2)
    for item in (result(1, sharpe=0.5), result(2, failed=True), result(3, sharpe=1.5),
                 result(4, sharpe=-1.0), result(5, sharpe=1.5)):
        board.add(item)
    assert [item.number for item in board.ranked()] == [3, 5, 1, 4, 2]
    assert board.best().number == 3


def test_a_lower_is_better_objective_ranks_the_smallest_drawdown_first() -> None:
    board = Leaderboard("max_drawdown_pct", higher_is_better=False, pictures=1)
    for item in (result(1, drawdown=5.0), result(2, drawdown=2.0), result(3, drawdown=9.0)):
        board.add(item)
    assert [item.number for item in board.ranked()] == [2, 1, 3]


def test_the_leaderboard_keeps_equity_curves_of_the_best_trials_only() -> None:
    board = Leaderboard("sharpe", higher_is_better=True, pictures=2)
    for number, sharpe in ((1, 0.1), (2, 0.9), (3, 0.5), (4, 0.7)):
        board.add(result(number, sharpe=sharpe))
    kept = {number for number in (1, 2, 3, 4) if board.curve(number)}
    assert kept == {2, 4}
    assert all(not item.curve for item in board.ranked()), "results hold no curves"


def test_a_trial_that_raises_in_its_worker_becomes_a_failed_row(base) -> None:
    plan = plan_trial(7, {"strategy.channel": 20}, base)
    future: Future[TrialResult] = Future()
    future.set_exception(RuntimeError("database is locked\nsecond line"))
    failed = _local_outcome(plan, future)
    assert (failed.number, failed.ok, failed.params) == (7, False, {"strategy.channel": 20})
    assert failed.error == "RuntimeError: database is locked"


@pytest.mark.parametrize(("changes", "line"), [
    ({"trials": 0}, "trials 0: an optuna study needs at least 1"),
    ({"top": -1}, "top -1: the equity pictures of the best trials, 0 or more"),
])
def test_a_count_out_of_range_is_named_alone(changes: dict, line: str) -> None:
    """It said "trials must be at least 1 and top at least 0" for either, leaving the reader
    to find which of the two was wrong."""
    spec = SweepSpec(search={"strategy.channel": Span(10, 60)}, **changes)
    with pytest.raises(SweepError) as refused:
        spec.checked()
    assert str(refused.value) == line


def test_a_parameter_given_twice_runs_every_value_given(tmp_path: Path) -> None:
    """`--grid strategy.channel=20 --grid strategy.channel=30` ran one trial (channel 30), and
    a file's [grid] values were replaced by an option's for the same name, although --help
    says the options add to the file (found by a reviewer): the values add up."""
    twice = with_options(SweepSpec(), grid=["strategy.channel=20", "strategy.channel=30"],
                         search=[]).checked()
    assert twice.grid == {"strategy.channel": (20, 30)} and twice.trial_count == 2
    spec = with_options(read_spec_file(write(tmp_path, SPEC_GRID)),
                        grid=["strategy.channel=50"], search=[]).checked()
    assert spec.grid["strategy.channel"] == (20, 30, 40, 50)


def test_a_range_given_twice_is_refused() -> None:
    with pytest.raises(SweepError, match=r"strategy\.sl_atr: given twice"):
        with_options(SweepSpec(), grid=[], search=["strategy.sl_atr=1..2",
                                                   "strategy.sl_atr=2..3"])


@pytest.mark.parametrize("names", [("leverage", "TRADEBOT_LEVERAGE"),
                                   ("risk_base", "tradebot_risk_base")])
def test_two_names_of_one_setting_are_refused(names: tuple[str, str]) -> None:
    """`--grid leverage=2,10 --grid TRADEBOT_LEVERAGE=3,20` ran 4 trials whose `leverage`
    column did nothing (the other name's value won): one setting, one name."""
    first, second = names
    spec = with_options(SweepSpec(), grid=[f"{first}=2,3", f"{second}=4,5"], search=[])
    with pytest.raises(SweepError, match=f"{first} and {second} name one setting"):
        Sweep(spec, load_settings(_env_file=None))


def test_time_limits_past_the_setting_are_noted_as_the_setting() -> None:
    """strategy.time_limit=45,60,90 ran three identical trials with no word: a strategy may
    shorten TRADEBOT_TIME_IN_TRADE_MINUTES (40), never lengthen it (found by a reviewer)."""
    spec = with_options(SweepSpec(), grid=["strategy.time_limit=30,45,60"], search=[])
    [note] = capped_notes(spec, load_settings(_env_file=None))
    assert note == ("strategy.time_limit: 45, 60 act as 40, TRADEBOT_TIME_IN_TRADE_MINUTES "
                    "(a strategy may shorten the time in trade, never lengthen it)")
    within = with_options(SweepSpec(), grid=["strategy.time_limit=20,30"], search=[])
    assert capped_notes(within, load_settings(_env_file=None)) == []
    swept = with_options(SweepSpec(), grid=["strategy.time_limit=45,60",
                                            "TRADEBOT_TIME_IN_TRADE_MINUTES=60"], search=[])
    assert capped_notes(swept, load_settings(_env_file=None)) == []    # judged per trial
