"""Telegram's HTML rules and error shape, for the fake Bot API server.

`parse_telegram_html` returns the plain text Telegram would show, or raises `ApiError(400)`
where the real Bot API refuses the markup (unknown or unbalanced tags, bare <, > or &).
"""

import html
import re
from typing import Any

ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code",
                "pre", "span", "tg-spoiler", "tg-emoji", "blockquote"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


class ApiError(Exception):
    """A Bot API error answer: {"ok": false, "error_code": code, "description": ...}."""

    def __init__(self, code: int, description: str,
                 parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"ok": False, "error_code": self.code,
                                  "description": self.description}
        if self.parameters:
            answer["parameters"] = self.parameters
        return answer


def utf16_length(text: str) -> int:
    """Telegram counts message length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def parse_telegram_html(text: str) -> str:
    """The plain text Telegram would show, or ApiError(400) where Telegram refuses the HTML."""
    plain: list[str] = []
    open_tags: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char == "<":
            tag = _TAG.match(text, position)
            if tag is None:
                raise _parse_error(f"Unexpected end tag or unescaped '<' at byte offset {position}")
            closing, name = tag.group(1) == "/", tag.group(2).lower()
            if name not in ALLOWED_TAGS:
                raise _parse_error(f'Unsupported start tag "{name}" at byte offset {position}')
            if closing:
                if not open_tags or open_tags[-1] != name:
                    raise _parse_error(f'Unmatched end tag at byte offset {position}, expected '
                                       f'"</{open_tags[-1] if open_tags else ""}>", found "</{name}>"')
                open_tags.pop()
            else:
                open_tags.append(name)
            position = tag.end()
        elif char == "&":
            entity = _ENTITY.match(text, position)
            if entity is None:
                raise _parse_error(f"Unescaped '&' at byte offset {position}")
            plain.append(html.unescape(entity.group(0)))
            position = entity.end()
        elif char == ">":
            raise _parse_error(f"Unescaped '>' at byte offset {position}")
        else:
            plain.append(char)
            position += 1
    if open_tags:
        raise _parse_error(f'Can\'t find end tag corresponding to start tag "{open_tags[-1]}"')
    return "".join(plain)


def _parse_error(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: can't parse entities: {detail}")
