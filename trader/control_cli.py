"""`tradebot shutdown|wake` from a shell: reach the running agent, or say there is none and act.

Which agent: the one on the database `tradebot run` uses with the same settings (TRADEBOT_DB,
or `<db>-replay.db` for a replay: trader/app.py `replay_db_path`); the other of the two is
looked at as well, so `tradebot shutdown` reaches a running `tradebot run --replay` and says
so. An agent is running when its heartbeat is fresh (trader/presence.py).

- An agent runs: the request goes through its database (the engine stays the single writer);
  the agent notices it within 0.2 s and runs it between ticks; its answer is printed. No
  answer within ANSWER_SECONDS: exit 1, the request withdrawn, nothing claimed.
- None runs: said at once. The command runs here like a short-lived agent: boot (reconcile,
  protect every position), the command, the new state saved and pinned in Telegram (so a
  restart on a wiped disk knows it), and what was done on the exchange is printed. When the
  exchange fails on the way, a shutdown still saves and pins the sleep (as /shutdown sleeps
  whatever fails); a wake leaves the state as it was. A replay
  keeps nothing between runs: with no replay running there is nothing to act on.

Exit code 0 only when the command was carried out; 1 when it was not (no answer from the
agent, or the exchange failed: one line on stderr says at which step, what was and was not
done, and what to do; the traceback is logged at DEBUG), or not in full: a `--flatten` that
left a position open (the agent sleeps all the same; the position's line says what protects
it and what to do), so `tradebot shutdown --flatten && echo flat` never lies; 2 for a
configuration error (trader/cli.py).
"""

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from storage import SaveStateFailure, Store
from trader.cli_mailbox import CLI_REQUEST_KEY, answer_key
from trader.config import Settings
from trader.exchange.base import ExchangeError, UnknownOutcome
from trader.exchange_trouble import advice, problem
from trader.presence import PresenceRecord, read_presence, replay_db_path

if TYPE_CHECKING:
    from trader.engine import Engine
    from trader.intent_keeper import IntentKeeper

ANSWER_SECONDS = 4.5          # the operator hears back within 5 s
POLL_SECONDS = 0.1
PIN_SECONDS = 5.0             # for Telegram to show, then take, the pinned state


@dataclass(frozen=True, slots=True)
class Target:
    db_path: Path
    replay: bool
    presence: PresenceRecord | None

    def running(self, now: datetime) -> bool:
        return self.presence is not None and self.presence.alive(now)

    @property
    def name(self) -> str:
        return f"{'the replay' if self.replay else 'the agent'} on {self.db_path}"


def targets(settings: Settings) -> list[Target]:
    """Both databases an agent may run on; the one `tradebot run` would use first."""
    main = (settings.db_path, False)
    replay = (replay_db_path(settings.db_path), True)
    order = [replay, main] if settings.effective_feed == "replay" else [main, replay]
    return [Target(path, is_replay, _presence(path)) for path, is_replay in order]


def _presence(path: Path) -> PresenceRecord | None:
    if not path.exists():          # never create a database just to look
        return None
    store = Store.open(path)
    try:
        return read_presence(store)
    finally:
        store.close()


async def run_control_cli(settings: Settings, action: str, *, flatten: bool = False) -> int:
    now = datetime.now(UTC)
    found = targets(settings)
    running = [t for t in found if t.running(now)]
    if running:
        if len(running) > 1:
            print(f"note: {running[1].name} is running too; it is not touched")
        return await _relay(running[0], action, flatten, now)
    first = found[0]
    seen = first.presence.describe(now) if first.presence else "no agent ever ran on it"
    print(f"{action}: no agent is running on {first.db_path} ({seen}).")
    if first.replay:
        print("A replay keeps nothing between runs (`tradebot run --replay` starts afresh): "
              "nothing was done.")
        return 1
    print(f"Acting here, directly on the exchange ({settings.mode}); an agent running on "
          "another machine or disk is NOT reached by this (use /shutdown or /wake there):")
    return await _run_here(settings, action, flatten)


# --- an agent is running: relay through its database -----------------------------------
async def _relay(target: Target, action: str, flatten: bool, now: datetime) -> int:
    assert target.presence is not None
    request_id = str(uuid.uuid4())
    store = Store.open(target.db_path)
    try:
        try:
            store.put(CLI_REQUEST_KEY, {"id": request_id, "kind": action, "flatten": flatten},
                      now)
        except SaveStateFailure as exc:
            print(f"{action}: could not write the request into {target.db_path}: {exc}; "
                  "nothing was done")
            return 1
        print(f"{action}: asking {target.name} ({target.presence.describe(now)})...")
        answer = await _answer(store, request_id, ANSWER_SECONDS)
        if answer is not None:
            print("\n".join(answer["lines"]))
            return 0 if answer["ok"] else 1
        _withdraw(store, request_id)
        print(f"no answer within {ANSWER_SECONDS:.0f} s: the request was withdrawn and nothing "
              "is known to be done (if the agent had already started it, it finishes: check "
              "/status, or run this again)")
        return 1
    finally:
        store.close()


async def _answer(store: Store, request_id: str, timeout: float) -> dict[str, Any] | None:
    key = answer_key(request_id)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        answer = store.get(key)
        if answer is not None:
            _forget(store, key)
            return dict(answer)
        if asyncio.get_running_loop().time() >= deadline:
            return None
        await asyncio.sleep(POLL_SECONDS)


def _withdraw(store: Store, request_id: str) -> None:
    request = store.get(CLI_REQUEST_KEY)
    if isinstance(request, dict) and request.get("id") == request_id:
        _forget(store, CLI_REQUEST_KEY)


