"""The periodic reconciliation asks the exchange about every order whose intent is still
open (a live stop-loss, a take-profit) and logged each answer as "order placed client_id=
... status=NEW" at INFO, once a minute per leg, for orders placed long before: read from
outside (the host's log), the agent seemed to place its stop and target again every
minute (the outside judge thought so until the fake's request log showed no POST). A
re-read that changes nothing is logged at DEBUG; the placement itself stays INFO."""

from tests.engine_world import make_world
from tests.log_capture import logged
from tests.test_alert_flows import open_long
from trader.startup import reconcile


async def test_a_reconciliation_does_not_log_the_live_legs_as_placed_again(tmp_path):
    world = await make_world(tmp_path)
    with logged("INFO", "order placed") as placed:
        await open_long(world)
    assert len(placed) >= 3, placed                    # entry, stop-loss, take-profit
    with logged("INFO", "order placed") as again:
        await reconcile(world.engine)
        await reconcile(world.engine)
    assert again == [], again
