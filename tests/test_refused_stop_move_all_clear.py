"""A stop-loss move the exchange refuses (a /sl during a 429, a margin refusal) leaves the
old stop live and says so in a PROTECTION alert; its all-clear, PROTECTION_RESTORED
("stop-loss moved to <level> after all: ... has SL <level> on the exchange"; "protected
again" when the position was without its stop in that episode), comes once the new stop is
on the exchange, not in the same step as the refusal (found by manual play: a /sl met by a 429
answered 'could not move the stop-loss to 49,420; the current one at 49,450 stays' and,
in the same millisecond, 'protected again: the SHORT 0.508 has SL 49,420 ... on the
exchange' while only the stop at 49,450 was)."""

from datetime import timedelta
from decimal import Decimal

from tests.engine_world import SYMBOL
from tests.test_alert_texts_formatted import OPENED, RULES, SL, apply, position, texts
from trader.alerts import AlertName
from trader.events import LegGone, LegPlaced, LegRejected, StopMoveRequested, Tick

D = Decimal


def test_a_refused_stop_move_is_not_called_protected_again_until_the_new_stop_is_live():
    record, _ = apply(position(), StopMoveRequested(D("49900.00")))
    new_id = record.stop.pending
    assert new_id is not None
    record, actions = apply(record, LegRejected(SL, new_id, "-1003 rate limited"))
    assert texts(actions, AlertName.PROTECTION), actions
    assert texts(actions, AlertName.PROTECTION_RESTORED) == [], actions
    assert record.stop.order is not None and record.stop.order.trigger_price == D("49790.00")

    later = OPENED + timedelta(seconds=3)                   # the retry is due (2 s)
    record, actions = apply(record, Tick(later, None, RULES), seconds=3)
    assert texts(actions, AlertName.PROTECTION_RESTORED) == [], actions
    retry_id = record.stop.pending
    assert retry_id is not None and retry_id != new_id
    record, actions = apply(record, LegPlaced(SL, retry_id, D("49900.00"), D("0.500")),
                            seconds=3)
    assert texts(actions, AlertName.PROTECTION_RESTORED) == [
        f"{SYMBOL}: stop-loss moved to 49,900 after all: the LONG 0.5 has SL 49,900 and TP "
        "51,000 on the exchange"]


def test_a_refused_replacement_of_a_vanished_stop_is_protected_again():
    """The negative: the stop cancelled by hand (SL_MISSING), its replacement refused; the
    position was without a stop, so its all-clear says "protected again", not "moved"."""
    record = position()
    old_id = record.stop.order.client_id
    record, actions = apply(record, LegGone(SL, old_id, confirmed=True, status="CANCELED"))
    assert texts(actions, AlertName.SL_MISSING), actions
    new_id = record.stop.pending
    assert new_id is not None
    record, actions = apply(record, LegRejected(SL, new_id, "-1003 rate limited"))
    later = OPENED + timedelta(seconds=3)
    record, _ = apply(record, Tick(later, None, RULES), seconds=3)
    retry_id = record.stop.pending
    assert retry_id is not None
    record, actions = apply(record, LegPlaced(SL, retry_id, D("49790.00"), D("0.500")),
                            seconds=3)
    assert texts(actions, AlertName.PROTECTION_RESTORED) == [
        f"{SYMBOL}: protected again: the LONG 0.5 has SL 49,790 and TP 51,000 on the exchange"]
