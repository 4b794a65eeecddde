"""What one exchange action did (trader/exchange_actions.py, trader/market_exit.py)."""

from dataclasses import dataclass, field

from trader.events import Event


@dataclass
class Performed:
    """What one action did: events for the state machine, notes for the operator."""
    events: list[Event] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
