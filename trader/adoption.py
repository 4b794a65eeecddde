"""A position found on the exchange that the agent holds no record of, taken over (adopted):
its key recovered from our live orders and the journal (a wiped disk: our own position
again, the client ids its key already sent asked by id so none is sent twice, its last stop
level, the stop sized from the risk budget), else somebody else's (opened by hand); left
alone unless TRADEBOT_ADOPT_POSITIONS, a /close, or a late fill of a closed record's entry
quote (trader/late_entry_fill.py) asks for it; and how the operator is told. The position
keeper (trader/position_keeper.py `adopt`) hands the record to the interpreter and protects
it."""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal

from loguru import logger

from trader import display
from trader.alerts import Alert, AlertName
from trader.balance_keeper import BalanceKeeper
from trader.clock import Clock
from trader.config import Settings
from trader.domain import ClientId, Fill, OrderRole
from trader.entry_sender import EntrySender
from trader.exchange.base import Exchange, ExchangeError, UnknownOutcome
from trader.executor import Executor
from trader.late_entry_fill import late_entry_fill
from trader.observe import SymbolView, covering_leg
from trader.order_tracker import OrderTracker
from trader.position import Position, PositionState
from trader.reconcile import adopted_position, recover_key
from trader.trade_store import TradeStore

# Roles whose client ids a pickup on a wiped disk asks the exchange about (_sent_before).
# FLATTEN: a market close sent before the wipe (a /close in parts interrupted) is carried
# on, and no close id is sent again (a close's parts derive from its id: `_sent_before`).
WIPE_PROBED_ROLES = (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT, OrderRole.TAKE_PROFIT_1,
                     OrderRole.PARTIAL_TP, OrderRole.FLATTEN)
# How long after a close a fill of its entry quote is taken for a late one (close_hold.py:
# a quote possibly live at the close is cancelled by the finalization and the orphan sweep)
LATE_FILL_WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Adopted:
    """A position taken over, not yet the interpreter's: its record, whether its key is one
    of ours (`ours`), and the closed record and the fill it comes of when it is a late fill of
    that record's entry quote (None otherwise)."""
    position: Position
    ours: bool
    late: tuple[Position, Fill] | None


