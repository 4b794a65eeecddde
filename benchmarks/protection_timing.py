"""How long a position goes without its protection, as an operator would see it: the real
engine loop (trader.agent_loops' live loop, ticking every TRADEBOT_TICK_SECONDS and woken by the
user-data stream) on the real python-binance client against the fake Binance server, with
TRADEBOT_SENTINEL_DEBOUNCE_SECONDS at its default (60 s).

    python benchmarks/protection_timing.py               # 5 repetitions each (~2.5 min)
    python benchmarks/protection_timing.py --reps 10 --only a,c

(a) a stop-loss cancelled by hand in the Binance app -> a new stop live on the exchange,
    with the user-data stream and with polling only (streams off);
(b) margin back after a run of -2019 refusals of the stop: every stop placement answers
    -2019 "Margin is insufficient." until margin returns; the figure runs from the moment it
    returns (the injected refusals end) to the stop live. Margin returns at a random moment
    after the --refusals-th refusal (before the next scheduled retry), and, as the worst
    case, right after that refusal;
(c) an entry filled in two parts (0.004, then 0.006): from the second fill to exactly one
    stop-loss and one take-profit for 0.010 live and the 0.004 ones cancelled, in seconds
    and in engine ticks. The fake's matching engine fills every order in full, so the
    agent's entry order fills 0.004 and the other 0.006 reach the position as a second fill
    on the exchange (as tests/test_engine.py models it): the position grows from 0.004 to
    0.010 under protection for 0.004.
(d) a stop-loss cancelled by hand whose replacement's answer is lost (the outcome is
    unknown) -> a stop live on the exchange, with the stream: an HTTP 503 while the order
    never reached the matching engine, or did (the fake executes it, then answers 503), and
    no answer at all until the client's 10 s timeout (the order never lands, or lands 12 s
    after the send). A lost answer is probed by client id,
    never re-sent; for the only stop of a position a backup stop goes out as soon as the
    answer is known to be lost (trader/stop_backup.py), where it used to wait for the probe
    to run out (recvWindow 5 s + 10 s of skew allowance after the send). A request that
    hangs costs TRADEBOT_STOP_BACKUP_AFTER_SECONDS (1.5 s), not the timeout: the backup
    goes out then, the first request going on (trader/slow_answers.py).
"Live" means the order rests on the fake's matching engine (polled every 2 ms). Each
repetition starts at a random moment of the tick cycle. p50/p95 over the repetitions.
Goals: (a) < 1 s with the stream, within one tick polling; (b) < 30 s; (c) within two ticks;
(d) < 1 s (< 2 s, the 1.5 s bound and its step, while the request hangs).
"""

import argparse
import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from agent_on_fake import LiveAgent, QuietMarket, default_of, protective_orders, wait_for
from common import percentile, quiet_logs, scratch_dir, script_parser

from tests.fakes.binance_server import FakeBinance
from trader.domain import OrderRole, OrderType, Side, Signal
from trader.entry import EntryLimits, entering_position
from trader.entry_sender import entry_event
from trader.events import Policy
from trader.intents import entry_intent
from trader.risk import EntryPlan

SYMBOL = "BTCUSDT"
PRICE = Decimal("50000")
SIZE = Decimal("0.010")
FIRST_PART, SECOND_PART = Decimal("0.004"), Decimal("0.006")
MARGIN_REFUSED = -2019
MARGIN_MESSAGE = "Margin is insufficient."   # Binance's Error Codes page, -2019 MARGIN_NOT_SUFFICIEN
ALGO_POST = "POST /fapi/v1/algoOrder"


@dataclass
class Sample:
    seconds: float
    ticks: int


