"""/sl SYMBOL PRICE: the operator moves the stop-loss of an open position. The price is put
on the symbol's tick (away from the mark, as the agent rounds its own stops). One check
(`judge_stop`) decides what a /sl does, on the phone before the confirmation (`check_stop`,
from what the agent saw last) and again when it runs (`move_stop`, with a fresh mark: the
mark and the rules move meanwhile): answered at once when the stop cannot move (no managed
position, being closed, rules unread), is already at that level, or the level is past the
symbol's PRICE_FILTER bounds or on the wrong side of the mark (the exchange would refuse it,
-4007 / -4013 / -2021, or it would fire at once); else asked with its distance from the
mark and, when the agent's own rules move the stop back at the next tick (the trailing
stop, a move to breakeven still due: they only tighten), where to. The volatility regime
leaves the operator's level (trader/regime_adjust.py).

/sl SYMBOL auto hands the stop back to the agent's own rules (`agent_stop_level`): the
stop goes where the regime rule keeps it, judged and confirmed as a level asked for, and the
rule follows it again from then on.

The move goes through the state machine (StopMoveRequested): the new stop is placed first
and the old one cancelled only once the new one is live (trader/protection.py), so the
position is never without a stop. While the answer to the stop's last placement is lost
(probed, never resent) the move waits for it: the order found is then known for the old
level and replaced (`Leg.pending_trigger`)."""

from dataclasses import replace
from decimal import Decimal

from trader.commands import Command, CommandResult, StopCheck
from trader.control_close import open_position
from trader.display import price
from trader.domain import ClientId, Side
from trader.engine import Engine
from trader.events import Policy, StopMoveRequested
from trader.evolve import evolve
from trader.management import best_price, breakeven_price, tighter_stop, trail_atr, trailing_stop
from trader.position import Position, PositionState
from trader.regime_adjust import levels_for
from trader.strategy.regime import Regime
from trader.symbol_rules import SymbolRules
from trader.views import (
    last_mark,
    leverage_of,
    liquidated_before,
    past_liquidation,
    run_state,
    symbol_rules,
)


async def move_stop(engine: Engine, command: Command) -> CommandResult:
    """Move `command.symbol`'s stop to `command.price`, or back to the agent's own level
    (`command.auto`); every line as the exchange confirmed."""
    symbol, asked = command.symbol or "", command.price
    if asked is None and not command.auto:
        return CommandResult(False, [f"{symbol}: stop-loss not moved: no price asked"])
    refusal = stop_move_refused(engine, symbol)
    if refusal:
        return CommandResult(False, [refusal])
    view = await engine.view.view(symbol, fresh=True)
    check = judge_stop(engine, symbol, asked, view.mark)
    if check.refusal or check.already:
        return CommandResult(not check.refusal, [check.refusal or check.already])
    position, rules = open_position(engine, symbol), symbol_rules(engine, symbol)
    assert position is not None and rules is not None      # judge_stop refused otherwise
    level = _aimed(engine, position, asked, rules)
    assert level is not None                               # judge_stop refused otherwise
    before = position.stop.order
    if asked is None and before is not None and before.trigger_price == level \
            == position.stop.trigger_price:
        # The operator's level is the agent's: nothing to place, the rule takes it back.
        await engine.interpreter.apply(position, StopMoveRequested(level, by_operator=False))
        return CommandResult(True, [
            f"{symbol}: the stop-loss stays at {price(level, rules.tick_size)}, the agent's "
            "level: its rules move it from now on"])
    moved = await engine.interpreter.apply(position,
                                           StopMoveRequested(level, by_operator=asked is not None))
    result = _result(engine, moved, asked or level, level,
                     before.client_id if before else None, rules,
                     "stop-loss moved to" if asked is not None
                     else "stop-loss back to the agent's level")
    note = stop_taken_back(engine, moved, level, view.mark, rules) if result.ok else ""
    return replace(result, lines=[*result.lines, f"{symbol}: {note}"]) if note else result


def check_stop(engine: Engine, symbol: str, asked: Decimal | None) -> StopCheck:
    """`judge_stop` before the confirmation, from what the agent saw last (read-only, no
    request: the pushed mark, else the position's at the last look). While it is starting
    it knows nothing yet: nothing to say (the command then waits for the boot)."""
    if run_state(engine) == "starting":
        return StopCheck()
    return judge_stop(engine, symbol, asked, last_mark(engine, symbol), mark_needed=False)


