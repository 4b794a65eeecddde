"""Confirmation prompts for commands that act on money (/close, /shutdown, /long, /short,
/unlock, /sl): buttons, expiry, single use.

A prompt is identified by a random nonce carried in the buttons' callback data. It can be
used once (a repeated press of the same button does nothing), and it expires after its ttl
(60 s): the message then says so and asks to send the command again.
"""

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.format import escape
from trader.commands import ALL_SYMBOLS, CommandKind, StopCheck
from trader.display import number


class Choice(StrEnum):
    CLOSE = "close"
    FLATTEN = "flatten"
    KEEP = "keep"
    CONFIRM = "confirm"
    CANCEL = "cancel"


CHOICES = {CommandKind.CLOSE: {Choice.CLOSE, Choice.CANCEL},
           CommandKind.SHUTDOWN: {Choice.FLATTEN, Choice.KEEP, Choice.CANCEL},
           CommandKind.LONG: {Choice.CONFIRM, Choice.CANCEL},
           CommandKind.SHORT: {Choice.CONFIRM, Choice.CANCEL},
           CommandKind.UNLOCK: {Choice.CONFIRM, Choice.CANCEL},
           CommandKind.SL: {Choice.CONFIRM, Choice.CANCEL}}


class PromptState(StrEnum):
    OPEN = "open"
    USED = "used"
    EXPIRED = "expired"


NOTHING_CHECKED = StopCheck()


@dataclass(slots=True)
class Confirmation:
    nonce: str
    kind: CommandKind
    chat_id: int
    created_at: datetime
    symbol: str | None = None
    message_id: int | None = None
    state: PromptState = PromptState.OPEN
    price: Decimal | None = None           # /sl: the new stop price asked for
    check: StopCheck = NOTHING_CHECKED     # /sl: its distance from the mark, what then moves it
    auto: bool = False                     # /sl SYMBOL auto: back to the agent's own level

    @property
    def expired_text(self) -> str:
        return f"Expired, send /{self.kind.value} again."


@dataclass
class ConfirmationBook:
    """Open prompts by nonce. A prompt is used at most once; it expires after `ttl`."""
    ttl: timedelta = timedelta(seconds=60)
    keep_used: timedelta = timedelta(hours=6)
    prompts: dict[str, Confirmation] = field(default_factory=dict)

    def open(self, kind: CommandKind, chat_id: int, now: datetime,
             symbol: str | None = None, price: Decimal | None = None,
             check: StopCheck | None = None, auto: bool = False) -> Confirmation:
        prompt = Confirmation(secrets.token_urlsafe(9), kind, chat_id, now, symbol,
                              price=price, check=check or NOTHING_CHECKED, auto=auto)
        self.prompts[prompt.nonce] = prompt
        return prompt

    def get(self, nonce: str) -> Confirmation | None:
        return self.prompts.get(nonce)

    def is_due(self, prompt: Confirmation, now: datetime) -> bool:
        return prompt.state is PromptState.OPEN and now - prompt.created_at > self.ttl

    def expire_due(self, now: datetime) -> list[Confirmation]:
        """Mark open prompts past their ttl expired and return them; forget very old ones."""
        due = [p for p in self.prompts.values() if self.is_due(p, now)]
        for prompt in due:
            prompt.state = PromptState.EXPIRED
        for nonce in [n for n, p in self.prompts.items() if now - p.created_at > self.keep_used]:
            del self.prompts[nonce]
        return due


def _button(prompt: Confirmation, label: str, choice: Choice) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=f"{prompt.nonce}:{choice.value}")


def _ask_or_cancel(prompt: Confirmation, label: str,
                   choice: Choice = Choice.CONFIRM) -> InlineKeyboardMarkup:
    """One row: the action's button, then Cancel."""
    return InlineKeyboardMarkup([[_button(prompt, label, choice),
                                  _button(prompt, "Cancel", Choice.CANCEL)]])


