"""When a market close Binance refused is sent again, pure (trader/lifecycle.py asks).

A refusal the order itself earned (-2022 nothing to reduce, -4164, -2019 margin, a filter)
is refused again by the same close: the next goes after `CLOSE_RETRY_PAUSES` (0.5 s, then
1 s) and three give the close up. A refusal that waiting cures (`Verdict.refused_for_now`:
a 503 "Service Unavailable.", -1008 or -1001, which Binance documents as "100% failure ...
retry with backoff": General Info, "HTTP 503 Status: Message Variants & Handling",
https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info; -4131,
the book of this moment) counts for nothing: the close stays CLOSING with its reason and is
sent again on `BACKOFF` for as long as the refusal lasts, each time under a new client id
(a refused close was never placed). The first two retries wait inside the step, as the
refusals' pauses do (a blip ends in the command's own answer); the later ones come with
the ticks once `next_at` has passed (a tick never waits longer than a second: the single
writer holds every symbol meanwhile). Nothing is sent inside a Retry-After whatever this
says: the executor sends nothing while the circuit is open. One alert says a refusal that
lasts over `TELL_AFTER`, not one per retry.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from trader import display
from trader.alerts import Alert, AlertName
from trader.position import CloseRefusedForNow, Position

# Seconds between one close and the next of one request after a refusal of the order's own
# (the last repeats). A refusal for the book's state (a partial fill of a thin book) may
# pass once the book moved: 0.5 s then 1 s puts the third close 1.5 s after the first,
# and a /close still answers within a few seconds (its reply waits 60 s:
# bot/handlers.py `result_timeout`).
CLOSE_RETRY_PAUSES = (0.5, 1.0)
# Seconds before each new try of a close refused for now (the last repeats: every 10 s
# while the refusal lasts; a close costs weight 1, the read back after it 5).
BACKOFF = (*CLOSE_RETRY_PAUSES, 2.0, 4.0, 8.0, 10.0)
IN_STEP = len(CLOSE_RETRY_PAUSES)     # retries waited inside the step
TELL_AFTER = timedelta(minutes=1)


def close_retry_pause(attempt: int) -> float:
    """Seconds between the close before and the `attempt`-th close of one request."""
    if attempt <= 1:
        return 0.0
    return CLOSE_RETRY_PAUSES[min(attempt - 2, len(CLOSE_RETRY_PAUSES) - 1)]


def refused_for_now(position: Position, reason: str, now: datetime
                    ) -> tuple[CloseRefusedForNow, Alert | None]:
    """The close of `position` refused for now again (`reason`: "503 Service
    Unavailable"): when it is sent next, and the alert to publish the first time the
    refusals have lasted over `TELL_AFTER`."""
    before = position.close_refused
    refusals = before.refusals + 1 if before is not None else 1
    since = before.since if before is not None else now
    pause = BACKOFF[min(refusals, len(BACKOFF)) - 1]
    told = before is not None and before.told
    alert = None
    if not told and now - since >= TELL_AFTER:
        alert, told = _still_refused(position, reason, now - since), True
    return CloseRefusedForNow(reason, since, refusals, now + timedelta(seconds=pause),
                              told), alert


def sent_in_step(refused: CloseRefusedForNow) -> bool:
    """Whether the next try waits inside this step (its pause is one of the first)."""
    return refused.refusals <= IN_STEP


def due(position: Position, now: datetime) -> bool:
    """A close refused for now whose next try is due at this tick."""
    refused = position.close_refused
    return refused is not None and now >= refused.next_at


def stop_cover(position: Position, quantity: Decimal) -> tuple[AlertName, str]:
    """How an alert about a close that has not happened names the position's protection
    meanwhile (a close leaves its stop untouched): PROTECTION when its stop covers
    `quantity`, POSITION_UNPROTECTED otherwise, and the words saying which."""
    stop = position.stop.order
    if stop is not None and position.stop.covers(quantity):
        return AlertName.PROTECTION, (f"its stop-loss at {display.number(stop.trigger_price)}"
                                      " stays on the exchange")
    return AlertName.POSITION_UNPROTECTED, "it has NO stop-loss on the exchange"


def _still_refused(position: Position, reason: str, lasted: timedelta) -> Alert:
    name, cover = stop_cover(position, position.quantity)
    text = (f"{position.symbol}: still open ({display.number(position.quantity)}): Binance "
            f"refuses the market close for now ({reason}) for {display.duration(lasted)}; "
            f"the agent sends it again every {BACKOFF[-1]:g} s until Binance takes it "
            f"(the CLOSE alert says when); {cover}")
    return Alert(name, text, position.symbol,
                 dedup_key=f"close-refused:{position.symbol}:{position.key}")
