"""freqtrade: the rule as a freqtrade strategy (freqtrade_strategies/), run by freqtrade's own
`Backtesting` on Binance USD-M futures (XRP/USDT:USDT, isolated margin, 1x), offline.

Offline: freqtrade loads the exchange's market list through ccxt when its exchange starts
(`Exchange.reload_markets` -> `_api_reload_markets` -> ccxt `load_markets`, a request to
Binance). That one coroutine is replaced by one that hands ccxt the XRPUSDT perpetual market
as ccxt describes it (`set_markets`); the rest of freqtrade's start-up runs unchanged
(validation, the pair list, Binance's bundled leverage tiers in dry-run). The candles are
written to a local data dir in freqtrade's feather format with freqtrade's own data handler,
with the futures extras its backtesting requires: mark candles (the 5m candles resampled)
and funding rates (0.01 % every 8 h, Binance's default). Timed: loading the data, the
indicators and signals, and the trade loop (`load_bt_data` + `backtest_one_strategy`).
"""

import json
import logging
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pandas as pd
import rule
from freqtrade.configuration import Configuration
from freqtrade.data.history import get_datahandler
from freqtrade.enums import CandleType, RunMode
from freqtrade.exchange.exchange import Exchange
from freqtrade.optimize.backtesting import Backtesting

PAIR = "XRP/USDT:USDT"
STRATEGIES = Path(__file__).resolve().parent / "freqtrade_strategies"
FUNDING_RATE = 0.0001          # per 8 h
# ccxt's unified market for Binance's XRPUSDT perpetual (tick 0.0001, step 0.1, min notional
# 5 USDT: Binance's exchangeInfo filters for the symbol).
XRPUSDT_PERPETUAL = {
    "id": "XRPUSDT", "symbol": PAIR, "base": "XRP", "quote": "USDT", "settle": "USDT",
    "baseId": "XRP", "quoteId": "USDT", "settleId": "USDT", "type": "swap", "spot": False,
    "margin": False, "swap": True, "future": False, "option": False, "active": True,
    "contract": True, "linear": True, "inverse": False, "contractSize": 1.0,
    "taker": rule.TAKER_FEE, "maker": 0.0002,
    "precision": {"amount": 0.1, "price": 0.0001},
    "limits": {"amount": {"min": 0.1, "max": 10_000_000.0}, "price": {"min": 0.0001, "max": 1000.0},
               "cost": {"min": 5.0, "max": None}, "leverage": {"min": 1.0, "max": 75.0}},
    "info": {},
}


async def offline_markets(self: Exchange, reload: bool = False) -> None:
    """Stands in for `Exchange._api_reload_markets` (ccxt's load_markets over the network)."""
    self._api_async.set_markets([XRPUSDT_PERPETUAL])


def write_config(workdir: Path) -> Path:
    config = {
        "trading_mode": "futures", "margin_mode": "isolated", "max_open_trades": 1,
        "stake_currency": "USDT", "stake_amount": rule.NOTIONAL,
        "dry_run": True, "dry_run_wallet": rule.BALANCE, "fee": rule.TAKER_FEE,
        "timeframe": "5m", "dataformat_ohlcv": "feather",
        # Binance futures tickers carry no price: freqtrade's config for it reads the book
        "entry_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "exit_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "exchange": {"name": "binance", "key": "", "secret": "", "pair_whitelist": [PAIR],
                     "pair_blacklist": []},
        "pairlists": [{"method": "StaticPairList"}],
    }
    path = workdir / "config.json"
    path.write_text(json.dumps(config))
    return path


def write_data(datadir: Path, candles: np.ndarray, exchange: Exchange) -> None:
    """The candles, mark candles and funding rates in freqtrade's feather files."""
    frame = pd.DataFrame(candles[:, 1:6], columns=["open", "high", "low", "close", "volume"])
    frame.insert(0, "date", pd.to_datetime(candles[:, 0].astype("int64"), unit="ms", utc=True))
    handler = get_datahandler(datadir, "feather")
    handler.ohlcv_store(PAIR, "5m", frame, CandleType.FUTURES)
    mark_timeframe = exchange.get_option("mark_ohlcv_timeframe")
    mark = frame.set_index("date").resample(pd.Timedelta(mark_timeframe)).agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    handler.ohlcv_store(PAIR, mark_timeframe, mark.reset_index(), CandleType.MARK)
    funding_timeframe = exchange.get_option("funding_fee_timeframe")
    funding = pd.DataFrame({"date": mark.index.floor(pd.Timedelta(funding_timeframe)).unique()})
    funding["funding_rate"] = np.where(funding["date"].dt.hour % 8 == 0, FUNDING_RATE, 0.0)
    handler.ohlcv_store(PAIR, funding_timeframe, funding, CandleType.FUNDING_RATE)


def main() -> None:
    args = rule.arguments()
    workdir = args.workdir
    datadir = workdir / "user_data" / "data" / "binance"
    (workdir / "user_data").mkdir(parents=True, exist_ok=True)
    config = Configuration({
        "config": [str(write_config(workdir))], "user_data_dir": str(workdir / "user_data"),
        "datadir": str(datadir), "strategy": "DonchianEmaBreakout",
        "strategy_path": str(STRATEGIES), "export": "none",
    }, RunMode.BACKTEST).get_config()
    logging.getLogger("freqtrade").setLevel(logging.WARNING)
    with patch.object(Exchange, "_api_reload_markets", offline_markets):
        backtesting = Backtesting(config)
        write_data(datadir, np.load(args.data / "XRPUSDT-5m.npy"), backtesting.exchange)
        with rule.Stopwatch() as watch:
            data, timerange = backtesting.load_bt_data()
            backtesting.backtest_one_strategy(backtesting.strategylist[0], data, timerange)
    results = backtesting.all_bt_content["DonchianEmaBreakout"]["results"]
    import freqtrade
    rule.report(candles=len(data[PAIR]), rows=len(data[PAIR]), seconds=watch.seconds,
                trades=len(results), version=f"freqtrade {freqtrade.__version__}")


if __name__ == "__main__":
    main()
