"""Candle CSV rows read fast but as before: each price is the Decimal its text writes
(digits and exponent kept), equal texts of a row and of the row before share one Decimal,
rows are numbered as csv.DictReader numbers them (blank lines, short rows), and one
symbol's replay batches are those of the general merge of several symbols."""

import asyncio
import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trader.clock import ManualClock
from trader.domain import Candle, utc
from trader.market.replay import ReplayFeed, iter_candles, load_candles

T0 = datetime(2024, 1, 1, tzinfo=UTC)
MS0 = int(T0.timestamp() * 1000)
HEADER = "open_time,open,high,low,close,volume\n"
FIVE_MINUTES = timedelta(minutes=5)


def price_text(cents: int, zeros: int) -> str:
    """A price as a file may write it: 12.34, 12.3400, 1234E-2 ..."""
    if zeros < 0:
        return f"{cents}E-2"
    return f"{cents // 100}.{cents % 100:02d}" + "0" * zeros


@st.composite
def rows(draw: st.DrawFn) -> list[tuple[str, str, str, str, str]]:
    """Consistent, plausible candle rows; each row opens where the last one closed."""
    count = draw(st.integers(1, 30))
    close = draw(st.integers(100, 10_000))
    texts, close_text = [], price_text(close, draw(st.integers(-1, 2)))
    for _ in range(count):
        open_, open_text = close, close_text
        close = draw(st.integers(max(100, open_ // 2), open_ * 2))
        close_text = price_text(close, draw(st.integers(-1, 2)))
        high = max(open_, close) + draw(st.integers(0, 50))
        low = min(open_, close) - draw(st.integers(0, min(open_, close) // 2))
        volume = draw(st.sampled_from(["", "0", "12.5", "3E+2"]))
        texts.append((open_text, price_text(high, draw(st.integers(-1, 2))),
                      price_text(low, draw(st.integers(-1, 2))), close_text, volume))
    return texts


def write(folder: Path, lines: list[str]) -> Path:
    path = folder / "XRPUSDT-5m.csv"
    path.write_text(HEADER + "".join(line + "\n" for line in lines))
    return path


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(texts=rows())
def test_each_price_is_the_decimal_its_text_writes_and_equal_texts_share_it(
        tmp_path: Path, texts: list[tuple[str, str, str, str, str]]) -> None:
    path = write(tmp_path, [f"{MS0 + n * 300_000},{','.join(row)}" for n, row in enumerate(texts)])
    expected = [Candle("XRPUSDT", utc(MS0 + n * 300_000), FIVE_MINUTES, D(o), D(h), D(low),
                       D(c), D(v) if v else D(0))
                for n, (o, h, low, c, v) in enumerate(texts)]
    for loaded in (load_candles(path), list(iter_candles(path, interval=FIVE_MINUTES))):
        assert repr(loaded) == repr(expected)
        for earlier, later in zip(loaded, loaded[1:], strict=False):
            assert later.open is earlier.close   # written alike: one Decimal
        for candle, row in zip(loaded, texts, strict=True):
            by_text = dict(zip(row[:4], (candle.open, candle.high, candle.low, candle.close),
                               strict=True))
            assert all(by_text[text] is value for text, value in zip(
                row[:4], (candle.open, candle.high, candle.low, candle.close), strict=True))


def dict_reader_line(path: Path, position: int) -> int:
    """The line csv.DictReader gives the row at `position` (0: the first after the header)."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        for index, _ in enumerate(reader):
            if index == position:
                return reader.line_num
    raise AssertionError("no such row")


@pytest.mark.parametrize(("lines", "position", "needle"), [
    ([f"{MS0},1,2,1,1,1", "", "", f"{MS0 + 300_000},1,2,1,abc,1"], 1, "a price is not a number"),
    ([f"{MS0},1,2,1,1,1", "", f"{MS0 + 300_000},1,2,1"], 1, "before its close column"),
    (["", f"{MS0},1,2,1,1,1", f"{MS0 + 300_000},1,2,1.5,1,1"], 1, "inconsistent candle"),
    ([f"{MS0},1,2,1,1,1", f"{MS0 + 300_000},1,30,1,1,1"], 1, "high 30 is more than 10 x"),
])
def test_a_bad_row_is_numbered_as_csv_dict_reader_numbers_it(
        tmp_path: Path, lines: list[str], position: int, needle: str) -> None:
    path = write(tmp_path, lines)
    line = dict_reader_line(path, position)
    for read in (load_candles, lambda p: list(iter_candles(p, interval=FIVE_MINUTES))):
        with pytest.raises(ValueError) as caught:
            read(path)
        assert f"line {line}: " in str(caught.value) and needle in str(caught.value)


def test_a_short_row_and_a_repeated_column_read_as_csv_dict_reader_reads_them(
        tmp_path: Path) -> None:
    path = tmp_path / "XRPUSDT-5m.csv"
    path.write_text("open_time,open,high,low,close,volume,close\n"
                    f"{MS0},1,2,1,1,7,1.5\n{MS0 + 300_000},1.5,2,1,9,,1.25\n")
    first, second = load_candles(path)
    assert (first.close, first.volume) == (D("1.5"), D(7))   # the last "close" column
    assert (second.close, second.volume) == (D("1.25"), D(0))
    path.write_text(HEADER + f"{MS0},1,2,1,1.5\n")   # no volume field at all
    assert load_candles(path)[0].volume == D(0)


symbols = st.sampled_from(["BTCUSDT", "XRPUSDT"])
candle_lists = st.lists(st.tuples(symbols, st.integers(0, 6)), max_size=20).map(
    lambda picks: [Candle(symbol, T0 + step * FIVE_MINUTES, FIVE_MINUTES, D(1), D(1), D(1),
                          D(1)) for symbol, step in picks])


async def replayed(candles: dict) -> list[tuple[datetime, list[Candle]]]:   # type: ignore[type-arg]
    clock = ManualClock(T0)
    return [(clock.now(), batch) async for batch in ReplayFeed(candles, clock)]


@settings(max_examples=80, deadline=None)
@given(candle_lists, st.booleans())
def test_one_symbols_batches_are_those_of_the_general_merge(candles: list[Candle],
                                                             streamed: bool) -> None:
    """Lists out of time order (sorted first), runs of one close time (one batch, sorted by
    symbol), iterators: one stream alone gives what it gives merged with an empty one."""
    def rows() -> object:
        return iter(candles) if streamed else candles

    alone = asyncio.run(replayed({"A": rows()}))
    merged = asyncio.run(replayed({"A": rows(), "B": []}))
    assert alone == merged
    assert [[id(c) for c in batch] for _, batch in alone] == \
        [[id(c) for c in batch] for _, batch in merged]
