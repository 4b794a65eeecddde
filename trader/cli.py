"""`tradebot` command line: run, backtest, config, shutdown, wake (and --version).

Configuration problems end the program with exit code 2 and one line per bad variable; an
environment variable that looks like ours but is not a setting (a typo) is warned about.
"""

import argparse
import asyncio
import math
import os
import sys
import tempfile
from collections.abc import Coroutine
from datetime import UTC, date, datetime, time, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeGuard

from loguru import logger

from storage import StorageError
from trader.config import ConfigError, Settings, load_settings
from trader.config_hosts import host_warnings
from trader.config_names import unknown_variable_warnings
from trader.logs import register_secret, setup_logging
from trader.strategy.base import StrategyLoadError
from trader.sweep_cli import add_candle_arguments, add_sweep_arguments
from trader.url_mask import url_secrets

EXIT_CONFIG = 2


def _date(text: str) -> date | datetime:
    """A day (2021-11-16: a `date`) or a moment (2021-11-16T12:00, UTC unless it says);
    `_period` turns a day into the moments --from and --to mean by it."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass   # not a day alone: a moment, or neither
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2021-11-16 or "
                                         "2021-11-16T12:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _period(args: argparse.Namespace) -> None:
    """--from DAY starts at that day's midnight; --to DAY includes the whole day: candles
    opening before the next midnight (a --to with a time is the last candle's open time)."""
    start, end = getattr(args, "start", None), getattr(args, "end", None)
    if _is_day(start):
        args.start = datetime.combine(start, time(), tzinfo=UTC)
    if _is_day(end):
        args.end = (datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC)
                    - timedelta(microseconds=1))


def _is_day(value: object) -> TypeGuard[date]:
    return isinstance(value, date) and not isinstance(value, datetime)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number greater than 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradebot",
        description="Telegram-controlled Binance USD-M futures agent. Every position keeps "
                    "a stop-loss and a take-profit on the exchange.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the agent (engine + Telegram if configured)")
    run.add_argument("--replay", action="store_true",
                     help="drive the agent from replayed candles on the paper exchange")
    run.add_argument("--speed", type=_positive, default=None,
                     help="replay speed: feed seconds per wall-clock second (default 60)")
    run.add_argument("--data", type=Path, nargs="+", default=None,
                     help="candle CSV file(s) for --replay, the symbol each one's name says "
                          "(one symbol's files joined in time order)")
    run.add_argument("--symbol", default=None, type=str.upper,
                     help="the symbol of the --data file(s) when their names do not say it")
    run.add_argument("--no-progress", action="store_true",
                     help="no replay status lines (they are logged only on a terminal)")

    backtest = sub.add_parser("backtest", help="run the full engine over candles on the paper exchange")
    backtest.add_argument("--symbols", default=None,
                          help="comma-separated symbols (default: TRADEBOT_SYMBOLS if set, else "
                               "every symbol in the data)")
    add_candle_arguments(backtest, _date)
    backtest.add_argument("--out", type=Path, default=Path("out"),
                          help="each run writes its report into OUT/<run-id>/ (default: out)")
    backtest.add_argument("--run-id", default=None,
                          help="name of the run's folder (default: the start time, UTC)")
    backtest.add_argument("--no-progress", action="store_true", help="no progress bar")
    backtest.add_argument("--separate-accounts", action="store_true",
                          help="each symbol on a paper account of its own (TRADEBOT_PAPER_BALANCE "
                               "each: N symbols start with N times it), run in parallel, one "
                               "process per core; the report sums the accounts (default: one "
                               "account, the portfolio heat cap couples the symbols)")

    add_sweep_arguments(sub.add_parser(
        "sweep", help="many backtests over a grid or an optuna study of settings, ranked"), date=_date)

    sub.add_parser("config", help="print the effective configuration (secrets masked)")

    shutdown = sub.add_parser("shutdown", help="put the agent to sleep (positions stay protected)")
    shutdown.add_argument("--flatten", action="store_true", help="close every position first")
    sub.add_parser("wake", help="reconcile, then resume trading")
    return parser


