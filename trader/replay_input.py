"""A replay's candles (`tradebot run --replay`): --data files, else TRADEBOT_REPLAY_FILE,
else the bundled data; every symbol's on one clock, or a configuration error that says why."""

from pathlib import Path

from trader.config import ConfigError, Settings
from trader.domain import Candle


def replay_candles(settings: Settings, data: list[Path] | None,
                   symbol: str | None = None) -> dict[str, list[Candle]]:
    """The replay's candles: --data files, else TRADEBOT_REPLAY_FILE, else the bundled data.
    `symbol` (--symbol) names the symbol of files whose names do not say it (one series)."""
    from trader.backtest_input import candle_files
    from trader.market.replay import load_bundled
    paths = data or ([settings.replay_file] if settings.replay_file else [])
    if not paths:
        bundled = load_bundled()
        missing = [s for s in settings.symbols if s not in bundled]
        if missing:
            raise ConfigError([f"TRADEBOT_SYMBOLS: no bundled candles for {', '.join(missing)} "
                               f"(the bundled data has {', '.join(sorted(bundled))}); give "
                               "your own with --data FILE"])
        return _on_one_clock({s: bundled[s] for s in settings.symbols}, "TRADEBOT_SYMBOLS")
    source = "--data" if data else "TRADEBOT_REPLAY_FILE"
    try:
        # checked as `tradebot backtest --data` checks them (a symbol's several files one
        # series), then read into memory: a replay is paced, not long
        loaded = {name: list(rows) for name, rows in candle_files(paths, symbol).items()}
    except (OSError, ValueError) as exc:       # unreadable file, bad row, unknown time unit
        raise ConfigError([f"{source}: {exc}"]) from None
    return _on_one_clock(loaded, source)


def _on_one_clock(candles: dict[str, list[Candle]], source: str) -> dict[str, list[Candle]]:
    """`candles` when every symbol's candles share a moment with every other's; ConfigError
    otherwise (a replay runs one clock: a symbol before its first candle or after its last
    one is stale data, STALE_DATA, for the whole of the other's period)."""
    if len(candles) < 2:
        return candles
    spans = {s: (rows[0].open_time, rows[-1].open_time) for s, rows in candles.items()}
    if max(first for first, _ in spans.values()) <= min(last for _, last in spans.values()):
        return candles
    shown = ", ".join(f"{s} ({first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC)"
                      for s, (first, last) in spans.items())
    raise ConfigError([f"{source}: a replay runs one clock, and the candles of {shown} do "
                       "not all overlap; replay them one at a time (`tradebot backtest` runs "
                       "periods apart one after the other)"])

