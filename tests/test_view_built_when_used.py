"""A tick builds the symbol's view only when something uses it (adoption, protection, an
order sweep, a signal's entry: a flat tick needs only the position's side), from the
position and the quote it read first. What it hands on must be the view it would have
taken at that moment: equal to `pushed_view` at the tick's start."""

from tests.engine_world import SYMBOL, long_signal, make_world


async def watched(tmp_path):  # type: ignore[no-untyped-def]
    world = await make_world(tmp_path)
    await world.warm_up()
    view = world.engine.view
    started, handed, built = [], [], []
    read, build = view.pushed_quote, view.view_of

    def pushed_quote(symbol):  # type: ignore[no-untyped-def]
        pushed = read(symbol)
        if pushed is not None:
            started.append(build(symbol, world.clock.now(), *pushed))
        return pushed

    def view_of(*args):  # type: ignore[no-untyped-def]
        built.append(build(*args))
        return built[-1]
    view.pushed_quote, view.view_of = pushed_quote, view_of
    protect, enter = world.engine.keeper.protect, world.engine.entries.enter_on_signal

    async def protecting(position, symbol_view, notes=None):  # type: ignore[no-untyped-def]
        handed.append(symbol_view)
        return await protect(position, symbol_view, notes)

    async def entering(symbol, signal, symbol_view, *rest):  # type: ignore[no-untyped-def]
        handed.append(symbol_view)
        return await enter(symbol, signal, symbol_view, *rest)
    world.engine.keeper.protect, world.engine.entries.enter_on_signal = protecting, entering
    return world, started, handed, built


async def test_the_view_handed_on_is_the_one_of_the_ticks_start(tmp_path):
    world, started, handed, built = await watched(tmp_path)
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()                                   # the signal's entry
    assert SYMBOL in world.engine.positions
    assert handed and handed[0] == started[-1], (handed, started)
    for _ in range(3):                                   # protection, in position
        handed.clear()
        await world.step()
        assert handed and handed[0] == started[-1]


async def test_a_flat_tick_builds_no_view(tmp_path):
    world, started, handed, built = await watched(tmp_path)
    await world.step()
    assert started and not built and not handed
