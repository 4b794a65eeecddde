"""What the tick derives from candles as they close equals what it computed from the whole
history before (trader/market/history.py, trader/strategy/regime.py `classify_ranges`):
the higher timeframe equals `aggregate`, the float regime class equals the exact Decimal
reading or defers to it, on random candles with gaps, evictions and backfills."""

import operator
from collections import deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trader.breakers import regime_of
from trader.domain import Candle
from trader.market import history as history_module
from trader.market.history import CandleHistory
from trader.market.indicators import true_ranges, wilder_average
from trader.strategy.base import aggregate
from trader.strategy.regime import (
    DEFAULT_THRESHOLDS,
    RangeWindow,
    Regime,
    RegimeThresholds,
    _float_bands,
    _wilder_float,
    classify_ranges,
    read_regime,
)

START = datetime(2024, 3, 1, 0, 3, tzinfo=UTC)     # not on the 5-minute grid on purpose
MINUTE = timedelta(minutes=1)
WINDOW = DEFAULT_THRESHOLDS.lookback - 1


def candle(index: int, price: Decimal, move: Decimal, spread: Decimal) -> Candle:
    close = max(price + move, Decimal("0.0001"))
    high = max(price, close) + spread
    low = max(min(price, close) - spread, Decimal("0.00005"))
    return Candle("BTCUSDT", START + MINUTE * index, MINUTE, price, high, low, close,
                  Decimal(index % 7))


@st.composite
def candle_runs(draw: st.DrawFn, max_size: int = 260) -> list[Candle]:
    """Candles in time order with random moves, ranges and gaps (missing minutes)."""
    count = draw(st.integers(0, max_size))
    moves = draw(st.lists(st.decimals("-3", "3", places=2), min_size=count, max_size=count))
    spreads = draw(st.lists(st.decimals("0", "4", places=2), min_size=count, max_size=count))
    gaps = draw(st.lists(st.sampled_from([0, 0, 0, 0, 0, 0, 1, 3]), min_size=count,
                         max_size=count))
    rows, index, price = [], 0, Decimal("100")
    for move, spread, gap in zip(moves, spreads, gaps, strict=True):
        index += 1 + gap
        rows.append(candle(index, price, move, spread))
        price = rows[-1].close
    return rows


@settings(max_examples=80, deadline=None)
@given(candle_runs(), st.integers(3, 60), st.integers(1, 6))
def test_higher_timeframe_kept_as_candles_close_equals_aggregate(
        candles: list[Candle], maxlen: int, factor: int) -> None:
    history = CandleHistory(maxlen, factor, WINDOW)
    for number, row in enumerate(candles):
        history.append(row)
        if number % 5 == 0 or number == len(candles) - 1:
            assert history.closed() == list(history)
            assert history.higher() == aggregate(history.closed(), factor)


@settings(max_examples=80, deadline=None)
@given(candle_runs(), st.integers(3, 60), st.integers(2, 6), st.data())
def test_higher_timeframe_read_at_any_moments_equals_aggregate(
        candles: list[Candle], maxlen: int, factor: int, data: st.DataObject) -> None:
    """Reads at random moments (none for a while, several in a row), a caller changing the
    list it got, a backfill halfway: each read is what `aggregate` builds."""
    history = CandleHistory(maxlen, factor, WINDOW)
    reads = data.draw(st.lists(st.integers(0, 2), min_size=len(candles), max_size=len(candles)))
    backfill_at = data.draw(st.integers(0, len(candles)))
    for number, (row, times) in enumerate(zip(candles, reads, strict=True)):
        if number == backfill_at:
            history.clear()
        history.append(row)
        for _ in range(times):
            higher = history.higher()
            assert higher == aggregate(history.closed(), factor)
            if higher:
                higher.pop()                          # the caller's own list
                higher.append(candles[0])


