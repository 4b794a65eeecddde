"""REST request weight per symbol per minute of the live agent, with healthy streams and
with the streams switched off (polling, the baseline), measured side by side in one run.

    python benchmarks/rest_budget.py                  # 5 symbols, 2 measured minutes (~2.5 min)
    python benchmarks/rest_budget.py --minutes 1 --symbols 3

Each variant is its own fake Binance server (tests/fakes/binance_server.py) and its own agent
on the real python-binance client: trader.agent_loops' live loop (feed.poll + controller.process +
engine.tick + periodic reconciliation) with the default TRADEBOT_TICK_SECONDS and
TRADEBOT_RECONCILE_SECONDS, the default strategy, one open position (opened by hand before
boot, adopted and protected by a stop-loss and a take-profit) and a quiet market (quotes
every second, a closed 1m candle every minute; no entries, no triggers: the steady state).
The boot and the first 30 s (candle history, first snapshots) are not measured; the
measured window is whole minutes long and starts half-way between two periodic
reconciliations, so it holds exactly one per minute.

Weight per request is the fake's route table (`FakeBinance._routes`, Binance's documented
weights per endpoint), summed over its `request_log`. Printed per variant: weight per
symbol-minute, the split by endpoint, and the projection to 50 symbols (the per-symbol
requests scaled, the account-wide ones as they are) against Binance's 2,400 weight/minute.
Goals: < 20 per symbol-minute with a healthy stream; 50 symbols under 60 % of the limit.
"""

import argparse
import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from agent_on_fake import LiveAgent, QuietMarket, default_of, prices_for
from common import bench_symbols, figure, quiet_logs, scratch_dir, script_parser

from tests.fakes.binance_server import FakeBinance, LoggedRequest
from trader.domain import Side

LIMIT_PER_MINUTE = 2400           # REQUEST_WEIGHT, 1 MINUTE (exchangeInfo rateLimits)
GOAL_PER_SYMBOL_MINUTE = 20
GOAL_SHARE_OF_LIMIT = 0.60
PROJECTED_SYMBOLS = 50
POSITION = ("BTCUSDT", Side.BUY, Decimal("0.010"))


@dataclass
class Variant:
    """What one agent cost over the measured window."""
    name: str
    symbols: int
    seconds: float = 0.0
    requests: list[LoggedRequest] = field(default_factory=list)
    weights: dict[tuple[str, str], int] = field(default_factory=dict)
    ticks: int = 0
    rest_snapshots: int = 0
    stream_checks: int = 0            # open-order reads checking the stream (exchange_view.py)
    stream_misses: int = 0            # of them, those that found a change it never reported
    streaming_share: float = 0.0      # of the per-second samples, how many saw the stream up
    protected: bool = False

    @property
    def minutes(self) -> float:
        return self.seconds / 60

    def weight_of(self, request: LoggedRequest) -> int:
        return self.weights.get((request.method, request.path), 0)

    def by_endpoint(self) -> list[tuple[str, int, int, bool]]:
        """(endpoint, requests, weight, per symbol) per endpoint, heaviest first."""
        counts: Counter[str] = Counter()
        weight: Counter[str] = Counter()
        per_symbol: dict[str, bool] = {}
        for request in self.requests:
            name = f"{request.method} {request.path}"
            counts[name] += 1
            weight[name] += self.weight_of(request)
            per_symbol[name] = symbol_of(request) is not None
        return sorted(((n, counts[n], weight[n], per_symbol[n]) for n in counts),
                      key=lambda row: (-row[2], row[0]))

    def total_weight(self, per_symbol: bool | None = None) -> int:
        return sum(self.weight_of(r) for r in self.requests
                   if per_symbol is None or (symbol_of(r) is not None) == per_symbol)

    def per_symbol_minute(self) -> float:
        return self.total_weight() / self.symbols / self.minutes

    def projected(self, symbols: int) -> float:
        """Weight per minute with `symbols` symbols: per-symbol requests scale, account-wide
        ones (balance, listen key, exchange info) do not."""
        per_symbol = self.total_weight(per_symbol=True) / self.symbols / self.minutes
        return per_symbol * symbols + self.total_weight(per_symbol=False) / self.minutes


def symbol_of(request: LoggedRequest) -> str | None:
    """The symbol a request is about: its `symbol` parameter, or the symbol in the client id
    of an algo order queried by `clientAlgoId` alone (tb-<SYMBOL>-<key>-<role><n>)."""
    if "symbol" in request.params:
        return request.params["symbol"]
    for name in ("clientAlgoId", "origClientOrderId"):
        parts = request.params.get(name, "").split("-")
        if len(parts) > 2 and parts[0] == "tb":
            return parts[1]
    return None