class Adoption:
    """Builds the record of a position the agent finds on the exchange without one."""

    def __init__(self, settings: Settings, exchange: Exchange, executor: Executor,
                 tracker: OrderTracker, store: TradeStore, entries: EntrySender, clock: Clock,
                 balances: BalanceKeeper) -> None:
        self.settings = settings
        self.exchange = exchange
        self.executor = executor
        self.tracker = tracker
        self.store = store
        self.entries = entries
        self.clock = clock
        self.balances = balances
        self._left_alone: dict[str, tuple[Decimal, Decimal]] = {}   # symbol -> (qty, entry)

    async def adopted(self, symbol: str, view: SymbolView, to_close: bool,
                      taker_fee: Decimal) -> Adopted | None:
        """The record of the position `view` shows on `symbol`, or None when it is left
        alone (not TRADEBOT_ADOPT_POSITIONS, no /close asked for it, no late entry fill:
        one WARNING says so). `taker_fee`: the policy's, for its breakeven."""
        late = self._late_entry_fill(symbol, view)
        if not (self.settings.adopt_positions or to_close or late is not None):
            self._left_alone_logged(symbol, view)
            return None
        journaled = self.store.fills(symbol)
        key, seq = recover_key(symbol, self.tracker.ours_live(symbol), journaled,
                               view.position.side)
        known = self.store.position(symbol, key) if key else None
        if known is not None and (known.state is PositionState.CLOSED
                                  or known.side is not view.position.side):
            # The key names a finished trade (its entry is the journal's last, or an order
            # of it is left): this position is another one, opened since (by hand).
            logger.info("untracked position is not the closed {} {} symbol={}",
                        known.side.label, key, symbol)
            key, seq, known = None, {}, None
        last_stop = risk_budget = None
        if key is not None and known is None:          # our own, on a wiped disk
            seq, last_stop = await self._sent_before(symbol, key, seq)
            risk_budget = await self._risk_budget()
        position = adopted_position(
            view, self.exchange.rules(symbol), self.clock.now(), key=key, seq=seq, known=known,
            leverage=self.settings.leverage,
            time_limit=timedelta(minutes=self.settings.time_in_trade_minutes),
            cooldown=timedelta(minutes=self.settings.cooldown_minutes), fills=journaled,
            taker_fee=taker_fee, last_stop=last_stop,
            risk_budget=risk_budget)
        return Adopted(position, ours=key is not None, late=late)

    def _late_entry_fill(self, symbol: str, view: SymbolView) -> tuple[Position, Fill] | None:
        """The symbol's last closed record (lately, on the side now held) and the fill of its
        entry quote that came after its close (trader/late_entry_fill.py), if any."""
        since = self.clock.now() - LATE_FILL_WINDOW
        recent = [p for p in self.store.closed_since(since) if p.symbol == symbol
                  and p.side is view.position.side and p.closed_at is not None]
        if not recent:
            return None
        last = max(recent, key=lambda p: p.closed_at or since)
        fill = late_entry_fill(last, self.store.fills(symbol, last.closed_at))
        return None if fill is None else (last, fill)

    async def _risk_budget(self) -> Decimal | None:
        """What an entry is sized to lose now (trader/risk.py): equity x the risk fraction.
        A wiped disk's boot adopts before its balance read: the balance is read here then.
        None when it cannot be read: the stop is planned as for any adoption (1 % from the
        mark), said in the log."""
        balance = self.balances.balance
        if balance is None:
            try:
                balance = await self.balances.refresh()
            except (ExchangeError, UnknownOutcome) as exc:
                logger.warning("balance unreadable: the stop of a position picked up again "
                               "is not sized from it error={}", exc)
                return None
        account = self.entries.account(balance, ())
        return None if account is None else account.equity * account.risk_fraction

    def _left_alone_logged(self, symbol: str, view: SymbolView) -> None:
        """A WARNING once per untracked position (its size and entry price), not at every
        tick: /logs shows the last warnings, and one line every 2 s pushed the rest out.
        The invariant monitor's INVARIANT_NO_STOP alert is what tells the operator."""
        seen = (view.position.quantity, view.position.entry_price)
        log = logger.debug if self._left_alone.get(symbol) == seen else logger.warning
        self._left_alone[symbol] = seen
        log("untracked position left alone symbol={} qty={}", symbol, view.position.quantity)

    async def past_ids_sent(self, position: Position) -> Position:
        """A known position whose client id sequence is past every id of its legs the
        exchange knows. The database can miss orders of ours: placed while nothing could be
        written (a /sl, breakeven, trailing), then a restart on that database. A live one
        is taken over by the observation (trader/observe.py `_newer_of_ours`); one no longer
        live (cancelled by hand) is not among the open orders, and its id sent again would
        be taken (one id, two orders). Asked at boot; entries and partial take-profits are
        never sent unjournaled (trader/executor.py JOURNAL_REQUIRED)."""
        roles = [leg.role for leg in position.legs]
        seq, _ = await self._sent_before(position.symbol, position.key, position.seq, roles)
        if seq == position.seq:
            return position
        logger.warning("client ids the database missed are on the exchange symbol={} key={} "
                       "journaled={} exchange={}", position.symbol, position.key,
                       position.seq, seq)
        return replace(position, seq=seq)

    async def _sent_before(self, symbol: str, key: str, seq: dict[str, int],
                           roles: Iterable[OrderRole] = WIPE_PROBED_ROLES
                           ) -> tuple[dict[str, int], Decimal | None]:
        """`seq` with the client ids `key` already sent, per role: an order that is no
        longer live is not among the live orders `recover_key` reads (a stop or target
        cancelled by hand, a MARKET partial take-profit filled at once), and sending its
        client id again makes one id two orders (the exchange refuses a duplicate id among
        open orders only); a partial take-profit's would close a second part. Asked by
        client id, sl1, sl2, ... until one is unknown; the stop first (it protects). And
        the level of the newest stop found so (None: none past `seq`): no longer live, yet
        the last level the agent had put its stop at (a trail, breakeven, /sl).

        Market closes (FLATTEN) are asked one id further: a close whose answer was lost
        and which never landed is followed by the next id (trader/market_exit.py), so one
        unknown id does not end them. Their parts need no asking: a part's id is its
        close's + PART_SEQ_STRIDE x n (trader/intents.py `part_client_id`), sent only after
        its close's first part was accepted, so a close numbered past every close found
        has parts no id sent before can equal. The REST cost, one GET each (weight 1): per
        role the ids found plus one (FLATTEN: plus two): bounded by what the key sent."""
        sent_before = dict(seq)
        last_stop = None
        for role in roles:
            sent = seq.get(role.value, 0)
            gap = 1 if role is OrderRole.FLATTEN else 0
            while True:
                order = None
                for ahead in range(1, gap + 2):
                    order = await self.executor.read_order(
                        symbol, str(ClientId(symbol, key, role, sent + ahead)))
                    if order is not None:
                        sent += ahead
                        break
                if order is None:
                    break
                if role is OrderRole.STOP_LOSS:
                    last_stop = order.trigger_price
            if sent:
                sent_before[role.value] = sent
        return sent_before, last_stop

    def legs_text(self, position: Position, view: SymbolView) -> str:
        """How an adopted position is protected: "1 % stop, 1.5 % target" when the agent
        places both, else naming a stop or target placed by hand that it takes as its own
        (trader/observe.py `covering_leg`; the agent never cancels an order it did not
        place, so the operator must know which order protects the position)."""
        parts = []
        for leg, planned in ((position.stop, "1 % stop"), (position.take_profit, "1.5 % target")):
            found = covering_leg(position, leg, view.live, self.clock.now())
            if found is None or ClientId.parse(found.client_id) is not None:
                parts.append(planned)
            else:
                what = "stop-loss" if leg.role is OrderRole.STOP_LOSS else "take-profit"
                parts.append(f"{what} {found.client_id} at {display.number(found.trigger_price)}"
                             " (placed outside the agent, kept as its own)")
        return ", ".join(parts)


