"""Performance statistics against hand-computed cases (trader/metrics.py)."""

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.positions import make
from trader.domain import CloseReason, Side
from trader.metrics import (
    EquityPoint,
    TradeRecord,
    drawdown_series,
    performance,
)
from trader.position import Position, PositionState
from trader.trade_stats import TOTAL, by_symbol, summarize

T0 = datetime(2024, 3, 1, tzinfo=UTC)
D = Decimal
YEAR = timedelta(days=365)


def curve_of(values: list[str | int], step: timedelta = timedelta(days=1)) -> list[EquityPoint]:
    return [EquityPoint(T0 + step * index, D(value)) for index, value in enumerate(values)]


def trade(net: str, *, opened_h: float = 0, closed_h: float = 1, reason: str = "TAKE_PROFIT",
          gross: str | None = None, fees: str = "0", funding: str = "0") -> TradeRecord:
    gross_pnl = D(gross) if gross is not None else D(net) + D(fees) - D(funding)
    return TradeRecord(
        symbol="BTCUSDT", side="LONG",
        opened_at=T0 + timedelta(hours=opened_h), closed_at=T0 + timedelta(hours=closed_h),
        quantity=D("0.010"), entry_price=D("50000"), exit_price=D("50100"),
        gross_pnl=gross_pnl, fees=D(fees), funding=D(funding), net_pnl=D(net), reason=reason,
    )


# --- drawdown ---------------------------------------------------------------------------

def test_max_drawdown_is_the_deepest_fall_below_the_running_peak() -> None:
    # peak 120, later trough 80: (120 - 80) / 120 = 33.33 %, 40 in money.
    perf = performance(curve_of([100, 120, 90, 110, 80, 130]), [])
    assert perf.max_drawdown_pct == pytest.approx(100 / 3)
    assert perf.max_drawdown == D(40)


def test_drawdown_series_gives_the_fraction_below_the_peak_at_every_point() -> None:
    series = drawdown_series(curve_of([100, 120, 90, 110, 80, 130]))
    assert [at for at, _ in series] == [T0 + timedelta(days=i) for i in range(6)]
    assert [fraction for _, fraction in series] == pytest.approx([0, 0, 0.25, 1 / 12, 1 / 3, 0])


def test_drawdown_percent_and_money_can_come_from_different_dips() -> None:
    # 100 -> 50 is the deepest in percent (50 %); 1000 -> 900 is the largest in money (100).
    perf = performance(curve_of([100, 50, 1000, 900]), [])
    assert perf.max_drawdown_pct == pytest.approx(50.0)
    assert perf.max_drawdown == D(100)


def test_a_curve_that_only_rises_has_no_drawdown() -> None:
    perf = performance(curve_of([100, 101, 105, 110]), [])
    assert perf.max_drawdown_pct == 0.0
    assert perf.max_drawdown == D(0)


# --- Sharpe and Sortino -------------------------------------------------------------------

def test_sharpe_and_sortino_of_known_daily_returns() -> None:
    # Returns +10 %, -10 %, +10 %: mean 1/30, sample stdev 0.2/sqrt(3) -> sqrt(3)/6 per day;
    # downside deviation sqrt(0.01/3) = 0.1/sqrt(3) -> sqrt(3)/3 per day; a year is 365 days.
    perf = performance(curve_of(["100", "110", "99", "108.9"]), [])
    assert perf.sharpe == pytest.approx(math.sqrt(3) / 6 * math.sqrt(365))
    assert perf.sortino == pytest.approx(math.sqrt(3) / 3 * math.sqrt(365))


def test_annualisation_follows_the_curve_spacing() -> None:
    hourly = performance(curve_of(["100", "110", "99", "108.9"], timedelta(hours=1)), [])
    assert hourly.sharpe == pytest.approx(math.sqrt(3) / 6 * math.sqrt(365 * 24))


def test_one_long_gap_does_not_change_the_inferred_period() -> None:
    # Spacing 1 h, 1 h, 3 h, 1 h: the median (1 h) is the period.
    times = [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2), T0 + timedelta(hours=5),
             T0 + timedelta(hours=6)]
    values = ["100", "110", "99", "108.9", "119.79"]
    curve = [EquityPoint(at, D(value)) for at, value in zip(times, values, strict=True)]
    returns = [0.1, -0.1, 0.1, 0.1]
    mean = sum(returns) / 4
    stdev = math.sqrt(sum((r - mean) ** 2 for r in returns) / 3)
    assert performance(curve, []).sharpe == pytest.approx(mean / stdev * math.sqrt(365 * 24))