def judge_stop(engine: Engine, symbol: str, asked: Decimal | None, mark: Decimal,
               mark_needed: bool = True) -> StopCheck:
    """What `/sl symbol asked` (`asked` None: /sl symbol auto) does with the mark at `mark`
    (0: unknown; refused then if `mark_needed`, else judged by the price filter alone),
    nothing sent: a refusal, "already there", or the level's distance from the mark and
    what the next tick does to it (and, for auto, the agent's level)."""
    refusal = stop_move_refused(engine, symbol)
    if refusal:
        return StopCheck(refusal=refusal)
    already = stop_already_at(engine, symbol, asked) if asked is not None \
        else stop_already_agents(engine, symbol)
    if already:
        return StopCheck(already=already)
    position, rules = open_position(engine, symbol), symbol_rules(engine, symbol)
    assert position is not None and rules is not None      # stop_move_refused said so
    level = _aimed(engine, position, asked, rules)
    if level is None:
        return StopCheck(refusal=(
            f"{symbol}: stop-loss not moved: the agent has no plan of its own for this stop "
            "(a position it took over keeps its stop until the next regime reading); set a "
            f"level: /sl {symbol} PRICE"))
    known = mark > 0
    refused = _refusal(position, level, mark, rules) if known or mark_needed \
        else _filter_refusal(level, rules)
    if refused:
        whose = "" if asked is not None else f"the agent's level {price(level, rules.tick_size)}: "
        return StopCheck(refusal=f"{symbol}: stop-loss not moved: {whose}{refused}")
    auto = None if asked is not None else level
    if not known:
        return StopCheck(level=auto)
    side = "below" if level < mark else "above"
    away = abs(mark - level) / mark * 100
    aimed = position.with_leg(evolve(position.stop, trigger_price=level))
    warnings = [_past_liquidation(engine, position, level, rules),
                stop_taken_back(engine, aimed, level, mark, rules)]
    return StopCheck(distance=f"{percent_text(away)} % {side} the mark",
                     warning=". ".join(warning for warning in warnings if warning), level=auto)


def _past_liquidation(engine: Engine, position: Position, level: Decimal,
                      rules: SymbolRules) -> str:
    """A warning when `level` lies past where the position is liquidated ("" otherwise;
    views.liquidated_before says why it warns and never refuses)."""
    leverage = leverage_of(position, engine.tracker.position(position.symbol))
    if not past_liquidation(position, level, leverage):
        return ""
    falls = "falls" if position.side is Side.BUY else "rises"
    return (f"a {leverage}x {position.side.label} is liquidated before the price {falls} to "
            f"{price(liquidated_before(position, leverage), rules.tick_size)} (1/{leverage} from its entry, sooner with the "
            "maintenance margin): the exchange would close it before this stop triggers")


def percent_text(away: Decimal) -> str:
    """`away` (a percentage) with one decimal, or two significant digits under 0.1 (a level
    a few ticks from the mark would read "0.0 %", as if it were at the mark)."""
    if away >= Decimal("0.1"):
        return f"{away:.1f}"
    near = f"{away:.2g}"
    return near.rstrip("0").rstrip(".") if "." in near else near


def agent_stop_level(position: Position, rules: SymbolRules, policy: Policy) -> Decimal | None:
    """Where the agent's own rules keep `position`'s stop-loss, for /sl SYMBOL auto: the
    regime rule's level for the regime the legs follow now (trader/regime_adjust.py
    `levels_for`: the planned distance from the entry scaled by that regime's multiplier,
    on the tick, within PRICE_FILTER), no looser than breakeven once the move to breakeven
    was made (it is made once). The trailing stop, when on, tightens it at the next tick,
    as for any stop. None without a plan to return to: no anchor yet (a position taken
    over before its first regime reading) or a plan that is not usable."""
    planned = position.regime
    if planned is None:
        return None
    levels = levels_for(position.side, position.entry_price, planned, Regime(planned.applied),
                        rules)
    if levels is None:
        return None
    if not position.breakeven_done:
        return levels[0]
    return tighter_stop(position.side, breakeven_price(position, policy.taker_fee, rules),
                        levels[0])