@dataclass
class Figure:
    name: str
    goal: str
    limit_seconds: float | None = None
    limit_ticks: int | None = None
    samples: list[Sample] = field(default_factory=list)

    def line(self) -> str:
        seconds = [s.seconds for s in self.samples]
        ticks = [s.ticks for s in self.samples]
        if not seconds:
            return f"{self.name:<52} (no samples)"
        met = all((self.limit_seconds is None or s.seconds < self.limit_seconds)
                  and (self.limit_ticks is None or s.ticks <= self.limit_ticks)
                  for s in self.samples)
        return (f"{self.name:<52}{percentile(seconds, 50):>9.3f}{percentile(seconds, 95):>9.3f}"
                f"{max(seconds):>9.3f}{percentile(ticks, 50):>7.0f}{max(ticks):>5}   "
                f"{self.goal} {'met' if met else 'NOT MET'} (n={len(seconds)})")


# --- the agent and its position -------------------------------------------------------------

@asynccontextmanager
async def agent_holding(folder: Path, streams: bool, *,
                        by_hand: Decimal | None = SIZE) -> AsyncIterator[tuple[FakeBinance, LiveAgent]]:
    """A fake, its quiet market and a booted agent (loop not started); `by_hand`: a LONG of
    that size opened in the app before boot (adopted and protected at boot)."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake:
        market = QuietMarket(fake, [SYMBOL])
        await market.seed_history()
        if by_hand is not None:
            await fake.open_position_by_hand(SYMBOL, Side.BUY, by_hand)
        async with market.running(), LiveAgent(fake, folder, [SYMBOL], streams=streams) as agent:
            yield fake, agent


def covered(fake: FakeBinance, agent: LiveAgent, quantity: Decimal) -> Callable[[], bool]:
    """Exactly one stop-loss and one take-profit for `quantity` live on the exchange, the
    engine's record says PROTECTED for it, and (streaming) the tracker is synced."""
    def check() -> bool:
        orders = protective_orders(fake, SYMBOL)
        kinds = sorted(o.type.value for o in orders)
        sized = all(o.close_position or o.quantity == quantity for o in orders)
        position = agent.engine.positions.get(SYMBOL)
        recorded = position is not None and position.protected and position.quantity == quantity
        synced = not agent.streams or agent.engine.view.streaming(SYMBOL)
        return kinds == ["STOP_MARKET", "TAKE_PROFIT_MARKET"] and sized and recorded and synced
    return check


def live_stop(fake: FakeBinance) -> str | None:
    stops = [o for o in protective_orders(fake, SYMBOL) if o.type is OrderType.STOP_MARKET]
    return stops[0].client_id if stops else None


async def random_phase(rng: random.Random) -> None:
    """Start at a random moment of the tick cycle."""
    await asyncio.sleep(rng.uniform(0, default_of("tick_seconds")))


# --- (a) and (d): a stop cancelled by hand ------------------------------------------------

LOST_ANSWERS = {   # (d) how the replacement's answer is lost: the fake Binance's fault
    "503, never landed": {"http_status": 503, "execute": False},
    "503, it landed": {"http_status": 503, "execute": True},
    # no answer before the client's timeout (python-binance REQUEST_TIMEOUT, 10 s); the
    # order never lands, or lands 12 s after the send (a slow matching engine)
    "timeout, never landed": {"delay": 12.0, "drop_connection": True, "execute": False},
    "timeout, landed at 12 s": {"delay": 12.0, "execute": False},
}


async def cancelled_stop(streams: bool, reps: int, folder: Path, rng: random.Random,
                         lost: str | None = None) -> list[Sample]:
    """(a) `reps` times: the live stop cancelled by hand -> a new stop live. (d) with
    `lost`: the replacement's answer is lost that way (LOST_ANSWERS), and each repetition
    waits until both outcomes are known (one stop, nothing pending) before the next."""
    samples = []
    async with agent_holding(folder, streams) as (fake, agent):
        agent.start_loop()
        for _ in range(reps):
            await wait_for(covered(fake, agent, SIZE), 30 if lost is None else 60,
                           what="protected position")
            await random_phase(rng)
            stop = live_stop(fake)
            assert stop is not None
            ticks = agent.engine.ticks
            if lost is not None:
                fake.inject_fault(ALGO_POST, times=1, **LOST_ANSWERS[lost])
            gone = asyncio.get_running_loop().time()
            await fake.cancel_order_by_hand(SYMBOL, stop)
            await wait_for(lambda cancelled=stop: live_stop(fake) not in (None, cancelled),
                           default_of("sentinel_debounce_seconds") + 30, what="a new stop")
            samples.append(Sample(asyncio.get_running_loop().time() - gone,
                                  agent.engine.ticks - ticks))
            if lost is not None:
                await wait_for(lambda: not _placing(agent), 60, what="the lost answer resolved")
    return samples


