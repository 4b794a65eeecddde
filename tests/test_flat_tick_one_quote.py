"""A flat tick reads one quote: the view's mark and the breakers' top of book come from the
same pushed quote (nothing is awaited between the two reads). A tick that awaits in
between (an open position's protection, a sweep of orders) reads the book again after
it, as does a tick whose view came over REST."""

from decimal import Decimal

from tests.engine_world import SYMBOL, long_signal, make_world
from trader.exchange_view import QUOTE_MAX_AGE


def books_checked(world) -> list:
    """The top of book each `breakers.check` of the coming ticks is given."""
    seen: list = []
    check = world.engine.breakers.check

    def recording(symbol, quote, *rest, **named):
        seen.append(quote)
        return check(symbol, quote, *rest, **named)

    world.engine.breakers.check = recording
    return seen


def pushed_book_reads(world) -> list[str]:
    reads: list[str] = []
    read = world.engine.view.pushed_book
    world.engine.view.pushed_book = lambda symbol: reads.append(symbol) or read(symbol)
    return reads


async def test_a_flat_tick_checks_the_book_of_the_quote_its_view_was_made_from(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    seen, reads = books_checked(world), pushed_book_reads(world)
    await world.step()
    quote = world.paper.quote(SYMBOL, QUOTE_MAX_AGE)
    assert quote is not None and seen == [quote.book]
    assert seen[0] is quote.book, "the very book the view's quote carries"
    assert reads == [], "no second read of the quote"


async def test_a_tick_that_protects_a_position_reads_the_book_again_after_it(tmp_path):
    """The negative case: protection may wait (and the price move meanwhile), so the book
    the breakers check is the one after it, not the view's."""
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    assert SYMBOL in world.engine.positions
    protect = world.engine.keeper.protect
    moved = Decimal("100500")

    async def protect_then_move(position, view, notes=None):
        done = await protect(position, view, notes)
        world.paper.sim.set_price(SYMBOL, moved, world.clock.now())   # moved while waiting
        return done

    world.engine.keeper.protect = protect_then_move
    seen, reads = books_checked(world), pushed_book_reads(world)
    await world.step()
    assert reads == [SYMBOL]
    after = world.paper.quote(SYMBOL, QUOTE_MAX_AGE)
    assert after is not None and after.mark == moved
    assert seen == [after.book], "the book after the move, not the one the view was made from"


async def test_a_view_over_rest_leaves_the_book_to_its_own_read(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    world.paper.stream_live = False          # polling: the view is read over REST
    seen, reads = books_checked(world), pushed_book_reads(world)
    await world.step()
    assert reads == [SYMBOL]
    quote = world.paper.quote(SYMBOL, QUOTE_MAX_AGE)
    assert quote is not None and seen == [quote.book]