async def measure(name: str, streams: bool, symbols: list[str], minutes: int, warmup: float,
                  folder: Path) -> Variant:
    async with FakeBinance(prices=prices_for(symbols)) as fake:
        market = QuietMarket(fake, symbols)
        await market.seed_history()
        symbol, side, quantity = POSITION
        await fake.open_position_by_hand(symbol, side, quantity)
        async with market.running(), LiveAgent(fake, folder / name, symbols,
                                               streams=streams) as agent:
            agent.start_loop()
            await asyncio.sleep(warmup)
            variant = Variant(name, len(symbols), weights={k: v[1] for k, v in fake._routes.items()})
            view = agent.engine.view
            first, ticks, snapshots = len(fake.request_log), agent.engine.ticks, \
                view.rest_snapshots
            checks, misses = view.verifications, view.stream_misses
            started, samples, up = time.perf_counter(), 0, 0
            while time.perf_counter() - started < minutes * 60:
                await asyncio.sleep(1.0)
                samples += 1
                up += agent.exchange.streaming
            variant.seconds = time.perf_counter() - started
            variant.requests = fake.request_log[first:]
            variant.ticks = agent.engine.ticks - ticks
            variant.rest_snapshots = view.rest_snapshots - snapshots
            variant.stream_checks = view.verifications - checks
            variant.stream_misses = view.stream_misses - misses
            variant.streaming_share = up / max(samples, 1)
            position = agent.engine.positions.get(symbol)
            variant.protected = position is not None and position.protected
    return variant


def report(variant: Variant) -> list[str]:
    lines = [f"--- {variant.name}: {variant.symbols} symbols, {variant.seconds:.0f} s measured, "
             f"{variant.ticks} ticks, {variant.rest_snapshots} REST snapshots, "
             f"{variant.stream_checks} stream checks ({variant.stream_misses} found a miss), "
             "stream up in "
             f"{variant.streaming_share:.0%} of the samples, position protected: "
             f"{'yes' if variant.protected else 'NO'}",
             f"    {'endpoint':<34}{'requests/min':>13}{'weight/min':>12}{'per symbol-min':>16}"]
    for name, count, weight, per_symbol in variant.by_endpoint():
        share = f"{weight / variant.minutes / variant.symbols:>16.1f}" if per_symbol \
            else f"{'(account)':>16}"
        lines.append(f"    {name:<34}{count / variant.minutes:>13.1f}"
                     f"{weight / variant.minutes:>12.1f}{share}")
    lines.append(f"    {'all':<34}{len(variant.requests) / variant.minutes:>13.1f}"
                 f"{variant.total_weight() / variant.minutes:>12.1f}"
                 f"{variant.per_symbol_minute():>16.1f}")
    return lines


def headline(stream: Variant, polling: Variant) -> list[str]:
    budget = GOAL_SHARE_OF_LIMIT * LIMIT_PER_MINUTE
    projected = stream.projected(PROJECTED_SYMBOLS)
    polled = polling.projected(PROJECTED_SYMBOLS)
    return [
        figure("polling: weight per symbol-minute", polling.per_symbol_minute(), "",
               baseline="streams off"),
        figure(f"polling: {PROJECTED_SYMBOLS} symbols, weight/minute", polled, "",
               baseline=f"{polled / LIMIT_PER_MINUTE:.0%} of {LIMIT_PER_MINUTE:,}"),
        figure(f"stream: {PROJECTED_SYMBOLS} symbols, weight/minute", projected, "",
               goal=f"< {budget:,.0f} ({GOAL_SHARE_OF_LIMIT:.0%} of {LIMIT_PER_MINUTE:,})",
               baseline=f"{projected / LIMIT_PER_MINUTE:.0%} of the limit"),
        figure("stream: weight per symbol-minute", stream.per_symbol_minute(), "",
               goal=f"< {GOAL_PER_SYMBOL_MINUTE}",
               baseline=f"polling {polling.per_symbol_minute():.1f}"),
    ]


def verdict(stream: Variant) -> list[str]:
    """When a goal is missed: which endpoints cost what with a healthy stream."""
    missed = stream.per_symbol_minute() >= GOAL_PER_SYMBOL_MINUTE or \
        stream.projected(PROJECTED_SYMBOLS) >= GOAL_SHARE_OF_LIMIT * LIMIT_PER_MINUTE
    if not missed:
        return ["both goals met with a healthy stream"]
    lines = ["GOAL MISSED with a healthy stream; the cost by endpoint (weight per symbol-minute):"]
    for name, _count, weight, per_symbol in stream.by_endpoint():
        if per_symbol:
            lines.append(f"    {name:<34}{weight / stream.minutes / stream.symbols:>8.1f}")
    return lines


async def main(args: argparse.Namespace) -> None:
    quiet_logs(args.log_level)
    symbols = bench_symbols(args.symbols)
    print(f"{len(symbols)} symbols ({', '.join(symbols)}), one protected position "
          f"({POSITION[0]}), tick {default_of('tick_seconds'):g} s, reconcile every "
          f"{default_of('reconcile_seconds'):g} s; {args.warmup:g} s of warm-up, then "
          f"{args.minutes} measured minute(s) per variant, both variants at once")
    with scratch_dir("rest-budget-", args.dir) as folder:
        stream, polling = await asyncio.gather(
            measure("stream", True, symbols, args.minutes, args.warmup, folder),
            measure("polling", False, symbols, args.minutes, args.warmup, folder))
    for line in report(polling) + report(stream) + verdict(stream) + headline(stream, polling):
        print(line)


def parse_args() -> argparse.Namespace:
    parser = script_parser(__doc__)
    parser.add_argument("--symbols", type=int, default=5)
    parser.add_argument("--minutes", type=int, default=2, help="measured minutes per variant")
    parser.add_argument("--warmup", type=float, default=None,
                        help="unmeasured seconds after the loop starts (default: half the "
                             "reconciliation period, so each measured minute holds one)")
    parser.add_argument("--dir", default=None, help="where the databases go (default: $TMPDIR)")
    parser.add_argument("--log-level", default="ERROR")
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = default_of("reconcile_seconds") / 2
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