def _placing(agent: LiveAgent) -> bool:
    position = agent.engine.positions.get(SYMBOL)
    return position is None or any(leg.pending is not None or leg.superseded
                                   for leg in position.legs)


# --- (b) margin back after -2019 refusals ------------------------------------------------

async def margin_returns(refusals: int, worst: bool, folder: Path,
                         rng: random.Random) -> Sample:
    schedule = Policy().retry_schedule
    until_nth = sum(schedule[:refusals - 1]) if refusals <= len(schedule) else \
        sum(schedule) + schedule[-1] * (refusals - len(schedule) - 1)
    gap = schedule[min(refusals, len(schedule)) - 1]
    async with agent_holding(folder, streams=True) as (fake, agent):
        agent.start_loop()
        await wait_for(covered(fake, agent, SIZE), 30, what="protected position")
        await random_phase(rng)
        stop = live_stop(fake)
        assert stop is not None
        fake.inject_fault(ALGO_POST, code=MARGIN_REFUSED, msg=MARGIN_MESSAGE, times=10**6)
        posts = len(fake.requests(ALGO_POST))
        await fake.cancel_order_by_hand(SYMBOL, stop)
        await wait_for(lambda: len(fake.requests(ALGO_POST)) - posts >= refusals,
                       until_nth + 2 * gap + 10, poll=0.01, what=f"{refusals} refusals")
        if not worst:
            await asyncio.sleep(rng.uniform(0, gap))
        ticks = agent.engine.ticks
        fake.clear_faults()                       # margin is back
        back = asyncio.get_running_loop().time()
        await wait_for(lambda: live_stop(fake) is not None, 2 * gap + 10, what="the stop")
        return Sample(asyncio.get_running_loop().time() - back, agent.engine.ticks - ticks)


# --- (c) an entry filled in two parts ------------------------------------------------------

async def two_part_entry(streams: bool, folder: Path, rng: random.Random) -> Sample:
    async with agent_holding(folder, streams, by_hand=None) as (fake, agent):
        await enter_first_part(agent)
        agent.start_loop()
        await wait_for(covered(fake, agent, FIRST_PART), 30, what="the first part protected")
        await random_phase(rng)
        ticks = agent.engine.ticks
        second = asyncio.get_running_loop().time()
        await fake.open_position_by_hand(SYMBOL, Side.BUY, SECOND_PART)
        await wait_for(covered(fake, agent, SIZE), default_of("sentinel_debounce_seconds") + 30,
                       what="one stop and one target for 0.010")
        return Sample(asyncio.get_running_loop().time() - second, agent.engine.ticks - ticks)


async def enter_first_part(agent: LiveAgent) -> None:
    """The engine's entry path (trader/entry_sender.py: the ENTERING record, the write-ahead
    intent, the order, its answer as an event) for a 0.010 LONG whose order fills 0.004;
    run before the loop starts, so the engine stays the single writer."""
    engine = agent.engine
    now = engine.clock.now()
    tick = engine.exchange.rules(SYMBOL).tick_size
    stop, target = (PRICE * Decimal("0.99") / tick).to_integral_value() * tick, \
        (PRICE * Decimal("1.02") / tick).to_integral_value() * tick
    plan = EntryPlan(SIZE, stop, target, *([Decimal(0)] * 5))
    limits = EntryLimits(engine.settings.leverage, Decimal("0.06"), Decimal("0.5"),
                         timedelta(minutes=40), timedelta(minutes=5))
    signal = Signal(Side.BUY, 0.8, Decimal("0.02"), Decimal("0.01"))
    planned = entering_position(SYMBOL, signal, plan, PRICE, now, now, limits)
    position, client_id = planned.next_client_id(OrderRole.ENTRY)
    engine.interpreter.adopt(position)
    result = await engine.executor.submit(replace(entry_intent(position, client_id, now),
                                                  quantity=FIRST_PART))
    event = entry_event(result)
    assert event is not None, f"entry answer: {result}"
    await engine.interpreter.apply(position, event)


