"""benchmarks/peers.py without installing anything: the candles every engine runs on (seeded,
valid OHLC on XRPUSDT's tick, 5-minute spacing, the 5m candles exactly the aggregation of the
1m candles jesse is fed, the CSV tradebot reads) and the table it prints from fake results."""

import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from peer_candles import (  # noqa: E402 - the benchmarks folder is not a package
    FIVE_MINUTES_MS,
    MINUTE_MS,
    five_minute_candles,
    one_minute_candles,
    parse_size,
    write_candle_files,
)
from peer_envs import MARKER, Peer, PeerUnavailable, ensure_environment, last_line  # noqa: E402
from peer_table import Run, render_table, summarize, trades_line  # noqa: E402

from trader.market.replay import load_candles  # noqa: E402


@pytest.fixture(scope="module")
def minutes() -> np.ndarray:
    return one_minute_candles(3_000, seed=7)


def test_the_same_seed_gives_the_same_candles_and_another_seed_others(minutes):
    assert np.array_equal(minutes, one_minute_candles(3_000, seed=7))
    assert not np.array_equal(minutes[:, 1:5], one_minute_candles(3_000, seed=8)[:, 1:5])


def test_every_candle_is_valid_ohlc_on_the_tick_and_opens_at_the_previous_close(minutes):
    opens, highs, lows, closes, volumes = (minutes[:, column] for column in range(1, 6))
    assert (lows > 0).all() and (volumes > 0).all()
    assert (highs >= np.maximum(opens, closes)).all()
    assert (lows <= np.minimum(opens, closes)).all()
    prices = minutes[:, 1:5]
    assert np.allclose(prices * 10_000, np.round(prices * 10_000), atol=1e-6)   # tick 0.0001
    assert np.array_equal(opens[1:], closes[:-1])


def test_candles_are_one_minute_apart_and_five_minute_candles_five(minutes):
    assert (np.diff(minutes[:, 0]) == MINUTE_MS).all()
    candles = five_minute_candles(minutes)
    assert len(candles) == 3_000
    assert candles[0, 0] % FIVE_MINUTES_MS == 0
    assert (np.diff(candles[:, 0]) == FIVE_MINUTES_MS).all()


def test_a_five_minute_candle_is_exactly_the_aggregation_of_its_five_minutes(minutes):
    candles = five_minute_candles(minutes)
    for index in (0, 1, 1_234, 2_999):
        group = minutes[5 * index:5 * index + 5]
        assert candles[index, 0] == group[0, 0]
        assert candles[index, 1] == group[0, 1]
        assert candles[index, 2] == group[:, 2].max()
        assert candles[index, 3] == group[:, 3].min()
        assert candles[index, 4] == group[-1, 4]
        assert candles[index, 5] == pytest.approx(group[:, 5].sum())


def test_aggregation_refuses_minutes_that_do_not_fill_whole_five_minute_candles(minutes):
    with pytest.raises(ValueError):
        five_minute_candles(minutes[:7])
    with pytest.raises(ValueError):
        five_minute_candles(minutes[1:6])


def test_the_price_stays_xrp_like_over_a_long_run():
    closes = five_minute_candles(one_minute_candles(100_000, seed=7))[:, 4]
    assert 0.15 < closes.min() and closes.max() < 2.5
    returns = np.diff(np.log(closes))
    assert 0.002 < returns.std() < 0.005          # the bundled XRPUSDT 5m data: ~0.003


def test_tradebot_reads_the_written_csv_as_the_same_five_minute_candles(tmp_path):
    files = write_candle_files(tmp_path, 200, seed=3)
    expected = np.load(files["5m"])
    assert np.array_equal(five_minute_candles(np.load(files["1m"])), expected)
    candles = load_candles(files["csv"])
    assert len(candles) == 200
    assert candles[0].symbol == "XRPUSDT" and candles[0].interval == timedelta(minutes=5)
    for candle, row in zip(candles, expected, strict=True):
        assert candle.open_time.timestamp() * 1000 == row[0]
        assert [float(candle.open), float(candle.high), float(candle.low),
                float(candle.close)] == list(row[1:5])


@pytest.mark.parametrize(("text", "count"), [("2k", 2_000), ("100k", 100_000),
                                             ("500K", 500_000), ("1M", 1_000_000), ("1500", 1_500)])
def test_sizes_are_read_as_counts_of_candles(text, count):
    assert parse_size(text) == count


@pytest.mark.parametrize("text", ["", "k", "1.5", "-2k", "2 k", "0"])
def test_a_size_that_is_not_a_count_is_refused(text):
    with pytest.raises(ValueError):
        parse_size(text)


SIZES = [2_000, 100_000]
LABELS = {"tradebot": "tradebot (event-driven, live engine path)",
          "jesse": "jesse 3.5.3 (event-driven)", "freqtrade": "freqtrade 2026.9 (pandas)",
          "nautilus": "nautilus_trader 1.231.0 (event-driven)"}


