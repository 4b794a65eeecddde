"""The prices a close values its fees with: one read per asset other than USDT that a fee
was charged in (BNB with "BNB burn" on), at the close, none when every fee is in USDT.

Read at each close rather than cached: a close is rare (minutes to hours apart) and one
read costs weight 1 (Binance: `BinanceExchange.asset_price`), while a cached price would
value the fee at some earlier moment's price. The read is short and tried once (the close
waits for it). One that fails (a ban, the circuit open, an error, slow) leaves that asset
out: its fees stay unvalued in the record, said so in the CLOSE, and the close goes on
(trader/fee_value.py); the close read-back values them once a price can be read
(trader/close_readback.py).
"""

from collections.abc import Iterable
from decimal import Decimal

from loguru import logger

from trader.exchange.base import Exchange, ExchangeError, UnknownOutcome
from trader.executor import Executor


async def fee_prices(exchange: Exchange, executor: Executor, assets: Iterable[str],
                     problems: list[str]) -> dict[str, Decimal]:
    """The USDT price of each of `assets` (trader/fee_value.py `assets_to_value`); one that
    cannot be read is left out, with a line in `problems` saying so."""
    prices: dict[str, Decimal] = {}
    for asset in assets:
        try:
            prices[asset] = await executor.read(exchange.asset_price, asset)
        except (ExchangeError, UnknownOutcome) as exc:
            logger.warning("fee asset price not read asset={} error={}", asset, exc)
            problems.append(f"could not read the price of {asset} ({exc}): the fees charged "
                            f"in {asset} are not valued in USDT yet (valued once it can be "
                            "read)")
    return prices
