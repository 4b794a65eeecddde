"""What happens on the fake account besides the agent's own requests: a person trading in
the app (a position opened, closed or an order cancelled by hand, a symbol's margin type or
the account's asset mode switched), the exchange acting by
itself (a trigger rejected or stuck, a liquidation, ADL or settlement, a funding
settlement). Mixed into `FakeBinance` (binance_server.py); each publishes its user-data
events as Binance would (also served under /_control/<name>)."""

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from tests.fakes.binance_endpoints import BinanceEndpoints
from tests.fakes.binance_hub import StreamHub
from tests.fakes.binance_income import IncomeLedger
from tests.fakes.binance_wire import account_update, algo_update
from trader.domain import OrderStatus, Side, to_ms
from trader.exchange.base import ExchangeError
from trader.exchange.sim import SimEvent, Simulator
from trader.exchange.sim_path import rising_trigger

# ACCOUNT_UPDATE reasons the income history books as TRANSFER rows (an assumption of this
# fake: Get-Income-History's example shows a TRANSFER row and names no mapping)
TRANSFER_REASONS = ("DEPOSIT", "WITHDRAW", "ASSET_TRANSFER", "MARGIN_TRANSFER")
# Where `stick_trigger` parks an order in the simulator: levels no price of a test reaches
NEVER_ABOVE, NEVER_BELOW = Decimal("1000000000000"), Decimal("0.00000001")


