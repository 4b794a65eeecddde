"""The client ids this process sent, for the second-instance check (trader/second_instance.py:
a live order of ours that this process did not send is another instance's). Bounded: past
PLACED_IDS_KEPT ids, those of finished orders are forgotten (a long live run would keep
every id it ever sent); an id whose outcome is still open is never forgotten, or its order,
once it shows up live, would look like another instance's (SECOND_INSTANCE puts the agent
to sleep)."""

from trader.domain import Order
from trader.trade_store import TradeStore

PLACED_IDS_KEPT = 1000   # sent client ids remembered before those of finished orders go


class SentIds:
    """`ids`: the client ids sent, read by the second-instance check as a set."""

    def __init__(self, store: TradeStore) -> None:
        self.store = store
        self.ids: set[str] = set()
        self._limit = PLACED_IDS_KEPT
        # Those of `ids` whose order was seen terminal (answered or read back): finished
        # for `finished` without asking the database (an order that ended never becomes
        # live again: trader/order_tracker.py). Cut down to `ids` at each scan.
        self._ended: set[str] = set()

    def remember(self, client_id: str) -> None:
        """Remember a client id sent. Past the limit, those of finished orders are
        forgotten. Kept: an id whose intent is unresolved (PENDING; SENT, whose order may
        still land; ACKED, live), and one the store knows nothing of (never journaled)."""
        self.ids.add(client_id)
        if len(self.ids) <= self._limit:
            return
        self.ids = self.ids - self.finished(self.ids)
        self._ended &= self.ids
        # Many unresolved ones: wait until the memory doubles before the next scan.
        self._limit = max(PLACED_IDS_KEPT, 2 * len(self.ids))

    def saw(self, order: Order) -> None:
        """Note an order of ours seen terminal (its id is finished for `finished`)."""
        if order.status.terminal and order.client_id in self.ids:
            self._ended.add(order.client_id)

    def finished(self, client_ids: set[str]) -> set[str]:
        """The ids whose intent is resolved, or, with no intent (a resolved intent is
        purged after 6 h), whose order is terminal: as seen end (`saw`), else asked of the
        order records in one go. (The second-instance check compares live orders only: an
        id whose order ended is of no use to it either way.)"""
        finished: set[str] = set()
        unknown: list[str] = []
        ended = self._ended
        for client_id in client_ids:
            intent = self.store.intent(client_id)
            if intent is None:
                if client_id in ended:
                    finished.add(client_id)
                else:
                    unknown.append(client_id)
            elif intent.status.resolved:
                finished.add(client_id)
        return finished | self.store.finished_orders(unknown) if unknown else finished
