"""A `tradebot shutdown|wake` request read while another process holds the database file (a
`sqlite3` shell in a transaction): the read fails, the request waits for the next pass, and
the operator is not told of an "unexpected error" (found by a reviewer: an ERROR alert
"cli request: unexpected error OperationalError: database is locked" during a lock)."""

import sqlite3

from tests.engine_world import make_world
from trader.cli_mailbox import CLI_REQUEST_KEY


async def test_a_locked_file_defers_the_cli_request_without_an_error_alert(tmp_path):
    world = await make_world(tmp_path)
    store, real_get = world.store, world.store.get

    def locked_get(key, *args, **kwargs):
        if key == CLI_REQUEST_KEY:
            raise sqlite3.OperationalError("database is locked")
        return real_get(key, *args, **kwargs)
    store.get = locked_get
    await world.controller.process()
    assert world.engine.last_error in (None, "")
    assert not [a for a in store.recent_alerts(50) if a.name == "ERROR"]
