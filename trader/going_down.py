"""The SHUTDOWN alert `tradebot run` sends on its way out: what stays on the exchange, what
a restart takes up again, and, when the configuration refused the start-up, that refusal's
line: the agent stays down until someone changes the setting it names.

A refused start-up is said once: a host that restarts the process at once (systemd
Restart=always, docker --restart=always) on a database that stays would otherwise sound it
every few seconds. The same refusal within REFUSAL_REMINDER of the one sent is kept in the
outbox (/alerts) as "repeat"; after it, the next one sounds again and counts the repeats.
On a host that wipes the disk on restart (Heroku) each start is a first: one message per
start, as often as that host restarts a process that keeps exiting.
"""

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from loguru import logger

from trader.account_positions import unmanaged, unmanaged_text
from trader.alerts import Alert, AlertName, Severity
from trader.commands import Command, CommandKind
from trader.config import ConfigError
from trader.position import LIVE, Position, PositionState
from trader.stop_budget import unprotected

if TYPE_CHECKING:
    from trader.engine import Engine

REFUSAL_REMINDER = timedelta(hours=1)
REPEATS_COUNTED = timedelta(days=1)     # how far back the repeats of a refusal are read
REPEAT = "repeat"        # the outbox status of a refusal a restart repeated, not sent


class StartRefused(ConfigError):
    """A ConfigError the exchange's start-up answered (hedge mode, a symbol not listed, a
    rejected key), before it read the account's positions."""


def say_going_down(engine: "Engine", unfinished: str = "",
                   refusal: ConfigError | None = None, *, interrupted: "Command | None" = None,
                   unpinned: tuple[str, str] | None = None) -> None:
    """Publish the SHUTDOWN alert; a refusal a restart loop repeats is only recorded.
    `interrupted`: the command the stop cut short; `unpinned`: the state Telegram has not
    confirmed pinned and why (trader/agent_services.py `flush_pin`)."""
    now = engine.clock.now()
    alert = going_down_alert(engine, unfinished, refusal)
    notes = [*interrupted_lines(engine, interrupted), *unpinned_lines(unpinned)]
    if notes:
        alert = replace(alert, text="\n".join([alert.text, *notes]))
    if refusal is None:
        engine.alerter.publish(alert, now)
        return
    try:
        history = engine.store.alerts_with_key(alert.key, now - REPEATS_COUNTED)
    except sqlite3.Error as exc:     # a database that cannot be read: say it, repeat or not
        logger.error("earlier start-up refusals not readable error={}", exc)
        engine.alerter.publish(alert, now)
        return
    said = [a for a in history if a.status in ("sent", "pending")]
    if said and now - said[-1].created_at < REFUSAL_REMINDER:
        engine.alerter.record(alert, now, REPEAT)
        return
    last_said = said[-1].id if said else 0
    repeats = [a for a in history if a.status == REPEAT and a.id > last_said]
    if repeats:
        alert = replace(alert, text=f"{alert.text}\n({len(repeats)} restarts refused the same "
                        f"way since {repeats[0].created_at:%H:%M} UTC)")
    engine.alerter.publish(alert, now)


def interrupted_lines(engine: "Engine", command: "Command | None") -> list[str]:
    """The command the stop cut short before it was answered, and where it stands."""
    if command is None:
        return []
    name = f"/{command.kind.value}" + (" (flatten)" if command.flatten else "")
    if command.kind is CommandKind.SHUTDOWN:
        then = ("the next start finishes the flatten (closes what is still open)"
                if engine.guard_state.flattening else "the next start stays asleep")
        return [f"Your {name} was cut short by this stop before its answer: the sleep is "
                f"saved; {then}."]
    return [f"Your {name} was cut short by this stop before its answer: after the restart, "
            "/status shows where it stands; send it again if it is still needed."]


def unpinned_lines(unpinned: tuple[str, str] | None) -> list[str]:
    """The last sleep/pause change Telegram never confirmed pinned: a restart on a wiped
    disk reads the older pin."""
    if unpinned is None:
        return []
    state, why = unpinned
    if state == "asleep":
        return [f"The sleep is not pinned ({why}): a restart on a wiped disk will trade; send "
                "/shutdown again."]
    if state == "paused":
        return [f"The pause is not pinned ({why}): a restart on a wiped disk will trade; send "
                "/pause again."]
    return [f"The last change (now {state}) is not pinned ({why}): a restart on a wiped disk "
            "reads the older state pinned in Telegram; send the command again."]


def going_down_alert(engine: "Engine", unfinished: str = "",
                     refusal: ConfigError | None = None) -> Alert:
    """The SHUTDOWN alert: INFO when every position keeps its stop on the exchange; CRITICAL
    (it sounds) when one has none, since nothing protects it until the agent runs again,
    which may never come, and when the configuration refused the start-up (the agent will
    not trade until someone changes it; a restarted process stops there again)."""
    if refusal is not None:
        return Alert(AlertName.SHUTDOWN, refused_text(engine, refusal), severity=Severity.CRITICAL,
                     dedup_key=f"start-refused:{'; '.join(refusal.problems)}")
    naked = [] if unfinished else [*unprotected(engine.positions.values()),
                                    *(h.position.symbol for h in unmanaged(engine)
                                      if h.stop is None)]
    return Alert(AlertName.SHUTDOWN, going_down_text(engine, unfinished),
                 severity=Severity.CRITICAL if naked else None,
                 dedup_key=f"shutdown:{datetime.now(UTC).isoformat()}")


