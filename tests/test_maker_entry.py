"""The pure rules of maker-first entries (trader/maker_entry.py): where a quote goes, and
hold / re-quote / fall back to market / give up, at the edges of time, budget and size."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trader.domain import (
    BookTicker,
    Intent,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
)
from trader.events import EntryFailed, EntryFilled
from trader.exchange.base import ExchangeError
from trader.exchange.errors import Outcome, classify
from trader.exchange.sim_rules import rules_for
from trader.executor import ActionResult
from trader.maker_entry import (
    Complete,
    EntryRisk,
    FallBack,
    GiveUp,
    Hold,
    MakerFallback,
    MakerPolicy,
    Quote,
    QuoteState,
    decide,
    moved_away,
    touch_price,
)
from trader.maker_quoter import quote_event

D = Decimal
RULES = rules_for("BTCUSDT")            # tick 0.1, step 0.001, min notional 100
POLICY = MakerPolicy(requotes=3, timeout=timedelta(seconds=30))
CANCEL = MakerPolicy(requotes=3, timeout=timedelta(seconds=30), fallback=MakerFallback.CANCEL)


def roomy(side: Side) -> EntryRisk:
    """A budget these tests never reach: a stop 1.5 % from 100,000, a million to lose (the
    budget's own rules: tests/test_maker_chase_budget_rules.py)."""
    return EntryRisk(D("98500") if side is Side.BUY else D("101500"), D("1000000"))


def state(side: Side = Side.BUY, *, filled: str = "0", quote: str | None = None,
          sent: int = 0, seconds: float = 0, unknown: bool = False,
          closing: bool = False, planned: str = "0.250") -> QuoteState:
    return QuoteState(side=side, planned=D(planned), filled=D(filled),
                      quote_price=D(quote) if quote is not None else None, unknown=unknown,
                      quotes_sent=sent, elapsed=timedelta(seconds=seconds),
                      risk=roomy(side), mark=D("100000"), closing=closing)


# --- where a quote goes ---------------------------------------------------------------------

def test_a_long_quotes_at_the_best_bid_and_a_short_at_the_best_ask() -> None:
    book = BookTicker("BTCUSDT", D("99999.0"), D("100001.0"))
    assert touch_price(Side.BUY, book, RULES) == D("99999.0")
    assert touch_price(Side.SELL, book, RULES) == D("100001.0")


def test_an_off_grid_touch_is_rounded_away_from_the_market() -> None:
    book = BookTicker("BTCUSDT", D("99999.05"), D("100000.95"))
    assert touch_price(Side.BUY, book, RULES) == D("99999.0")     # a buy never pays more
    assert touch_price(Side.SELL, book, RULES) == D("100001.0")   # a sell never asks less


def test_no_quote_without_a_sane_book() -> None:
    assert touch_price(Side.BUY, None, RULES) is None
    assert touch_price(Side.BUY, BookTicker("BTCUSDT", D("0"), D("1")), RULES) is None
    crossed = BookTicker("BTCUSDT", D("100001.0"), D("100000.0"))
    assert touch_price(Side.SELL, crossed, RULES) is None


def test_moved_away_means_the_touch_left_our_price_behind() -> None:
    assert moved_away(Side.BUY, D("100"), D("100.1"))          # a higher bid is ahead of us
    assert not moved_away(Side.BUY, D("100"), D("99.9"))       # the market comes to us
    assert moved_away(Side.SELL, D("100"), D("99.9"))
    assert not moved_away(Side.SELL, D("100"), D("100.1"))


# --- the decision ------------------------------------------------------------------------

def test_the_first_quote_goes_to_the_touch_for_everything_planned() -> None:
    assert decide(state(), D("99999"), RULES, POLICY) == Quote(D("99999"), D("0.250"))


def test_a_quote_at_the_touch_is_left_alone() -> None:
    assert isinstance(decide(state(quote="99999", sent=1), D("99999"), RULES, POLICY), Hold)


def test_a_quote_is_requoted_when_the_touch_moves_away_for_the_rest_only() -> None:
    decision = decide(state(quote="99999", sent=1, filled="0.100", seconds=5), D("100010"),
                      RULES, POLICY)
    assert decision == Quote(D("100010"), D("0.150"))


def test_a_touch_moving_towards_the_quote_is_no_reason_to_requote() -> None:
    assert isinstance(decide(state(quote="99999", sent=1), D("99990"), RULES, POLICY), Hold)
    sell = state(Side.SELL, quote="100001", sent=1)
    assert isinstance(decide(sell, D("100010"), RULES, POLICY), Hold)
    assert decide(sell, D("100000"), RULES, POLICY) == Quote(D("100000"), D("0.250"))


def test_a_refused_or_ended_quote_is_requoted_at_the_touch() -> None:
    """-5022 (it would have taken liquidity) leaves no live quote: the next one goes in."""
    assert decide(state(sent=1, seconds=1), D("100003"), RULES, POLICY) == \
        Quote(D("100003"), D("0.250"))


def test_after_n_requotes_the_last_quote_waits_for_the_timeout() -> None:
    assert decide(state(quote="99999", sent=3, seconds=20), D("100010"), RULES, POLICY) == \
        Quote(D("100010"), D("0.250"))                                   # the 3rd re-quote
    held = decide(state(quote="100010", sent=4, seconds=25), D("100020"), RULES, POLICY)
    assert isinstance(held, Hold) and "re-quotes used" in held.reason
    assert isinstance(decide(state(sent=4, seconds=25), D("100020"), RULES, POLICY), Hold)


def test_zero_requotes_means_one_quote_then_the_fallback() -> None:
    policy = MakerPolicy(requotes=0, timeout=timedelta(seconds=30))
    assert isinstance(decide(state(quote="99999", sent=1), D("100010"), RULES, policy), Hold)
    assert decide(state(quote="99999", sent=1, seconds=30), D("100010"), RULES, policy) == \
        FallBack(D("0.250"))


def test_at_the_timeout_the_rest_goes_at_market_or_is_given_up() -> None:
    late = state(quote="99999", sent=2, filled="0.100", seconds=30)
    assert decide(late, D("99999"), RULES, POLICY) == FallBack(D("0.150"))
    assert isinstance(decide(late, D("99999"), RULES, CANCEL), GiveUp)
    early = state(quote="99999", sent=2, filled="0.100", seconds=29.9)
    assert isinstance(decide(early, D("99999"), RULES, POLICY), Hold)


def test_the_timeout_does_not_need_a_book() -> None:
    assert decide(state(sent=1, seconds=31), None, RULES, POLICY) == FallBack(D("0.250"))
    assert isinstance(decide(state(sent=1, seconds=1), None, RULES, POLICY), Hold)


def test_a_quote_whose_answer_was_lost_is_never_acted_on_even_late() -> None:
    for seconds in (1, 30, 300):
        decision = decide(state(sent=1, seconds=seconds, unknown=True), D("100010"), RULES,
                          POLICY)
        assert isinstance(decision, Hold)


def test_everything_filled_is_complete_whatever_the_clock_says() -> None:
    for seconds in (0, 300):
        assert isinstance(decide(state(filled="0.250", sent=1, seconds=seconds), D("1"),
                                 RULES, POLICY), Complete)


def test_a_rest_below_the_symbols_minimum_is_complete_not_a_dust_order() -> None:
    enough = state(filled="0.248", quote="99999", sent=1)       # 0.002 x 99999 >= 100
    assert isinstance(decide(enough, D("99999"), RULES, POLICY), Hold)
    below_notional = state(filled="0.249", quote="99999", sent=1)   # 0.001 x 99999 < 100
    assert isinstance(decide(below_notional, D("99999"), RULES, POLICY), Complete)
    tiny = state(planned="0.0015", filled="0.001", sent=1)               # rest rounds to 0
    assert isinstance(decide(tiny, D("99999"), RULES, POLICY), Complete)
    small = state(planned="0.010", filled="0.009", sent=1, seconds=40)   # 0.001 x 99 < 100
    assert isinstance(decide(small, D("99000"), RULES, POLICY), Complete)


def test_a_closing_position_gives_up_the_rest_instead_of_buying_more() -> None:
    closing = state(quote="99999", sent=1, filled="0.100", closing=True)
    assert isinstance(decide(closing, D("100010"), RULES, POLICY), GiveUp)
    assert isinstance(decide(closing, D("99999"), RULES, POLICY), GiveUp)


# --- properties ----------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-30, 30), st.integers(0, 40), st.booleans()),
                min_size=1, max_size=40),
       st.integers(0, 5), st.sampled_from(list(MakerFallback)))
