"""Why a backtest result is empty or suspect, in one line per finding (printed on stderr and
kept in report.txt's "Notes"): a warmup longer than the data, prices under 1,000 ticks of
the symbol's tick size (the wrong symbol's rules), and for a symbol that never entered, the most
likely reason (every entry signal refused, and the last refusal; or no signal at all).

    tally = RunTally()                     # counts candles, samples closes
    ... tally.add(candle) for every replayed candle ...
    lines = tally.notes(warmup=strategy.warmup, rules=paper.rules, entered={"XRPUSDT"},
                        refusals=engine.entries.desk.refusals)

The refusals are the entry desk's own record (trader/entry.py `EntryRefusals`).
"""

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from trader.config import Settings
from trader.domain import Candle, Side
from trader.entry import EntryRefusals
from trader.exchange.sim_rules import DEFAULT_RULES
from trader.position import ExitPlan, Position
from trader.symbol_rules import SymbolRules

# A tick over 0.1 % of the price: Binance's USD-M symbols have about 0.01 % (XRPUSDT 0.0001
# at 1.1, BTCUSDT 0.1 at 70,000); ETHUSDT's 0.01 on XRP's 1.1 (110 ticks, a 0.4 % stop moves
# by whole ticks of 0.9 %) is the wrong symbol's rules.
MIN_PRICE_TICKS = 1000
CLOSE_SAMPLE = 2048          # closes kept per symbol for the median (evenly thinned)


@dataclass
class SymbolTally:
    """One symbol's candles: the count, and closes sampled evenly (every `stride`-th)."""
    candles: int = 0
    closes: list[Decimal] = field(default_factory=list)
    stride: int = 1
    refused: int = 0
    last_refusal: str = ""


class RunTally:
    """Per-symbol tallies of one run."""

    def __init__(self) -> None:
        self.symbols: dict[str, SymbolTally] = {}

    def add(self, candle: Candle) -> None:
        tally = self.symbols.get(candle.symbol)
        if tally is None:
            tally = self._tally(candle.symbol)
        # the candle counted, its close sampled when it is a `stride`-th one (no call more:
        # every replayed candle comes here)
        if tally.candles % tally.stride == 0:
            closes = tally.closes
            closes.append(candle.close)
            if len(closes) >= CLOSE_SAMPLE:     # keep every other one: still even
                tally.closes, tally.stride = closes[::2], tally.stride * 2
        tally.candles += 1

    def _tally(self, symbol: str) -> SymbolTally:
        tally = self.symbols.get(symbol)
        if tally is None:
            tally = self.symbols[symbol] = SymbolTally()
        return tally

    def notes(self, *, warmup: int, rules: Callable[[str], SymbolRules],
              entered: Iterable[str], refusals: EntryRefusals,
              warmed: Mapping[str, int] | None = None) -> list[str]:
        """The findings, symbol by symbol; `entered`: symbols with at least one position
        (closed or still open); `refusals`: the entry desk's record of refused signals;
        `warmed`: the candles before --from each symbol's history had (trader/backtest_warmup.py)."""
        entered = set(entered)
        lines: list[str] = []
        for symbol, tally in sorted(self.symbols.items()):
            tally.refused = refusals.count.get(symbol, 0)
            tally.last_refusal = refusals.last.get(symbol, "")
            lines += symbol_notes(symbol, tally, warmup, rules(symbol), symbol in entered,
                                  (warmed or {}).get(symbol, 0))
        return lines


def open_at_end_notes(positions: Iterable[Position], unaccounted: Decimal) -> list[str]:
    """One line when positions were still open at the last candle: the equity (and the
    return, drawdown and ratios drawn from it) counts them at the last close, the trades and
    the net PnL do not; `unaccounted` is what the equity holds beyond the net PnL. An entry
    still resting unfilled (a maker entry) holds no position: one line of its own."""
    ordered = sorted(positions, key=lambda position: position.opened_at)
    unfilled = [position for position in ordered if position.quantity == 0]
    still_open = [position for position in ordered if position.quantity != 0]
    lines = [f"{position.symbol}: a {_label(position)} entry placed "
             f"{position.opened_at:%Y-%m-%d %H:%M} UTC had not filled at the end: no "
             f"position, nothing counted" for position in unfilled]
    if not still_open:
        return lines
    which = ", ".join(f"{position.symbol}: a {_label(position)} "
                      f"opened {position.opened_at:%Y-%m-%d %H:%M} UTC" for position in still_open)
    verb, pronoun = ("was", "it") if len(still_open) == 1 else ("were", "them")
    return lines + [f"{which} {verb} still open at the end: the equity counts {pronoun} at "
                    f"the last close ({unaccounted:+,.2f} USDT); the trades and the net PnL "
                    f"do not"]


