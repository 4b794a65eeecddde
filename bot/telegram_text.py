"""Telegram HTML text: escaping, the plain text it shows, its length as Telegram counts it,
and cutting a long answer into parts under the 4096-character limit.

Every value that did not come from our own templates (symbols, error texts, log lines) goes
through `escape`, so a symbol like `A<B&C` can never break the markup. `split_message` cuts
at line boundaries when possible; tags open at a cut are closed at the end of the part and
reopened in the next, so every part is valid HTML on its own.
"""

import html
import re

TELEGRAM_LIMIT = 4096
_TOKEN = re.compile(r"<[^<>]*>|&#?\w+;|[^<&]+|[<&]", re.DOTALL)
_TAG_NAME = re.compile(r"</?([a-zA-Z][a-zA-Z0-9-]*)")


def escape(text: object) -> str:
    """Text safe inside Telegram HTML (<, > and & escaped)."""
    return html.escape(str(text), quote=False)


def plain_text(text: str) -> str:
    """Telegram HTML as the plain text it shows (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^<>]*>", "", text))


def utf16_length(text: str) -> int:
    """Telegram measures messages in UTF-16 code units (an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


# --- splitting ------------------------------------------------------------------------
def split_message(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Parts of `text`, each at most `limit` UTF-16 units, cut at line boundaries when possible.

    Tags open at a cut are closed at the end of the part and reopened in the next, so every
    part is valid HTML on its own. A line longer than a whole part is cut between words
    (between characters inside a very long word), never inside a tag or an entity.
    """
    if utf16_length(text) <= limit:
        return [text]
    splitter = _Splitter(limit)
    for line in text.split("\n"):
        splitter.add_line(_tokens(line))
    return splitter.finish()


class _Splitter:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.tokens: list[str] = []
        self.size = 0
        self.open_tags: list[str] = []
        self.at_start = True          # the part holds nothing but reopened tags

    def add_line(self, tokens: list[str]) -> None:
        separator = [] if self.at_start else ["\n"]
        if self._fits(separator + tokens):
            self._push_all(separator + tokens)
            return
        if not self.at_start:
            self._cut()
            if self._fits(tokens):
                self._push_all(tokens)
                return
        for token in tokens:
            if not self._fits([token]) and not self.at_start:
                self._cut()
            self._push_all([token])

    def finish(self) -> list[str]:
        if not self.at_start:
            self._cut()
        return [part for part in self.parts if part.strip()]

    def _fits(self, tokens: list[str]) -> bool:
        tags = self.open_tags
        for token in tokens:
            tags = _after(tags, token)
        added = sum(utf16_length(token) for token in tokens)
        return self.size + added + utf16_length(_closers(tags)) <= self.limit

    def _push_all(self, tokens: list[str]) -> None:
        for token in tokens:
            self.tokens.append(token)
            self.size += utf16_length(token)
            self.open_tags = _after(self.open_tags, token)
        self.at_start = self.at_start and not tokens

    def _cut(self) -> None:
        self.parts.append("".join(self.tokens) + _closers(self.open_tags))
        self.tokens = list(self.open_tags)
        self.size = sum(utf16_length(tag) for tag in self.open_tags)
        self.at_start = True


_WORD = re.compile(r"\S+\s*|\s+")
LONG_WORD = 64


def _tokens(text: str) -> list[str]:
    """Tags and entities whole, text word by word (very long words character by character)."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token[0] in "<&":
            tokens.append(token)
            continue
        for word in _WORD.findall(token):
            tokens.extend(word if utf16_length(word) > LONG_WORD else [word])
    return tokens


def _after(open_tags: list[str], token: str) -> list[str]:
    if not token.startswith("<") or not _TAG_NAME.match(token):
        return open_tags
    if token.startswith("</"):
        return open_tags[:-1]
    return [*open_tags, token]


def _closers(open_tags: list[str]) -> str:
    names = [_TAG_NAME.match(tag) for tag in reversed(open_tags)]
    return "".join(f"</{name.group(1)}>" for name in names if name)
