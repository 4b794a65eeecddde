"""The results of benchmarks/peers.py: one `Run` per child process, their medians per engine
and size, and the table of issue 13 (candles/s at each size with the ratio to tradebot, peak
RSS at each size). Pure: no processes, no files.

    runs = [Run("tradebot", 2000, seconds=1.9, peak_rss_mb=101.0, trades=63), ...]
    print(render_table(["tradebot", "jesse"], [2000, 100_000], runs, labels, unavailable={}))
"""

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from peer_candles import size_label

BASELINE = "tradebot"


@dataclass(frozen=True)
class Run:
    """One measured child: `seconds` None when it failed (`error`) or ran out of time
    (`timed_out_after` seconds)."""
    engine: str
    candles: int
    seconds: float | None = None
    peak_rss_mb: float | None = None
    trades: int | None = None
    rows: int | None = None
    version: str = ""
    error: str = ""
    timed_out_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.seconds is not None


@dataclass(frozen=True)
class Cell:
    """The median of one engine at one size, or why there is none."""
    candles_per_second: float | None = None
    peak_rss_mb: float | None = None
    runs: int = 0
    trades: int | None = None
    lower_bound: float | None = None       # candles/s below which a run that did not finish is
    problem: str = ""


def summarize(runs: Sequence[Run], engine: str, candles: int) -> Cell:
    """Median seconds and median peak RSS of the engine's successful runs at `candles`."""
    mine = [run for run in runs if run.engine == engine and run.candles == candles]
    done = [run for run in mine if run.ok]
    if done:
        seconds = statistics.median(run.seconds for run in done)   # type: ignore[misc]
        rss = [run.peak_rss_mb for run in done if run.peak_rss_mb is not None]
        return Cell(candles / seconds if seconds > 0 else None,
                    statistics.median(rss) if rss else None, len(done), done[0].trades)
    timed_out = [run for run in mine if run.timed_out_after is not None]
    if timed_out:
        limit = max(run.timed_out_after for run in timed_out)      # type: ignore[type-var]
        return Cell(lower_bound=candles / limit, problem=f"did not finish in {limit:,.0f} s")
    failed = [run for run in mine if run.error]
    if failed:
        return Cell(problem=f"failed: {failed[-1].error}")
    return Cell(problem="not run")


def rate_text(cell: Cell, baseline: Cell | None) -> str:
    """"3,625 (3.5x)" with the ratio to tradebot's rate at the same size; "< 555 (did not
    finish in 900 s)"; "failed: ..."."""
    if cell.candles_per_second is None:
        if cell.lower_bound is not None:
            return f"< {cell.lower_bound:,.0f} ({cell.problem})"
        return cell.problem
    text = f"{cell.candles_per_second:,.0f}"
    if baseline is not None and baseline.candles_per_second:
        ratio = cell.candles_per_second / baseline.candles_per_second
        text += f" ({ratio:.2f}x)" if ratio < 0.995 else f" ({ratio:.1f}x)"
    return text


def rss_text(cells: Sequence[Cell]) -> str:
    """"216 / 646 MB", a "-" for a size without a measurement."""
    values = [f"{cell.peak_rss_mb:,.0f}" if cell.peak_rss_mb is not None else "-"
              for cell in cells]
    return " / ".join(values) + " MB"


def render_table(engines: Sequence[str], sizes: Sequence[int], runs: Sequence[Run],
                 labels: Mapping[str, str], unavailable: Mapping[str, str]) -> str:
    """A Markdown table, one row per engine (tradebot first, the baseline of the ratios): its
    label, candles/s at each size, peak RSS at each size. An engine in `unavailable` gets
    "not available: <reason>" in its row."""
    names = [size_label(size) for size in sizes]
    header = (["engine (kind)"] + [f"{name} candles c/s" if i == 0 else f"{name} c/s"
                                   for i, name in enumerate(names)]
              + [f"peak RSS {' / '.join(names)}"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    baseline = {size: summarize(runs, BASELINE, size) for size in sizes}
    for engine in engines:
        label = labels.get(engine, engine)
        if engine in unavailable:
            cells = [f"not available: {unavailable[engine]}"] + ["-"] * len(sizes)
        else:
            summary = [summarize(runs, engine, size) for size in sizes]
            cells = [rate_text(cell, None if engine == BASELINE else baseline[size])
                     for cell, size in zip(summary, sizes, strict=True)]
            cells.append(rss_text(summary))
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


def trades_line(engines: Sequence[str], sizes: Sequence[int], runs: Sequence[Run]) -> str:
    """"trades per size: tradebot 63 / 3,120; jesse 58 / 2,950" (a check that every engine
    traded the rule, not a figure to compare: tradebot adds its regime and risk rules)."""
    parts = []
    for engine in engines:
        counts = [summarize(runs, engine, size).trades for size in sizes]
        if any(count is not None for count in counts):
            parts.append(engine + " " + " / ".join(
                "-" if count is None else f"{count:,}" for count in counts))
    return "trades per size (" + " / ".join(size_label(s) for s in sizes) + "): " + "; ".join(parts)
