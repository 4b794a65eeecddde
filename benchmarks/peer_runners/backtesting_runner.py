"""backtesting.py: the rule as a backtesting.py Strategy: indicators computed once over the
whole series (`Strategy.I`, vectorised), then its bar loop calls `next()` on each 5m candle;
entries are market orders with the stop and target attached (`buy(sl=..., tp=...)`).
A vectorised library, not an event-driven engine: the table lists it as a ceiling.
"""

import numpy as np
import pandas as pd
import rule
from backtesting import Backtest, Strategy


def ema(values: np.ndarray, span: int) -> np.ndarray:
    return pd.Series(values).ewm(span=span, adjust=False).mean().to_numpy()


def wilder_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    previous = pd.Series(close).shift(1)
    true_range = np.maximum(high - low, np.maximum((high - previous).abs(),
                                                   (low - previous).abs()))
    return true_range.ewm(alpha=1 / rule.ATR_PERIOD, adjust=False).mean().to_numpy()


class DonchianEmaBreakout(Strategy):
    def init(self) -> None:
        close = self.data.Close
        self.fast = self.I(ema, close, rule.EMA_FAST)
        self.slow = self.I(ema, close, rule.EMA_SLOW)
        self.atr = self.I(wilder_atr, self.data.High, self.data.Low, close)

    def next(self) -> None:
        if len(self.data) < rule.WARMUP or self.position or self.orders:
            return
        keep = -rule.CHANNEL - 2
        closes = self.data.Close[keep:].tolist()
        side = rule.breakout(closes, self.data.High[keep:].tolist(),
                             self.data.Low[keep:].tolist())
        atr, close = float(self.atr[-1]), closes[-1]
        if side == 0 or not rule.confirmed(side, float(self.data.Open[-1]), close,
                                           float(self.fast[-1]), float(self.slow[-1]), atr):
            return
        stop = rule.stop_fraction(atr, close)
        size = round(rule.NOTIONAL / close)
        if side > 0:
            self.buy(size=size, sl=close * (1 - stop), tp=close * (1 + stop * rule.REWARD_RISK))
        else:
            self.sell(size=size, sl=close * (1 + stop), tp=close * (1 - stop * rule.REWARD_RISK))


def main() -> None:
    args = rule.arguments()
    with rule.Stopwatch() as watch:
        candles = np.load(args.data / "XRPUSDT-5m.npy")
        frame = pd.DataFrame(candles[:, 1:6], columns=["Open", "High", "Low", "Close", "Volume"],
                             index=pd.to_datetime(candles[:, 0].astype("int64"), unit="ms"))
        stats = Backtest(frame, DonchianEmaBreakout, cash=rule.BALANCE,
                         commission=rule.TAKER_FEE, finalize_trades=True).run()
    import backtesting
    rule.report(candles=len(candles), rows=len(candles), seconds=watch.seconds,
                trades=int(stats["# Trades"]), version=f"backtesting.py {backtesting.__version__}")


if __name__ == "__main__":
    main()
