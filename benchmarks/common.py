"""Shared helpers of the benchmark scripts: seeded synthetic candles, CSV output,
percentiles, peak RSS and the figure lines every script prints.

The scripts run from a fresh clone with `python benchmarks/<name>.py`; importing this
module puts the repository root on `sys.path` so the project need not be installed.

    candles = random_walk_candles("BTCUSDT", count=43_200, seed=1)
    print(figure("p99 per symbol-tick", 0.8, "ms", goal="< 2 ms", baseline="0.05 ms"))
"""

import argparse
import csv
import math
import os
import random
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from loguru import logger  # noqa: E402 - after the sys.path fix on purpose

from trader.domain import Candle  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
MINUTES_PER_DAY = 24 * 60

# Start prices and ticks of the symbols the simulator knows (sim_rules.DEFAULT_RULES);
# anything else gets a generic price and the simulator's generic 4-decimal tick.
KNOWN_SYMBOLS: dict[str, tuple[Decimal, Decimal]] = {
    "BTCUSDT": (Decimal("60000"), Decimal("0.1")),
    "ETHUSDT": (Decimal("3000"), Decimal("0.01")),
    "XRPUSDT": (Decimal("0.6"), Decimal("0.0001")),
    "SOLUSDT": (Decimal("150"), Decimal("0.01")),
    "BNBUSDT": (Decimal("550"), Decimal("0.01")),
}
GENERIC = (Decimal("25"), Decimal("0.0001"))


def script_parser(doc: str | None) -> argparse.ArgumentParser:
    """The command line of a benchmark script, its --help showing the module docstring
    whole (what it measures and how to run it), as written."""
    return argparse.ArgumentParser(description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def bench_symbols(count: int) -> list[str]:
    """`count` symbols: the five the simulator knows first, then generic ones (BENCH6USDT...)."""
    known = list(KNOWN_SYMBOLS)
    return known[:count] + [f"BENCH{n}USDT" for n in range(len(known) + 1, count + 1)]


def random_walk_candles(symbol: str, count: int, *, seed: int, start: datetime = START,
                        interval: timedelta = MINUTE) -> list[Candle]:
    """Seeded 1m candles with BTC-like volatility (~0.08 % per minute, ~60 % a year).

    The per-minute volatility itself wanders (log-AR(1)) and a small drift switches every
    few hours, so the market has quiet spells, bursts and trends: the strategy, the regime
    engine and the breakers all get work, as on real data.
    """
    rng = random.Random(f"{symbol}:{seed}")
    price_dec, tick = KNOWN_SYMBOLS.get(symbol, GENERIC)
    price = float(price_dec)
    log_vol, drift = math.log(0.0008), 0.0
    candles: list[Candle] = []
    for index in range(count):
        log_vol = math.log(0.0008) + 0.98 * (log_vol - math.log(0.0008)) + rng.gauss(0, 0.12)
        if index % 240 == 0:
            drift = rng.gauss(0, 0.00015)
        sigma = math.exp(log_vol)
        open_ = price
        path = [open_]
        for _ in range(4):   # four sub-steps give a realistic high/low around open/close
            path.append(path[-1] * math.exp(drift / 4 + rng.gauss(0, sigma / 2)))
        price = path[-1]
        candles.append(_candle(symbol, start + interval * index, interval, path, tick,
                               rng.uniform(5, 50)))
    return candles


def _candle(symbol: str, open_time: datetime, interval: timedelta, path: list[float],
            tick: Decimal, volume: float) -> Candle:
    def on_tick(value: float) -> Decimal:
        return (Decimal(repr(value)) / tick).to_integral_value() * tick

    open_, close = on_tick(path[0]), on_tick(path[-1])
    high = max(on_tick(max(path)), open_, close)
    low = min(on_tick(min(path)), open_, close)
    return Candle(symbol, open_time, interval, open_, high, low, close,
                  Decimal(f"{volume:.3f}"))


def write_candles_csv(path: Path, candles: Sequence[Candle]) -> Path:
    """Write candles in the format `trader.market.replay.load_candles` reads."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["open_time", "open", "high", "low", "close", "volume"])
        for candle in candles:
            writer.writerow([int(candle.open_time.timestamp() * 1000), candle.open, candle.high,
                             candle.low, candle.close, candle.volume])
    return path


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def peak_rss_mb(pid: int | str = "self") -> float:
    """VmHWM (peak resident set size) of a process from /proc, in MB (Linux only)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def quiet_logs(level: str = "WARNING") -> None:
    """Log to stderr at `level` only: the INFO lines of thousands of ticks would be the
    benchmark's main cost otherwise (production logs INFO; see the README)."""
    logger.remove()
    logger.add(sys.stderr, level=level)


@contextmanager
def scratch_dir(prefix: str, base: str | None = None) -> Iterator[Path]:
    """A temporary directory (under `base`, e.g. /dev/shm, when given), removed after."""
    with tempfile.TemporaryDirectory(prefix=prefix, dir=base) as path:
        yield Path(path)


def shm_available() -> bool:
    return os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)


def figure(name: str, value: float, unit: str, *, goal: str = "", baseline: str = "") -> str:
    """One result line: the name, the value, the goal and the same-run baseline beside it."""
    parts = [f"{name:<44} {value:>12,.3f} {unit}"]
    if goal:
        parts.append(f"goal {goal}")
    if baseline:
        parts.append(f"baseline {baseline}")
    return "   ".join(parts)