def test_sortino_is_zero_not_infinite_when_no_period_lost() -> None:
    perf = performance(curve_of([100, 101, 103, 104]), [])
    assert perf.sortino == 0.0
    assert perf.sharpe > 0


def test_ratios_are_zero_for_a_flat_curve() -> None:
    perf = performance(curve_of([100, 100, 100]), [])
    assert (perf.sharpe, perf.sortino) == (0.0, 0.0)


def test_returns_starting_from_zero_equity_are_left_out_not_divided_by_zero() -> None:
    perf = performance(curve_of([0, 100, 110, 99]), [])
    assert math.isfinite(perf.sharpe) and math.isfinite(perf.sortino)
    assert perf.return_pct == 0.0


# --- exposure -----------------------------------------------------------------------------

def test_exposure_of_two_non_overlapping_trades() -> None:
    # 10 h period; open 1 h-3 h and 5 h-6 h: 3 h of 10 = 30 %.
    curve = curve_of([100] * 11, timedelta(hours=1))
    trades = [trade("1", opened_h=1, closed_h=3), trade("1", opened_h=5, closed_h=6)]
    assert performance(curve, trades).exposure_pct == pytest.approx(30.0)


def test_overlapping_trades_count_their_shared_time_once() -> None:
    curve = curve_of([100] * 11, timedelta(hours=1))
    trades = [trade("1", opened_h=1, closed_h=3), trade("1", opened_h=2, closed_h=4)]
    assert performance(curve, trades).exposure_pct == pytest.approx(30.0)
    nested = [trade("1", opened_h=1, closed_h=5), trade("1", opened_h=2, closed_h=3)]
    assert performance(curve, nested).exposure_pct == pytest.approx(40.0)


def test_exposure_counts_only_the_part_of_a_trade_inside_the_period() -> None:
    curve = curve_of([100] * 11, timedelta(hours=1))
    trades = [trade("1", opened_h=-5, closed_h=2), trade("1", opened_h=9, closed_h=20)]
    assert performance(curve, trades).exposure_pct == pytest.approx(30.0)


# --- trades -------------------------------------------------------------------------------

def test_trade_counts_pnl_sums_profit_factor_and_exit_reasons() -> None:
    trades = [
        trade("30", gross="31", fees="1.5", funding="0.5", reason="TAKE_PROFIT"),
        trade("-10", gross="-9", fees="1", reason="STOP_LOSS"),
        trade("-5", gross="-4", fees="0.8", funding="-0.2", reason="STOP_LOSS"),
        trade("0", gross="1", fees="1", reason="TIME_EXIT"),
    ]
    perf = performance(curve_of([1000, 1015]), trades)
    assert (perf.trades, perf.wins, perf.losses) == (4, 1, 2)
    assert perf.win_rate == 0.25
    assert perf.gross_pnl == D("19")
    assert perf.fees == D("4.3")
    assert perf.funding == D("0.3")
    assert perf.net_pnl == D("15.0")
    assert perf.profit_factor == pytest.approx(2.0)     # 30 won / 15 lost
    assert perf.avg_trade == D("3.75")                  # 15 / 4
    assert perf.exits == {"STOP_LOSS": 2, "TAKE_PROFIT": 1, "TIME_EXIT": 1}
    assert list(perf.exits) == ["STOP_LOSS", "TAKE_PROFIT", "TIME_EXIT"]


def test_funding_not_attributed_to_trades_is_added_to_net_pnl() -> None:
    perf = performance(curve_of([1000, 1010]), [trade("10", gross="11", fees="1")],
                       funding=D("-2.5"))
    assert perf.funding == D("-2.5")
    assert perf.net_pnl == D("7.5")


def test_profit_factor_is_none_when_nothing_was_lost() -> None:
    assert performance(curve_of([100, 110]), [trade("10")]).profit_factor is None


def test_return_and_equity_come_from_the_curve_ends() -> None:
    perf = performance(curve_of([10000, 9000, 10500]), [])
    assert (perf.start_equity, perf.end_equity) == (D(10000), D(10500))
    assert perf.return_pct == pytest.approx(5.0)
    assert (perf.period_start, perf.period_end) == (T0, T0 + timedelta(days=2))


