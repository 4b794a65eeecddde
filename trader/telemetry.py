"""Per-symbol telemetry counters shown on /status and written to the log.

    counters = Counters()
    counters.incr("BTCUSDT", "sl_attached")
    counters.set("BTCUSDT", "regime_state", "HIGH")
    counters.snapshot()  # {"BTCUSDT": {"sl_attached": 1, "regime_state": "HIGH", ...}}

Only the names in `COUNTER_NAMES` and `GAUGE_NAMES` exist, so a typo fails loudly
instead of creating a counter nobody reads.
"""

from decimal import Decimal

from loguru import logger

COUNTER_NAMES = (
    "tp_attached",
    "sl_attached",
    "reattach_attempts",
    "reattach_success",
    "partial_fills_count",
)
GAUGE_NAMES = (
    "regime_state",              # NORMAL / HIGH / EXTREME / LOW
    "risk_fraction_active",      # e.g. "0.025"
    "circuit_breaker_active",    # 1 while any breaker blocks the symbol, else 0
)
GAUGE_DEFAULTS: dict[str, int | str] = {
    "regime_state": "",
    "risk_fraction_active": "",
    "circuit_breaker_active": 0,
}

_NAMES = frozenset(COUNTER_NAMES + GAUGE_NAMES)
Value = int | str
# Built once: `logger.opt` makes a new logger per call, and the line is logged every
# TELEMETRY_EVERY of engine time (every candle of a 5-minute backtest).
_LAZY_LOGGER = logger.opt(lazy=True)


class Counters:
    """Counters and gauges per symbol (in memory; the engine logs and shows them)."""

    def __init__(self) -> None:
        self._by_symbol: dict[str, dict[str, Value]] = {}

    def _row(self, symbol: str) -> dict[str, Value]:
        row = self._by_symbol.get(symbol)
        if row is None:
            row = {name: 0 for name in COUNTER_NAMES} | dict(GAUGE_DEFAULTS)
            self._by_symbol[symbol] = row
        return row

    def incr(self, symbol: str, name: str, by: int = 1) -> int:
        """Add `by` to a counter and return its new value."""
        if name not in COUNTER_NAMES:
            raise KeyError(f"unknown counter {name!r}; known: {', '.join(COUNTER_NAMES)}")
        row = self._row(symbol)
        value = int(row[name]) + by
        row[name] = value
        return value

    def set(self, symbol: str, name: str, value: int | str | bool | Decimal) -> None:
        """Set a gauge (or overwrite a counter). Decimals are kept as exact text."""
        if name not in _NAMES:
            raise KeyError(f"unknown telemetry name {name!r}")
        if type(value) is str:          # the usual gauge (the regime, every tick)
            stored: Value = value
        elif isinstance(value, bool):
            stored = int(value)
        elif isinstance(value, Decimal):
            stored = str(value)
        else:
            stored = value
        self._row(symbol)[name] = stored

    def get(self, symbol: str, name: str) -> Value:
        return self._row(symbol)[name]

    def snapshot(self) -> dict[str, dict[str, Value]]:
        """A copy of every symbol's counters (safe to hand to /status)."""
        return {symbol: dict(row) for symbol, row in sorted(self._by_symbol.items())}

    def log(self) -> None:
        """One log line per symbol with every counter as key=value."""
        # Lazy: a backtest logs at ERROR and would format these lines every replayed candle.
        for symbol, row in sorted(self._by_symbol.items()):
            _LAZY_LOGGER.info("telemetry symbol={} {}", lambda symbol=symbol: symbol,
                              lambda row=row: " ".join(f"{name}={value}"
                                                       for name, value in row.items()))