def test_a_read_merges_only_the_groups_completed_since_the_last_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def flat(index: int) -> Candle:
        return candle(index, Decimal("100"), Decimal("1"), Decimal("1"))

    history = CandleHistory(1000, 5, WINDOW, [flat(n) for n in range(2, 1102)])   # on the grid
    assert len(history.higher() or []) == 200
    merges: list[Candle] = []
    original = history_module._Group.merged

    def counting(*args: Any) -> Candle:
        merges.append(original(*args))
        return merges[-1]

    monkeypatch.setattr(history_module._Group, "merged", counting)
    history.extend(flat(n) for n in range(1102, 1112))   # two groups complete, two leave
    assert history.higher() == aggregate(history.closed(), 5)
    assert len(merges) == 2


@settings(max_examples=60, deadline=None)
@given(candle_runs(), st.integers(5, 40))
def test_a_backfill_that_rebuilds_the_history_rebuilds_the_higher_timeframe(
        candles: list[Candle], keep: int) -> None:
    history = CandleHistory(50, 5, WINDOW, candles[:keep])
    history.clear()                               # what the feed watchdog's backfill does
    history.extend(candles)
    assert history.higher() == aggregate(history.closed(), 5)
    assert history.closed() == candles[-50:]


@settings(max_examples=100, deadline=None)
@given(candle_runs(max_size=160), st.integers(0, 159))
def test_float_regime_class_is_the_exact_reading_or_defers_to_it(
        candles: list[Candle], cut: int) -> None:
    history = CandleHistory(1000, 5, WINDOW, candles[:cut + 1])
    exact = read_regime(history.closed())
    quick = classify_ranges(history.ranges)
    if quick is not None:
        assert exact is not None and quick is exact.regime
    assert regime_of(history) == (exact.regime if exact else None)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.decimals("0", "50", places=4), min_size=21, max_size=99),
       st.sampled_from([7, 14, 21]))
def test_wilder_as_one_weighted_sum_matches_the_decimal_loop(ranges: list[Decimal],
                                                             period: int) -> None:
    exact = wilder_average(ranges, period)
    assert exact is not None
    quick = _wilder_float([float(r) for r in ranges], period)
    assert abs(quick - float(exact)) <= 1e-9 * max(1.0, float(exact))


@settings(max_examples=60, deadline=None)
@given(candle_runs(max_size=200), st.integers(1, 40), st.integers(0, 199))
def test_the_last_close_in_float_is_the_newest_candles_after_evictions_and_a_backfill(
        candles: list[Candle], maxlen: int, cut: int) -> None:
    """`last_close` (the next true range's previous close, the crash test's price) is
    float(history[-1].close) whatever happened before: evictions, a clear and a backfill
    (the feed watchdog's clear + extend); 0.0 while empty."""
    history = CandleHistory(maxlen, 5, WINDOW)
    assert history.last_close == 0.0
    for row in candles:
        history.append(row)
        assert history.last_close == float(history[-1].close)
    history.clear()
    assert history.last_close == 0.0
    history.extend(candles[:cut])
    assert history.last_close == (float(history[-1].close) if history else 0.0)


class _FixedRatio(RangeWindow):
    """A full window of `slow` ranges whose volatility ratio is `ratio` exactly."""

    def __init__(self, ratio: float, thresholds: RegimeThresholds) -> None:
        super().__init__(thresholds.slow, (thresholds.fast, thresholds.slow))
        for _ in range(thresholds.slow):
            self.append(1.0)
        self.fixed = ratio

    def ratio(self, fast: int, slow: int) -> float | None:
        return self.fixed


def two_pass_class(ratio: float, thresholds: RegimeThresholds) -> Regime | None:
    """The rule as first written: None within any band, else the first threshold reached."""
    bands = _float_bands(thresholds)
    if any(low <= ratio <= high for low, _, high, _ in bands):
        return None
    return next((regime for _, threshold, _, regime in bands if ratio >= threshold), Regime.LOW)


