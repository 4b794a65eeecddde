"""storage/iso_text.py: the remembered ISO text of a time is always the time's own
`isoformat()`, also for equal times written differently (other zones, the other fold of a
clock turned back, a datetime subclass) met one after the other."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from storage import iso_text as module
from storage.iso_text import iso_text

ZONES = [None, UTC, timezone(timedelta(0), "named"), timezone(timedelta(hours=1)),
         timezone(-timedelta(hours=5, minutes=30)), ZoneInfo("Europe/Paris"),
         ZoneInfo("America/New_York")]


class Subclass(datetime):
    def isoformat(self, *args: object, **kwargs: object) -> str:   # type: ignore[override]
        return "subclass " + super().isoformat()


times = st.builds(
    lambda naive, zone, fold: naive.replace(tzinfo=zone, fold=fold),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)),
    st.sampled_from(ZONES), st.integers(0, 1))


@given(st.lists(times, min_size=1, max_size=30))
def test_the_text_is_the_times_own_isoformat(moments: list[datetime]) -> None:
    for moment in moments:
        # each time, then every zone's rendering of the same instant (equal when aware)
        again = [moment] + ([moment.astimezone(zone) for zone in ZONES if zone is not None]
                            if moment.tzinfo is not None else [])
        for same in again + again:
            assert iso_text(same) == same.isoformat()


def test_equal_times_in_other_zones_and_folds_keep_their_own_text() -> None:
    paris = ZoneInfo("Europe/Paris")
    first = datetime(2025, 10, 26, 2, 30, tzinfo=paris)    # the clock turned back: twice
    second = first.replace(fold=1)
    assert first == second and first.isoformat() != second.isoformat()
    assert [iso_text(first), iso_text(second)] == [first.isoformat(), second.isoformat()]
    utc = datetime(2025, 1, 1, 12, tzinfo=UTC)
    plus_one = utc.astimezone(timezone(timedelta(hours=1)))
    assert utc == plus_one
    assert [iso_text(utc), iso_text(plus_one)] == ["2025-01-01T12:00:00+00:00",
                                                   "2025-01-01T13:00:00+01:00"]
    naive = datetime(2025, 1, 1, 12)
    assert iso_text(naive) == "2025-01-01T12:00:00"
    odd = Subclass(2025, 1, 1, 12, tzinfo=UTC)
    assert odd == utc and iso_text(odd) == "subclass 2025-01-01T12:00:00+00:00"


def test_the_memory_is_bounded() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for minute in range(module.ISO_TEXTS_KEPT * 2 + 5):
        moment = start + timedelta(minutes=minute)
        assert iso_text(moment) == moment.isoformat()
    assert len(module._texts) <= module.ISO_TEXTS_KEPT


utc_times = st.builds(lambda naive, fold: naive.replace(tzinfo=UTC, fold=fold),
                      st.datetimes(), st.integers(0, 1))


@given(utc_times)
def test_a_utc_time_is_written_as_isoformat_writes_it(moment: datetime) -> None:
    """`utc_text` (a UTC time's text from kept pieces): any year, microseconds or none,
    either fold, digit for digit CPython's own."""
    assert module.utc_text(moment) == moment.isoformat()
    assert module.utc_text(moment.replace(microsecond=0)) == \
        moment.replace(microsecond=0).isoformat()


@given(times)
def test_a_time_not_remembered_is_written_as_isoformat_writes_it(moment: datetime) -> None:
    """`iso_text_once`: the same text for every zone (UTC's own through `utc_text`, an
    equal zone of another object or any other through isoformat), and nothing kept."""
    kept = dict(module._texts)
    assert module.iso_text_once(moment) == moment.isoformat()
    assert module._texts == kept


def test_only_the_utc_zone_itself_is_written_from_pieces() -> None:
    """An equal zone that is not `datetime.UTC` (a named one writes the same offset, but a
    subclass of datetime writes its own text) goes through isoformat."""
    named = datetime(2025, 1, 1, 12, tzinfo=timezone(timedelta(0), "named"))
    assert module.iso_text_once(named) == named.isoformat() == "2025-01-01T12:00:00+00:00"
    odd = Subclass(2025, 1, 1, 12, tzinfo=UTC)
    assert module.iso_text_once(odd) == "subclass 2025-01-01T12:00:00+00:00"
    assert iso_text(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00+00:00"
