"""Periods apart on one account: the runs of overlapping symbols (`overlapping_groups`)
one after another, each starting with the equity and the risk record the one before
ended with (`run_groups`); `run_group` runs one (trader/backtest.py `run_backtest`).
"""

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from loguru import logger
from tqdm import tqdm

from trader.backtest import ProgressBar, run_backtest
from trader.backtest_input import SymbolCandles
from trader.config import Settings
from trader.domain import Candle
from trader.report import BacktestReport


def run_groups(settings: Settings, groups: list[dict[str, SymbolCandles]], folder: Path, *,
               progress: bool = True, funding: dict | None = None,
               warmup: Mapping[str, list[Candle]] | None = None) -> list[BacktestReport]:
    """One backtest per group, in time order (`overlapping_groups`), on one account: each
    later group starts with the equity the one before it ended with, as a trader's account
    goes from one period to the next (its risk record too: the equity peak the
    drawdown-reduced risk fraction is measured from). So the groups run one after another
    in this process, under one progress bar (a later one's position sizes depend on the
    earlier one's result; said on stdout), and an account bust (equity at or below 0) runs
    no later group (said in the last report's notes). Symbols inside one group trade the same period on one account: the portfolio
    heat cap, the shared balance and margin couple their entries, so they stay in one
    engine (said on stdout). `warmup`: the candles before --from by symbol
    (`backtest_data`), each group given its own symbols'."""
    for group in groups:
        if len(group) > 1:
            print(f"{', '.join(sorted(group))}: same period, one account: the portfolio heat "
                  f"cap (TRADEBOT_MAX_HEAT {settings.max_heat}) and the shared balance couple "
                  "their entries, so they run together in one engine (one core)")
    if len(groups) > 1:
        print(f"{len(groups)} periods apart ({' then '.join(', '.join(sorted(g)) for g in groups)})"
              ": one account carried from each period to the next (a period starts with the "
              "equity the one before ended with), so they run one after the other (one core)")
    warmup = warmup or {}
    reports: list[BacktestReport] = []
    balance = settings.paper_balance
    risk_state: dict[str, str] = {}
    # one bar over every period: its ETA is the whole run's, its label the period running
    candles = sum(len(rows) for group in groups for rows in group.values())
    with tqdm(total=candles, unit="candle", disable=not progress, leave=False) as bar:
        for index, group in enumerate(groups):
            if len(groups) > 1:
                bar.set_description_str(", ".join(sorted(group)), refresh=False)
            report = run_group(settings.model_copy(update={"paper_balance": balance}), group,
                                folder / "-".join(sorted(group)), funding,
                                {symbol: warmup[symbol] for symbol in group if symbol in warmup},
                                progress=bar if progress else False, risk_state=risk_state)
            risk_state = report.risk_state
            if report.curve:
                balance = report.curve[-1].equity
            if balance <= 0 and index + 1 < len(groups):
                later = ", ".join(symbol for rest in groups[index + 1:] for symbol in sorted(rest))
                report = replace(report, notes=[*report.notes, (
                    f"the account was bust at the end of {', '.join(sorted(group))}'s period "
                    f"(equity {balance:,.2f} USDT): the later periods ({later}) were not run")])
            reports.append(report)
            if balance <= 0:
                break
    return reports


def run_group(settings: Settings, group: dict[str, SymbolCandles], out_dir: Path,
               funding: dict | None, warmup: dict[str, list[Candle]],
               progress: bool | ProgressBar = False,
               risk_state: Mapping[str, str] | None = None) -> BacktestReport:
    logger.info("backtest symbols={} candles={}", ",".join(sorted(group)),
                sum(len(rows) for rows in group.values()))
    return asyncio.run(run_backtest(settings, group, out_dir, progress=progress, funding=funding,
                                    warmup=warmup, risk_state=risk_state))


def overlapping_groups(candles: Mapping[str, SymbolCandles]) -> list[dict[str, SymbolCandles]]:
    """Symbols whose periods overlap run together; data from different years runs apart."""
    spans = sorted((rows[0].open_time, rows[-1].open_time, s) for s, rows in candles.items())
    groups: list[dict[str, SymbolCandles]] = []
    group_end = None
    for start, end, symbol in spans:
        if group_end is None or start > group_end:
            groups.append({})
            group_end = end
        groups[-1][symbol] = candles[symbol]
        group_end = max(group_end, end)
    return groups
