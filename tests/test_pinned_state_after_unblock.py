"""The pinned state in a chat that refused the bot for a while (review8). After one 403
"Forbidden: bot was blocked by the user" on getChat or on the pin's update, the chat was set
aside "until the next start": the owner unblocked the bot and sent /shutdown, the pin was
never updated (while the log said "pinned state shown"), and the next restart on a wiped
disk read the old pin, RUNNING, and traded. A chat that refuses the bot is behind: tried
again at the next change, and at once when it answers again. A group where the bot may not
pin stays left alone (each try would leave one more unpinned status message there).

Telegram: 403 for a user who blocked the bot (https://core.telegram.org/bots/api#making-requests);
getChat and pinChatMessage (https://core.telegram.org/bots/api#getchat, #pinchatmessage).
"""

import asyncio

from tests.log_capture import logged
from tests.test_bot_support import GROUP, OWNER
from tests.test_operator_intent import (
    BOUND,
    eventually,
    pinned_text,
    start_agent,
    wiped_restart,
)
from trader.commands import CommandKind

pytest_plugins = ["tests.test_operator_intent"]     # its world and telegram fixtures


async def test_a_shutdown_after_the_owner_unblocked_the_bot_is_pinned(world, telegram):
    telegram.block(OWNER)                        # blocked when the agent starts
    agent = await start_agent(world, telegram)
    try:
        await agent.keeper.recover(wait=2)
        telegram.unblock(OWNER)                  # the operator unblocks the bot ...
        await world.command(CommandKind.SHUTDOWN)   # ... and sends /shutdown (keep)
        assert world.engine.guard_state.asleep
        await eventually(lambda: "asleep=yes" in pinned_text(telegram), bound=8)
    finally:
        await agent.stop()


async def test_the_wiped_restart_after_it_stays_asleep(world, telegram, tmp_path):
    telegram.block(OWNER)
    first = await start_agent(world, telegram)
    await first.keeper.recover(wait=2)
    telegram.unblock(OWNER)
    await world.command(CommandKind.SHUTDOWN)
    await eventually(lambda: "asleep=yes" in pinned_text(telegram), bound=8)
    await first.stop()

    second_world = await wiped_restart(world, tmp_path, "after-restart")
    second = await start_agent(second_world, telegram)
    try:
        state = await second.keeper.recover(wait=BOUND)
        assert "ASLEEP" in state, f"after /shutdown, the wiped restart says: {state}"
    finally:
        await second.stop()


async def test_a_change_refused_while_blocked_is_pinned_at_the_next_change(world, telegram):
    """The owner blocks the private chat for a while; a /pause from the group meets 403 there
    (and the log does not claim it was shown there); unblocked, /shutdown is pinned."""
    agent = await start_agent(world, telegram, chats=f"{OWNER},{GROUP}")
    try:
        await agent.keeper.recover(wait=BOUND)
        await eventually(lambda: "asleep=no" in pinned_text(telegram))
        telegram.block(OWNER)
        with logged("INFO", "pinned state") as lines:
            await world.command(CommandKind.PAUSE)
            await eventually(lambda: "paused=yes" in pinned_text(telegram, GROUP))
            await eventually(lambda: any("not shown" in line for line in lines))
        assert any("not shown" in line and str(OWNER) in line for line in lines), lines
        assert not any("state shown state=paused" in line and str(OWNER) in line
                       for line in lines), lines
        telegram.unblock(OWNER)
        await world.command(CommandKind.SHUTDOWN)
        await eventually(lambda: "asleep=yes" in pinned_text(telegram), bound=8)
    finally:
        await agent.stop()


async def test_a_chat_that_writes_again_gets_its_pin_at_once(world, telegram):
    """No later change needed: the first command from the unblocked chat brings it up to
    date, before any restart could read the old pin."""
    agent = await start_agent(world, telegram, chats=f"{OWNER},{GROUP}")
    try:
        await agent.keeper.recover(wait=BOUND)
        await eventually(lambda: "asleep=no" in pinned_text(telegram))
        telegram.block(OWNER)
        await world.command(CommandKind.PAUSE)
        await eventually(lambda: "paused=yes" in pinned_text(telegram, GROUP))
        await asyncio.sleep(0.3)
        assert "paused=no" in pinned_text(telegram)         # refused while blocked
        telegram.unblock(OWNER)
        telegram.inject_message(OWNER, OWNER, "/help")      # the owner writes again
        await eventually(lambda: "paused=yes" in pinned_text(telegram), bound=5)
    finally:
        await agent.stop()


async def test_a_group_where_the_bot_may_not_pin_is_not_tried_at_every_change(world, telegram):
    """Negative: the pin right is not the chat refusing the bot; it stays left alone until
    the next start, with one status message there, not one more per change."""
    telegram.pins.deny(GROUP)
    agent = await start_agent(world, telegram, chats=f"{OWNER},{GROUP}")
    try:
        await agent.keeper.recover(wait=BOUND)
        await eventually(lambda: "asleep=no" in pinned_text(telegram))
        for kind, shown in ((CommandKind.PAUSE, "paused=yes"), (CommandKind.RESUME, "paused=no"),
                            (CommandKind.SHUTDOWN, "asleep=yes")):
            await world.command(kind)
            await eventually(lambda shown=shown: shown in pinned_text(telegram))
        telegram.inject_message(GROUP, OWNER, "/help")
        await asyncio.sleep(0.5)
    finally:
        await agent.stop()
    state_messages = [item for item in telegram.sent_to(GROUP, "sendMessage")
                      if "tradebot-state" in (item.text or "")]
    assert len(state_messages) == 1
    assert len([t for t in world.alerts("ERROR") if "Pin messages" in t]) == 1


async def test_a_chat_that_takes_an_alert_again_gets_its_pin_at_once(world, telegram):
    """The other sign a chat answers again: an alert it was owed goes through (its slow
    retry came due: bot/blocked_chats.py)."""
    agent = await start_agent(world, telegram, chats=f"{OWNER},{GROUP}")
    try:
        await agent.keeper.recover(wait=BOUND)
        await eventually(lambda: "asleep=no" in pinned_text(telegram))
        telegram.block(OWNER)
        await world.command(CommandKind.PAUSE)           # PAUSED: owed to the owner
        await eventually(lambda: "paused=yes" in pinned_text(telegram, GROUP))
        await eventually(lambda: agent.bot.delivery.blocked.waiting(OWNER))
        assert "paused=no" in pinned_text(telegram)
        telegram.unblock(OWNER)
        agent.bot.delivery.blocked.try_soon(OWNER)       # its retry is due (5 min in production)
        agent.bot.delivery.wake()
        await eventually(lambda: "paused=yes" in pinned_text(telegram), bound=5)
    finally:
        await agent.stop()