def _aimed(engine: Engine, position: Position, asked: Decimal | None,
           rules: SymbolRules) -> Decimal | None:
    """The level a /sl aims at: `asked` on the tick, or (auto) the agent's own."""
    if asked is not None:
        return _on_tick(position, asked, rules)
    return agent_stop_level(position, rules, engine.interpreter.policy)


def _on_tick(position: Position, asked: Decimal, rules: SymbolRules) -> Decimal:
    return rules.round_price(asked, up=position.side is Side.SELL)   # away from the mark


def stop_taken_back(engine: Engine, position: Position, level: Decimal, mark: Decimal,
                    rules: SymbolRules) -> str:
    """What the next tick does to `position`'s stop at `level` when the agent's own rules
    move it (they only tighten: trader/lifecycle_tick.py `_manage`): "the trailing stop is
    on (...): the next tick moves the stop back to X; it only tightens", or the same of a
    move to breakeven still due; "" when nothing moves it (the trail is not due, or the
    level is at least as tight)."""
    policy = engine.interpreter.policy
    aimed, why = level, ""
    if position.partial_taken and not position.breakeven_done:
        aimed = tighter_stop(position.side, breakeven_price(position, policy.taker_fee, rules),
                             level)
        why = "the move to breakeven is due: the next tick moves the stop" \
            if aimed != level else ""
    distance = policy.trailing_distance
    atr = trail_atr(engine.candles[position.symbol].closed()) if distance.in_atr else None
    trail = trailing_stop(position.with_leg(evolve(position.stop, trigger_price=aimed)), mark,
                          rules, distance, atr)
    if trail is not None and trail != aimed:
        best = best_price(position, mark)
        aimed, why = trail, (f"the trailing stop is on ({distance} behind the best price "
                             f"{price(best, rules.tick_size)}): the next tick moves the stop "
                             "back")
    if not why:
        return ""
    return f"{why} to {price(aimed, rules.tick_size)}; it only tightens"


def stop_move_refused(engine: Engine, symbol: str) -> str:
    """Why a /sl on `symbol` cannot move its stop whatever the price ("" when it may), from
    what the agent knows, nothing sent."""
    position = open_position(engine, symbol)
    if position is None or position.state is PositionState.CLOSING:
        why = "it is being closed" if position is not None else _why_none(engine, symbol)
        return f"{symbol}: stop-loss not moved: {why}"
    if symbol_rules(engine, symbol) is None:
        return (f"{symbol}: stop-loss not moved: the symbol's rules were not read from the "
                "exchange yet; try again")
    return ""


def stop_already_at(engine: Engine, symbol: str, asked: Decimal) -> str:
    """"BTCUSDT: the stop-loss is already at 49,000" when its stop is on the exchange at
    `asked` put on the tick ("" otherwise): nothing to move."""
    position, rules = open_position(engine, symbol), symbol_rules(engine, symbol)
    if position is None or rules is None:
        return ""
    level = _on_tick(position, asked, rules)
    live = position.stop.order
    if live is None or not live.trigger_price == level == position.stop.trigger_price:
        return ""
    return f"{symbol}: the stop-loss is already at {price(level, rules.tick_size)}"


def stop_already_agents(engine: Engine, symbol: str) -> str:
    """"BTCUSDT: the stop-loss is already the agent's (at 49,000)" when no /sl level holds
    it: never set, or moved since by the trail or breakeven ("" otherwise)."""
    position, rules = open_position(engine, symbol), symbol_rules(engine, symbol)
    if position is None or rules is None:
        return ""
    if position.operator_stop is not None \
            and position.stop.trigger_price == position.operator_stop:
        return ""
    return (f"{symbol}: the stop-loss is already the agent's (at "
            f"{price(position.stop.trigger_price, rules.tick_size)}); /sl {symbol} PRICE "
            "sets one by hand")


def _why_none(engine: Engine, symbol: str) -> str:
    seen = engine.tracker.position(symbol)       # the exchange's, at the last look
    if symbol in engine.positions or seen is None or seen.side is None:
        return "no open position"                # or an entry still waiting for its answer
    return (f"the {seen.side.label} on the exchange is not managed by the agent (opened by "
            "hand, TRADEBOT_ADOPT_POSITIONS=false): set its stop in the Binance app, or "
            "/close it (the agent takes it over to close it)")