def test_no_trades_and_no_curve_give_zeros_not_nan() -> None:
    perf = performance([], [])
    assert (perf.trades, perf.wins, perf.losses, perf.win_rate) == (0, 0, 0, 0.0)
    assert (perf.sharpe, perf.sortino, perf.return_pct) == (0.0, 0.0, 0.0)
    assert (perf.max_drawdown_pct, perf.exposure_pct) == (0.0, 0.0)
    assert (perf.net_pnl, perf.avg_trade, perf.max_drawdown) == (D(0), D(0), D(0))
    assert perf.profit_factor is None
    assert perf.exits == {}
    assert (perf.period_start, perf.period_end) == (None, None)


def test_a_single_equity_point_gives_zeros_not_nan() -> None:
    perf = performance(curve_of([1000]), [])
    assert (perf.sharpe, perf.sortino, perf.max_drawdown_pct, perf.exposure_pct,
            perf.return_pct) == (0.0, 0.0, 0.0, 0.0, 0.0)


def test_without_a_curve_the_period_is_the_trades_span() -> None:
    trades = [trade("1", opened_h=0, closed_h=1), trade("1", opened_h=3, closed_h=4)]
    perf = performance([], trades)
    assert (perf.period_start, perf.period_end) == (T0, T0 + timedelta(hours=4))
    assert perf.exposure_pct == pytest.approx(50.0)


# --- CAGR, Calmar, drawdown span -----------------------------------------------------------

def test_cagr_compounds_over_the_covered_time() -> None:
    # 100 -> 121 in two years (730 days) is 10 % a year.
    perf = performance(curve_of([100, 121], timedelta(days=730)), [])
    assert perf.cagr_pct == pytest.approx(10.0)
    assert perf.covered == timedelta(days=730)
    assert perf.calmar is None                          # no drawdown, no Calmar


def test_calmar_is_cagr_over_the_max_drawdown() -> None:
    # 100 -> 80 -> 121 over two years: CAGR 10 %, max drawdown 20 %.
    perf = performance(curve_of([100, 80, 121], timedelta(days=365)), [])
    assert perf.cagr_pct == pytest.approx(10.0)
    assert perf.max_drawdown_pct == pytest.approx(20.0)
    assert perf.calmar == pytest.approx(0.5)


def test_separate_periods_are_annualised_over_their_own_time_not_the_gap() -> None:
    # Two one-year runs ten years apart, 100 -> 110 and then 110 -> 121: 10 % a year.
    first, second = T0, T0 + timedelta(days=3650)
    curve = [EquityPoint(first, D(100)), EquityPoint(first + YEAR, D(110)),
             EquityPoint(second, D(110)), EquityPoint(second + YEAR, D(121))]
    perf = performance(curve, [], periods=[(first, first + YEAR), (second, second + YEAR)])
    assert perf.covered == 2 * YEAR
    assert perf.cagr_pct == pytest.approx(10.0)
    whole_span = performance(curve, [])
    assert whole_span.cagr_pct == pytest.approx(100 * (1.21 ** (365 / (3650 + 365)) - 1))


def test_exposure_over_separate_periods_counts_only_their_time() -> None:
    first, second = T0, T0 + timedelta(days=100)
    curve = [EquityPoint(first, D(100)), EquityPoint(first + timedelta(hours=10), D(100)),
             EquityPoint(second, D(100)), EquityPoint(second + timedelta(hours=10), D(100))]
    trades = [trade("1", opened_h=0, closed_h=5)]          # 5 h open in 20 h of data
    periods = [(first, first + timedelta(hours=10)), (second, second + timedelta(hours=10))]
    assert performance(curve, trades, periods=periods).exposure_pct == pytest.approx(25.0)


def test_cagr_is_undefined_without_a_week_of_data_and_minus_100_when_the_account_is_gone(
        ) -> None:
    assert performance(curve_of([100]), []).cagr_pct is None
    assert performance([], []).cagr_pct is None
    assert performance(curve_of([100, 110], timedelta(days=6)), []).cagr_pct is None
    assert performance(curve_of([100, 110], timedelta(days=7)), []).cagr_pct is not None
    assert performance(curve_of([100, 0], timedelta(days=7)), []).cagr_pct == -100.0