def test_quotes_stay_within_budget_and_time_and_never_exceed_the_plan(
        moves: list[tuple[int, int, bool]], requotes: int, fallback: MakerFallback) -> None:
    """Whatever the touch does: at most 1 + N quotes, none at or after the timeout, each
    for at most the rest; after the timeout only the fallback (or Complete)."""
    policy = MakerPolicy(requotes=requotes, timeout=timedelta(seconds=30), fallback=fallback)
    planned, filled, quote, sent, seconds = D("0.250"), D("0"), None, 0, 0.0
    touch = D("100000.0")
    for move, fill_steps, cancelled in moves:
        touch += D(move) / 10
        seconds += 2
        now = QuoteState(Side.BUY, planned, filled, quote, False, sent,
                         timedelta(seconds=seconds), risk=roomy(Side.BUY), mark=touch)
        decision = decide(now, touch, RULES, policy)
        if isinstance(decision, Quote):
            assert seconds < 30 and sent <= requotes
            assert D("0") < decision.quantity <= planned - filled
            quote, sent = decision.price, sent + 1
        elif isinstance(decision, FallBack):
            assert seconds >= 30 and fallback is MakerFallback.MARKET
            assert decision.quantity == planned - filled
            return
        elif isinstance(decision, GiveUp):
            assert seconds >= 30 and fallback is MakerFallback.CANCEL
            return
        elif isinstance(decision, Complete):
            assert filled == planned or (planned - filled) * touch < RULES.min_notional
            return
        if quote is not None:                      # the market trades some of it away
            filled = min(planned, filled + D("0.001") * fill_steps)
            if cancelled:
                quote = None
    assert sent <= requotes + 1


