"""The exchange's margin call (trader/exchange/base.py `MarginCall`; Binance's MARGIN_CALL,
https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/
Event-Margin-Call) as the operator's CRITICAL alert.

The agent changes nothing itself: its stop-loss stays where it is, and the page warns
that the position "has been liquidated at the same time" in a fast market. What the
operator can do (add margin, /close) is theirs to decide, so the alert says what Binance
said: the position, its mark and the maintenance margin it needs.
"""

from collections.abc import Iterable

from trader import display
from trader.alerts import Alert, AlertName
from trader.domain import ZERO
from trader.exchange.base import ExchangeEvent, MarginCall


def margin_call_alerts(events: Iterable[ExchangeEvent], traded: Iterable[str]) -> list[Alert]:
    """One MARGIN_CALL alert per position of each margin call among `events`."""
    ours = set(traded)
    alerts = []
    for event in events:
        if not isinstance(event, MarginCall):
            continue
        for position in event.positions:
            symbol = position.symbol
            side = position.side.label if position.side is not None else "position"
            whose = "the agent's stop-loss stays as it is" if symbol in ours \
                else "not a symbol the agent trades"
            text = (f"{symbol}: margin call from Binance: the {side} "
                    f"{display.number(position.size)} (mark {display.number(position.mark_price)}"
                    f", unrealized {display.money(position.unrealized_pnl, signed=True)} USDT, "
                    f"maintenance margin {display.money(event.maintenance.get(symbol, ZERO))} "
                    f"USDT) is close to liquidation; {whose}. Add margin or /close {symbol}")
            # One key per symbol: Binance repeats the call while the risk stays high; the
            # alerter sends one per 5 minutes and counts the rest (trader/alerter.py).
            alerts.append(Alert(AlertName.MARGIN_CALL, text, symbol,
                                dedup_key=f"margin-call:{symbol}"))
    return alerts