def test_a_huge_gain_has_no_cagr_rather_than_an_overflow() -> None:
    assert performance(curve_of([100, 10**20], timedelta(days=7)), []).cagr_pct is None


def test_the_deepest_drawdown_has_its_peak_bottom_recovery_and_duration() -> None:
    # peak 120 on day 1, bottom 80 on day 4, back above 120 on day 5.
    perf = performance(curve_of([100, 120, 90, 110, 80, 130]), [])
    assert perf.drawdown_start == T0 + timedelta(days=1)
    assert perf.drawdown_bottom == T0 + timedelta(days=4)
    assert perf.drawdown_end == T0 + timedelta(days=5)
    assert perf.drawdown_duration == timedelta(days=4)


def test_a_drawdown_not_recovered_lasts_until_the_end() -> None:
    perf = performance(curve_of([100, 120, 90, 100]), [])
    assert perf.drawdown_start == T0 + timedelta(days=1)
    assert perf.drawdown_end is None
    assert perf.drawdown_duration == timedelta(days=2)


def test_a_drawdown_across_a_gap_between_periods_counts_only_covered_time() -> None:
    later = T0 + timedelta(days=100)
    curve = [EquityPoint(T0, D(100)), EquityPoint(T0 + timedelta(days=1), D(120)),
             EquityPoint(later, D(90)), EquityPoint(later + timedelta(days=2), D(95))]
    periods = [(T0, T0 + timedelta(days=1)), (later, later + timedelta(days=2))]
    perf = performance(curve, [], periods=periods)
    assert perf.drawdown_start == T0 + timedelta(days=1)
    assert perf.drawdown_duration == timedelta(days=2)


def test_a_curve_that_never_falls_has_no_drawdown_span() -> None:
    perf = performance(curve_of([100, 100, 110]), [])
    assert (perf.drawdown_start, perf.drawdown_end, perf.drawdown_duration) == (None, None, None)


# --- expectancy, SQN, exits, per symbol ----------------------------------------------------

def test_expectancy_ratio_is_the_mean_trade_in_units_of_the_mean_loss() -> None:
    trades = [trade("40"), trade("-10", reason="STOP_LOSS"), trade("-20", reason="STOP_LOSS")]
    perf = performance(curve_of([1000, 1010]), trades)
    assert perf.avg_trade == D(10) / 3
    assert perf.expectancy_ratio == pytest.approx((10 / 3) / 15)
    assert perf.exit_pnl == {"STOP_LOSS": D(-30), "TAKE_PROFIT": D(40)}
    assert list(perf.exit_pnl) == list(perf.exits) == ["STOP_LOSS", "TAKE_PROFIT"]


def test_sqn_is_root_n_times_mean_over_stdev_of_net_pnl() -> None:
    perf = performance([], [trade("1"), trade("2"), trade("3")])
    assert perf.sqn == pytest.approx(math.sqrt(3) * 2 / 1)


def test_sqn_and_expectancy_ratio_are_undefined_without_spread_or_losses() -> None:
    perf = performance([], [trade("5"), trade("5")])
    assert perf.sqn == 0.0
    assert perf.expectancy_ratio is None
    assert performance([], [trade("-5")]).sqn == 0.0


def test_per_symbol_rows_and_the_total_row_add_up() -> None:
    trades = [trade("30", gross="31", fees="1"), trade("-10", gross="-9", fees="1"),
              replace(trade("-5", gross="-4", fees="1", funding="0"), symbol="ETHUSDT")]
    rows = by_symbol(trades)
    total = summarize(TOTAL, trades)
    assert [row.label for row in rows] == ["BTCUSDT", "ETHUSDT"]
    btc, eth = rows
    assert (btc.trades, btc.wins, btc.losses, btc.net_pnl) == (2, 1, 1, D(20))
    assert (btc.best, btc.worst, btc.profit_factor) == (D(30), D(-10), pytest.approx(3.0))
    assert (eth.trades, eth.net_pnl, eth.profit_factor) == (1, D(-5), 0.0)
    assert total.trades == btc.trades + eth.trades
    assert total.net_pnl == btc.net_pnl + eth.net_pnl == D(15)
    assert total.fees == D(3) and total.expectancy == D(5)
    assert summarize(TOTAL, []).win_rate == 0.0