def adoption_alert(symbol: str, position: Position, ours: bool, to_close: bool,
                   legs: str = "1 % stop, 1.5 % target") -> Alert:
    """What the operator is told of a position taken over: ours again (in the middle of its
    close, or not), somebody else's (with the orders that protect it), or one a /close asked
    for."""
    if to_close:    # the /close's reply tells the rest
        whose = "the agent's own" if ours else "a"
        text = (f"{symbol}: {whose} {position.side.label} "
                f"{display.number(position.quantity)} the agent was not managing is "
                "being closed at market, as /close asked")
        return Alert(AlertName.STARTUP if ours else AlertName.RECONCILE_MISMATCH, text,
                     symbol, dedup_key=f"adopted:{symbol}:{position.key}", answered_in_reply=True)
    if ours and position.state is PositionState.CLOSING:
        text = (f"{symbol}: picked up its own {position.side.label} "
                f"{display.number(position.quantity)} again, in the middle of its market "
                f"close (sent before the restart): closing the rest ({position.key})")
        return Alert(AlertName.STARTUP, text, symbol, dedup_key=f"adopted:{symbol}:{position.key}")
    if ours:
        text = (f"{symbol}: picked up its own {position.side.label} "
                f"{display.number(position.quantity)} again; protecting it ({position.key})")
        return Alert(AlertName.STARTUP, text, symbol, dedup_key=f"adopted:{symbol}:{position.key}")
    text = (f"{symbol}: a {position.side.label} {display.number(position.quantity)} the "
            f"agent did not open is on the exchange: adopted and protected: {legs}")
    return Alert(AlertName.RECONCILE_MISMATCH, text, symbol,
                 dedup_key=f"adopted:{symbol}:{position.key}")