@settings(max_examples=300, deadline=None)
@given(st.floats(0.5, 2.5), st.sampled_from([0.0, 1e-10, -1e-10, 1e-9, -1e-9, 2e-9, -2e-9]),
       st.sampled_from(["normal", "high", "extreme", None]),
       st.sampled_from([DEFAULT_THRESHOLDS,
                        RegimeThresholds(normal=Decimal("0.8"), high=Decimal("1.0")),
                        RegimeThresholds(normal=Decimal("0.9"), high=Decimal("0.9000000001"),
                                         extreme=Decimal("0.9000000002"))]))
def test_the_float_class_takes_one_pass_over_the_bands(
        ratio: float, nudge: float, near: str | None, thresholds: RegimeThresholds) -> None:
    """One pass over the bands, highest first, gives what comparing with every band and
    then every threshold gives: None within FLOAT_MARGIN of any threshold (bands of
    thresholds closer than the margin overlap), else the regime of the first threshold
    reached; ratios at, just inside and just outside a band's edges included."""
    if near is not None:
        ratio = float(getattr(thresholds, near)) * (1 + nudge)
    assert classify_ranges(_FixedRatio(ratio, thresholds), thresholds) \
        is two_pass_class(ratio, thresholds)


def test_float_ranges_are_the_windows_true_ranges() -> None:
    rows = [candle(n, Decimal(100 + n % 9), Decimal(n % 5 - 2), Decimal(n % 3)) for n in range(130)]
    history = CandleHistory(1000, 5, WINDOW, rows)
    exact = true_ranges(rows[-DEFAULT_THRESHOLDS.lookback:])[1:]
    assert list(history.ranges) == [float(r) for r in exact]


def test_a_ratio_on_a_threshold_is_left_to_the_exact_reading() -> None:
    """Equal ranges give VR 1: NORMAL by default; with a threshold at 1.0 float rounding
    could land either side, so the exact reading decides."""
    ranges = [1.5] * WINDOW
    assert classify_ranges(ranges) is Regime.NORMAL
    on_threshold = RegimeThresholds(normal=Decimal("0.8"), high=Decimal("1.0"))
    assert classify_ranges(ranges, on_threshold) is None
    assert classify_ranges(ranges[:20]) is None       # fewer ranges than the slow ATR needs


# --- the window's Wilder averages kept range by range ---------------------------------------
SPANS = st.tuples(st.floats(0, 1), st.sampled_from([1.0, 1.0, 1.0, 1e-6, 1e6, 1e12])).map(
    lambda pair: pair[0] * pair[1])


@settings(max_examples=150, deadline=None)
@given(st.lists(SPANS, max_size=350), st.sampled_from([7, 20, 21, 22, 40, WINDOW]))
def test_wilder_kept_range_by_range_equals_the_weighted_sum_of_the_window(
        spans: list[float], size: int) -> None:
    window = RangeWindow(size, (DEFAULT_THRESHOLDS.fast, DEFAULT_THRESHOLDS.slow))
    for count, span in enumerate(spans, 1):
        window.append(span)
        ranges = spans[max(0, count - size):count]
        assert list(window) == ranges
        for period in (DEFAULT_THRESHOLDS.fast, DEFAULT_THRESHOLDS.slow, 14):   # 14: not kept
            kept = window.wilder(period)
            if len(ranges) < period:
                assert kept is None
                continue
            exact = _wilder_float(ranges, period)
            assert kept is not None and abs(kept - exact) <= 1e-12 * exact + 1e-300


def kept_and_summed(spans: list[float]) -> list[tuple[float, float]]:
    """Each slow average as the window keeps it and as the weighted sum gives it."""
    window = RangeWindow(WINDOW, (DEFAULT_THRESHOLDS.fast, DEFAULT_THRESHOLDS.slow))
    pairs = []
    for count, span in enumerate(spans, 1):
        window.append(span)
        ranges = spans[max(0, count - WINDOW):count]
        if len(ranges) >= DEFAULT_THRESHOLDS.slow:
            kept = window.wilder(DEFAULT_THRESHOLDS.slow)
            assert kept is not None
            pairs.append((kept, _wilder_float(ranges, DEFAULT_THRESHOLDS.slow)))
    return pairs