def _label(position: Position) -> str:
    return "LONG" if position.side is Side.BUY else "SHORT"


def exit_plan_notes(settings: Settings, plans: Sequence[ExitPlan]) -> list[str]:
    """One line when TRADEBOT_EXIT_PLAN=two but trades ran on one take-profit: TP1 did not
    lie before the strategy's target (TRADEBOT_TP1_R too far), or a part was under the
    symbol's minimum (trader/management.py `with_exit_plan` falls back to one TP then).
    Legal, so a note and not a configuration error: the target differs per trade."""
    if settings.exit_plan != ExitPlan.TWO.value or not plans:
        return []
    single = sum(1 for plan in plans if plan is not ExitPlan.TWO)
    if not single:
        return []
    share = "every one" if single == len(plans) else f"{single:,} of the {len(plans):,}"
    return [f"TRADEBOT_EXIT_PLAN=two, yet {share} of the trades had one take-profit: TP1 at "
            f"TRADEBOT_TP1_R={settings.tp1_r} R did not lie before the strategy's target, or a "
            f"part (TRADEBOT_TP1_FRACTION={settings.tp1_fraction}) was below the symbol's "
            "minimum quantity or notional; not an error: each trade's target is its own "
            "(the strategy's reward/risk, moved by the regime) and a trade whose target lies "
            "beyond TP1 gets both; lower TRADEBOT_TP1_R for two take-profits on these trades"]


def symbol_notes(symbol: str, tally: SymbolTally, warmup: int, rules: SymbolRules,
                 entered: bool, warmed: int = 0) -> list[str]:
    lines = []
    short = tally.candles + warmed < warmup
    if short:
        noun = "candle" if tally.candles == 1 else "candles"
        before = f" (and {warmed:,} before --from)" if warmed else ""
        lines.append(f"{symbol}: {tally.candles:,} {noun}{before} but the strategy needs "
                     f"{warmup:,} closed candles before its first signal: no trade possible")
    tick = tick_note(symbol, tally.closes, rules)
    if tick:
        lines.append(tick)
    elif symbol not in DEFAULT_RULES:
        lines.append(generic_rules_note(symbol, rules))
    if not entered and not short:
        lines.append(f"{symbol}: no trade: {no_entry_reason(tally)}")
    return lines


def tick_note(symbol: str, closes: list[Decimal], rules: SymbolRules) -> str:
    """"" unless the median close is under MIN_PRICE_TICKS ticks of the symbol's tick size."""
    if not closes:
        return ""
    least = rules.tick_size * MIN_PRICE_TICKS
    # Every close at twice the least or more (nearly every market): their median is above
    # the least, whatever the rounding of a mean of the two middle ones; no sort (2,048
    # Decimals at most, sorted for a note that says nothing).
    if least > 0 and min(closes) >= least * 2:
        return ""
    median = statistics.median(closes)
    if median >= least:
        return ""
    generic = "" if symbol in DEFAULT_RULES else (
        f" (no rules known for {symbol}: generic ones, tick {rules.tick_size}, "
        f"min notional {rules.min_notional})")
    return (f"{symbol}: prices around {float(median):.2g} with a tick of {rules.tick_size}: "
            f"is this the right symbol?{generic}")


def generic_rules_note(symbol: str, rules: SymbolRules) -> str:
    """Said of a symbol whose exchange filters the backtest does not know: its sizes,
    prices, fees' minimums and spread are generic ones, so its results may differ from what
    Binance's own filters would give (h-review13: the same candles as XRPUSDT lost 41 %
    more under another name, and nothing said why)."""
    known = ", ".join(sorted(DEFAULT_RULES))
    return (f"{symbol}: no exchange rules known for it (known: {known}): generic ones used "
            f"(tick {rules.tick_size}, step {rules.step_size}, min notional "
            f"{rules.min_notional}, the fallback spread and maintenance margin); its trades "
            "may differ from Binance's filters")


def no_entry_reason(tally: SymbolTally) -> str:
    if tally.refused == 1:
        return f"the one entry signal was refused: {tally.last_refusal}"
    if tally.refused:
        return (f"every one of the {tally.refused:,} entry signals was refused; the last: "
                f"{tally.last_refusal}")
    return f"the strategy gave no entry signal in {tally.candles:,} candles"
