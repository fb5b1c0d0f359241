"""A local Telegram Bot API HTTP server for tests.

It speaks the Bot API's JSON to aiogram's real HTTP session::

    async with BotApiServer() as server:
        session = AiohttpSession(api=server.api)
        bot = Bot(server.token, session=session)

The test fills the update queue (``push_message``, ``push_callback``,
``push_edited_message``, ``push_update``), the bot long-polls ``getUpdates``, and every
send the bot makes is recorded in ``server.sent``. The server can answer 429
(``retry_after``) and 403 ("bot was blocked by the user") for given chats or for the next N
calls, and, with ``enforce_limits=True``, answers 429 when Telegram's documented limits are
exceeded (30 messages/s overall, 1/s per chat, 20/min per group).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web

JsonDict = dict[str, Any]

SEND_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendLocation",
        "sendSticker",
        "copyMessage",
        "forwardMessage",
    }
)
TEST_TOKEN = "123456:TEST-token"
MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
GLOBAL_PER_SECOND = 30
CHAT_PER_SECOND = 1
GROUP_PER_MINUTE = 20


@dataclass
class Sent:
    """One successful call the bot made that shows something in a chat."""

    method: str
    chat_id: int
    text: str | None
    photo_bytes: bytes | None
    reply_markup: JsonDict | None
    at: float
    message_id: int | None = None
    params: JsonDict = field(default_factory=dict)

    def buttons(self) -> list[JsonDict]:
        """The inline buttons (flattened), or the reply keyboard buttons."""
        if not self.reply_markup:
            return []
        rows = self.reply_markup.get("inline_keyboard") or self.reply_markup.get("keyboard") or []
        return [button for row in rows for button in row]

    def button(self, contains: str) -> JsonDict:
        """The first button whose text contains ``contains`` (case-insensitive)."""
        for button in self.buttons():
            if contains.lower() in str(button.get("text", "")).lower():
                return button
        names = [b.get("text") for b in self.buttons()]
        raise AssertionError(f"no button containing {contains!r} in {names}")


@dataclass
class Call:
    """Every call the server received, successful or not."""

    method: str
    chat_id: int | None
    status: int
    at: float
    description: str = ""


@dataclass
class _FailRule:
    code: int
    retry_after: int
    chat_ids: frozenset[int] | None  # None: any chat
    remaining: int | None  # None: until cleared
    methods: frozenset[str]


# Bot API ids of supergroups and channels are -100 followed by the MTProto id.
SUPERGROUP_IDS_BELOW = -1_000_000_000_000


def _error(
    code: int, description: str, retry_after: int | None = None, migrate_to: int | None = None
) -> web.Response:
    body: JsonDict = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    if migrate_to is not None:
        body["parameters"] = {"migrate_to_chat_id": migrate_to}
    return web.json_response(body, status=code)


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


class BotApiServer:
    """The local Bot API server. Use as ``async with BotApiServer() as server``."""

    def __init__(
        self,
        token: str = TEST_TOKEN,
        *,
        enforce_limits: bool = False,
        bot_username: str = "floodwatch_test_bot",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.enforce_limits = enforce_limits
        self.host = host
        self.port = port
        self.sent: list[Sent] = []
        self.calls: list[Call] = []
        self.commands: list[JsonDict] = []
        self.answered_callbacks: list[JsonDict] = []
        self.deleted: list[tuple[int, int]] = []
        self.count_429 = 0
        self.count_403 = 0
        self._updates: list[JsonDict] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._messages: dict[tuple[int, int], JsonDict] = {}
        self._chats: dict[int, JsonDict] = {}
        self._users: dict[int, JsonDict] = {}
        self._callback_ids = itertools.count(1)
        self._new_update = asyncio.Event()
        self._rules: list[_FailRule] = []
        self._lose: dict[int, int] = {}
        self._hold: dict[int, float] = {}
        self._migrated: dict[int, int] = {}
        self._global_window: deque[float] = deque()
        self._chat_last: dict[int, float] = {}
        self._group_window: dict[int, deque[float]] = {}
        self._runner: web.AppRunner | None = None
        self._closing = False

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self._closing = True
        self._new_update.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BotApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Base URL, for ``FLOODWATCH_TELEGRAM_API_URL`` / ``TelegramAPIServer.from_base``."""
        return f"http://{self.host}:{self.port}"

    @property
    def api(self) -> TelegramAPIServer:
        return TelegramAPIServer.from_base(self.url)

    # ---------------------------------------------------------------- failures

    def fail_chat(
        self,
        chat_ids: int | Iterable[int],
        code: int = 403,
        *,
        retry_after: int = 1,
        times: int | None = None,
        methods: Iterable[str] = SEND_METHODS,
    ) -> None:
        """Answer ``code`` (403 blocked, or 429 retry_after) to sends to these chats.

        ``times=None`` keeps failing until :meth:`clear_failures`.
        """
        ids = frozenset([chat_ids] if isinstance(chat_ids, int) else chat_ids)
        self._rules.append(_FailRule(code, retry_after, ids, times, frozenset(methods)))

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: every send to the chat answers 403."""
        self.fail_chat(chat_id, 403)

    def fail_next(
        self,
        n: int,
        code: int = 429,
        *,
        retry_after: int = 1,
        methods: Iterable[str] = SEND_METHODS,
    ) -> None:
        """The next ``n`` calls (of ``methods``, any chat) answer ``code``."""
        self._rules.append(_FailRule(code, retry_after, None, n, frozenset(methods)))

    def lose_answers(self, chat_id: int, times: int = 1) -> None:
        """The next ``times`` sends to ``chat_id`` are carried out (recorded, delivered),
        then the connection is dropped before the answer: the bot cannot know."""
        self._lose[chat_id] = self._lose.get(chat_id, 0) + times

    def hold_answer(self, chat_id: int, seconds: float) -> None:
        """The next send to ``chat_id`` is carried out at once but answered only after
        ``seconds``: a bot killed meanwhile cannot know it went out."""
        self._hold[chat_id] = seconds

    def migrate(self, group_id: int, supergroup_id: int) -> None:
        """The basic group became a supergroup: sends to the old id are refused with
        `migrate_to_chat_id`, as Telegram does."""
        self._migrated[group_id] = supergroup_id
        self.chat(supergroup_id, "supergroup")

    def clear_failures(self) -> None:
        self._rules.clear()
        self._lose.clear()
        self._hold.clear()

    # ---------------------------------------------------------------- updates

    def user(self, user_id: int, *, language_code: str | None = "en", **extra: Any) -> JsonDict:
        data: JsonDict = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
        if language_code:
            data["language_code"] = language_code
        data.update(extra)
        self._users[user_id] = data
        return data

    def chat(self, chat_id: int, chat_type: str | None = None) -> JsonDict:
        known = self._chats.get(chat_id)
        if known is not None and (chat_type is None or known["type"] == chat_type):
            return known
        kind = chat_type or ("private" if chat_id > 0 else "supergroup")
        data: JsonDict = {"id": chat_id, "type": kind}
        if kind == "private":
            data["first_name"] = f"User{chat_id}"
        else:
            data["title"] = f"Group {chat_id}"
        self._chats[chat_id] = data
        return data

    def push_update(self, update: JsonDict) -> int:
        """Queue a raw update (its ``update_id`` is assigned here). Returns the update id."""
        update = dict(update)
        update["update_id"] = next(self._update_ids)
        self._updates.append(update)
        self._new_update.set()
        return int(update["update_id"])

    def _incoming(
        self,
        chat_id: int,
        *,
        chat_type: str | None,
        user_id: int | None,
        language_code: str | None,
    ) -> JsonDict:
        chat = self.chat(chat_id, chat_type)
        uid = user_id if user_id is not None else (chat_id if chat["type"] == "private" else 1000)
        sender = self.user(uid, language_code=language_code)
        return {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": chat,
            "from": sender,
        }

    def push_message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        location: tuple[float, float] | None = None,
        sticker: bool = False,
        photo: bool = False,
        caption: str | None = None,
        chat_type: str | None = None,
        user_id: int | None = None,
        language_code: str | None = "en",
        extra: JsonDict | None = None,
    ) -> JsonDict:
        """A user writes in a chat (`caption`: under the photo). Returns the message as
        queued."""
        message = self._incoming(
            chat_id, chat_type=chat_type, user_id=user_id, language_code=language_code
        )
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split(maxsplit=1)[0]
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if location is not None:
            message["location"] = {"latitude": location[0], "longitude": location[1]}
        if sticker:
            message["sticker"] = {
                "file_id": "sticker-file",
                "file_unique_id": "sticker-unique",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": "🌊",
            }
        if photo:
            message["photo"] = [
                {
                    "file_id": "photo-file",
                    "file_unique_id": "photo-unique",
                    "width": 90,
                    "height": 90,
                }
            ]
        if caption is not None:
            message["caption"] = caption
            if caption.startswith("/"):
                command = caption.split(maxsplit=1)[0]
                message["caption_entities"] = [
                    {"type": "bot_command", "offset": 0, "length": len(command)}
                ]
        if extra:
            message.update(extra)
        self._messages[(chat_id, message["message_id"])] = message
        self.push_update({"message": message})
        return message

    def push_edited_message(
        self,
        chat_id: int,
        text: str,
        message_id: int | None = None,
        *,
        chat_type: str | None = None,
        user_id: int | None = None,
        language_code: str | None = "en",
    ) -> JsonDict:
        """A user edits one of their messages (by default a new one made up here)."""
        message = self._incoming(
            chat_id, chat_type=chat_type, user_id=user_id, language_code=language_code
        )
        if message_id is not None:
            message["message_id"] = message_id
        message["text"] = text
        message["edit_date"] = int(time.time())
        self.push_update({"edited_message": message})
        return message

    def push_callback(
        self,
        chat_id: int,
        data: str,
        message_id: int | None = None,
        *,
        user_id: int | None = None,
        language_code: str | None = "en",
    ) -> str:
        """A user presses an inline button with ``data`` on message ``message_id``.

        Without ``message_id``, the bot's last message in the chat is used. Returns the
        callback query id (see :attr:`answered_callbacks`).
        """
        chat = self.chat(chat_id)
        uid = user_id if user_id is not None else (chat_id if chat["type"] == "private" else 1000)
        if message_id is None:
            mine = [s for s in self.sent if s.chat_id == chat_id and s.message_id is not None]
            message_id = mine[-1].message_id if mine else 1
        assert message_id is not None
        message = self._messages.get((chat_id, message_id))
        if message is None:  # a message the server never saw (e.g. from before a restart)
            message = {
                "message_id": message_id,
                "date": int(time.time()) - 3600,
                "chat": chat,
                "from": self._bot_user(),
                "text": "…",
            }
        query_id = str(next(self._callback_ids))
        self.push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self.user(uid, language_code=language_code),
                    "message": message,
                    "chat_instance": f"ci{chat_id}",
                    "data": data,
                }
            }
        )
        return query_id

    def press(
        self, chat_id: int, contains: str, *, user_id: int | None = None, language_code: str = "en"
    ) -> str:
        """Press the button containing ``contains`` on the bot's latest keyboard in the chat."""
        for sent in reversed(self.sent):
            if sent.chat_id != chat_id or not sent.reply_markup:
                continue
            if "inline_keyboard" not in sent.reply_markup:
                continue
            for button in sent.buttons():
                if contains.lower() in str(button.get("text", "")).lower():
                    return self.push_callback(
                        chat_id,
                        str(button["callback_data"]),
                        sent.message_id,
                        user_id=user_id,
                        language_code=language_code,
                    )
        raise AssertionError(f"no inline button containing {contains!r} in chat {chat_id}")

    # ---------------------------------------------------------------- waiting

    def mark(self) -> int:
        """An index into :attr:`sent`, for ``wait_for(..., since=mark)``."""
        return len(self.sent)

    async def wait_for(
        self,
        predicate: Callable[[Sent], bool] = lambda _s: True,
        timeout: float = 5.0,
        *,
        since: int = 0,
    ) -> Sent:
        """The first recorded send (from index ``since``) matching ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            for sent in self.sent[since:]:
                if predicate(sent):
                    return sent
            if time.monotonic() >= deadline:
                recent = [(s.method, s.chat_id, (s.text or "")[:80]) for s in self.sent[since:]]
                raise AssertionError(f"no matching send within {timeout}s; got {recent}")
            await asyncio.sleep(0.01)

    async def wait_count(
        self, predicate: Callable[[Sent], bool], count: int, timeout: float = 10.0
    ) -> list[Sent]:
        deadline = time.monotonic() + timeout
        while True:
            found = [s for s in self.sent if predicate(s)]
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(f"{len(found)} of {count} matching sends within {timeout}s")
            await asyncio.sleep(0.01)

    async def ask(self, chat_id: int, text: str | None = None, **kwargs: Any) -> Sent:
        """Push a message and return the bot's first answer in that chat."""
        since = self.mark()
        self.push_message(chat_id, text, **kwargs)
        return await self.wait_for(lambda s: s.chat_id == chat_id, since=since)

    def in_chat(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    # ---------------------------------------------------------------- HTTP

    async def _params(self, request: web.Request) -> tuple[JsonDict, dict[str, bytes]]:
        params: JsonDict = {}
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            body = await request.read()
            if body:
                params = dict(json.loads(body))
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                else:
                    params[key] = value
        params.update({k: v for k, v in request.query.items() if k not in params})
        return params, files

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params, files = await self._params(request)
        chat_id = _int_or_none(params.get("chat_id"))
        now = time.monotonic()
        refusal = self._refusal(method, chat_id, now)
        if refusal is not None:
            code, description, retry_after = refusal
            self.calls.append(Call(method, chat_id, code, now, description))
            if code == 429:
                self.count_429 += 1
            elif code == 403:
                self.count_403 += 1
            return _error(code, description, retry_after)
        if chat_id in self._migrated:
            description = "Bad Request: group chat was upgraded to a supergroup chat"
            self.calls.append(Call(method, chat_id, 400, now, description))
            return _error(400, description, migrate_to=self._migrated[chat_id])
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            self.calls.append(Call(method, chat_id, 404, now, "Not Found"))
            return _error(404, "Not Found: method not found")
        try:
            response: web.Response = await handler(params, files)
        except _BadRequest as e:
            self.calls.append(Call(method, chat_id, 400, now, e.description))
            return _error(400, f"Bad Request: {e.description}")
        self.calls.append(Call(method, chat_id, response.status, now))
        if method in SEND_METHODS and chat_id is not None and self._lose.get(chat_id, 0) > 0:
            self._lose[chat_id] -= 1
            if request.transport is not None:
                request.transport.close()
        if method in SEND_METHODS and chat_id in self._hold:
            await asyncio.sleep(self._hold.pop(chat_id))
        return response

    def _refusal(self, method: str, chat_id: int | None, now: float) -> tuple[int, str, int] | None:
        for rule in list(self._rules):
            if method not in rule.methods:
                continue
            if rule.chat_ids is not None and chat_id not in rule.chat_ids:
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._rules.remove(rule)
            if rule.code == 429:
                text = f"Too Many Requests: retry after {rule.retry_after}"
                return 429, text, rule.retry_after
            if rule.code == 403:
                return 403, "Forbidden: bot was blocked by the user", 0
            return rule.code, f"Error {rule.code}", 0
        if self.enforce_limits and method in SEND_METHODS and chat_id is not None:
            wait = self._limit_wait(chat_id, now)
            if wait > 0:
                retry_after = max(1, math.ceil(wait))
                return 429, f"Too Many Requests: retry after {retry_after}", retry_after
            self._count_send(chat_id, now)
        return None

    def _limit_wait(self, chat_id: int, now: float) -> float:
        while self._global_window and now - self._global_window[0] >= 1.0:
            self._global_window.popleft()
        waits = [0.0]
        if len(self._global_window) >= GLOBAL_PER_SECOND:
            waits.append(1.0 - (now - self._global_window[0]))
        last = self._chat_last.get(chat_id)
        if last is not None and now - last < 1.0 / CHAT_PER_SECOND:
            waits.append(1.0 / CHAT_PER_SECOND - (now - last))
        if self.chat(chat_id)["type"] != "private":
            window = self._group_window.setdefault(chat_id, deque())
            while window and now - window[0] >= 60.0:
                window.popleft()
            if len(window) >= GROUP_PER_MINUTE:
                waits.append(60.0 - (now - window[0]))
        return max(waits)

    def _count_send(self, chat_id: int, now: float) -> None:
        self._global_window.append(now)
        self._chat_last[chat_id] = now
        if self.chat(chat_id)["type"] != "private":
            self._group_window.setdefault(chat_id, deque()).append(now)

    # ---------------------------------------------------------------- helpers

    def _bot_user(self) -> JsonDict:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Floodwatch",
            "username": self.bot_username,
        }

    def _next_message_id(self, chat_id: int) -> int:
        # As in Telegram: supergroups and channels number their own messages; private
        # chats and basic groups share one sequence, the bot's message box.
        space = chat_id if chat_id <= SUPERGROUP_IDS_BELOW else 0
        counter = self._message_ids.setdefault(space, itertools.count(1))
        return next(counter)

    def _outgoing(self, chat_id: int, params: JsonDict) -> JsonDict:
        message: JsonDict = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": self.chat(chat_id),
            "from": self._bot_user(),
        }
        markup = _json_field(params.get("reply_markup"))
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        return message

    def _record(
        self,
        method: str,
        chat_id: int,
        params: JsonDict,
        *,
        text: str | None,
        photo: bytes | None = None,
        message_id: int | None = None,
    ) -> Sent:
        markup = _json_field(params.get("reply_markup"))
        sent = Sent(
            method=method,
            chat_id=chat_id,
            text=text,
            photo_bytes=photo,
            reply_markup=markup if isinstance(markup, dict) else None,
            at=time.monotonic(),
            message_id=message_id,
            params=dict(params),
        )
        self.sent.append(sent)
        return sent

    def _require_chat(self, params: JsonDict) -> int:
        chat_id = _int_or_none(params.get("chat_id"))
        if chat_id is None:
            raise _BadRequest("chat not found")
        return chat_id

    # ---------------------------------------------------------------- methods

    async def _m_getMe(self, params: JsonDict, files: dict[str, bytes]) -> web.Response:
        me = self._bot_user() | {
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        return _ok(me)

    async def _m_deleteWebhook(self, params: JsonDict, files: dict[str, bytes]) -> web.Response:
        if str(params.get("drop_pending_updates", "")).lower() == "true":
            self._updates.clear()
        return _ok(True)

    async def _m_getUpdates(self, params: JsonDict, files: dict[str, bytes]) -> web.Response:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while not self._updates and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout=min(remaining, 0.5))
        return _ok(self._updates[:limit])

    async def _m_sendMessage(self, params: JsonDict, files: dict[str, bytes]) -> web.Response:
        chat_id = self._require_chat(params)
        text = str(params.get("text") or "")
        if not text.strip():
            raise _BadRequest("message text is empty")
        if len(text) > MESSAGE_LIMIT:
            raise _BadRequest("message is too long")
        message = self._outgoing(chat_id, params)
        message["text"] = text
        self._messages[(chat_id, message["message_id"])] = message
        self._record("sendMessage", chat_id, params, text=text, message_id=message["message_id"])
        return _ok(message)

    async def _m_sendPhoto(self, params: JsonDict, files: dict[str, bytes]) -> web.Response:
        chat_id = self._require_chat(params)
        photo_ref = str(params.get("photo") or "")
        photo: bytes | None = None
        if photo_ref.startswith("attach://"):
            photo = files.get(photo_ref.removeprefix("attach://"))
        elif files:
            photo = next(iter(files.values()))
        if photo is None and not photo_ref:
            raise _BadRequest("there is no photo in the request")
        caption = params.get("caption")
        if caption is not None and len(str(caption)) > CAPTION_LIMIT:
            raise _BadRequest("message caption is too long")
        message = self._outgoing(chat_id, params)
        message["photo"] = [
            {
                "file_id": f"photo-{chat_id}-{message['message_id']}",
                "file_unique_id": f"u{chat_id}-{message['message_id']}",
                "width": 1280,
                "height": 720,
                "file_size": len(photo or b""),
            }
        ]
        if caption:
            message["caption"] = str(caption)
        self._messages[(chat_id, message["message_id"])] = message
        self._record(
            "sendPhoto",
            chat_id,
            params,
            text=str(caption) if caption is not None else None,
            photo=photo,
            message_id=message["message_id"],
        )
        return _ok(message)

    async def _m_sendChatAction(self, params: JsonDict, files: dict[str, bytes]) -> web.Response:
        self._require_chat(params)
        return _ok(True)

    async def _m_answerCallbackQuery(
        self, params: JsonDict, files: dict[str, bytes]
    ) -> web.Response:
        self.answered_callbacks.append(dict(params))
        return _ok(True)

    def _edited(self, params: JsonDict) -> tuple[int, JsonDict]:
        chat_id = self._require_chat(params)
        message_id = _int_or_none(params.get("message_id"))
        message = self._messages.get((chat_id, message_id or 0))
        if message is None:
            raise _BadRequest("message to edit not found")
        if message.get("from", {}).get("id") != self.bot_id:
            raise _BadRequest("message can't be edited")
        return chat_id, message

    async def _m_editMessageText(self, params: JsonDict, files: dict[str, bytes]) -> web.Response:
        chat_id, message = self._edited(params)
        text = str(params.get("text") or "")
        if not text.strip():
            raise _BadRequest("message text is empty")
        if len(text) > MESSAGE_LIMIT:
            raise _BadRequest("message is too long")
        markup = _json_field(params.get("reply_markup"))
        if message.get("text") == text and message.get("reply_markup") == markup:
            raise _BadRequest(
                "message is not modified: specified new message content and reply markup "
                "are exactly the same as a current content and reply markup of the message"
            )
        message = dict(message)
        message["text"] = text
        message["edit_date"] = int(time.time())
        message.pop("reply_markup", None)
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._messages[(chat_id, message["message_id"])] = message
        self._record(
            "editMessageText", chat_id, params, text=text, message_id=message["message_id"]
        )
        return _ok(message)

    async def _m_editMessageReplyMarkup(
        self, params: JsonDict, files: dict[str, bytes]
    ) -> web.Response:
        chat_id, message = self._edited(params)
        markup = _json_field(params.get("reply_markup"))
        if message.get("reply_markup") == markup:
            raise _BadRequest(
                "message is not modified: specified new message content and reply markup "
                "are exactly the same as a current content and reply markup of the message"
            )
        message = dict(message)
        message.pop("reply_markup", None)
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._messages[(chat_id, message["message_id"])] = message
        self._record(
            "editMessageReplyMarkup",
            chat_id,
            params,
            text=message.get("text"),
            message_id=message["message_id"],
        )
        return _ok(message)

    async def _m_deleteMessage(self, params: JsonDict, files: dict[str, bytes]) -> web.Response:
        chat_id = self._require_chat(params)
        message_id = _int_or_none(params.get("message_id")) or 0
        if self._messages.pop((chat_id, message_id), None) is None:
            raise _BadRequest("message to delete not found")
        self.deleted.append((chat_id, message_id))
        return _ok(True)

    async def _m_setMyCommands(self, params: JsonDict, files: dict[str, bytes]) -> web.Response:
        commands = _json_field(params.get("commands"))
        self.commands.append(
            {
                "commands": commands,
                "language_code": params.get("language_code"),
                "scope": _json_field(params.get("scope")),
            }
        )
        return _ok(True)

    async def _m_deleteMyCommands(self, params: JsonDict, files: dict[str, bytes]) -> web.Response:
        return _ok(True)

    async def _m_close(self, params: JsonDict, files: dict[str, bytes]) -> web.Response:
        return _ok(True)

    async def _m_logOut(self, params: JsonDict, files: dict[str, bytes]) -> web.Response:
        return _ok(True)


class _BadRequest(Exception):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _json_field(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
