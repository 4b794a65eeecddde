"""The one interpreter: steps a position through an event and everything its actions report
back, committing each step in one transaction.

    position = await interpreter.apply(position, LegGone(OrderRole.STOP_LOSS, cid, True))

`trader.lifecycle.step` decides; this performs: alerts are published, Finalize records the
close (trader/closing.py, then one transaction in trader/position_journal.py), exchange
actions go through `ActionRunner` (trader/exchange_actions.py) and their results come back
as events for the next step. Positions that are still open are kept in `positions`.
"""

from collections import deque
from datetime import datetime

from loguru import logger

from trader.alerter import Alerter
from trader.alerts import Alert
from trader.clock import Clock
from trader.closing import Finalizer
from trader.events import Action, Event, Finalize, Flatten, FlattenResult, Policy, Tick
from trader.exchange_actions import ActionRunner
from trader.lifecycle import step
from trader.lifecycle_tick import quiet
from trader.position import Position, PositionState
from trader.position_journal import PositionJournal
from trader.telemetry import Counters, ProtectionTelemetry

# Read once: a member read on its class goes through 3.11's `EnumType.__getattr__` (~900
# instructions), and every in-position candle remembers its record
_CLOSED = PositionState.CLOSED
MAX_STEPS = 50           # events one observation may cause (a runaway loop is a bug: stop)


class Interpreter:
    def __init__(self, runner: ActionRunner, finalizer: Finalizer, journal: PositionJournal,
                 alerter: Alerter, clock: Clock, policy: Policy,
                 telemetry: ProtectionTelemetry | None = None) -> None:
        self.runner = runner
        self.finalizer = finalizer
        self.journal = journal
        self.alerter = alerter
        self.clock = clock
        self.policy = policy
        self.telemetry = telemetry or ProtectionTelemetry(Counters())
        self.positions: dict[str, Position] = {}
        # (record, result) of the last Tick `quiet` answered: the result is the record with
        # at most its best price moved (trader/position_keeper.py keeps its steady answer)
        self.last_quiet: tuple[Position, Position] | None = None

    def now(self) -> datetime:
        return self.clock.now()

    def adopt(self, position: Position) -> Position:
        """Take a new record (an entry about to be sent, an adopted position): saved first."""
        self.journal.commit(None, position, None)
        self._remember(position)
        return position

    async def apply(self, position: Position, event: Event,
                    notes: list[str] | None = None, settled: bool | None = None) -> Position:
        """Step `position` through `event` and what its actions report back. `notes`
        collects what was done, for an operator command's answer. `settled`: for a Tick,
        `protection.settled(position)` of this very record when the caller knows it (else
        `quiet` reads it).

        The steps' alerts are published once their exchange actions are done (before a
        close is recorded, and whatever happens): queuing one is a database commit, which
        must not stand between a fill or a vanished stop and the placement that protects
        the position (an fsync each on the live agent's journal)."""
        if type(event) is Tick:
            moved = self.quiet_tick(position, event, settled)
            if moved is not None:
                return moved
        return await self.steps(position, event, notes)

    def quiet_tick(self, position: Position, event: Tick,
                   settled: bool | None = None) -> Position | None:
        """`apply(position, event)` for a Tick whose result is known without the round trip
        (trader/lifecycle_tick.py `quiet` says why: then `_step` would do what follows with
        no action to perform and no alert to publish), done here, without a coroutine (most
        ticks of a trade); None, having done nothing, when the Tick is to be stepped in full
        (`steps`)."""
        moved = quiet(position, event, self.clock.now(), self.policy, settled)
        if moved is not None:
            self.last_quiet = (position, moved)
            self.telemetry.stepped(position, event, moved)
            if moved is not position:      # the best price moved: saved (a restart's
                self.journal.commit(position, moved, event)    # trail starts from it)
            self._remember(moved)
        return moved

    async def steps(self, position: Position, event: Event,
                    notes: list[str] | None = None) -> Position:
        """`apply` without its quiet Tick: `event` and what its actions report back,
        stepped in full (a Tick `quiet_tick` declined)."""
        queue: deque[Event] = deque([event])
        said: list[Alert] = []
        try:
            for _ in range(MAX_STEPS):
                if not queue:
                    return position
                position = await self._step(position, queue, said, notes)
            logger.error("step limit reached symbol={} pending={}", position.symbol,
                         list(queue))
            return position
        finally:
            self._publish(said)

    async def _step(self, position: Position, queue: deque[Event], said: list[Alert],
                    notes: list[str] | None) -> Position:
        current = queue.popleft()
        result = step(position, current, self.now(), self.policy)
        if result.ignored:
            return position
        self.telemetry.stepped(position, current, result.position)   # the counters
        # A step that changed nothing returns the same record: nothing to save. A close
        # is committed by Finalize alone, in one transaction with its fills: if the
        # process dies before, the restart finds the position open and finalizes it again.
        if result.position is not position \
                and not any(isinstance(action, Finalize) for action in result.actions):
            self.journal.commit(position, result.position, current)
        position = result.position
        self._remember(position)
        for action in result.actions:
            if isinstance(action, Alert):
                said.append(action)
                continue
            if isinstance(action, Finalize):
                self._publish(said)     # what led to the close is said before the close
            events = await self.perform(position, action, notes)
            if type(action) is Flatten and action.told is not None and _sent(events):
                said.append(action.told)
            queue.extend(events)
        return position

    def _publish(self, said: list[Alert]) -> None:
        for alert in said:
            self.alerter.publish(alert, self.now())
        said.clear()

    async def perform(self, position: Position, action: Action,
                      notes: list[str] | None) -> list[Event]:
        if isinstance(action, Alert):
            self.alerter.publish(action, self.now())
            return []
        if isinstance(action, Finalize):
            final = await self.finalizer.finalize(position, action.reason)
            self.journal.close(final)
            if notes is not None:
                notes += [f"{position.symbol}: {line}" for line in final.problems]
            return []
        performed = await self.runner.run(position, action)
        if notes is not None:
            notes += performed.notes
        return performed.events

    def _remember(self, position: Position) -> None:
        if position.state is _CLOSED:
            self.positions.pop(position.symbol, None)
        else:
            self.positions[position.symbol] = position


def _sent(events: list[Event]) -> bool:
    """A market close performed was sent (not refused before sending: `FlattenResult.not_sent`)."""
    return not any(type(event) is FlattenResult and event.not_sent for event in events)
