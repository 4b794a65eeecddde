"""The columns of a CSV file the backtest reads (candles, funding rates): its header line, or
Binance's kline layout for a kline download without one, and what to say when neither fits.

    columns, has_header = file_columns(path, first_row, ("open_time", "open", ...))
    for number, row in iter_rows(path, FUNDING_COLUMNS, what="funding rates"):
        ...                      # number: the row's line in the file, for error messages
"""

import csv
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import IO

# Binance's kline files (data.binance.vision) hold these twelve columns, the answer of
# GET /fapi/v1/klines: "Open time, Open, High, Low, Close, Volume, Close time, Quote asset
# volume, Number of trades, Taker buy base asset volume, Taker buy quote asset volume,
# Ignore" (https://github.com/binance/binance-public-data, README "Klines"). The files of
# 2022 on start with a header line naming them so; the older ones have none.
BINANCE_KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time",
                         "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume",
                         "ignore")


def first_line(handle: IO[str]) -> tuple[str, list[str] | None]:
    """(line 1 as read, its fields, names trimmed: "open_time, open"); None for an empty file."""
    line = handle.readline()
    fields = next(csv.reader([line]), None)
    return line, None if fields is None else [field.strip() for field in fields]


def file_columns(path: Path, first: list[str] | None,
                 required: tuple[str, ...], expected: str | None = None) -> tuple[list[str], bool]:
    """(the file's column names, whether line 1 is a header line naming them). A file without
    a header whose first row is one of Binance's klines (its twelve columns, all numbers) has
    BINANCE_KLINE_COLUMNS; otherwise line 1 must name every `required` column, else
    ValueError saying what is wrong with it and the header line `expected` (default: the
    required columns)."""
    if first is not None and is_binance_kline_row(first) and \
            set(required) <= set(BINANCE_KLINE_COLUMNS):
        return list(BINANCE_KLINE_COLUMNS), False
    check_header(path, first, required, expected)
    assert first is not None    # check_header refuses a file without one
    return first, True


def is_binance_kline_row(fields: list[str]) -> bool:
    """A row as Binance's kline files hold it: twelve numbers, the first a whole one."""
    return len(fields) == len(BINANCE_KLINE_COLUMNS) and fields[0].isdigit() and \
        all(_is_number(field) for field in fields)


def iter_rows(path: Path, required: tuple[str, ...], what: str = "candles",
              expected: str | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs, read as they are used (a year of 1m candles is 525,600
    rows: holding them all as dicts next to the candles doubled the peak memory of loading);
    ValueError when the file or its header is unusable (`file_columns`). utf-8-sig: a CSV
    saved by Excel starts with a byte order mark, which would otherwise be part of the
    first column name."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            line, first = first_line(handle)
            columns, has_header = file_columns(path, first, required, expected)
            lines = handle if has_header else chain((line,), handle)
            reader = csv.DictReader(lines, fieldnames=columns)
            before = 1 if has_header else 0     # line 1, read above
            for row in reader:
                yield before + reader.line_num, row
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(unreadable(path, exc, what)) from exc


# What a file that is no text CSV starts with, and what to do about it.
NOT_CSV = ((b"PK\x03\x04", "a zip archive (Binance's kline downloads come zipped): unzip it "
            "and pass the .csv inside"),
           (b"\x1f\x8b", "a gzip file: unpack it (gunzip) and pass the .csv"),
           (b"\xff\xfe", "text saved as UTF-16: save it as a UTF-8 CSV"),
           (b"\xfe\xff", "text saved as UTF-16: save it as a UTF-8 CSV"))


def unreadable(path: Path, exc: Exception, what: str = "candles") -> str:
    """Why `path` cannot be read as `what` (candles, funding rates): what it is when its
    first bytes say (a zip or gzip download, UTF-16 text), else the reader's own error."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError:
        head = b""
    for magic, kind in NOT_CSV:
        if head.startswith(magic):
            return f"{path}: cannot read {what}: the file is {kind}"
    return f"{path}: cannot read {what} ({exc})"


def check_header(path: Path, header: list[str] | None, required: tuple[str, ...],
                 expected: str | None = None) -> None:
    missing = [c for c in required if c not in (header or [])]
    if missing:
        expected = expected or f"the header line {','.join(required)}"
        raise ValueError(f"{path}: {_header_problem(header or [], missing)} "
                         f"(expected {expected})")


def _header_problem(header: list[str], missing: list[str]) -> str:
    """What is wrong with a header lacking `missing`, in the words of the usual mistakes: an
    empty file, no header at all (a file of values that are no Binance klines: add the
    line), another separator, capitalised names."""
    if not any(name.strip() for name in header):
        return "the file is empty"
    if _is_number(header[0]):
        return ("line 1 holds values, not column names: the file has no header line (only "
                "Binance's kline files, of 12 columns, are read without one); add one at "
                "the top")
    if len(header) == 1 and (separator := next((c for c in ";\t|" if c in header[0]), None)):
        return f"line 1: columns separated by {separator!r}, not commas"
    if all(name in (column.strip().lower() for column in header) for name in missing):
        return f"line 1: column names are lower-case: {', '.join(missing)}"
    return f"line 1: missing column(s) {', '.join(missing)}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
