"""The child orders of our triggered algo orders: each is known by its order id only.

A conditional order on the Algo Order API places, when it triggers, a MARKET order in the
matching engine. ALGO_UPDATE names that child's order id, "ai", and GET algoOrder /
openAlgoOrders "actualOrderId" (https://developers.binance.com/docs/derivatives/
usds-margined-futures/user-data-streams/Event-Algo-Order-Update, .../trade/rest-api/
Query-Algo-Order); Binance does not document the child's own client id (the "c" of its
ORDER_TRADE_UPDATE, the "clientOrderId" of GET /fapi/v1/order). Whatever it is, the child's
trades are the algo order's: its fills are told under the algo order's client id, on the
stream and in GET /fapi/v1/userTrades (whose rows name the orderId only).
"""

from dataclasses import replace

from loguru import logger

from trader.exchange.base import OrderUpdate


class AlgoChildren:
    """child orderId -> the client id of the algo order that placed it.

        children.learned("8886774", "tb-BTCUSDT-k1-sl1")      # ALGO_UPDATE "ai"
        update = children.as_algo_order(update)              # the child's ORDER_TRADE_UPDATE
    """

    def __init__(self) -> None:
        self._owners: dict[str, str] = {}

    def learned(self, child_order_id: str, algo_client_id: str) -> None:
        if child_order_id and child_order_id != "0" and algo_client_id:
            self._owners[child_order_id] = algo_client_id

    def owner(self, order_id: str) -> str | None:
        """The algo order's client id if `order_id` is one of its children."""
        return self._owners.get(order_id)

    def as_algo_order(self, update: OrderUpdate) -> OrderUpdate:
        """An ORDER_TRADE_UPDATE of a known child, under its algo order's client id (as
        it is when Binance gives the child that id itself)."""
        owner = self._owners.get(update.order.exchange_id)
        if owner is None or owner == update.order.client_id:
            return update
        logger.info("binance child order of an algo order order_id={} client_id={} "
                    "read as algo client_id={}", update.order.exchange_id,
                    update.order.client_id, owner)
        fill = replace(update.fill, client_id=owner) if update.fill is not None else None
        return replace(update, order=replace(update.order, client_id=owner), fill=fill)
