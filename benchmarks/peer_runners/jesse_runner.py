"""jesse: the rule (rule.py) as a jesse Strategy on a 5m route, run by
`jesse.research.backtest` (jesse's documented in-process backtest: no database, no server).

jesse's simulator takes 1m candles and builds the higher timeframes itself, so it is fed the
1m candles the 5m candles were aggregated from (5 rows per 5m candle): the same market, and
the strategy sees the same 5m candles. The figure counts 5m candles, like every other
engine; `rows` in the result is the 1m candles jesse stepped through. Default (step) mode:
`fast_mode=True` would skip 1m candles while nothing is open.
"""

import numpy as np
import rule
from jesse import indicators as ta
from jesse import research
from jesse.strategies import Strategy

EXCHANGE = "Binance Perpetual Futures"
SYMBOL = "XRP-USDT"


class DonchianEmaBreakout(Strategy):
    """jesse calls should_long, then should_short, on each closed 5m candle while flat."""

    def _side(self) -> int:
        if self.vars.get("index") != self.index:
            self.vars["index"], self.vars["side"] = self.index, self._decide()
        return self.vars["side"]

    def _decide(self) -> int:
        candles = self.candles                      # [timestamp, open, close, high, low, volume]
        if len(candles) < rule.WARMUP:
            return 0
        recent = candles[-rule.CHANNEL - 2:]
        side = rule.breakout(recent[:, 2].tolist(), recent[:, 3].tolist(), recent[:, 4].tolist())
        if side == 0:
            return 0
        window = candles[-rule.WARMUP:]
        atr = float(ta.atr(window, rule.ATR_PERIOD))
        if not rule.confirmed(side, float(window[-1, 1]), float(window[-1, 2]),
                              float(ta.ema(window, rule.EMA_FAST)),
                              float(ta.ema(window, rule.EMA_SLOW)), atr):
            return 0
        self.vars["stop"] = rule.stop_fraction(atr, float(window[-1, 2]))
        return side

    def should_long(self) -> bool:
        return self._side() > 0

    def should_short(self) -> bool:
        return self._side() < 0

    def go_long(self) -> None:
        self.buy = rule.NOTIONAL / self.price, self.price

    def go_short(self) -> None:
        self.sell = rule.NOTIONAL / self.price, self.price

    def on_open_position(self, order: object) -> None:   # jesse passes the filled Order
        stop, entry, qty = self.vars["stop"], self.position.entry_price, abs(self.position.qty)
        direction = 1 if self.is_long else -1
        self.stop_loss = qty, entry * (1 - direction * stop)
        self.take_profit = qty, entry * (1 + direction * stop * rule.REWARD_RISK)

    def should_cancel_entry(self) -> bool:
        return True

    def filters(self) -> list:
        return []


def main() -> None:
    args = rule.arguments()
    config = {"starting_balance": rule.BALANCE, "fee": rule.TAKER_FEE, "type": "futures",
              "futures_leverage": 1, "futures_leverage_mode": "cross", "exchange": EXCHANGE,
              "warm_up_candles": 0}
    routes = [{"exchange": EXCHANGE, "strategy": DonchianEmaBreakout, "symbol": SYMBOL,
               "timeframe": "5m"}]
    with rule.Stopwatch() as watch:
        minutes = np.load(args.data / "XRPUSDT-1m.npy")
        # jesse's column order: timestamp, open, close, high, low, volume
        candles = np.ascontiguousarray(minutes[:, [0, 1, 4, 2, 3, 5]])
        result = research.backtest(config, routes, [], {
            f"{EXCHANGE}-{SYMBOL}": {"exchange": EXCHANGE, "symbol": SYMBOL, "candles": candles}})
    import jesse.version
    rule.report(candles=len(candles) // 5, rows=len(candles), seconds=watch.seconds,
                trades=int(result["metrics"].get("total", 0)),
                version=f"jesse {jesse.version.__version__}", note="fed 1m candles")


if __name__ == "__main__":
    main()