def _filter_refusal(level: Decimal, rules: SymbolRules) -> str:
    """Why Binance's filters refuse `level` as a stop ("" when they take it)."""
    if level <= 0:
        return f"{price(level, rules.tick_size)} is not a price"
    return rules.price_refusal(level)


def _refusal(position: Position, level: Decimal, mark: Decimal, rules: SymbolRules) -> str:
    """Why `level` cannot be the stop now ("" when it can): off the symbol's PRICE_FILTER
    bounds, or on the wrong side of the mark (a long's stop must be below it, a short's
    above it)."""
    tick = rules.tick_size
    refused = _filter_refusal(level, rules)
    if refused:
        return refused
    if not mark > 0:
        return "the mark price is unknown right now; try again"
    if (mark - level) * position.side.sign > 0:
        return ""
    where = "below" if position.side is Side.BUY else "above"
    return (f"a {position.side.label}'s stop must be {where} the mark price "
            f"({price(mark, tick)}); {price(level, tick)} would trigger at once")


def _result(engine: Engine, position: Position, asked: Decimal, level: Decimal,
            old_id: str | None, rules: SymbolRules,
            moved_to: str = "stop-loss moved to") -> CommandResult:
    symbol, tick = position.symbol, rules.tick_size
    shown = price(level, tick)
    rounded = f" ({price(asked)} on the tick)" if level != asked else ""
    if not position.state.open or position.state is PositionState.CLOSING:
        # -2021: the mark passed the level before the new stop reached the exchange; the
        # machine closes at market, as that stop would have (trader/lifecycle.py).
        done = "closed" if position.state is PositionState.CLOSED else "being closed"
        return CommandResult(False, [
            f"{symbol}: the price passed {shown} before the new stop-loss reached the "
            f"exchange: the position is {done} at market, as that stop would have done"])
    stop = position.stop.order
    if _given_up(position, level):
        # A filter refused the level for good (trader/placement_refusals.py): not retried.
        return CommandResult(False, [
            f"{symbol}: stop-loss not moved: Binance refused the new stop at {shown}; the "
            f"stop-loss stays at {price(position.stop.trigger_price, tick)} (the PROTECTION "
            "alert says why)"])
    if stop is None or stop.trigger_price != level or position.stop.pending is not None \
            or not position.stop.covers(position.quantity):
        # Held back by a Retry-After, refused for now (-2019 margin), or its answer lost:
        # placed or resolved by itself, as a /close held back is (waiting, not failed).
        return CommandResult(False, [
            f"{symbol}: the new stop-loss at {shown}{rounded} is not confirmed on the "
            "exchange yet; the agent keeps placing it (/status shows it), and the old one "
            "stays until it is"], waiting=True)
    if old_id == stop.client_id:
        # The live stop is the one asked for (a move away from it was still being retried):
        # nothing new was placed, and that stop is the position's only one.
        return CommandResult(True, [
            f"{symbol}: {moved_to} {shown}{rounded}: on the exchange, the stop-loss already "
            "there; it stays"])
    old = engine.tracker.get(old_id)
    kept = old is not None and old.live
    if old_id is not None and ClientId.parse(old_id) is None:
        # A stop placed by hand that the agent had taken as the position's: it never cancels
        # an order it did not place, so that one stays (INVARIANT_EXTRA_STOP follows).
        return CommandResult(True, [
            f"{symbol}: {moved_to} {shown}{rounded}: on the exchange",
            f"{symbol}: the stop-loss placed outside the agent ({old_id}) stays: the agent "
            "never cancels an order it did not place; cancel it in the Binance app"])
    return CommandResult(True, [
        f"{symbol}: {moved_to} {shown}{rounded}: on the exchange",
        f"{symbol}: the old stop-loss " + ("is still live: it is cancelled on the next tick"
                                          if kept else "was cancelled after it")])


def _given_up(position: Position, level: Decimal) -> bool:
    """The move to `level` was given up: the plan is the live stop again, not `level`, and
    nothing is being placed or waits for a retry."""
    leg = position.stop
    return (leg.trigger_price != level and leg.pending is None and leg.retry_at is None
            and leg.order is not None and leg.order.trigger_price == leg.trigger_price)
