"""The closed candles a history hands out without a copy (trader/market/candle_window.py)
read exactly as the list copy they replace, and keep reading as the candles of their
moment while the history goes on: candles appended, the kept list trimmed, a backfill
(clear + extend)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trader.domain import Candle
from trader.market.candle_window import CandleWindow
from trader.market.history import CandleHistory

START = datetime(2024, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)
MAXLEN = 7


def candle(n: int) -> Candle:
    price = Decimal(100 + n % 5)
    return Candle("BTCUSDT", START + STEP * n, STEP, price, price + 1, price - 1, price)


def assert_reads_as(window: CandleWindow, expected: list[Candle], slices: list[slice],
                    indexes: list[int]) -> None:
    assert len(window) == len(expected)
    assert window == expected and expected == window and not window != expected
    assert list(window) == expected
    assert list(reversed(window)) == list(reversed(expected))
    for part in slices:
        got = window[part]
        assert type(got) is list and got == expected[part], part
    for index in indexes:
        if -len(expected) <= index < len(expected):
            assert window[index] is expected[index], index
        else:
            with pytest.raises(IndexError):
                window[index]
    for item in expected[:2]:
        assert item in window and window.index(item) == expected.index(item)
        assert window.count(item) == expected.count(item)


bounds = st.none() | st.integers(-12, 12)
slices = st.lists(st.builds(slice, bounds, bounds, st.none() | st.sampled_from([1, 2, -1, -3])),
                  max_size=6)
# each step: append a candle (True, mostly: the kept list is trimmed past 2 x MAXLEN) or a
# backfill of the last few (False), then maybe look
steps = st.lists(st.tuples(st.integers(0, 9).map(bool), st.booleans()), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(steps, slices, st.lists(st.integers(-12, 12), max_size=6))
def test_a_window_reads_as_the_list_of_its_moment_whatever_comes_after(
        script: list[tuple[bool, bool]], parts: list[slice], indexes: list[int]) -> None:
    history, taken = CandleHistory(MAXLEN), []
    added = 0
    for append, look in script:
        if append or not history:
            history.append(candle(added))
            added += 1
        else:                               # the watchdog's backfill: clear + extend
            kept = list(history)
            history.clear()
            history.extend(kept[-3:])
        if look:
            window = history.closed()
            assert history.closed() is window, "the same window until a change"
            taken.append((window, list(history)))
    for window, expected in taken:
        assert_reads_as(window, expected, parts, indexes)


def test_windows_compare_with_lists_and_windows_only() -> None:
    history = CandleHistory(MAXLEN, candles=[candle(n) for n in range(3)])
    window = history.closed()
    assert window == CandleHistory(MAXLEN, candles=[candle(n) for n in range(3)]).closed()
    assert window != tuple(window), "as a list is not equal to a tuple"
    assert CandleHistory(MAXLEN).closed() == []
    with pytest.raises(TypeError):
        hash(window)


def test_an_int_index_reads_as_a_lists_within_and_past_both_ends() -> None:
    items = list(range(10))
    window = CandleWindow(items, 3, 8)      # type: ignore[arg-type]
    expected = items[3:8]
    for index in range(-7, 7):
        if -5 <= index < 5:
            assert window[index] == expected[index]
        else:
            with pytest.raises(IndexError):
                window[index]
    assert window[True] == expected[True]   # a bool indexes as an int, as in a list
