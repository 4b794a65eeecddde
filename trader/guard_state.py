"""The entry guards' state: one frozen value (`GuardState`) holding the tripped breakers,
the cooldowns after closes, the operator's sleep and pauses, a failed save's block and the
emergency cooldown after /wake; persisted by trader/guard_book.py, so all of it survives a
restart. The rules that change it are pure: trader/breaker_rules.py, trader/cooldowns.py,
trader/operator_holds.py; what it allows now is trader/guards.py.

Breaker names are `<kind>:<SYMBOL>` for per-symbol breakers (spread, funding, crash,
regime) and `<kind>` alone for account-wide ones (api): a global breaker blocks every
symbol. Texts meant for the operator name them in words (`trader.display.breaker_label`).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from trader.evolve import evolve

API_BREAKER = "api"


class GuardEventKind(StrEnum):
    TRIPPED = "tripped"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class GuardEvent:
    kind: GuardEventKind
    name: str                         # breaker name, "pause" or "emergency_cooldown"
    symbol: str                       # "" for account-wide events
    text: str


@dataclass(frozen=True, slots=True)
class GuardConfig:
    spread_mult: Decimal = Decimal("1.2")
    spread_min_ticks: int = 2      # a spread of this many ticks or fewer never trips (tick noise)
    funding_jump: Decimal = Decimal("0.001")
    crash_candles: int = 5
    crash_move: Decimal = Decimal("0.03")
    api_failure_streak: int = 5
    breaker_minutes: int = 10
    cooldown_minutes: int = 5
    loss_streak_len: int = 3
    loss_streak_mult: int = 3

    @property
    def breaker_duration(self) -> timedelta:
        return timedelta(minutes=self.breaker_minutes)


@dataclass(frozen=True, slots=True)
class GuardState:
    breakers: dict[str, datetime] = field(default_factory=dict)    # name -> until
    cooldowns: dict[str, datetime] = field(default_factory=dict)   # symbol -> until
    paused: bool = False
    paused_until: datetime | None = None                          # None = until /resume
    asleep: bool = False
    save_failure: bool = False
    loss_streak: dict[str, int] = field(default_factory=dict)
    api_failures: int = 0
    entries_blocked_until: datetime | None = None                 # emergency cooldown
    paused_symbols: dict[str, datetime | None] = field(default_factory=dict)  # None = /resume
    # A /shutdown's flatten asked and not finished: set with the sleep, before the first
    # close, so that a stop in the middle leaves it for the next start to finish.
    flattening: bool = False

    def active_breakers(self, now: datetime) -> dict[str, datetime]:
        return {name: until for name, until in self.breakers.items() if until > now}


def restored(loaded: GuardState) -> GuardState:
    """A state as storage.codec loads it (dict values as stored: ISO text, JSON numbers)
    with its datetimes and counts restored. Done once, where a state is read back
    (trader/guard_book.py `load_state`), not in the class's `__post_init__`: that ran on
    every copy the rules make (~2 a trade) and kept them off `evolve`."""
    return evolve(loaded, breakers=_datetimes(loaded.breakers),
                  cooldowns=_datetimes(loaded.cooldowns),
                  paused_symbols=_datetimes(loaded.paused_symbols),
                  loss_streak={key: int(value) for key, value in loaded.loss_streak.items()})


def _datetimes(raw: dict[str, Any]) -> dict[str, Any]:
    return {key: _as_datetime(value) for key, value in raw.items()}


def _as_datetime(value: datetime | str | None) -> datetime | None:
    return value if value is None or isinstance(value, datetime) else datetime.fromisoformat(value)


Outcome = tuple[GuardState, list[GuardEvent]]
DEFAULT_CONFIG = GuardConfig()


def breaker_name(kind: str, symbol: str = "") -> str:
    return f"{kind}:{symbol}" if symbol else kind


def breaker_symbol(name: str) -> str:
    """The symbol a breaker applies to ("" for an account-wide breaker)."""
    return name.partition(":")[2]

