"""The rule of benchmarks/peer_runners/rule.py as a freqtrade strategy, in freqtrade's idiom:
indicators and entry signals computed once over the whole frame (pandas), then freqtrade's
trade loop. The per-trade stop (a fraction of the entry price) travels in the entry tag;
`custom_stoploss` and `custom_roi` turn it into the fixed stop and the 2x target."""

from datetime import datetime

import numpy as np
import rule
from freqtrade.persistence import Trade
from freqtrade.strategy import IStrategy, stoploss_from_open
from pandas import DataFrame


class DonchianEmaBreakout(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "5m"
    can_short = True
    minimal_roi = {"0": 100.0}          # no time-based ROI: the target is custom_roi
    stoploss = -0.05                     # a floor; the trade's stop (<= 2 %) is custom_stoploss
    use_custom_stoploss = True
    use_custom_roi = True
    startup_candle_count = rule.WARMUP
    process_only_new_candles = True

    def populate_indicators(self, frame: DataFrame, metadata: dict) -> DataFrame:
        close, high, low = frame["close"], frame["high"], frame["low"]
        frame["ema_fast"] = close.ewm(span=rule.EMA_FAST, adjust=False).mean()
        frame["ema_slow"] = close.ewm(span=rule.EMA_SLOW, adjust=False).mean()
        previous = close.shift(1)
        true_range = np.maximum(high - low, np.maximum((high - previous).abs(),
                                                       (low - previous).abs()))
        frame["atr"] = true_range.ewm(alpha=1 / rule.ATR_PERIOD, adjust=False).mean()
        frame["upper"] = high.rolling(rule.CHANNEL).max().shift(1)
        frame["lower"] = low.rolling(rule.CHANNEL).min().shift(1)
        frame["stop"] = (rule.STOP_ATR * frame["atr"] / close).clip(rule.STOP_MIN, rule.STOP_MAX)
        return frame

    def populate_entry_trend(self, frame: DataFrame, metadata: dict) -> DataFrame:
        close, body = frame["close"], frame["close"] - frame["open"]
        warm = np.arange(len(frame)) >= rule.WARMUP - 1
        long = (warm & (close > frame["upper"]) & (close.shift(1) <= frame["upper"].shift(1))
                & (frame["ema_fast"] > frame["ema_slow"]) & (body >= rule.MIN_BODY_ATR * frame["atr"]))
        short = (warm & (close < frame["lower"]) & (close.shift(1) >= frame["lower"].shift(1))
                 & (frame["ema_fast"] < frame["ema_slow"])
                 & (-body >= rule.MIN_BODY_ATR * frame["atr"]))
        frame.loc[long, "enter_long"] = 1
        frame.loc[short, "enter_short"] = 1
        signal = long | short
        frame.loc[signal, "enter_tag"] = frame.loc[signal, "stop"].map("{:.6f}".format)
        return frame

    def populate_exit_trend(self, frame: DataFrame, metadata: dict) -> DataFrame:
        frame["exit_long"] = 0
        frame["exit_short"] = 0
        return frame

    def custom_stoploss(self, pair: str, trade: Trade, current_time: datetime,
                        current_rate: float, current_profit: float, after_fill: bool,
                        **kwargs) -> float | None:
        return stoploss_from_open(-float(trade.enter_tag), current_profit,
                                  is_short=trade.is_short, leverage=trade.leverage)

    def custom_roi(self, pair: str, trade: Trade, current_time: datetime, trade_duration: int,
                   entry_tag: str | None, side: str, **kwargs) -> float | None:
        return float(entry_tag) * rule.REWARD_RISK if entry_tag else None