def test_a_spike_leaving_the_window_leaves_no_rounding_behind() -> None:
    """One range 1e12 times the others: taken out of the sums by subtraction, it would
    leave its rounding (~1e-4 of a small range) in them; they are summed afresh then."""
    spans = [1e12 if index == 50 else 0.5 + (index % 7) / 10 for index in range(300)]
    for kept, exact in kept_and_summed(spans):
        assert abs(kept - exact) <= 1e-12 * exact


def test_volatility_dying_down_leaves_no_rounding_behind() -> None:
    """Ranges shrinking by half each candle: the rounding of the sums as they were would
    soon outweigh what is left in them; they are summed afresh as they shrink."""
    spans = [0.5 + (index % 7) / 10 for index in range(120)] + [2.0 ** -index
                                                                  for index in range(90)]
    for kept, exact in kept_and_summed(spans):
        assert abs(kept - exact) <= 1e-12 * exact


# --- the list the strategy reads, the tail the crash breaker reads ----------------------------
@settings(max_examples=60, deadline=None)
@given(candle_runs(max_size=200), st.integers(1, 40), st.integers(0, 12))
def test_closed_and_tail_are_the_history_as_lists_that_later_candles_leave_alone(
        candles: list[Candle], maxlen: int, size: int) -> None:
    history = CandleHistory(maxlen, 5, WINDOW)
    handed: list[tuple[list[Candle], list[Candle]]] = []
    versions = {history.version}
    for row in candles:
        history.append(row)
        versions.add(history.version)
        closed = history.closed()
        assert closed == list(history) and history.closed() is closed
        assert history.tail(size) == closed[-size:]
        handed.append((closed, list(closed)))
    for closed, copy in handed:               # a list handed out is never changed after
        assert closed == copy
    assert len(versions) == len(candles) + 1  # every candle is a new version
    history.clear()
    assert history.version not in versions and history.closed() == [] and history.tail(3) == []


def sums_as_first_written(spans: list[float], size: int) -> list[list[tuple[float, float]]]:
    """RangeWindow's seed and later sums after each range, as its `append` was first
    written (peaks compared with half of them each time, a count of ranges for the
    periodic summing afresh), each sum taken afresh when it shrank below half its peak (or
    every `size` ranges, all of them): the reference for the kept halves and countdown."""
    periods = (DEFAULT_THRESHOLDS.fast, DEFAULT_THRESHOLDS.slow)
    window: deque[float] = deque(maxlen=size)
    state = {p: [0.0, 0.0, 0.0, 0.0] for p in periods}     # seed, later, their peaks
    keep = {p: (p - 1) / p for p in periods}
    moving_weight = {p: keep[p] ** max(size - 1 - p, 0) for p in periods}
    out, appended = [], 0
    for span in spans:
        count, shrunk = len(window), {}
        full = count == size
        oldest = window[0] if full else 0.0
        for p, sums in state.items():
            if full:
                if p < count:
                    moving = window[p]
                    sums[0] += moving - oldest
                    sums[1] = keep[p] * (sums[1] - moving_weight[p] * moving) + span
                else:
                    sums[0] += span - oldest
            elif count < p:
                sums[0] += span
            else:
                sums[1] = keep[p] * sums[1] + span
            sums[2], sums[3] = max(sums[2], sums[0]), max(sums[3], sums[1])
            shrunk[p] = (sums[0] < 0.5 * sums[2], sums[1] < 0.5 * sums[3])
        window.append(span)
        appended += 1
        for p, sums in state.items():
            every = appended % size == 0
            if every or shrunk[p][0]:
                sums[0] = sums[2] = sum(islice(window, p))
            if every or shrunk[p][1]:
                weights = [keep[p] ** (len(window) - 1 - i) for i in range(p, len(window))]
                sums[1] = sums[3] = sum(map(operator.mul, weights, islice(window, p, None)))
        out.append([(sums[0], sums[1]) for sums in state.values()])
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(SPANS, st.sampled_from([0.0, 1e9, 1e-9])), min_size=130,
               max_size=350),
       st.sampled_from([7, 20, 21, 22, 40, WINDOW]))
