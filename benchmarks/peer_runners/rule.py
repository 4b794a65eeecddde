"""The strategy rule every peer runs (tradebot runs its own default strategy, the same rule:
trader/strategy/default.py), and the JSON line each runner prints. Pure Python: the runners
import it from their own folder inside each peer's virtualenv.

On the close of a 5m candle, flat and with nothing pending:
LONG  when the close breaks above the highest high of the previous 30 candles while the
      close before it had not broken its own channel (only the breakout candle), EMA20 >
      EMA50, and the candle's body (close - open) is at least 0.8 x ATR14;
SHORT the mirror image.
Stop 1.5 x ATR14 from the entry, as a fraction of the close clamped to [0.4 %, 2 %]; target
2 x the stop. One position at a time, 1,000 USDT of notional from a 10,000 USDT account,
1x leverage, taker fee 0.05 %. No time limit and no trailing (tradebot's default strategy
adds a 40-minute time limit, a trailing stop and its regime and risk rules: its trades
differ, its work per candle is that of the full engine).
"""

import argparse
import json
import resource
import time
from collections.abc import Sequence
from pathlib import Path

CHANNEL = 30
EMA_FAST = 20
EMA_SLOW = 50
ATR_PERIOD = 14
MIN_BODY_ATR = 0.8
STOP_ATR = 1.5
STOP_MIN, STOP_MAX = 0.004, 0.02
REWARD_RISK = 2.0
WARMUP = 120                 # closed candles before the first signal (tradebot's window)
TAKER_FEE = 0.0005
BALANCE = 10_000.0
NOTIONAL = 1_000.0
SYMBOL = "XRPUSDT"
RESULT_MARK = "RESULT "


def breakout(closes: Sequence[float], highs: Sequence[float], lows: Sequence[float]) -> int:
    """+1 when the last close breaks above the highest high of the previous CHANNEL candles
    and the close before it had not broken its own channel, -1 for the mirror break below,
    else 0. The sequences hold at least CHANNEL + 2 candles, oldest first."""
    last, before = closes[-1], closes[-2]
    if last > max(highs[-CHANNEL - 1:-1]) and before <= max(highs[-CHANNEL - 2:-2]):
        return 1
    if last < min(lows[-CHANNEL - 1:-1]) and before >= min(lows[-CHANNEL - 2:-2]):
        return -1
    return 0


def confirmed(side: int, open_: float, close: float, ema_fast: float, ema_slow: float,
              atr: float) -> bool:
    """The trend filter and the body filter of a breakout to `side` (+1 / -1)."""
    if atr <= 0:
        return False
    trend = ema_fast > ema_slow if side > 0 else ema_fast < ema_slow
    return trend and side * (close - open_) >= MIN_BODY_ATR * atr


def stop_fraction(atr: float, close: float) -> float:
    """The stop's distance from the entry as a fraction of the price."""
    return min(STOP_MAX, max(STOP_MIN, STOP_ATR * atr / close))


def peak_rss_mb() -> float:
    """This process's own peak resident set size in MB: VmHWM from /proc (Linux).

    Not getrusage's ru_maxrss: Linux carries it across fork + exec, so a runner started
    by benchmarks/peers.py would report at least the parent's size at the fork (~500 MB
    after it has written 500k candles), whatever the engine itself used."""
    status = Path("/proc/self/status")
    for line in status.read_text().splitlines() if status.exists() else ():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(*, candles: int, rows: int, seconds: float, trades: int, version: str,
           note: str = "") -> None:
    """The one line benchmarks/peers.py reads: `candles` 5m candles of market time, `rows`
    the candles the engine itself consumed (5x for an engine fed 1m candles), `seconds` the
    load + backtest wall time."""
    print(RESULT_MARK + json.dumps({
        "candles": candles, "rows": rows, "seconds": seconds, "trades": trades,
        "peak_rss_mb": peak_rss_mb(), "version": version, "note": note}), flush=True)


class Stopwatch:
    """`with Stopwatch() as watch: ...; watch.seconds` (wall clock, perf_counter)."""

    def __enter__(self) -> "Stopwatch":
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def arguments() -> argparse.Namespace:
    """--data (the folder peer_candles.write_candle_files filled) and --workdir (scratch)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    return parser.parse_args()