def refused_text(engine: "Engine", refusal: ConfigError) -> str:
    """The refusal's lines as `tradebot run` prints them, that the agent stays down, and the
    positions it would have protected, as far as it knows them without asking Binance."""
    lines = [f"config error: {problem}" for problem in refusal.problems]
    held = _positions_known(engine)
    if held:
        positions = [f"{symbol}: a position is open on the account with no stop from the "
                     "agent (a stop placed before stays only if nothing removed it); check it "
                     "in the Binance app" for symbol in held]
    else:
        positions = ["The agent never read the account's positions: any position open on it "
                     "has no stop from the agent; check them in the Binance app"]
    return ("going down: start-up refused, the agent never traded\n" + "\n".join(lines)
            + "\nThe agent does not trade until this is fixed: each restart stops here again. "
            "Fix what it names (the variable, or the account's setting in Binance), then "
            "restart.\n" + "\n".join(positions))


def _positions_known(engine: "Engine") -> list[str]:
    """The configured symbols with a position in the agent's own records (no request is
    sent for this: start-up refuses before it reads the account's positions)."""
    try:
        recorded = {p.symbol for p in engine.store.open_positions()}
    except sqlite3.Error as exc:
        logger.error("the agent's positions not readable for the refusal's alert error={}", exc)
        recorded = set()
    return sorted(recorded & set(engine.symbols))


def going_down_text(engine: "Engine", unfinished: str = "") -> str:
    """The SHUTDOWN alert's text: what stays on the exchange, and what a restart takes up
    again (a stop missing, a close cut short: a /close left on "Closing…" hears of it
    here)."""
    if unfinished:
        return (f"going down before start-up finished ({unfinished} did not finish): the "
                "agent never traded; positions on the exchange keep whatever orders they have")
    closing = [p.symbol for p in engine.positions.values()
               if p.state is PositionState.CLOSING]
    then = (f"; the close of {', '.join(closing)} was under way: the next start finds out "
            "whether its market order filled and closes what is left") if closing else ""
    naked = unprotected(engine.positions.values())
    # a placement sent and not answered may be on the exchange: "not confirmed", so that
    # the advice does not add one more stop to the ones already there
    sent = [s for s in naked if engine.positions[s].stop.pending is not None]
    missing = [s for s in naked if s not in sent]
    said: list[str] = []
    if missing:
        why = "; ".join(f"{s}: {_why_no_stop(engine.positions[s])}" for s in missing)
        said.append(f"going down with {', '.join(missing)} WITHOUT a stop-loss on the "
                    f"exchange ({why}). Nothing protects it until the agent runs again, when "
                    "it places the stop before trading; if no restart follows, place a stop "
                    "in the Binance app")
    if sent:
        why = "; ".join(f"{s}: {_why_no_stop(engine.positions[s])}" for s in sent)
        said.append(f"going down with the stop-loss of {', '.join(sent)} not confirmed "
                    f"({why}): the exchange may hold it already; check the Binance app before "
                    "adding one")
    others = unmanaged(engine)
    if bare := [h.position.symbol for h in others if h.stop is None]:
        them = "them" if len(bare) > 1 else "it"
        said.append(f"going down with {', '.join(bare)} WITHOUT a stop-loss seen, not "
                    f"managed by the agent: nothing protects {them}, now or after a restart; "
                    f"place a stop or close {them} in the Binance app")
    held = unmanaged_text(engine)
    if said:
        return ". ".join(said) + then + held
    count = len(engine.positions) + len(others)
    return ("going down, positions protected by exchange-side orders"
            + (f" ({count} open)" if count else "") + then + held)


def _why_no_stop(position: Position) -> str:
    """Why a position has no stop covering it, from its stop leg."""
    stop = position.stop
    if stop.pending is not None and stop.superseded:
        # Lost ones too (trader/stop_backup.py): any may still land, so the next start does
        # not place another at once, but once each is known not to have landed.
        return (f"{len(stop.superseded) + 1} stop placements sent, none answered yet: the next "
                "start places it once they are known not to have landed, up to recvWindow "
                "+ 10 s after they were sent")
    if stop.pending is not None:
        return "its placement was sent, its answer not in yet"
    if stop.order is not None and stop.order.status is LIVE:
        return f"its stop covers {stop.order.quantity} of {position.quantity}"
    if stop.failures:
        held = " (the exchange asked to wait)" if stop.retry_at is not None else ""
        times = "time" if stop.failures == 1 else "times"
        return f"its placement refused {stop.failures} {times}{held}"
    if not position.state.open:
        return "opened, its stop not placed yet"
    return "no stop order (cancelled?), not placed again yet"
