"""Reading Binance JSON tolerantly: required fields raise a typed error, the rest default.

    fields = Fields(raw, "GET /fapi/v1/order")
    fields.text("clientOrderId")        # MalformedResponse if absent or empty
    fields.optional_number("avgPrice")  # Decimal, ZERO if absent; MalformedResponse if not a number

Unknown extra fields are simply never read. An unreadable answer raises
`MalformedResponse(endpoint, field)` (an `ExchangeError` with code 0) after logging the
payload, truncated to PAYLOAD_LOG_CHARS: a bad answer is never a bare KeyError or
decimal.InvalidOperation escaping into the engine.
"""

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from loguru import logger

from trader.domain import ZERO, Side, utc
from trader.exchange.base import MalformedResponse

PAYLOAD_LOG_CHARS = 500
MAX_LEVERAGE = 125
_INTERVAL_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
_warned: set[tuple[str, str]] = set()


def interval_delta(interval: str) -> timedelta:
    """'1m' -> 1 minute, '4h' -> 4 hours (Binance kline interval names); ValueError otherwise."""
    unit = _INTERVAL_UNITS.get(interval[-1:])
    if unit is None or not interval[:-1].isdigit():
        raise ValueError(f"unknown kline interval {interval!r}")
    return timedelta(seconds=int(interval[:-1]) * unit)


def dec(value: Any) -> Decimal:
    """A Binance number (sent as a string, sometimes as a JSON number) as Decimal."""
    if value is None or value == "":
        return ZERO
    return Decimal(str(value))


def flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def malformed(where: str, field: str, payload: Any) -> MalformedResponse:
    """The typed error for an unreadable answer, logged with the payload (truncated)."""
    logger.error("binance answer unreadable endpoint={} field={} payload={}", where, field,
                 str(payload)[:PAYLOAD_LOG_CHARS])
    return MalformedResponse(where, field)


def warn_once(kind: str, value: str, where: str, read_as: str) -> None:
    """Log an enum value we don't know: WARNING the first time, DEBUG after (no log floods
    when every tick meets the same foreign order)."""
    level = "DEBUG" if (kind, value) in _warned else "WARNING"
    _warned.add((kind, value))
    logger.log(level, "binance {} {}={!r} is unknown to us, read as {}", where, kind, value,
               read_as)


def rows_of(raw: Any, where: str) -> list[Any]:
    """An answer that must be a JSON array (openOrders, userTrades, klines, positionRisk)."""
    if not isinstance(raw, list):
        raise malformed(where, "a JSON array", raw)
    return raw


class Fields:
    """One JSON object of an answer or event, read field by field (see the module docstring)."""

    def __init__(self, raw: Any, where: str) -> None:
        if not isinstance(raw, dict):
            raise malformed(where, "a JSON object", raw)
        self.raw, self.where = raw, where

    def present(self, name: str) -> bool:
        return self.raw.get(name) not in (None, "")

    def text(self, name: str) -> str:
        if not self.present(name):
            raise malformed(self.where, name, self.raw)
        return str(self.raw[name])

    def optional_text(self, name: str, default: str = "") -> str:
        return str(self.raw[name]) if self.present(name) else default

    def number(self, name: str) -> Decimal:
        if not self.present(name):
            raise malformed(self.where, name, self.raw)
        return self.optional_number(name)

    def leverage(self, name: str) -> int:
        """A leverage: Binance's is "int from 1 to 125" (https://developers.binance.com/docs/
        derivatives/usds-margined-futures/trade/rest-api/Change-Initial-Leverage). Bounded
        before int(): "1e999999" would otherwise take half a minute to become an int."""
        value = self.number(name)
        if not 1 <= value <= MAX_LEVERAGE or value != value.to_integral_value():
            raise malformed(self.where, name, self.raw)
        return int(value)

    def optional_number(self, name: str) -> Decimal:
        try:
            value = dec(self.raw.get(name))
        except (InvalidOperation, ValueError, TypeError):
            raise malformed(self.where, name, self.raw) from None
        if not value.is_finite():
            raise malformed(self.where, name, self.raw)
        return value

    def millis(self, *names: str) -> datetime:
        """The first of `names` present, as UTC (Binance sends ms as a number or a string)."""
        for name in names:
            if self.present(name):
                try:
                    return utc(int(str(self.raw[name])))
                except (ValueError, OverflowError, OSError):
                    raise malformed(self.where, name, self.raw) from None
        raise malformed(self.where, "/".join(names), self.raw)

    def optional_millis(self, *names: str) -> datetime | None:
        return self.millis(*names) if any(self.present(name) for name in names) else None

    def flag(self, name: str) -> bool:
        return flag(self.raw.get(name))

    def side(self, name: str) -> Side:
        try:
            return Side(self.text(name))
        except ValueError:
            raise malformed(self.where, name, self.raw) from None

    def child(self, name: str) -> "Fields":
        return Fields(self.raw.get(name), f"{self.where} {name}")

    def rows(self, name: str) -> list[Any]:
        value = self.raw.get(name, [])
        if not isinstance(value, list):
            raise malformed(self.where, name, self.raw)
        return value
