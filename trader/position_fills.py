"""Which of a symbol's fills are one position's, pure: the one rule every close uses (the
finalizer's REST read, the close recorded from the stream, the close read-back).

The position's times (`opened_at`, `closed_at`) are the host's clock; a fill's time is the
exchange's (userTrades "time", ORDER_TRADE_UPDATE "T"). The two differ (the agent measures
the offset for signing: "binance time synced offset_ms=-300"), and the entry fills a few
milliseconds after it is sent, so a host clock ahead of Binance's stamps the entry fill
"before" the position opened. So time alone never decides:
- a fill of the position's own orders (`Position.owns`) is its own, whatever its time;
- a fill of another position of ours (our id, another key) never is;
- anybody else's (by hand, the exchange's autoclose / ADL, "" unnamed) is its own when
  inside its open window widened on both ends by CLOCK_SLACK plus the measured offset
  between the clocks (`slack`: a host clock 8 s ahead stamps the entry fill 8 s "before"
  the position opened; trader/exchange/base.py `clock_offset`). The window starts at its
  own first opening fill when one is known (an exchange time: nobody else's trade before
  it is this position's, e.g. the hand close of the previous trade seconds earlier), and
  nothing after its close is taken once what it opened is closed.

    offset = clock_offset(exchange)              # Binance's clock minus the host's
    since = read_from(position, offset)          # where a read of its fills starts
    own = fills_of(position, store.fills(position.symbol, since), closed_at, offset)
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

from trader.domain import ZERO, ClientId, Fill
from trader.position import Position

# The host's and Binance's clocks differ by what the agent measures (often a few hundred
# ms; seconds on a host whose clock drifts: the agent corrects its signed requests by it)
# plus a round trip and the drift since it was measured: the measured offset (its size,
# either way) plus a few seconds cover them with room.
CLOCK_SLACK = timedelta(seconds=5)
NO_OFFSET = timedelta(0)


def slack(offset: timedelta = NO_OFFSET) -> timedelta:
    """How far a fill's exchange time may lie from the host's times around it."""
    return CLOCK_SLACK + abs(offset)


def read_from(position: Position, offset: timedelta = NO_OFFSET) -> datetime:
    """Where a read of the position's fills starts (userTrades startTime, the journal).
    `offset`: Binance's clock minus the host's, as measured (`clock_offset`)."""
    return position.opened_at - slack(offset)


def fills_of(position: Position, fills: Sequence[Fill], until: datetime | None = None,
             offset: timedelta = NO_OFFSET) -> list[Fill]:
    """The fills of `position` among `fills` (any symbol, any order), oldest first.
    `until`: when its close was recorded (host clock); None: not closed yet (open-ended).
    `offset`: Binance's clock minus the host's, as measured (`clock_offset`)."""
    on_symbol = sorted((f for f in fills if f.symbol == position.symbol),
                       key=lambda f: f.time)
    own = [f for f in on_symbol if position.owns(f.client_id)]
    opening = [f.time for f in own if f.side is position.side]
    start = min(opening) if opening else read_from(position, offset)
    end = None if until is None else until + slack(offset)
    chosen: list[Fill] = []
    opened = closed = ZERO
    for fill in on_symbol:
        if not position.owns(fill.client_id):
            if ClientId.parse(fill.client_id) is not None:
                continue                    # another position of ours
            if fill.time < start or (end is not None and fill.time > end):
                continue
            if until is not None and fill.time > until and opened > 0 and closed >= opened:
                continue                    # after its close, with all it opened closed
        chosen.append(fill)
        if fill.side is position.side:
            opened += fill.quantity
        else:
            closed += fill.quantity
    return chosen
