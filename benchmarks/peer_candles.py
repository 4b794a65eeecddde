"""The candles every engine of benchmarks/peers.py runs on: a seeded XRPUSDT-like random walk
of 1m candles, the 5m candles aggregated from them, and the files each engine reads.

    minutes = one_minute_candles(count_5m=2_000, seed=7)     # (10_000, 6) float64
    candles = five_minute_candles(minutes)                   # (2_000, 6)
    write_tradebot_csv(folder / "XRPUSDT-5m.csv", candles)   # `tradebot backtest --data`

Rows are [open_time_ms, open, high, low, close, volume]: open time in ms since the epoch (UTC,
aligned on the 5-minute grid), prices on XRPUSDT's tick of 0.0001, volume in XRP on 0.1.
One price path: a 1m candle opens at the previous close. The volatility wanders (an hourly
log-AR(1) around 0.10 % a minute: 5m returns of ~0.3 % and 5m ranges of ~0.37 %, as in the
bundled XRPUSDT 5m data) and a drift switches every 4 hours with a weak pull back towards the
start price, so a 500k-candle run (4.75 years) stays between ~0.25 and ~1.5 USDT and the
breakout rule trades throughout. Needs numpy (the `[bench]` extra).
"""

import re
from pathlib import Path

import numpy as np

MINUTE_MS = 60_000
FIVE_MINUTES_MS = 5 * MINUTE_MS
START_MS = 1_704_067_200_000           # 2024-01-01 00:00 UTC, on the 5-minute grid
START_PRICE = 0.6
TICK = 0.0001
SUB_STEPS = 4                          # price points inside a minute: they make high and low
BASE_VOLATILITY = 0.0010               # per minute
MINUTES_PER_HOUR = 60
HOURS_PER_DRIFT = 4
COLUMNS = ("open_time", "open", "high", "low", "close", "volume")
SIZE = re.compile(r"(\d+(?:\.\d+)?)([kKmM]?)")


def parse_size(text: str) -> int:
    """"2k" -> 2000, "500k" -> 500000, "1M" -> 1000000, "1234" -> 1234; ValueError otherwise."""
    match = SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r}: a size is a count of 5m candles like 2k, 100k or 1500")
    number, unit = match.groups()
    value = float(number) * {"": 1, "k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000}[unit]
    if value < 1 or value != int(value):
        raise ValueError(f"{text!r}: a size must be a whole number of candles >= 1")
    return int(value)


def size_label(count: int) -> str:
    """2000 -> "2k", 500000 -> "500k", 1500 -> "1500"."""
    if count % 1_000_000 == 0:
        return f"{count // 1_000_000}M"
    return f"{count // 1_000}k" if count % 1_000 == 0 else str(count)


def one_minute_candles(count_5m: int, seed: int) -> np.ndarray:
    """5 x `count_5m` consecutive 1m candles, the same for the same arguments."""
    minutes = 5 * count_5m
    rng = np.random.default_rng(seed)
    hours = -(-minutes // MINUTES_PER_HOUR)
    log_returns = np.empty((hours, MINUTES_PER_HOUR * SUB_STEPS))
    log_base, log_vol, log_price, drift = np.log(BASE_VOLATILITY), np.log(BASE_VOLATILITY), 0.0, 0.0
    for hour in range(hours):   # sequential: the volatility and the pull depend on the past
        log_vol = log_base + 0.9 * (log_vol - log_base) + rng.normal(0.0, 0.25)
        if hour % HOURS_PER_DRIFT == 0:
            drift = rng.normal(0.0, 0.00012) - 0.002 * log_price / MINUTES_PER_HOUR
        step = np.exp(log_vol) / np.sqrt(SUB_STEPS)
        row = rng.normal(drift / SUB_STEPS, step, MINUTES_PER_HOUR * SUB_STEPS)
        log_returns[hour] = row
        log_price += row.sum()
    path = START_PRICE * np.exp(np.cumsum(log_returns.reshape(-1)[: minutes * SUB_STEPS]))
    points = np.round(np.concatenate(([START_PRICE], path)) / TICK) * TICK
    inside = points[1:].reshape(minutes, SUB_STEPS)
    opens = points[:-1:SUB_STEPS]
    candles = np.empty((minutes, 6))
    candles[:, 0] = START_MS + MINUTE_MS * np.arange(minutes)
    candles[:, 1] = opens
    candles[:, 2] = np.maximum(opens, inside.max(axis=1))
    candles[:, 3] = np.minimum(opens, inside.min(axis=1))
    candles[:, 4] = inside[:, -1]
    candles[:, 5] = np.round(rng.uniform(100_000.0, 1_100_000.0, minutes), 1)
    candles[:, 1:5] = np.round(candles[:, 1:5], 4)   # exact 4-decimal floats, as in the CSV
    return candles


def five_minute_candles(one_minute: np.ndarray) -> np.ndarray:
    """The 5m candles of consecutive 1m candles that start on the 5-minute grid: open of the
    first, highest high, lowest low, close of the last, summed volume."""
    if len(one_minute) % 5 or (len(one_minute) and one_minute[0, 0] % FIVE_MINUTES_MS):
        raise ValueError("1m candles must start on the 5-minute grid and fill whole 5m candles")
    groups = one_minute.reshape(-1, 5, 6)
    candles = np.empty((len(groups), 6))
    candles[:, 0] = groups[:, 0, 0]
    candles[:, 1] = groups[:, 0, 1]
    candles[:, 2] = groups[:, :, 2].max(axis=1)
    candles[:, 3] = groups[:, :, 3].min(axis=1)
    candles[:, 4] = groups[:, -1, 4]
    candles[:, 5] = np.round(groups[:, :, 5].sum(axis=1), 1)
    return candles


def write_tradebot_csv(path: Path, candles: np.ndarray) -> Path:
    """The candle CSV `tradebot backtest --data` reads (trader/data/README.md): a header, then
    open_time in ms, four prices with 4 decimals and the volume with 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, candles, fmt=["%d", "%.4f", "%.4f", "%.4f", "%.4f", "%.1f"],
               delimiter=",", header=",".join(COLUMNS), comments="")
    return path


def write_candle_files(folder: Path, count_5m: int, seed: int) -> dict[str, Path]:
    """Every input file of one size in `folder`: the 1m and 5m arrays (.npy, read by the peers'
    runners) and tradebot's CSV. Returns {"1m": ..., "5m": ..., "csv": ...}."""
    folder.mkdir(parents=True, exist_ok=True)
    minutes = one_minute_candles(count_5m, seed)
    candles = five_minute_candles(minutes)
    files = {"1m": folder / "XRPUSDT-1m.npy", "5m": folder / "XRPUSDT-5m.npy",
             "csv": folder / "XRPUSDT-5m.csv"}
    np.save(files["1m"], minutes)
    np.save(files["5m"], candles)
    write_tradebot_csv(files["csv"], candles)
    return files