# --- a quote's answer ------------------------------------------------------------------------

QUOTE = Intent("tb-BTCUSDT-k-en1", "BTCUSDT", OrderRole.ENTRY, Side.BUY, OrderType.LIMIT,
               D("0.250"), "k", datetime(2026, 1, 5, tzinfo=UTC), price=D("99999"))


def answered(status: OrderStatus, filled: str = "0") -> ActionResult:
    order = Order("BTCUSDT", QUOTE.client_id, Side.BUY, OrderType.LIMIT, status, D("0.250"),
                  D(filled), D("99999") if D(filled) else D("0"), price=D("99999"))
    return ActionResult(Outcome.DONE, QUOTE, order)


def refused(code: int, message: str) -> ActionResult:
    verdict = classify(ExchangeError(code, message), OrderRole.ENTRY)
    return ActionResult(verdict.outcome, QUOTE, verdict=verdict)


def test_a_quote_refused_for_crossing_or_expired_at_once_is_requoted_not_failed() -> None:
    """Binance's error page has -5022 for a GTX that would take; an exchange that accepts
    and expires it instead (GTX as once documented) must lead to the same: a re-quote."""
    assert quote_event(refused(-5022, "Due to the order could not be executed as maker, "
                                      "the Post Only order will be rejected.")) is None
    assert quote_event(answered(OrderStatus.EXPIRED)) is None
    assert quote_event(answered(OrderStatus.NEW)) is None
    assert quote_event(ActionResult(Outcome.UNKNOWN, QUOTE)) is None


def test_a_quote_refused_for_any_other_reason_fails_the_entry() -> None:
    assert isinstance(quote_event(refused(-2019, "Margin is insufficient.")), EntryFailed)


def test_a_quote_filled_in_part_opens_the_position_for_that_part() -> None:
    event = quote_event(answered(OrderStatus.PARTIALLY_FILLED, "0.100"))
    assert event == EntryFilled(D("0.100"), D("99999"), complete=False)
