"""The operator's intent as one value: asleep (after /shutdown), paused (/pause, /pause SYMBOL)
or running, and since when. Pure: no I/O, no clock (times are passed in).

It is what must outlive a wiped disk: trader/intent_keeper.py keeps it in the database and in
a pinned Telegram message, and applies it to the guards at boot. Two encodings:

    intent.to_record()   # {"asleep": true, "paused": false, ...}  the database
    intent.to_line()     # "tradebot-state v=1 asleep=yes paused=no symbols=- since=2024-05-01T12:00:00Z"
                         # (+ " flatten=yes" while a /shutdown's flatten is not finished)
    OperatorIntent.from_line(text)   # finds that line in a message; None if there is none

Choosing between stored copies (`newest`): the latest `since` wins; on equal times the more
restrictive one (asleep > paused > running), so a tie never starts trading.
"""

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from trader.guard_state import GuardState

LINE_TAG = "tradebot-state"
LINE_VERSION = "1"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LINE = re.compile(rf"^{LINE_TAG} (?P<fields>.+)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class OperatorIntent:
    """Whether the operator wants the agent trading. `paused_until` / a symbol's time: when the
    pause ends by itself (None = until /resume). `since`: when it last changed (UTC)."""
    asleep: bool = False
    paused: bool = False
    paused_until: datetime | None = None
    paused_symbols: dict[str, datetime | None] = field(default_factory=dict)
    since: datetime = EPOCH
    flattening: bool = False     # asleep with a /shutdown's flatten still to finish

    @property
    def run_state(self) -> str:
        """"asleep", "paused" (everything, or some symbols) or "running"."""
        if self.asleep:
            return "asleep"
        return "paused" if self.paused or self.paused_symbols else "running"

    @property
    def restrictiveness(self) -> int:
        return {"asleep": 2, "paused": 1, "running": 0}[self.run_state]

    def same_state(self, other: "OperatorIntent") -> bool:
        """Equal apart from `since`."""
        return replace(self, since=EPOCH) == replace(other, since=EPOCH)

    @staticmethod
    def of(state: GuardState, since: datetime) -> "OperatorIntent":
        return OperatorIntent(state.asleep, state.paused, state.paused_until,
                              dict(state.paused_symbols), since, state.asleep and state.flattening)

    def applied_to(self, state: GuardState) -> GuardState:
        """The guards with this intent's sleep and pauses (breakers, cooldowns untouched)."""
        return replace(state, asleep=self.asleep, paused=self.paused,
                       paused_until=self.paused_until, paused_symbols=dict(self.paused_symbols),
                       flattening=self.flattening)

    # --- the database ---------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        return {"asleep": self.asleep, "paused": self.paused,
                "paused_until": _iso(self.paused_until),
                "paused_symbols": {s: _iso(u) for s, u in self.paused_symbols.items()},
                "since": _iso(self.since), "flattening": self.flattening}

    @staticmethod
    def from_record(record: dict[str, Any]) -> "OperatorIntent":
        """Raises ValueError (or KeyError, TypeError) for a record it cannot read."""
        symbols = record.get("paused_symbols") or {}
        return OperatorIntent(bool(record["asleep"]), bool(record["paused"]),
                              _time(record.get("paused_until")),
                              {str(s): _time(u) for s, u in symbols.items()},
                              _time(record["since"]) or EPOCH,
                              bool(record.get("flattening", False)))

    # --- the pinned message -----------------------------------------------------------
    def to_line(self) -> str:
        """One line a machine reads back and a person can still follow."""
        paused = _stamp(self.paused_until) if self.paused and self.paused_until else \
            ("yes" if self.paused else "no")
        symbols = ",".join(f"{s}@{_stamp(u)}" if u else s
                           for s, u in sorted(self.paused_symbols.items())) or "-"
        # flatten=yes is added, not a new version: an agent that does not know it still
        # reads the sleep (it then protects what is open rather than closing it).
        return (f"{LINE_TAG} v={LINE_VERSION} asleep={'yes' if self.asleep else 'no'} "
                f"paused={paused} symbols={symbols} since={_stamp(self.since)}"
                + (" flatten=yes" if self.flattening else ""))

    @staticmethod
    def from_line(text: str) -> "OperatorIntent | None":
        """The intent in the `tradebot-state` line of `text`; None when there is no such line,
        it has another version, or a field is unreadable (a message we cannot trust)."""
        match = _LINE.search(text or "")
        if match is None:
            return None
        fields = dict(part.split("=", 1) for part in match["fields"].split() if "=" in part)
        try:
            if fields.get("v") != LINE_VERSION or fields["asleep"] not in ("yes", "no"):
                return None
            paused = fields["paused"]
            symbols = {} if fields["symbols"] == "-" else dict(
                _symbol_pause(item) for item in fields["symbols"].split(","))
            return OperatorIntent(
                asleep=fields["asleep"] == "yes", paused=paused != "no",
                paused_until=None if paused in ("yes", "no") else _parse_stamp(paused),
                paused_symbols=symbols, since=_parse_stamp(fields["since"]),
                flattening=fields["asleep"] == "yes" and fields.get("flatten") == "yes")
        except (KeyError, ValueError):
            return None


def newest(candidates: list[OperatorIntent]) -> OperatorIntent | None:
    """The latest intent; on equal `since` the more restrictive one. None for no candidates."""
    if not candidates:
        return None
    return max(candidates, key=lambda intent: (intent.since, intent.restrictiveness))


def describe(intent: OperatorIntent) -> str:
    """In words, for STARTUP and the pinned message: "ASLEEP", "PAUSED until 14:00 UTC"..."""
    if intent.asleep and intent.flattening:
        return ("ASLEEP, a /shutdown's flatten not finished: closing what is still open; no "
                "new entries; /wake to trade")
    if intent.asleep:
        return "ASLEEP: no new entries; open positions stay protected; /wake to trade"
    if intent.paused:
        until = f" until {intent.paused_until:%Y-%m-%d %H:%M} UTC" if intent.paused_until \
            else " until /resume"
        return f"PAUSED{until}: no new entries; exits and protection run"
    if intent.paused_symbols:
        paused = ", ".join(f"{s} until {u:%H:%M} UTC" if u else s
                           for s, u in sorted(intent.paused_symbols.items()))
        return f"RUNNING, paused on {paused}"
    return "RUNNING"


def _symbol_pause(item: str) -> tuple[str, datetime | None]:
    symbol, _, until = item.partition("@")
    if not symbol.isalnum():
        raise ValueError(f"not a symbol: {symbol!r}")
    return symbol, _parse_stamp(until) if until else None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
