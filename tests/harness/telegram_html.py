"""What Telegram's HTML parse mode accepts, as a checker for texts the bot sends."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from alerts.templates import TELEGRAM_LIMIT

_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]+|#[xX][0-9a-fA-F]+);")


class _TelegramHTML(HTMLParser):
    """Collects what Telegram's HTML parse mode would reject."""

    ALLOWED = frozenset({"b", "i", "code"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.ALLOWED or attrs:
            self.errors.append(f"tag <{tag}> {attrs}")
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.errors.append(f"self-closing <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.errors.append(f"unbalanced </{tag}>")

    def handle_data(self, data: str) -> None:
        if any(char in data for char in "<>&"):
            self.errors.append(f"unescaped markup character in {data[:40]!r}")

    def handle_comment(self, data: str) -> None:
        self.errors.append("comment")

    def handle_decl(self, decl: str) -> None:
        self.errors.append("declaration")

    def handle_pi(self, data: str) -> None:
        self.errors.append("processing instruction")

    def unknown_decl(self, data: str) -> None:
        self.errors.append("declaration")


def telegram_html_errors(text: str) -> list[str]:
    """Why Telegram would refuse `text` with parse_mode HTML (empty: it is fine)."""
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    errors = parser.errors + [f"unclosed <{tag}>" for tag in parser.open]
    ampersands = len(re.findall("&", text))
    if ampersands != len(_ENTITY.findall(text)):
        errors.append("an & that does not start a supported entity")
    if len(text.encode("utf-16-le")) // 2 > TELEGRAM_LIMIT:
        errors.append("longer than 4096 characters")
    return errors


def assert_valid_telegram_html(text: str) -> None:
    errors = telegram_html_errors(text)
    assert not errors, f"Telegram would refuse this text: {errors}"