# --- TradeRecord.from_position ------------------------------------------------------------

def closed_short() -> Position:
    return make(
        symbol="ETHUSDT", key="k1", side=Side.SELL, state=PositionState.CLOSED,
        quantity="0", entry="3000", stop="3030", tp="2980", opened_at=T0,
        initial_quantity=D("0.5"), closed_at=T0 + timedelta(minutes=30), exit_price=D("2980"),
        realized_pnl=D("10"), fees=D("1.2"), close_reason=CloseReason.TAKE_PROFIT,
    )


def test_trade_record_from_a_closed_position() -> None:
    record = TradeRecord.from_position(closed_short(), funding=D("-0.3"))
    assert record == TradeRecord(
        symbol="ETHUSDT", side="SHORT", opened_at=T0, closed_at=T0 + timedelta(minutes=30),
        quantity=D("0.5"), entry_price=D("3000"), exit_price=D("2980"), gross_pnl=D("10"),
        fees=D("1.2"), funding=D("-0.3"), net_pnl=D("8.5"), reason="TAKE_PROFIT",
    )


def test_trade_record_refuses_a_position_that_is_not_closed() -> None:
    with pytest.raises(ValueError, match="not closed"):
        TradeRecord.from_position(replace(closed_short(), closed_at=None, exit_price=None))


# --- properties ---------------------------------------------------------------------------

equity_values = st.lists(st.decimals(min_value=1, max_value=10**7, places=2,
                                     allow_nan=False, allow_infinity=False),
                         min_size=0, max_size=60)


@given(equity_values)
def test_statistics_are_always_finite_and_drawdown_stays_between_zero_and_one(
        values: list[Decimal]) -> None:
    curve = curve_of([str(value) for value in values], timedelta(minutes=5))
    perf = performance(curve, [])
    for number in (perf.sharpe, perf.sortino, perf.return_pct, perf.max_drawdown_pct,
                   perf.sqn, perf.cagr_pct or 0.0, perf.calmar or 0.0):
        assert math.isfinite(number)
    fractions = [fraction for _, fraction in drawdown_series(curve)]
    assert all(0.0 <= fraction < 1.0 for fraction in fractions)
    assert perf.max_drawdown_pct == pytest.approx(max(fractions, default=0.0) * 100)


def test_a_portfolio_of_two_intervals_takes_its_returns_on_the_coarser_grid() -> None:
    """Found by a reviewer: the bundled portfolio chains XRPUSDT 5m (2021) and BTCUSDT 15m
    (2026); every return was annualised as a 5-minute one (the curve's median spacing), so
    the 15m part's returns counted as 5m returns (Sharpe -6.96 against -5.70 on a common
    15-minute grid). Each period's own spacing is known: the coarser grid serves both."""
    five, fifteen = timedelta(minutes=5), timedelta(minutes=15)
    first = [EquityPoint(T0 + five * i, D(100 + (i % 7) - (i % 3))) for i in range(60)]
    later = T0 + timedelta(days=400)
    second = [EquityPoint(later + fifteen * i, D(104 + (i % 5) - (i % 4))) for i in range(40)]
    curve = first + second
    periods = [(first[0].at, first[-1].at), (second[0].at, second[-1].at)]
    grid = [p for p in curve if (p.at - datetime(1970, 1, 1, tzinfo=UTC)) % fifteen == timedelta(0)]
    assert performance(curve, [], periods=periods).sharpe == pytest.approx(
        performance(grid, [], periods=periods[1:]).sharpe)
    assert performance(curve, [], periods=periods).sharpe != pytest.approx(
        performance(curve, []).sharpe), "the median spacing alone reads it as 5-minute"


def test_periods_of_one_spacing_use_every_point() -> None:
    """The negative: two periods of the same interval (one symbol's runs over two years)
    keep every return and the median spacing, as before."""
    hour = timedelta(hours=1)
    first = curve_of(["100", "110", "99", "108.9"], hour)
    second = [EquityPoint(p.at + timedelta(days=400), p.equity) for p in first]
    periods = [(first[0].at, first[-1].at), (second[0].at, second[-1].at)]
    assert performance(first + second, [], periods=periods).sharpe == pytest.approx(
        performance(first + second, []).sharpe)
