"""`statistics.stdev` and `statistics.median` over values counted by value: the same answers,
with the work done once per distinct value instead of once per value. An equity curve's
returns and point spacings repeat (a flat account's return is 0.0 period after period, a
replay's points are one interval apart), and the report reads them for every point of the
curve (up to 20,000, trader/backtest_curve.py).

    sample_stdev([0.0, 0.0, 0.01, -0.02])   # == statistics.stdev(...), the same float
    median_of(Counter(gaps))                # == statistics.median(gaps)
"""

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

# statistics.stdev's working width for a float's square root: 2 x 53 + 3 bits
_SQRT_BITS = 2 * 53 + 3


def sample_stdev(values: Sequence[float]) -> float:
    """`statistics.stdev(values)` (at least two finite floats; otherwise it is asked
    itself): the exact sample variance as a fraction, as statistics works it out, from the
    distinct values and their counts, and its correctly rounded square root (the one float
    nearest the exact root, so the same float statistics gives)."""
    counts = Counter(values)
    if len(values) < 2 or not all(type(value) is float and math.isfinite(value)
                                  for value in counts):
        return statistics.stdev(values)
    ratios = [(value.as_integer_ratio(), count) for value, count in counts.items()]
    # Every float is an integer over a power of two: over the largest of those
    # denominators, the sums are exact integers (statistics sums Fractions: the same values).
    common = max(denominator for (_, denominator), _ in ratios)
    total = squares = 0
    for (numerator, denominator), count in ratios:
        scaled = numerator * (common // denominator)
        total += count * scaled
        squares += count * scaled * scaled
    n = len(values)
    # statistics' (n x sum(x^2) - sum(x)^2) / n / (n - 1), over common^2
    variance = Fraction(n * squares - total * total, n * (n - 1) * common * common)
    return _float_sqrt_of_fraction(variance.numerator, variance.denominator)


def _float_sqrt_of_fraction(numerator: int, denominator: int) -> float:
    """sqrt(numerator / denominator) as a float, correctly rounded: statistics'
    `_float_sqrt_of_frac` (an integer root rounded to odd, 109 bits wide, then one
    correctly rounded division)."""
    shift = (numerator.bit_length() - denominator.bit_length() - _SQRT_BITS) // 2
    if shift >= 0:
        return (_sqrt_round_to_odd(numerator, denominator << 2 * shift) << shift) / 1
    return _sqrt_round_to_odd(numerator << -2 * shift, denominator) / (1 << -shift)


def _sqrt_round_to_odd(numerator: int, denominator: int) -> int:
    root = math.isqrt(numerator // denominator)
    return root | (root * root * denominator != numerator)


def median_of(counts: Counter[Any]) -> Any:
    """`statistics.median` of the values `counts` counts (each as often as its count):
    the middle value in sorted order, or the two middle ones' `(a + b) / 2`. At least one
    value; the values are ordered and equal ones interchangeable (numbers, timedeltas)."""
    ordered = sorted(counts.items())
    size = sum(counts.values())
    if size == 0:
        raise statistics.StatisticsError("no median for empty data")
    middle = size // 2
    if size % 2:
        return _nth(ordered, middle)
    return (_nth(ordered, middle - 1) + _nth(ordered, middle)) / 2


def _nth(ordered: list[tuple[Any, int]], index: int) -> Any:
    """The value at `index` of the sorted values, each repeated its count."""
    for value, count in ordered:
        if index < count:
            return value
        index -= count
    raise IndexError(index)