def _settings_or_exit() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        for line in exc.problems:     # one line each, the hint in it (the contract)
            print(f"config error: {line} (see .env.example)", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    for secret in (settings.binance_api_key, settings.binance_api_secret, settings.telegram_bot_token):
        if secret is not None:
            register_secret(secret.get_secret_value())
    for url in (settings.heartbeat_url, settings.telegram_webhook_url):
        for part in url_secrets(url):
            register_secret(part)
    setup_logging(json_lines=settings.log_json, level=settings.log_level)
    paper = [settings.paper_by_default] if settings.paper_by_default else []
    for warning in paper + unknown_variable_warnings(os.environ, Path(".env")) \
            + host_warnings(settings):
        logger.warning("config warning: {}", warning)
    return settings


def _print_config(settings: Settings) -> int:
    """Every setting (secrets masked), then the strategy loaded as `run` and `backtest`
    load it: one `config error` line and EXIT_CONFIG when it does not."""
    shown = settings.masked()
    width = max(len(name) for name in shown)
    for name, value in shown.items():
        print(f"{name:<{width}}  {value}")
    from trader.strategy.base import load_strategy
    try:
        load_strategy(settings.strategy)
    except StrategyLoadError as exc:
        return _refused(exc)
    return 0


def _strategies_from_working_directory() -> None:
    """TRADEBOT_STRATEGY=mystrategies.cross:Cross finds ./mystrategies as `python -m` would
    (the console script's sys.path starts in the virtualenv's bin/). Appended, so a file in
    the working directory never shadows an installed package."""
    here = str(Path.cwd())
    if here not in sys.path and "" not in sys.path:
        sys.path.append(here)


def package_version() -> str:
    """The installed distribution's version (pyproject.toml), e.g. '0.1.0'."""
    try:
        return version("tradebot")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def main(argv: list[str] | None = None) -> int:
    """The `tradebot` console script. A reader that closes stdout early (`| head -1`) ends
    the command quietly: the recipe of https://docs.python.org/3/library/signal.html#note-on-sigpipe
    (stdout pointed at devnull so the exit's flush cannot raise again; exit code 1)."""
    try:
        code = _run_command(argv)
        sys.stdout.flush()   # a closed pipe shows here, inside the try, not at exit
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


START_UP_REFUSALS = (ConfigError, StorageError, StrategyLoadError)


def _refused(exc: Exception) -> int:
    """Say a start-up refusal (START_UP_REFUSALS) in one line per problem: EXIT_CONFIG."""
    if isinstance(exc, ConfigError):
        for line in exc.problems:
            print(f"config error: {line}", file=sys.stderr)
    elif isinstance(exc, StorageError):
        print(f"storage error: {exc}", file=sys.stderr)
    else:
        print(f"config error: {exc}", file=sys.stderr)
    return EXIT_CONFIG


async def _agent_code(agent: Coroutine[Any, Any, int]) -> int:
    """The agent's exit code, a start-up refusal's included: said inside the run, so the
    runner bounds the exit after it too (an exception going up past it is not bounded)."""
    try:
        return await agent
    except START_UP_REFUSALS as exc:
        return _refused(exc)


def _run_command(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    _period(args)
    settings = _settings_or_exit()
    if settings.strategy != "default":
        _strategies_from_working_directory()
    if args.command == "config":
        return _print_config(settings)
    try:
        return _dispatch(args, settings)
    except START_UP_REFUSALS as exc:   # found at start-up, e.g. a bot token Telegram rejects
        return _refused(exc)
    except KeyboardInterrupt:   # Ctrl-C in a backtest: commands log quietly, so print it
        print("interrupted", file=sys.stderr)
        return 130


def database_path_problem(path: Path) -> str | None:
    """Why the agent could not keep its database at `path` (TRADEBOT_DB), in words, or None.
    The database, its journal and its lock file (`<path>.lock`) live in `path`'s folder: the
    missing folders are created here (with their parents, as the agent would a moment
    later), and a file is created in it and removed, because permission bits do not tell
    (root "may write" /proc, where nothing can be created)."""
    try:
        if path.is_dir():
            return f"{path} is a directory; name a file in it, e.g. {path / 'tradebot.db'}"
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            return f"{path} is not readable and writable by this user"
        folder = path.absolute().parent
        existing = folder
        while not existing.exists():    # what mkdir(parents=True) creates from
            existing = existing.parent
    except OSError as exc:              # e.g. a folder on the way this user may not enter
        return f"{path} cannot be checked ({exc.strerror or exc})"
    if not existing.is_dir():
        return f"{existing} is a file, not a folder, so {path} cannot be created"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"the folder {existing} is not writable by this user, so {path} cannot be created"
    return _folder_problem(folder, path)


def _folder_problem(folder: Path, path: Path) -> str | None:
    """Create `folder` (and its parents) and a file in it; what failed, or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"the folder {folder} cannot be created ({exc.strerror or exc}), so {path} " \
               "cannot be kept there"
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".tradebot-probe-"):
            pass
    except OSError as exc:
        return f"no file can be created in the folder {folder} ({exc.strerror or exc}), so " \
               f"{path} cannot be kept there"
    return None


def _check_database_path(settings: Settings) -> None:
    """ConfigError naming TRADEBOT_DB when the agent could not keep its database there."""
    problem = database_path_problem(settings.db_path)
    if problem is not None:
        raise ConfigError([f"TRADEBOT_DB: {problem}"])


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command in ("run", "shutdown", "wake"):   # the commands that open TRADEBOT_DB
        _check_database_path(settings)
    if args.command == "sweep":
        from trader.sweep_cli import run_sweep_cli
        return run_sweep_cli(settings, args)
    if args.command == "backtest":
        from trader.backtest_cli import run_backtest_cli
        return run_backtest_cli(settings, args)
    if args.command == "run":
        from trader.app import run_agent
        from trader.exit_runner import run_to_exit
        return run_to_exit(_agent_code(run_agent(
            settings, replay=args.replay, speed=args.speed, data=args.data, symbol=args.symbol,
            progress=not args.no_progress and sys.stderr.isatty())))
    if args.command in ("shutdown", "wake"):
        from trader.control_cli import run_control_cli
        return asyncio.run(run_control_cli(settings, args.command, flatten=getattr(args, "flatten", False)))
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
