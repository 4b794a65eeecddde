"""A usage count answered just after a window's start may be the previous window's: Binance
counts a request in the window it arrived in, and the agent's idea of Binance's clock (local
time + the measured offset) is good to a few milliseconds, not exactly. Found in the chaos
test's log: the gate held "0.82s before position" until the weight window's end by its
clock, 2 ms early by the fake's; the request was counted in the old minute (2,180 of 2,400),
its answer read in the new one, and the next request was held "60.00s before margin type"
(a boot that took 61.6 s: a position found there would have waited a minute for its stop).
Binance (general info, LIMITS): the X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter) header
gives the used weight "for the current IP" of the interval; the windows are fixed minutes."""

from datetime import UTC, datetime, timedelta

import pytest

from trader.exchange.ratelimit import RateLimiter, RateLimits

WINDOW_END = datetime(2026, 12, 2, 11, 48, 0, tzinfo=UTC)


def test_a_high_count_answered_just_after_the_minute_rolled_does_not_hold_a_minute():
    limiter = RateLimiter(RateLimits(), headroom=0.9)
    limiter.observe({"X-MBX-USED-WEIGHT-1M": "2180"}, WINDOW_END + timedelta(milliseconds=3))

    assert limiter.delay(WINDOW_END + timedelta(milliseconds=4), weight=1) == 0.0


def test_a_high_count_answered_well_inside_the_window_still_holds_to_its_end():
    limiter = RateLimiter(RateLimits(), headroom=0.9)
    seen = WINDOW_END + timedelta(seconds=20)
    limiter.observe({"X-MBX-USED-WEIGHT-1M": "2180"}, seen)

    assert limiter.delay(seen, weight=1) == pytest.approx(40.0)
    assert limiter.delay(WINDOW_END + timedelta(seconds=60), weight=1) == 0.0


def test_a_high_count_answered_just_before_the_minute_ends_holds_to_its_end():
    limiter = RateLimiter(RateLimits(), headroom=0.9)
    seen = WINDOW_END - timedelta(milliseconds=500)
    limiter.observe({"X-MBX-USED-WEIGHT-1M": "2180"}, seen)

    assert limiter.delay(seen, weight=1) == pytest.approx(0.5)