class AccountActs:
    sim: Simulator
    endpoints: BinanceEndpoints
    hub: StreamHub
    income: IncomeLedger
    now: Callable[[], datetime]
    _publish: Callable[[list[SimEvent]], Awaitable[None]]

    async def settle_funding(self, symbol: str, rate: Decimal) -> None:
        """A funding settlement at `rate` now: ACCOUNT_UPDATE reason FUNDING_FEE."""
        self.sim.set_funding_rate(symbol, rate)
        await self._publish(self.sim.apply_funding(symbol, self.now()))

    async def open_position_by_hand(self, symbol: str, side: Side, qty: Decimal) -> None:
        await self._publish(self.sim.open_by_hand(symbol, side, qty, self.now()))

    async def close_position_by_hand(self, symbol: str, qty: Decimal | None = None) -> None:
        await self._publish(self.sim.close_by_hand(symbol, self.now(), qty))

    async def cancel_order_by_hand(self, symbol: str, client_id: str) -> None:
        await self._publish(self.sim.cancel_by_hand(symbol, client_id, self.now()))

    async def reject_trigger(self, symbol: str, client_id: str,
                             reason: str = "Reduce Only reject") -> None:
        """The conditional order `client_id` triggers and the matching engine rejects it
        (e.g. a margin check failed): gone, with `reason` told on the stream (ALGO_UPDATE
        REJECTED "rm", or CONDITIONAL_ORDER_TRIGGER_REJECT "r" without the Algo Order API;
        the default is the ALGO_UPDATE page's example of "rm")."""
        self.endpoints.ledger.reject_reasons[client_id] = reason
        await self._publish(self.sim.reject_by_exchange(symbol, client_id, self.now()))

    async def stick_trigger(self, symbol: str, client_id: str) -> None:
        """The algo order `client_id` meets its trigger and stays TRIGGERING: it "has met
        the triggering condition and has been forwarded to the matching engine"
        (https://developers.binance.com/docs/derivatives/usds-margined-futures/
        user-data-streams/Event-Algo-Order-Update) and never executes, as a
        reduce-only STOP_MARKET did on Binance's demo venue
        (github.com/nautechsystems/nautilus_trader/discussions/5378: GET algoOrder still
        answered TRIGGERING the next day, the position stayed open, a cancel answered
        -2011). Sent now: ALGO_UPDATE TRIGGERING; from then on GET openAlgoOrders and
        algoOrder answer it TRIGGERING at its trigger price whatever the price does.
        Call it before moving the price through its level (the simulator would fill it)."""
        if not self.endpoints.algo_api:
            raise ValueError("TRIGGERING is an algo order status: the classic endpoints have none")
        order = self.sim.order(symbol, client_id)
        if order is None or not order.type.conditional or order.status is not OrderStatus.NEW:
            raise ExchangeError(-2011, "Unknown order sent.")
        ledger = self.endpoints.ledger
        ledger.stuck[client_id] = order.trigger_price
        rising = rising_trigger(order.type, order.side)
        self.sim.orders.add(replace(order, trigger_price=NEVER_ABOVE if rising else NEVER_BELOW))
        await self.hub.send_user([algo_update(order, ledger.algo_id(order), "TRIGGERING",
                                              to_ms(self.now()))])

    async def close_position_by_exchange(self, symbol: str, client_id: str,
                                         qty: Decimal | None = None) -> None:
        """A liquidation ("autoclose-<n>"), ADL ("adl_autoclose") or delisting settlement
        ("settlement_autoclose-<n>") order of Binance's own, filled at the mark."""
        await self._publish(self.sim.close_by_exchange(symbol, self.now(), client_id, qty))

    async def change_margin_type_by_hand(self, symbol: str, margin_type: str) -> None:
        """The symbol switched to `margin_type` ("CROSSED" or "ISOLATED") in the app: refused
        as POST /fapi/v1/marginType refuses it (ExchangeError), else ACCOUNT_UPDATE with
        reason MARGIN_TYPE_CHANGE and the symbol's position row, its "mt" the new type
        ("ACCOUNT_UPDATE will be pushed only when update happens on user's account,
        including changes on balances, positions, or margin type": https://developers.
        binance.com/docs/derivatives/usds-margined-futures/user-data-streams/
        Event-Balance-and-Position-Update; that page lists MARGIN_TYPE_CHANGE among the
        reasons "m" and shows no example of it: the wallet is unchanged, "bc" 0)."""
        self.endpoints.margin_type({"symbol": symbol, "marginType": margin_type})
        moment = to_ms(self.now())
        await self.hub.send_user([account_update(
            [self.sim.position(symbol)], self.sim.balance(), "MARGIN_TYPE_CHANGE", moment,
            margin_types=self.endpoints.margin_types)])

    async def switch_asset_mode_by_hand(self, multi_assets: bool) -> None:
        """Multi-Assets mode switched on (or off) in the app: ACCOUNT_CONFIG_UPDATE with "ai":
        {"j": multi_assets}, the page's second example (https://developers.binance.com/docs/
        derivatives/usds-margined-futures/user-data-streams/Event-Account-Configuration-
        Update-previous-Leverage-Update). On, every symbol is on cross margin: "Change
        user's Multi-Assets mode ... on Every symbol" (.../trade/rest-api/
        Change-Multi-Assets-Mode), and POST /fapi/v1/marginType ISOLATED answers -4168.
        Off, the symbols stay on cross until set again. (Binance's error-code list says it
        refuses the switch while a symbol is on isolated margin, -4167; the stored docs
        hold no such page, and this fake does not refuse it.)"""
        self.endpoints.multi_assets = multi_assets
        if multi_assets:
            for symbol in self.endpoints.symbols:
                self.endpoints.margin_types[symbol] = "CROSSED"
        moment = to_ms(self.now())
        await self.hub.send_user([{"e": "ACCOUNT_CONFIG_UPDATE", "E": moment, "T": moment,
                                   "ai": {"j": multi_assets}}])

    async def move_money_by_hand(self, amount: Decimal, reason: str = "ASSET_TRANSFER") -> None:
        """USDT moved into (+) or out of (-) the futures wallet, no trade: ACCOUNT_UPDATE with
        `reason` ("m": DEPOSIT, WITHDRAW, ASSET_TRANSFER, ...), the USDT balance's "bc" the
        amount ("Balance Change except PnL and Commission") and no position row ("Only
        symbols of changed positions will be pushed"): https://developers.binance.com/docs/
        derivatives/usds-margined-futures/user-data-streams/Event-Balance-and-Position-Update.
        The income history gets its row (TRANSFER for a deposit, withdrawal or transfer, the
        reason's own type otherwise: .../account/rest-api/Get-Income-History)."""
        self.sim.ledger.wallet = self.sim.ledger.wallet + amount
        moment = to_ms(self.now())
        income_type = "TRANSFER" if reason in TRANSFER_REASONS else reason
        self.income.book_transfer(amount, income_type, moment)
        await self.hub.send_user([account_update([], self.sim.balance(), reason, moment,
                                                 balance_change=amount)])
