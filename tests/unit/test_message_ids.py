"""The message id floor: which sequence a chat's ids come from, and the highest seen."""

from __future__ import annotations

import pytest

from telegram_bot.message_ids import BOX, MessageIdFloor, id_space


@pytest.mark.parametrize(
    ("chat_id", "space"),
    [
        (42, BOX),  # private chat: the bot's own box
        (-4001, BOX),  # basic group: the same box
        (-999_999_999_999, BOX),
        (-1_000_000_000_000, -1_000_000_000_000),  # supergroup / channel: its own
        (-1_004_001, BOX),  # looks like -100… but is short: a basic group
        (-1_001_234_567_890, -1_001_234_567_890),
    ],
)
def test_id_space(chat_id: int, space: int) -> None:
    assert id_space(chat_id) == space


@pytest.mark.parametrize(
    ("seen", "chat_id", "floor"),
    [
        ([], 1, None),
        ([(1, 10)], 2, 10),  # private chats share one sequence
        ([(1, 10), (-4001, 12)], 3, 12),  # basic groups share it too
        ([(1, 10), (2, 7)], 1, 10),  # never goes down
        ([(-1_001_000_000_001, 5)], 1, None),  # a supergroup's ids are its own
        ([(-1_001_000_000_001, 5), (1, 90)], -1_001_000_000_001, 5),
        ([(-1_001_000_000_001, 5)], -1_001_000_000_002, None),
    ],
)
def test_floor(seen: list[tuple[int, int]], chat_id: int, floor: int | None) -> None:
    floors = MessageIdFloor()
    for chat, message_id in seen:
        floors.seen(chat, message_id)
    assert floors.floor(chat_id) == floor


def test_load_only_raises() -> None:
    floors = MessageIdFloor()
    floors.seen(1, 50)
    floors.load({BOX: 40, -1_001_000_000_001: 3})
    assert floors.floor(1) == 50
    assert floors.floor(-1_001_000_000_001) == 3
