"""The code's shape, checked: dependencies flow bot -> trader -> storage, there is no import
cycle inside trader/ (imports inside functions and TYPE_CHECKING blocks included), and the
pure modules import nothing that does I/O."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PURE = ("trader.lifecycle", "trader.lifecycle_tick", "trader.lifecycle_legs",
        "trader.protection",
        "trader.placement_refusals", "trader.stop_backup", "trader.stuck_trigger",
        "trader.management",
        "trader.observe", "trader.order_tracker", "trader.risk", "trader.guards",
        "trader.guard_state", "trader.breaker_rules", "trader.cooldowns", "trader.operator_holds",
        "trader.entry",
        "trader.close_record", "trader.fee_value", "trader.position_fills", "trader.reconcile",
        "trader.events",
        "trader.position",
        "trader.domain", "trader.symbol_rules", "trader.alerts", "trader.strategy.base",
        "trader.strategy.default", "trader.strategy.regime", "trader.market.indicators",
        "trader.invariant_checks")
IO_PACKAGES = ("storage", "sqlite3", "sqlite_utils", "aiohttp", "binance", "telegram",
               "trader.exchange.binance", "trader.exchange.paper", "trader.executor",
               "trader.engine", "trader.app", "trader.engine_setup", "trader.agent_loops",
               "asyncio", "socket", "requests")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, wherever the import statement is."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" \
        else module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def modules(package: str) -> dict[str, set[str]]:
    return {module_name(path): imports_of(path)
            for path in (ROOT / package).rglob("*.py")}


ALL = {**modules("trader"), **modules("storage"), **modules("bot")}


def internal(name: str) -> str | None:
    """The project module an imported name refers to (a module, or a name in one)."""
    while name:
        if name in ALL:
            return name
        name = name.rpartition(".")[0]
    return None


def graph(prefix: str) -> dict[str, set[str]]:
    return {module: {dep for name in imported if (dep := internal(name)) is not None
                     and dep.startswith(prefix) and dep != module}
            for module, imported in ALL.items() if module.startswith(prefix)}


def test_storage_imports_nothing_from_trader_or_bot():
    offenders = {m: sorted(n for n in imported if n.split(".")[0] in ("trader", "bot"))
                 for m, imported in ALL.items() if m.startswith("storage")}
    assert {m: n for m, n in offenders.items() if n} == {}


def test_trader_imports_nothing_from_bot():
    offenders = {m: sorted(n for n in imported if n.split(".")[0] == "bot")
                 for m, imported in ALL.items() if m.startswith("trader")}
    assert {m: n for m, n in offenders.items() if n} == {}


def test_there_is_no_import_cycle_inside_trader():
    edges = graph("trader")
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_imports_nothing_that_does_io(module):
    imported = ALL[module]
    bad = sorted(name for name in imported
                 if any(name == io or name.startswith(io + ".") for io in IO_PACKAGES))
    assert bad == []


# The Exchange protocol's calls that answer about one of our orders (trader/exchange/base.py)
ORDER_ANSWERS = ("place", "cancel", "order_by_client_id")


def exchange_order_calls(path: Path) -> list[str]:
    """`<...>exchange.place / .cancel / .order_by_client_id` named in `path`, called or
    passed on (executor.read(self.exchange.order_by_client_id, ...) counts)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ORDER_ANSWERS:
            owner = node.value
            named = owner.attr if isinstance(owner, ast.Attribute) else \
                owner.id if isinstance(owner, ast.Name) else ""
            if named == "exchange" or node.attr == "order_by_client_id":
                found.append(f"{module_name(path)}:{node.lineno} {node.attr}")
    return found


def test_only_the_executor_asks_the_exchange_about_our_orders():
    """Every answer about one of our orders goes into the order tracker and comes back
    merged (trader/executor.py `_learned`): a module that asked the exchange itself could
    decide from an answer alone (a cancel read back CANCELED that the stream said FILLED)."""
    allowed = {"trader.executor"}
    calls = [call for path in (ROOT / "trader").rglob("*.py")
             if not module_name(path).startswith("trader.exchange.")
             and module_name(path) not in allowed
             for call in exchange_order_calls(path)]
    assert calls == []
