"""An optuna range is sampled by its parameter's kind, not by how its ends were written
(h-review13): README's own `--search strategy.sl_atr=1..3` drew only 1, 2 and 3 (four of
six trials were sl_atr=1, identical), `min_body_atr=0..1` only 0 or 1: the field is a
Decimal, the literal's ints chose optuna's suggest_int."""

import pytest

from trader.config import load_settings
from trader.sweep import Sweep, _suggest
from trader.sweep_spec import Span, SweepSpec, with_options

optuna = pytest.importorskip("optuna", reason="optuna is an optional extra: pip install '.[optuna]'")


@pytest.fixture
def base():
    return load_settings(_env_file=None, symbols="XRPUSDT")


def drawn(sweep: Sweep, name: str, count: int = 12) -> list[object]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    return [_suggest(study.ask(), name, sweep.spec.search[name]) for _ in range(count)]


def test_a_range_over_a_decimal_field_written_with_whole_numbers_draws_reals(base) -> None:
    sweep = Sweep(with_options(SweepSpec(), grid=[], search=["strategy.sl_atr=1..3"]), base)
    assert sweep.spec.search["strategy.sl_atr"] == Span(1.0, 3.0)
    values = drawn(sweep, "strategy.sl_atr")
    assert all(isinstance(v, float) and 1 <= v <= 3 for v in values)
    assert len({round(v, 6) for v in values}) == len(values), values


def test_a_step_over_a_real_field_stays_a_step(base) -> None:
    spec = with_options(SweepSpec(), grid=[], search=["strategy.min_body_atr=0..2:1"])
    sweep = Sweep(spec, base)
    assert sweep.spec.search["strategy.min_body_atr"] == Span(0.0, 2.0, 1.0)
    assert set(drawn(sweep, "strategy.min_body_atr")) <= {0.0, 1.0, 2.0}


def test_a_range_over_a_whole_number_field_still_draws_whole_numbers(base) -> None:
    """Negative: strategy.channel is an int; its range stays optuna's suggest_int."""
    sweep = Sweep(with_options(SweepSpec(), grid=[], search=["strategy.channel=10..60:5"]),
                  base)
    assert sweep.spec.search["strategy.channel"] == Span(10, 60, 5)
    assert all(isinstance(v, int) and v % 5 == 0 for v in drawn(sweep, "strategy.channel"))
    leverage = Sweep(with_options(SweepSpec(), grid=[], search=["TRADEBOT_LEVERAGE=2..5"]), base)
    assert leverage.spec.search["TRADEBOT_LEVERAGE"] == Span(2, 5)
