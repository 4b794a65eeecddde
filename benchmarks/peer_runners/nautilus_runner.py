"""nautilus_trader: the rule (rule.py) as a nautilus Strategy on 5m bars, run by the low-level
`BacktestEngine` (a simulated Binance-like venue, NETTING, MARGIN account in USDT).

One Bar per 5m candle, stamped at the candle's close (nautilus's convention: a bar is known
when it closes). EMA20/50 and ATR14 are
nautilus's own indicators, updated by the engine on each bar; the entry is a bracket order
(market entry, stop-market stop, limit target, one-cancels-the-other).
"""

from decimal import Decimal

import numpy as np
import rule
from nautilus_trader.backtest.config import BacktestEngineConfig
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.config import LoggingConfig, StrategyConfig
from nautilus_trader.indicators import AverageTrueRange, ExponentialMovingAverage
from nautilus_trader.model.currencies import USDT, XRP
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.trading.strategy import Strategy

VENUE = Venue("BINANCE")
INSTRUMENT_ID = InstrumentId(Symbol("XRPUSDT-PERP"), VENUE)
BAR_TYPE = BarType.from_str(f"{INSTRUMENT_ID}-5-MINUTE-LAST-EXTERNAL")
FIVE_MINUTES_NS = 300 * 1_000_000_000


def xrpusdt_perpetual() -> CryptoPerpetual:
    """Binance's XRPUSDT perpetual: tick 0.0001, step 0.1, taker 0.05 % (maker 0.02 %)."""
    return CryptoPerpetual(
        instrument_id=INSTRUMENT_ID, raw_symbol=Symbol(rule.SYMBOL), base_currency=XRP,
        quote_currency=USDT, settlement_currency=USDT, is_inverse=False, price_precision=4,
        size_precision=1, price_increment=Price.from_str("0.0001"),
        size_increment=Quantity.from_str("0.1"), ts_event=0, ts_init=0,
        min_quantity=Quantity.from_str("0.1"), min_notional=Money(5, USDT),
        margin_init=Decimal("0.05"), margin_maint=Decimal("0.025"),
        maker_fee=Decimal("0.0002"), taker_fee=Decimal(str(rule.TAKER_FEE)))


class BreakoutConfig(StrategyConfig, frozen=True):
    bar_type: str = str(BAR_TYPE)


class DonchianEmaBreakout(Strategy):
    def __init__(self, config: BreakoutConfig) -> None:
        super().__init__(config)
        self.fast = ExponentialMovingAverage(rule.EMA_FAST)
        self.slow = ExponentialMovingAverage(rule.EMA_SLOW)
        self.atr = AverageTrueRange(rule.ATR_PERIOD)
        self.closes: list[float] = []    # the last CHANNEL + 2 candles, oldest first
        self.highs: list[float] = []
        self.lows: list[float] = []
        self.bars = 0
        self.entries = 0

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(INSTRUMENT_ID)
        self.register_indicator_for_bars(BAR_TYPE, self.fast)
        self.register_indicator_for_bars(BAR_TYPE, self.slow)
        self.register_indicator_for_bars(BAR_TYPE, self.atr)
        self.subscribe_bars(BAR_TYPE)

    def on_bar(self, bar: Bar) -> None:
        close = bar.close.as_double()
        self.closes.append(close)
        self.highs.append(bar.high.as_double())
        self.lows.append(bar.low.as_double())
        if len(self.closes) > rule.CHANNEL + 2:
            del self.closes[0], self.highs[0], self.lows[0]
        self.bars += 1
        if self.cache.orders_open_count(instrument_id=INSTRUMENT_ID):
            return
        if not self.portfolio.is_flat(INSTRUMENT_ID):
            # the venue rejects a stop already "in the market" when the entry filled beyond
            # it: the stop is hit, so the position goes at market (else it would stay open
            # unprotected and block every later entry)
            self.close_all_positions(INSTRUMENT_ID)
            return
        if self.bars < rule.WARMUP:
            return
        side = rule.breakout(self.closes, self.highs, self.lows)
        atr = self.atr.value
        if side == 0 or not rule.confirmed(side, bar.open.as_double(), close, self.fast.value,
                                           self.slow.value, atr):
            return
        stop = rule.stop_fraction(atr, close)
        orders = self.order_factory.bracket(
            instrument_id=INSTRUMENT_ID, order_side=OrderSide.BUY if side > 0 else OrderSide.SELL,
            quantity=self.instrument.make_qty(rule.NOTIONAL / close),
            sl_trigger_price=self.instrument.make_price(close * (1 - side * stop)),
            tp_price=self.instrument.make_price(close * (1 + side * stop * rule.REWARD_RISK)))
        self.submit_order_list(orders)
        self.entries += 1


def bars_of(candles: np.ndarray) -> list[Bar]:
    """One Bar per 5m candle, as nautilus's BarDataWrangler builds them (its Cython version
    fails on pandas 3's read-only arrays: "buffer source array is read-only")."""
    bars = []
    for open_ms, open_, high, low, close, volume in candles.tolist():
        stamp = int(open_ms) * 1_000_000 + FIVE_MINUTES_NS
        bars.append(Bar(BAR_TYPE, Price(open_, 4), Price(high, 4), Price(low, 4),
                        Price(close, 4), Quantity(volume, 1), stamp, stamp))
    return bars


def main() -> None:
    args = rule.arguments()
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(VENUE, OmsType.NETTING, AccountType.MARGIN,
                     starting_balances=[Money(rule.BALANCE, USDT)], base_currency=USDT,
                     default_leverage=Decimal(1))
    instrument = xrpusdt_perpetual()
    engine.add_instrument(instrument)
    strategy = DonchianEmaBreakout(BreakoutConfig())
    engine.add_strategy(strategy)
    with rule.Stopwatch() as watch:
        candles = np.load(args.data / "XRPUSDT-5m.npy")
        engine.add_data(bars_of(candles))
        engine.run()
    import nautilus_trader
    rule.report(candles=len(candles), rows=len(candles), seconds=watch.seconds,
                trades=strategy.entries, version=f"nautilus_trader {nautilus_trader.__version__}")
    engine.dispose()


if __name__ == "__main__":
    main()