def confirmation_prompt(prompt: Confirmation, ttl: timedelta) -> tuple[str, InlineKeyboardMarkup]:
    """The question and its buttons for one prompt."""
    seconds = int(ttl.total_seconds())
    if prompt.kind is CommandKind.CLOSE:
        what = "all positions" if prompt.symbol == ALL_SYMBOLS else escape(prompt.symbol)
        whose = "Their" if prompt.symbol == ALL_SYMBOLS else "Its"
        text = (f"Close <b>{what}</b> at market? {whose} TP/SL orders are cancelled afterwards. "
                f"Expires in {seconds} s.")
        label = "Close all" if prompt.symbol == ALL_SYMBOLS else f"Close {prompt.symbol}"
        return text, _ask_or_cancel(prompt, label, Choice.CLOSE)
    if prompt.kind in (CommandKind.LONG, CommandKind.SHORT):
        side = "LONG" if prompt.kind is CommandKind.LONG else "SHORT"
        text = (f"Open a <b>{side}</b> on <b>{escape(prompt.symbol)}</b> at market now? Sized "
                "by the risk rules, with its stop-loss and take-profit, like a signal entry; "
                f"the guards still apply. Expires in {seconds} s.")
        label = f"{'Buy' if side == 'LONG' else 'Sell'} {prompt.symbol} ({side.lower()})"
        return text, _ask_or_cancel(prompt, label)
    if prompt.kind is CommandKind.UNLOCK:
        text = (f"Unlock <b>{escape(prompt.symbol)}</b>: end its cooldown and clear its "
                "breakers? Its next signal may then enter; the other guards still apply. "
                f"Expires in {seconds} s.")
        return text, _ask_or_cancel(prompt, f"Unlock {prompt.symbol}")
    if prompt.kind is CommandKind.SL:
        # How far from the mark, so an absurd level reads as one before the tap; and what
        # the agent's own rules then do to it, so the tap confirms what happens
        check = prompt.check
        away = f" ({escape(check.distance)})" if check.distance else ""
        then = f" {escape(check.warning[:1].upper() + check.warning[1:])}." \
            if check.warning else ""
        if prompt.auto:
            level = f" at <b>{number(check.level)}</b>" if check.level is not None else ""
            text = (f"Hand the <b>{escape(prompt.symbol)}</b> stop-loss back to the agent's "
                    f"rules: its own level{level}{away}?{then} The regime rule moves it from "
                    "then on; the new stop is placed first, then the old one is cancelled. "
                    f"Expires in {seconds} s.")
            shown = f" ({number(check.level)})" if check.level is not None else ""
            return text, _ask_or_cancel(prompt, f"Back to the agent's stop{shown}")
        assert prompt.price is not None     # parse_command: /sl SYMBOL PRICE, or auto
        text = (f"Move the <b>{escape(prompt.symbol)}</b> stop-loss to <b>{number(prompt.price)}"
                f"</b>{away}?{then} The level is put on the symbol's tick (away from the mark); "
                "the new stop is placed first, then the old one is cancelled. Expires in "
                f"{seconds} s.")
        return text, _ask_or_cancel(prompt, f"Move the stop to {number(prompt.price)}")
    text = ("<b>Shutdown</b>: entries stop, entry orders are cancelled and the agent sleeps "
            f"until /wake. What about open positions? Expires in {seconds} s.")
    return text, InlineKeyboardMarkup([
        [_button(prompt, "Flatten everything and sleep", Choice.FLATTEN)],
        [_button(prompt, "Keep positions protected and sleep", Choice.KEEP)],
        [_button(prompt, "Cancel", Choice.CANCEL)]])


def parse_callback(data: str | None) -> tuple[str, Choice | None]:
    """'nonce:choice' -> (nonce, Choice), or (nonce, None) for anything unexpected."""
    nonce, _, choice = (data or "").partition(":")
    try:
        return nonce, Choice(choice)
    except ValueError:
        return nonce, None
