"""`tradebot shutdown|wake` from a shell: relayed to the running agent through its database
(the engine stays the single writer); when no agent answers, done here, on the exchange."""

import asyncio
import uuid

from storage import Store
from trader.app import build_engine
from trader.clock import SystemClock
from trader.commands import Command, CommandKind
from trader.config import Settings
from trader.control import CLI_REQUEST_KEY, run_command
from trader.startup import boot

CLI_ANSWER_TIMEOUT = 30.0


async def run_control_cli(settings: Settings, action: str, *, flatten: bool = False) -> int:
    """A running agent on this database executes the command; when none answers within
    30 s, it runs here, against the exchange."""
    request_id = str(uuid.uuid4())
    clock = SystemClock()
    store = Store.open(settings.db_path)
    try:
        store.put(CLI_REQUEST_KEY, {"id": request_id, "kind": action, "flatten": flatten}, clock.now())
        print(f"{action}: asking the running agent (up to {CLI_ANSWER_TIMEOUT:.0f} s)...")
        for _ in range(int(CLI_ANSWER_TIMEOUT / 0.5)):
            answer = store.get(f"cli:answer:{request_id}")
            if answer is not None:
                print("\n".join(answer["lines"]))
                return 0 if answer["ok"] else 1
            await asyncio.sleep(0.5)
        store.delete(CLI_REQUEST_KEY)
    finally:
        store.close()
    print("no running agent answered; acting directly on the exchange")
    return await _run_here(settings, action, flatten)


async def _run_here(settings: Settings, action: str, flatten: bool) -> int:
    engine, close = await build_engine(settings)
    try:
        await boot(engine)
        kind = CommandKind.SHUTDOWN if action == "shutdown" else CommandKind.WAKE
        result = await run_command(engine, Command(kind, f"cli:{uuid.uuid4()}", engine.clock.now(),
                                                   flatten=flatten, source="cli"))
        print("\n".join(result.lines))
        return 0 if result.ok else 1
    finally:
        await close()
