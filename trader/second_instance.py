"""The second-instance check: an order with our prefix that this process neither placed nor
found at boot means another instance trades the account (an overlapping deploy); the agent
goes to sleep (protection only) with SECOND_INSTANCE instead of fighting it."""

from loguru import logger

from trader import operator_holds
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock
from trader.executor import Executor
from trader.guard_book import GuardBook
from trader.order_tracker import OrderTracker


class SecondInstanceCheck:
    """Boot (trader/startup.py) sets `known_orders` to the live orders it found and `booted`;
    before that the check does nothing. The ids this process sent are the executor's
    `placed` (bounded there: trader/executor.py)."""

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
        if not self.booted:
            return      # boot sets the known orders afresh; a backtest never boots
        live = {o.client_id for o in self.tracker.ours_live(symbol)}
        strangers = sorted(live - self.known_orders - self.executor.placed)
        if not strangers or self.guards.state.asleep:
            return
        logger.critical("second instance suspected symbol={} orders={}", symbol, strangers)
        self.guards.set(operator_holds.sleep(self.guards.state))
        self.alerter.publish(Alert(
            AlertName.SECOND_INSTANCE, f"{symbol}: orders {', '.join(strangers)} carry this "
            "agent's prefix but were not placed by this process: another instance is trading "
            "this account. Trading stopped (asleep, protection only); stop the other instance, "
            "then /wake.", symbol), self.clock.now())
