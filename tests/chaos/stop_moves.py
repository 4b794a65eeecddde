"""The operator's stop moves in the chaos run, and what a restart must keep of them.

`/sl SYMBOL PRICE` goes to the agent as a phone sends it: through the fake Telegram Bot
API (tests/fakes/telegram_server.py), the command, then a press of its prompt's "Move the
stop" button; the reply says whether the new stop is on the exchange. The agent replaces
the stop new-first (trader/control_stop.py, trader/protection.py), so a kill between the
placement and the cancel, a lost answer or a wiped disk leaves two stops of ours, or the
wrong one, unless the restart sorts them out.

What a move promises, checked once after the restart that follows it (`violations`), on
the position it moved (its key, in our client ids) if that position is still open:
- its one live stop of ours is at the level of the last move the agent acknowledged, or,
  when the kill (or a Retry-After) came before the acknowledgement, at that level or the
  one before: never an order from before those (a restart that kept or adopted the
  replaced stop), never a level a refused move asked, never a looser level;
- unless the agent tightened it itself since (breakeven, trailing; the regime rule leaves
  the operator's level, and only tightens once those moved it, trader/regime_adjust.py):
  a new order at a level
  tighter than every level allowed above (the trail may put it back where it was before a
  looser /sl: its best price is unchanged while the market is held). While the move is in
  flight, only the level in force counts: the pressed one once a stop at it reached the
  exchange, the one before while none did (`_in_force`).
The market is held still (tests/chaos/market.py) from the moment the move finds the
protected position until that check, or the position would rarely outlive the restart (a
candle every 0.15 s moves 0.35 %).
"""

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from tests.chaos.market import Market
from tests.fakes.binance_server import FakeBinance
from tests.fakes.telegram_server import FakeTelegram, SentItem
from trader.domain import ClientId, Order, OrderRole, OrderType, Side

OWNER = 4242                 # the operator's chat and user id (TELEGRAM_ALLOWED_CHAT_IDS)
MOVE_BUTTON = "Move the stop"
GRID = Decimal("0.5")        # levels on the coarsest tick the faults set (faults.COARSE_TICK),
                             # so the agent's rounding onto the tick never changes them
PROMPT_BOUND = 5.0           # seconds for the prompt; a bound, not a wait
REPLY_BOUND = 15.0           # seconds for the reply (the engine runs it between ticks)
WORKING = "Working on it"    # the bot's message for a command still running (not the
                             # button's answerCallbackQuery of the same words)
WEIGHT_WINDOW = 60.0         # Binance's request-weight window: the longest gate hold
POSITION_BOUND = 1.2         # how long a move waits for a protected position (the run time)
POLL = 0.05
# What /sl answers at once instead of a prompt: no position, or a level Binance would refuse.
ANSWERED_AT_ONCE = ("no stop-loss to move", "stop-loss not moved")


@dataclass
class MovedStop:
    """What the stop of the position `key` may be after the move (see the module doc)."""
    key: str
    side: Side
    allowed: set[Decimal]
    old_orders: set[str]                 # its stops' client ids from before the move
    refused: set[Decimal] = field(default_factory=set)
    moves: list[str] = field(default_factory=list)     # what happened, for the evidence
    asked: Decimal | None = None                       # the level /sl pressed

    def tighter(self, level: Decimal, than: Decimal) -> bool:
        return (level - than) * self.side.sign > 0


