"""A maker-first entry still working when the operator holds entries on its symbol (the
sleep of a /shutdown, a /pause): its quotes give up now, and the reply says what became of
it, one line per symbol.

The hold is set first (trader/guards.py `entries_held`, kept in the database and the
pinned message), then the entry takes its step at once, the way the next tick would
(trader/maker_quoter.py): the quote is cancelled and read back, nothing more is quoted nor
bought at the timeout, and what filled is kept, protected."""

from trader.commands import Command
from trader.control_close import entry_quote
from trader.display import number
from trader.engine import Engine
from trader.position import Position, PositionState


async def stop_quotes(engine: Engine, command: Command, symbol: str) -> list[str]:
    """A maker-first entry still working on `symbol` (its quote live, or not finished yet),
    held: its quotes give up (cancel -> verify) the way the next tick would, the position
    keeps what filled, protected. What became of it, in a line; [] when none works (a
    MARKET entry's order, if any, is the caller's)."""
    position = engine.positions.get(symbol)
    if position is None or not engine.entries.maker.handles(position):
        return []
    view = await engine.view.view(symbol, fresh=True)
    if position.state is not PositionState.ENTERING \
            and not engine.entries.entry_working(position, view):
        return []
    quote = entry_quote(engine, position)
    # the phone's reply says what the entry did; a shell's request leaves it to the alert
    left = await engine.protect(position, view, entry_in_reply=command.source == "telegram")
    label = position.side.label
    if left is None:
        return [f"{symbol}: the {label} maker entry is stopped: its quote {quote} was "
                "cancelled; nothing had filled, nothing is open"]
    if not engine.entries.maker.quoting_over(left):
        # its cancel unanswered or read back live: the reply says no more than is known
        so_far = "" if left.state is PositionState.ENTERING else \
            f"; {_filled(left)} filled so far: that position is open, protection places " \
            "its stop"
        return [f"{symbol}: the {label} maker entry is being stopped: its quote {quote} is "
                f"not known cancelled yet (Binance has not told){so_far}; the agent cancels "
                "it once Binance does and buys nothing more"]
    return [f"{symbol}: the {label} maker entry is stopped: its quote {quote} was cancelled "
            f"with {_filled(left)} filled: that position is open, protection places its stop"]


def _filled(position: Position) -> str:
    """"0.3 of 1": what the entry filled of what it planned."""
    return f"{number(position.quantity)} of {number(position.initial_quantity or position.quantity)}"
