"""Is a JSON text well formed, however deeply it nests? For what the recursive parsers
(orjson stops at 1,024 levels, Python's json at the recursion limit) refuse by depth alone.

A reading is a flat object, so a well-formed document nested that deep is the wrong shape
(`bad_schema`), while a broken one is `malformed_json`; telling the two apart needs a parser
without recursion. This one is a pushdown automaton over a regular tokenizer (RFC 8259's
grammar), run only on rejected payloads no larger than FLOODWATCH_MAX_PAYLOAD_BYTES.
"""

from __future__ import annotations

import re

__all__ = ["is_well_formed"]

_TOKEN = re.compile(
    r"""[ \t\n\r]*(?:
        (?P<string>"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*")
      | (?P<scalar>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?![0-9A-Za-z.+-])
                  |(?:true|false|null)(?![0-9A-Za-z]))
      | (?P<punct>[\[\]{}:,])
    )""",
    re.VERBOSE,
)
_TRAILING_SPACE = re.compile(r"[ \t\n\r]*")

# What the automaton expects next.
_VALUE = 0  # a value (top level, after ':' or after ',' in an array)
_VALUE_OR_CLOSE = 1  # just after '['
_KEY_OR_CLOSE = 2  # just after '{'
_KEY = 3  # after ',' in an object
_COLON = 4  # after a key
_NEXT_OR_CLOSE = 5  # after a value inside a container
_END = 6  # after the top-level value


def is_well_formed(text: str) -> bool:
    """True if `text` is one JSON value per RFC 8259 (no NaN or Infinity literals)."""
    stack: list[str] = []
    expect = _VALUE
    position = 0
    while True:
        if expect == _END:
            return _TRAILING_SPACE.fullmatch(text, position) is not None
        match = _TOKEN.match(text, position)
        if match is None:
            return False
        position = match.end()
        kind = match.lastgroup
        lexeme = match.group(kind) if kind else ""
        expect = _step(stack, expect, kind, lexeme)
        if expect < 0:
            return False


def _step(stack: list[str], expect: int, kind: str | None, lexeme: str) -> int:
    """The next expectation after `lexeme`, or -1 if the lexeme cannot come here."""
    if expect in (_KEY, _KEY_OR_CLOSE) and kind == "string":
        return _COLON
    if expect == _COLON:
        return _VALUE if lexeme == ":" else -1
    if expect == _NEXT_OR_CLOSE and lexeme == ",":
        return _KEY if stack[-1] == "{" else _VALUE
    closing = {"]": "[", "}": "{"}.get(lexeme)
    if closing is not None and (
        expect == _NEXT_OR_CLOSE
        or (expect == _VALUE_OR_CLOSE and closing == "[")
        or (expect == _KEY_OR_CLOSE and closing == "{")
    ):
        if stack[-1] != closing:
            return -1
        stack.pop()
        return _NEXT_OR_CLOSE if stack else _END
    if expect not in (_VALUE, _VALUE_OR_CLOSE):
        return -1
    if kind in ("string", "scalar"):
        return _NEXT_OR_CLOSE if stack else _END
    if lexeme in ("[", "{"):
        stack.append(lexeme)
        return _VALUE_OR_CLOSE if lexeme == "[" else _KEY_OR_CLOSE
    return -1