def fake_runs() -> list[Run]:
    runs = []
    for seconds in (2.0, 1.9, 2.2):
        runs.append(Run("tradebot", 2_000, seconds, peak_rss_mb=100.0, trades=63))
    for seconds in (100.0, 80.0, 120.0):
        runs.append(Run("tradebot", 100_000, seconds, peak_rss_mb=210.0 + seconds / 10,
                        trades=3_000))
    for seconds in (0.5, 0.4, 0.6):
        runs.append(Run("jesse", 2_000, seconds, peak_rss_mb=270.0, trades=58, rows=10_000))
    runs.append(Run("jesse", 100_000, timed_out_after=900.0))
    runs.append(Run("freqtrade", 2_000, error="exit 1: KeyError: 'funding_rate'"))
    for seconds in (10.0, 20.0, 30.0):
        runs.append(Run("freqtrade", 100_000, seconds, peak_rss_mb=400.0, trades=2_900))
    return runs


def test_a_cell_is_the_median_of_the_runs_and_candles_per_second_follow_from_it():
    cell = summarize(fake_runs(), "tradebot", 100_000)
    assert cell.candles_per_second == pytest.approx(1_000.0)      # 100k / the median 100 s
    assert cell.peak_rss_mb == pytest.approx(220.0)
    assert cell.runs == 3 and cell.trades == 3_000


def test_the_table_gives_rates_with_ratios_to_tradebot_and_peak_rss_per_size():
    table = render_table(["tradebot", "jesse", "freqtrade", "nautilus"], SIZES, fake_runs(),
                         LABELS, unavailable={"nautilus": "nautilus_trader==1.231.0 needs "
                                                          "Python >= 3.12; none found"})
    lines = table.splitlines()
    assert lines[0] == ("| engine (kind) | 2k candles c/s | 100k c/s | peak RSS 2k / 100k |")
    assert lines[1] == "|---|---|---|---|"
    assert lines[2] == "| tradebot (event-driven, live engine path) | 1,000 | 1,000 | 100 / 220 MB |"
    assert lines[3] == ("| jesse 3.5.3 (event-driven) | 4,000 (4.0x) | "
                        "< 111 (did not finish in 900 s) | 270 / - MB |")
    assert lines[4] == ("| freqtrade 2026.9 (pandas) | failed: exit 1: KeyError: 'funding_rate' | "
                        "5,000 (5.0x) | - / 400 MB |")
    assert lines[5] == ("| nautilus_trader 1.231.0 (event-driven) | not available: "
                        "nautilus_trader==1.231.0 needs Python >= 3.12; none found | - | - |")


def test_a_slower_peer_gets_a_ratio_below_one_with_two_decimals():
    runs = [Run("tradebot", 2_000, 1.0, 90.0, 60), Run("jesse", 2_000, 4.0, 90.0, 60)]
    table = render_table(["tradebot", "jesse"], [2_000], runs, LABELS, unavailable={})
    assert "| 500 (0.25x) |" in table


def test_the_trade_counts_line_names_each_engine_that_traded():
    line = trades_line(["tradebot", "jesse", "freqtrade", "nautilus"], SIZES, fake_runs())
    assert line == ("trades per size (2k / 100k): tradebot 63 / 3,000; jesse 58 / -; "
                    "freqtrade - / 2,900")


def test_a_peer_whose_python_is_missing_is_unavailable_with_the_reason(tmp_path):
    peer = Peer("future", "event-driven", "future-engine==1.0", "future_engine",
                "future-engine", min_python=(3, 99))
    with pytest.raises(PeerUnavailable, match=r"future-engine==1.0 needs Python >= 3.99"):
        ensure_environment(peer, tmp_path)
    assert not (tmp_path / "future").exists()       # nothing was installed


def test_a_virtualenv_installed_for_the_same_requirement_is_reused(tmp_path):
    peer = Peer("cached", "event-driven", "cached-engine==2.0", "cached_engine", "cached-engine",
                min_python=(3, 99))                 # would be unavailable if it were installed
    (tmp_path / "cached" / "bin").mkdir(parents=True)
    (tmp_path / "cached" / "bin" / "python").symlink_to(sys.executable)
    (tmp_path / "cached" / MARKER).write_text('{"requirement": "cached-engine==2.0"}')
    environment = ensure_environment(peer, tmp_path)
    assert environment.install_seconds is None
    assert environment.python == tmp_path / "cached" / "bin" / "python"


def test_a_cached_virtualenv_whose_python_no_longer_runs_is_installed_again(tmp_path):
    peer = Peer("broken", "event-driven", "broken-engine==2.0", "broken_engine", "broken-engine",
                min_python=(3, 99))                 # reinstalling it fails at once, visibly
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / MARKER).write_text('{"requirement": "broken-engine==2.0"}')
    with pytest.raises(PeerUnavailable, match="needs Python >= 3.99"):
        ensure_environment(peer, tmp_path)


def test_an_error_output_is_cut_to_its_last_line_for_the_table():
    text = "Traceback (most recent call last):\n  File ...\nKeyError: 'funding_rate'\n\n"
    assert last_line(text) == "KeyError: 'funding_rate'"
    assert len(last_line("x" * 500)) == 160
