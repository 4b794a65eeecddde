"""The enum members the simulator reads on every candle and order, read once here: on
Python 3.11 a read of `Side.BUY` goes through `EnumType.__getattr__` (~850 instructions; 3.12
removed it), a module global is a dict read. The very same objects."""

from trader.domain import OrderRole, OrderStatus, OrderType, Side

BUY = Side.BUY
SELL = Side.SELL
NEW = OrderStatus.NEW
PARTIALLY_FILLED = OrderStatus.PARTIALLY_FILLED
FILLED = OrderStatus.FILLED
CANCELED = OrderStatus.CANCELED
EXPIRED = OrderStatus.EXPIRED
LIMIT = OrderType.LIMIT
MARKET = OrderType.MARKET
FLATTEN = OrderRole.FLATTEN