# --- the run --------------------------------------------------------------------------------

async def run(args: argparse.Namespace, folder: Path) -> list[Figure]:
    rng = random.Random(args.seed)
    tick = default_of("tick_seconds")
    figures: list[Figure] = []
    if "b" in args.only:
        # The margin runs take a minute each: all at once, each on its own fake and agent.
        random_back = Figure("(b) margin back -> stop live, random moment", "goal < 30 s", 30)
        worst = Figure(f"(b) margin back -> stop live, right after refusal {args.refusals}",
                       "goal < 30 s", 30)
        jobs = [margin_returns(args.refusals, n >= args.reps, folder / f"b{n}",
                               random.Random(f"{args.seed}:{n}"))
                for n in range(args.reps + args.worst_reps)]
        background = asyncio.ensure_future(asyncio.gather(*jobs))
    for streams in (True, False):
        label = "stream" if streams else "polling"
        if "a" in args.only:
            goal = ("goal < 1 s", 1.0, None) if streams else (f"goal within one tick ({tick:g} s)",
                                                              None, 1)
            figure = Figure(f"(a) hand-cancelled stop -> new stop, {label}", *goal)
            figure.samples = await cancelled_stop(streams, args.reps, folder / f"a-{label}", rng)
            figures.append(figure)
        if "c" in args.only:
            figure = Figure(f"(c) two-part entry -> one SL + one TP, {label}",
                            "goal within two ticks", None, 2)
            for n in range(args.reps):
                figure.samples.append(await two_part_entry(streams, folder / f"c-{label}-{n}", rng))
            figures.append(figure)
    if "d" in args.only:
        for n, lost in enumerate(LOST_ANSWERS):
            timeout = lost.startswith("timeout")
            figure = Figure(f"(d) lost stop answer ({lost}) -> a stop live",
                            "goal < 2 s" if timeout else "goal < 1 s", 2.0 if timeout else 1.0)
            figure.samples = await cancelled_stop(True, args.reps, folder / f"d-{n}", rng,
                                                  lost)
            figures.append(figure)
    if "b" in args.only:
        samples = await background
        random_back.samples, worst.samples = samples[:args.reps], samples[args.reps:]
        figures += [random_back, worst]
    return figures


async def main(args: argparse.Namespace) -> None:
    quiet_logs(args.log_level)
    LiveAgent.wal = args.journal == "wal"
    print(f"tick {default_of('tick_seconds'):g} s, sentinel debounce "
          f"{default_of('sentinel_debounce_seconds'):g} s / {default_of('sentinel_debounce_cycles')} "
          f"cycles, refused-placement retries after {Policy().retry_schedule} s; "
          f"{args.reps} repetitions, {args.journal} journal")
    with scratch_dir("protection-timing-", args.dir) as folder:
        figures = await run(args, folder)
    print(f"{'figure (seconds; ticks of the engine loop)':<52}{'p50':>9}{'p95':>9}{'max':>9}"
          f"{'ticks':>7}{'max':>5}")
    for figure in figures:
        print(figure.line())


def parse_args() -> argparse.Namespace:
    parser = script_parser(__doc__)
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each figure")
    parser.add_argument("--worst-reps", type=int, default=2,
                        help="(b) runs with margin back right after the last refusal")
    parser.add_argument("--refusals", type=int, default=5,
                        help="(b) -2019 refusals before margin can return (5: the retry "
                             "schedule has reached its 30 s cap)")
    parser.add_argument("--only", default="a,b,c,d", help="which figures: a, b, c, d")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where the databases go (default: $TMPDIR)")
    parser.add_argument("--log-level", default="ERROR")
    parser.add_argument("--journal", choices=("rollback", "wal"), default="rollback",
                        help="the agent database's journal: rollback as the live agent has it "
                             "(storage/db.py), or wal to see what it costs")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