def test_the_kept_sums_are_those_of_the_first_written_append_to_the_bit(
        spans: list[float], size: int) -> None:
    """Keeping half of each peak with it, skipping the half test when a sum rises to a new
    peak (peaks are >= 0: a sum above one is above half of it) and counting down to the
    periodic summing afresh change no float: each sum is the same float as before."""
    window = RangeWindow(size, (DEFAULT_THRESHOLDS.fast, DEFAULT_THRESHOLDS.slow))
    for span, expected in zip(spans, sums_as_first_written(spans, size), strict=True):
        window.append(span)
        assert [(sums.seed, sums.later) for sums in window._sums.values()] == expected


def test_a_candle_of_an_equal_interval_keeps_the_higher_timeframe_and_another_ends_it() -> None:
    """The interval is compared by identity first (the reader's candles share one): an
    equal interval that is another object is still the same interval."""
    history = CandleHistory(50, 5, WINDOW)
    for index in range(12):
        price = Decimal(100 + index)
        history.append(Candle("BTCUSDT", START + MINUTE * index, timedelta(seconds=60),
                              price, price + 1, price - 1, price))
    assert history.higher() == aggregate(history.closed(), 5) and history.higher()
    history.append(Candle("BTCUSDT", START + MINUTE * 12, 2 * MINUTE, Decimal(1), Decimal(2),
                          Decimal(1), Decimal(1)))
    assert history.higher() is None


@settings(max_examples=60, deadline=None)
@given(candle_runs(), st.integers(3, 60), st.integers(2, 120))
def test_the_last_ranges_sum_is_the_sum_of_the_kept_ranges_newest_first(
        candles: list[Candle], maxlen: int, range_window: int) -> None:
    """`last_ranges_sum` (the crash breaker's, from the spans kept beside the candles) is
    the float `sum(islice(reversed(ranges), count))` gives, through evictions, the spans'
    trimming and a backfill (clear + extend), for every count of ranges of candles held."""
    history = CandleHistory(maxlen, 1, range_window)
    for number, row in enumerate(candles):
        history.append(row)
        if number == len(candles) // 2:
            kept = list(history)
            history.clear()
            history.extend(kept)
        ranges = history.ranges     # (may hold ranges of candles evicted already)
        for count in range(1, min(len(ranges), len(history) - 1) + 1):
            assert history.last_ranges_sum(count) == sum(islice(reversed(ranges), count))


def test_a_shrunk_sum_alone_is_taken_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the periodic summings, a sum that fell below half its peak is summed afresh
    and the others are left as they are (the weighted `later` sums cost ~80 products)."""
    from trader.strategy import regime as regime_module
    taken: list[tuple[int, str]] = []
    for part in ("seed", "later"):
        original = getattr(regime_module._WilderSums, f"take_{part}")

        def counted(sums: Any, ranges: Any, original: Any = original, part: str = part) -> None:
            taken.append((sums.period, part))
            original(sums, ranges)

        monkeypatch.setattr(regime_module._WilderSums, f"take_{part}", counted)
    window = RangeWindow(WINDOW, (DEFAULT_THRESHOLDS.fast, DEFAULT_THRESHOLDS.slow))
    for _ in range(WINDOW + 2):                 # full, past its first periodic summing
        window.append(1.0)
    taken.clear()
    first = []
    for _ in range(10):                         # volatility dies down: the fast later first
        window.append(1e-6)
        if taken and not first:
            first = list(taken)
    assert first == [(DEFAULT_THRESHOLDS.fast, "later")]
    fast, slow = (window.wilder(p) for p in (DEFAULT_THRESHOLDS.fast, DEFAULT_THRESHOLDS.slow))
    ranges = list(window)
    assert fast == pytest.approx(_wilder_float(ranges, DEFAULT_THRESHOLDS.fast), rel=1e-12)
    assert slow == pytest.approx(_wilder_float(ranges, DEFAULT_THRESHOLDS.slow), rel=1e-12)