class StopMoves:
    """Sends `/sl` through the fake Telegram and keeps what each move promises."""

    def __init__(self, fake: FakeBinance, telegram: FakeTelegram, market: Market,
                 rng: random.Random, symbol: str) -> None:
        self.fake, self.telegram, self.market = fake, telegram, market
        self.rng, self.symbol = rng, symbol
        self.moved: MovedStop | None = None
        self.pressed = False          # this cycle's move reached its button press
        self.outcomes: Counter[str] = Counter()
        self.checked = 0              # checks of a moved stop on a position still open

    def env(self) -> dict[str, str]:
        """The agent's Telegram settings (agent_env overrides)."""
        return {"TELEGRAM_BOT_TOKEN": self.telegram.token, "TELEGRAM_API_URL":
                self.telegram.api_url, "TELEGRAM_ALLOWED_CHAT_IDS": str(OWNER)}

    def our_stops(self) -> list[tuple[Order, ClientId]]:
        found = []
        for order in self.fake.sim.open_orders(self.symbol):
            parsed = ClientId.parse(order.client_id)
            if order.type is OrderType.STOP_MARKET and parsed is not None \
                    and parsed.role is OrderRole.STOP_LOSS:
                found.append((order, parsed))
        return found

    async def move(self) -> None:
        """One /sl on the open position's stop (waiting up to POSITION_BOUND for one): the
        command, the button, the reply. Cancelled by the kill at any point of it."""
        self.pressed = False
        stop = await self._one_live_stop()
        if stop is None:
            self.outcomes["no protected position"] += 1
            return
        # Held from here, not from the press: a candle meanwhile (one every 0.15 s, 0.35 %)
        # passed the drawn level (answered "would trigger at once") or closed the position
        # before the tap ("no open position") in most moves, and few stops were moved.
        self.market.hold()
        order, parsed = stop
        side = Side.BUY if order.side is Side.SELL else Side.SELL     # the position's
        level = self._level(side)
        if level is None or level == order.trigger_price:
            self.outcomes["no level"] += 1
            return
        since = len(self.telegram.sent)
        self.telegram.inject_message(OWNER, OWNER, f"/sl {self.symbol} {level}")
        prompt = await self._answer(
            lambda item: bool(item.buttons) or any(
                answer in (item.plain or "") for answer in ANSWERED_AT_ONCE),
            PROMPT_BOUND, since)
        if "stop-loss not moved" in (prompt.plain or ""):
            # A level Binance would refuse (the market moved past it since it was drawn):
            # answered at once, nothing to confirm (bot/handlers.py `_prompt_stop`).
            self.outcomes["refused at the prompt"] += 1
            return
        button = next((data for label, data in prompt.buttons
                       if label.startswith(MOVE_BUTTON)), None)
        if button is None or prompt.message_id is None:
            self.outcomes["no position at the prompt"] += 1
            return
        self._pressing(parsed.position_key, side, order.trigger_price, level)
        since = len(self.telegram.sent)
        self.telegram.press_button(OWNER, OWNER, prompt.message_id, button)
        def final(item: SentItem) -> bool:
            return item.method == "sendMessage" and "Stop-loss:" in (item.plain or "")

        try:
            reply = await self._answer(final, REPLY_BOUND, since)
        except AssertionError:
            # Answered "still working" (bot/handlers.py): the engine runs the move between
            # ticks, and a tick can wait at the gate for Binance's weight window (the chaos
            # run's many boots spend close to 2,400 a minute: a 17.8 s hold was seen). The
            # result then has until the window's end.
            if not any(item.method == "sendMessage" and WORKING in (item.plain or "")
                       for item in self.telegram.sent[since:]):
                raise
            reply = await self._answer(final, WEIGHT_WINDOW, since)
        self._answered(level, reply)

    async def _answer(self, answers: Callable[[SentItem], bool], bound: float,
                      since: int) -> SentItem:
        """The first item sent from `since` on that `answers` the update just injected;
        AssertionError past `bound` seconds, with what became of that update (was it ever
        fetched by the agent's getUpdates: tests/fakes/telegram_updates.py)."""
        update_id = self.telegram.update_log.newest_id
        try:
            return await self.telegram.wait_for(answers, bound, since)
        except AssertionError as unanswered:
            raise AssertionError(f"{self.telegram.update_log.describe(update_id)}\n"
                                 f"{unanswered}") from None

    async def _one_live_stop(self) -> tuple[Order, ClientId] | None:
        for _ in range(int(POSITION_BOUND / POLL)):
            stops = self.our_stops()
            if len(stops) == 1 and self.fake.sim.position(self.symbol).quantity != 0:
                return stops[0]
            await asyncio.sleep(POLL)
        return None

    def _level(self, side: Side) -> Decimal | None:
        """A level 0.2-2 % from the mark on the stop's side, on GRID: nearer or further
        than the stop is, as an operator tightens or widens it."""
        mark = self.fake.sim.mark_price(self.symbol)
        if not mark > 0:
            return None
        distance = Decimal(str(round(self.rng.uniform(0.002, 0.02), 5)))
        raw = mark * (1 - side.sign * distance) / GRID
        steps = raw.to_integral_value(ROUND_FLOOR if side is Side.BUY else ROUND_CEILING)
        return steps * GRID

    def _pressing(self, key: str, side: Side, current: Decimal, level: Decimal) -> None:
        """The move is about to be confirmed: from now on either level may be the stop, and
        the market holds still until the check."""
        self.market.hold()
        self.pressed = True
        self.moved = MovedStop(key, side, {current, level}, self._stops_of(key),
                               moves=[f"stop at {current}, /sl {level} pressed"], asked=level)

    def _answered(self, level: Decimal, reply: SentItem) -> None:
        moved, text = self.moved, reply.plain or ""
        assert moved is not None
        moved.moves.append(f"reply {text.splitlines()[0] if text else ''!r}")
        if "stop-loss moved to" in text or "already at" in text:
            self.outcomes["acknowledged"] += 1
            moved.allowed = {level}
            moved.old_orders = self._up_to_the_move(moved.key, level)
        elif "not confirmed on the exchange yet" in text:
            self.outcomes["not confirmed yet"] += 1          # either level, as if killed
        elif "price passed" in text:
            self.outcomes["closed at market"] += 1
            self.moved = None                                # the position is being closed
        else:
            why = text.splitlines()[-1].partition("not moved: ")[2] if text else ""
            self.outcomes[f"refused ({why.partition('(')[0].strip() or text[:60]})"] += 1
            moved.allowed.discard(level)
            moved.refused.add(level)

    def _up_to_the_move(self, key: str, level: Decimal) -> set[str]:
        """The stops of `key` accepted up to the one the acknowledged move left at `level`
        (the highest sequence number there): one placed after it is the agent's own
        tightening since (breakeven after a partial take-profit, the regime rule), which
        can land before the reply reaches the operator and is no order from before the move."""
        stops = self._stops_of(key)
        at_level = [parsed.seq for parsed, client_id in self._parsed(stops)
                    if (order := self.fake.sim.order(self.symbol, client_id)) is not None
                    and order.trigger_price == level]
        if not at_level:
            return stops
        return {client_id for parsed, client_id in self._parsed(stops)
                if parsed.seq <= max(at_level)}

    @staticmethod
    def _parsed(client_ids: set[str]) -> list[tuple[ClientId, str]]:
        return [(parsed, client_id) for client_id in client_ids
                if (parsed := ClientId.parse(client_id)) is not None]

    def _stops_of(self, key: str) -> set[str]:
        """The client ids of every stop of ours the exchange accepted for the position `key`."""
        found = set()
        for client_id in self.fake.accepted_orders:
            parsed = ClientId.parse(client_id)
            if parsed is not None and parsed.position_key == key \
                    and parsed.role is OrderRole.STOP_LOSS:
                found.add(client_id)
        return found

    def _in_force(self, moved: MovedStop) -> set[Decimal]:
        """The levels the agent's own tightening is measured from, while the move is in
        flight (killed before the reply, or "not confirmed yet"):
        - only the pressed one once its new stop reached the exchange: from then on a
          widening /sl is the operator's level, and the trail may tighten from it to a level
          between it and the replaced stop (seen once at load ~10: stop 43759.6, /sl
          43687.5, trail 43690.1);
        - only the one before while no stop at the pressed level ever did: the agent, killed
          before it sent (or saved) the move, left the old stop in force, and its trail may
          tighten that to a level short of a tighter /sl (seed 7 in CI: stop 50243.5, /sl
          50101.5, trail 50102.1);
        every allowed level otherwise (acknowledged, or the move refused)."""
        if moved.asked not in moved.allowed or len(moved.allowed) == 1:
            return moved.allowed
        landed = any(
            (order := self.fake.sim.order(self.symbol, client_id)) is not None
            and order.trigger_price == moved.asked
            for client_id in self._stops_of(moved.key) - moved.old_orders)
        return {moved.asked} if landed else moved.allowed - {moved.asked}

    def killed(self) -> None:
        """The kill came: a move pressed but not answered stays in flight (either level)."""
        if self.pressed and self.moved is not None and len(self.moved.allowed) > 1:
            self.outcomes["killed before the reply"] += 1
            self.moved.moves.append("killed before the reply")

    def violations(self) -> list[str]:
        """The moved stop's promise (module doc) on the settled exchange, checked once: the
        move is forgotten and the market moves again."""
        moved, self.moved = self.moved, None
        self.market.release()
        if moved is None or self.fake.sim.position(self.symbol).quantity == 0:
            return []
        stops = [order for order, parsed in self.our_stops() if parsed.position_key == moved.key]
        if len(stops) != 1:     # none: closed, or NO_STOP; two: EXTRA_STOP (both checked apart)
            return []
        self.checked += 1
        stop, level = stops[0], stops[0].trigger_price
        assert level is not None
        if level in moved.allowed:
            return []
        where = (f"moved stop of {moved.key} at {level} ({stop.client_id}), allowed "
                 f"{sorted(moved.allowed)}: {'; '.join(moved.moves)}")
        if stop.client_id in moved.old_orders:
            return [f"{where}: an order from before the move outlived it"]
        if level in moved.refused:
            return [f"{where}: the level of a refused move"]
        if all(moved.tighter(level, than) for than in self._in_force(moved)):
            # A new order, tighter: the agent's own rules (breakeven, trailing, the regime
            # rule), which may land on a level the stop had before (with the market held,
            # the trail's best price is unchanged): never loosened, as designed.
            return []
        return [f"{where}: looser than the operator's level"]