def _forget(store: Store, key: str) -> None:
    try:
        store.delete(key)
    except SaveStateFailure as exc:
        print(f"(could not delete {key}: {exc})")


# --- no agent: act here, as a short-lived agent ------------------------------------------
class Step(Enum):
    """How far acting here got when the exchange failed."""
    EXCHANGE_START = "at start-up"
    BOOT = "during start-up reconciliation"
    COMMAND = "while carrying out the command"


@dataclass(slots=True)
class Progress:
    step: Step = Step.EXCHANGE_START


async def _run_here(settings: Settings, action: str, flatten: bool) -> int:
    """Boot, the command, the state saved and pinned; 1 (one line on stderr) when the
    exchange fails on the way. A shutdown sleeps all the same: sleep is saved and pinned
    without the exchange, as /shutdown sleeps whatever fails (trader/control.py). The
    exchange's HTTP session, Telegram's and the database are closed whatever happens."""
    # The agent's machinery is loaded only here: relaying to a running agent stays quick.
    from trader.engine_setup import build_engine, start_exchange

    engine, close = await build_engine(settings, start=False)
    progress = Progress()
    try:
        async with _operator_state(engine, settings) as keeper:
            try:
                await start_exchange(engine.exchange, settings)
                progress.step = Step.BOOT
                return await _act(engine, keeper, settings, action, flatten, progress)
            except (ExchangeError, UnknownOutcome) as exc:
                logger.opt(exception=exc).debug("{} from the command line failed step={}",
                                                action, progress.step.name)
                slept = await _sleep_anyway(engine, keeper, settings) \
                    if action == "shutdown" else None
                print(failure_line(action, flatten, exc, progress.step, settings.db_path,
                                   slept), file=sys.stderr)
                return 1
    finally:
        await close()


@asynccontextmanager
async def _operator_state(engine: "Engine", settings: Settings) -> AsyncIterator["IntentKeeper"]:
    """Telegram (for the pinned state, no commands taken) and the operator's intent, for the
    length of the command."""
    from trader.agent_services import pin_of
    from trader.app import make_sink
    from trader.clock import SystemClock
    from trader.control import Controller
    from trader.intent_keeper import IntentKeeper

    sink = make_sink(settings, engine, Controller(engine), take_updates=False)
    keeper = IntentKeeper(engine.guards, engine.store, engine.alerter, SystemClock(),
                          pin_of(sink))
    try:
        await sink.start()
        yield keeper
    finally:
        await keeper.stop()
        await sink.stop()


async def _act(engine: "Engine", keeper: "IntentKeeper", settings: Settings, action: str,
               flatten: bool, progress: Progress) -> int:
    from trader.commands import Command, CommandKind
    from trader.control import run_command
    from trader.startup import boot

    for line in await boot(engine):
        print(f"start-up: {line}")
    print(f"before: {await keeper.recover(PIN_SECONDS)}")
    progress.step = Step.COMMAND
    kind = CommandKind.SHUTDOWN if action == "shutdown" else CommandKind.WAKE
    result = await run_command(engine, Command(kind, f"cli:{uuid.uuid4()}", engine.clock.now(),
                                               flatten=flatten, source="cli"))
    print("\n".join(result.lines))
    state = keeper.intent.run_state if keeper.intent else "asleep"
    print(f"{state}: {await _saved_where(keeper, settings)}")
    return 0 if result.ok else 1


async def _sleep_anyway(engine: "Engine", keeper: "IntentKeeper", settings: Settings) -> str:
    """Sleep saved (and pinned) with the exchange unreachable; where it was saved."""
    from trader import operator_holds

    if not keeper.decided:
        await keeper.recover(PIN_SECONDS)
    engine.guard_state = operator_holds.sleep(engine.guard_state)
    return await _saved_where(keeper, settings)


async def _saved_where(keeper: "IntentKeeper", settings: Settings) -> str:
    """Where the operator's intent now is: the database, and Telegram's pinned message."""
    if keeper.pin is None:
        return (f"saved in {settings.db_path} only (no Telegram configured): a restart on a "
                "wiped disk will not know it")
    if await keeper.flush(PIN_SECONDS):
        return "saved, and pinned in Telegram (a restart on a wiped disk reads it)"
    return (f"saved in {settings.db_path}, but the pinned state in Telegram could NOT be "
            "updated (unreachable): a restart on a wiped disk may not know it")


def failure_line(action: str, flatten: bool, error: ExchangeError | UnknownOutcome,
                 step: Step, db_path: Path, slept: str | None = None) -> str:
    """One line: what failed, at which step, what was and was not done, what to do, e.g.
    "shutdown: the exchange did not answer (server time: cannot connect to 127.0.0.1:9
    (...)) at start-up; no order was sent or cancelled; the agent on t.db was put to sleep
    all the same (no new entries when it runs): saved, ... ...". A shutdown's sleep is saved without the exchange
    (`slept` says where); a wake that fails leaves the state as it was: wake reconciles
    before it wakes (trader/control.py)."""
    if slept is not None:
        state = (f"the agent on {db_path} was put to sleep all the same (no new entries when "
                 f"it runs): {slept}")
    else:
        state = f"the agent on {db_path} was not " + (
            "put to sleep" if action == "shutdown" else "woken")
    done = {
        Step.EXCHANGE_START: f"no order was sent or cancelled; {state}",
        Step.BOOT: f"start-up reconciliation stopped part way (a position it protected or a "
                   f"stray order it cancelled is in the log above); {state}",
        Step.COMMAND: f"start-up reconciliation had finished (what it found is printed "
                      f"above); {state}",
    }[step]
    return (f"{action}: {problem(error)} {step.value}; {done}. {advice(error)}, then run "
            f"`tradebot {action}{' --flatten' if flatten else ''}` again.")
