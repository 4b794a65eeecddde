"""The reduce-only orders that rebalance a close flipped by a late fill take ids no other
order of the position takes: with "the close's number + 100 + attempt", close 1's third
rebalance and close 2's second were both ...-fl104, and a market order's id used twice is
one the intent journal already holds (found by h-wipe21)."""

from types import SimpleNamespace

from trader.domain import ClientId, OrderRole
from trader.intents import part_client_id
from trader.market_exit import REBALANCE_ATTEMPTS, _rebalance_id

CLOSES = range(1, 60)


def rebalances_of(close: int) -> list[str]:
    """The rebalance ids of the position's `close`-th close."""
    position = SimpleNamespace(symbol="BTCUSDT", key="k", seq={OrderRole.FLATTEN.value: close})
    return [_rebalance_id(position, attempt)  # type: ignore[arg-type]
            for attempt in range(1, REBALANCE_ATTEMPTS + 1)]


def test_the_rebalances_of_successive_closes_never_share_an_id() -> None:
    ids = [one for close in CLOSES for one in rebalances_of(close)]
    assert len(ids) == len(set(ids))


def test_a_rebalance_never_takes_the_id_of_a_close_or_of_a_close_part() -> None:
    closes = [str(ClientId("BTCUSDT", "k", OrderRole.FLATTEN, close)) for close in CLOSES]
    taken = set(closes) | {part_client_id(close, part) for close in closes for part in (1, 2, 3)}
    assert not {one for close in CLOSES for one in rebalances_of(close)} & taken
