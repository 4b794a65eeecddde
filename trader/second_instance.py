"""The second-instance check: an order with our prefix that this process neither placed nor
found at boot means another instance trades the account (an overlapping deploy); the agent
goes to sleep (protection only) with SECOND_INSTANCE instead of fighting it."""

from loguru import logger

from trader import guards
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock
from trader.executor import Executor
from trader.guard_book import GuardBook
from trader.order_tracker import OrderTracker

IDS_KEPT_UNBOOTED = 2000  # client ids kept for the second-instance check before boot


class SecondInstanceCheck:
    """Boot (trader/startup.py) sets `known_orders` to the live orders it found and `booted`;
    before that the check only collects the ids it sees."""

    def __init__(self, tracker: OrderTracker, executor: Executor, guard_book: GuardBook,
                 alerter: Alerter, clock: Clock) -> None:
        self.tracker = tracker
        self.executor = executor
        self.guards = guard_book
        self.alerter = alerter
        self.clock = clock
        self.booted = False
        self.known_orders: set[str] = set()

    def check(self, symbol: str) -> None:
        """Compare `symbol`'s live orders of ours with those this process knows."""
        live = {o.client_id for o in self.tracker.ours_live(symbol)}
        if not self.booted:
            self.known_orders |= live
            if len(self.known_orders) + len(self.executor.placed) > IDS_KEPT_UNBOOTED:
                self._forget_unbooted_ids()
            return
        strangers = sorted(live - self.known_orders - self.executor.placed)
        if not strangers or self.guards.state.asleep:
            return
        logger.critical("second instance suspected symbol={} orders={}", symbol, strangers)
        self.guards.set(guards.sleep(self.guards.state))
        self.alerter.publish(Alert(
            AlertName.SECOND_INSTANCE, f"{symbol}: orders {', '.join(strangers)} carry this "
            "agent's prefix but were not placed by this process: another instance is trading "
            "this account. Trading stopped (asleep, protection only); stop the other instance, "
            "then /wake.", symbol), self.clock.now())

    def _forget_unbooted_ids(self) -> None:
        """Before boot (a backtest never boots) the check does not run and boot starts the
        known ids afresh: ids the tracker no longer knows (finished long ago) need not be
        kept, or a year's replay would keep every client id it ever placed."""
        self.known_orders = {cid for cid in self.known_orders if self.tracker.get(cid)}
        self.executor.placed = {cid for cid in self.executor.placed if self.tracker.get(cid)}
