"""The one websocket message format (docs/protocol.md, version 1).

client → server   {"type": "question.ask", "id": "c1", "payload": {...}}
server → client   {"type": "reply", "id": "c1", "ok": true, "payload": {...}}
                  {"type": "reply", "id": "c1", "ok": false,
                   "error": {"code": "question.too_long", "message": "...", "details": {...}}}
events            {"type": "question.updated", "channel": "moderation", "seq": 17, "payload": {...}}
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..bus.redis_bus import compact_json

PROTOCOL_VERSION = 1
MAX_ID_CHARS = 64
# Bounds on untrusted JSON (socket frames and REST bodies alike, see load_json).
MAX_DEPTH = 32  # nested arrays and objects
MAX_INT_DIGITS = 20  # an integer literal's digits (2**64 has 20)
MAX_FLOAT_CHARS = 40  # a number literal with a fraction or exponent

# Close codes (4000-4999 are the application's own).
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_SLOW_CONSUMER = 4408
CLOSE_FLOOD = 4429
CLOSE_HELLO_TIMEOUT = 4400
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN = 1013  # the server could not build a snapshot (database or Redis away): reconnect


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, request_id: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
        self.details = details


@dataclass(frozen=True)
class Request:
    type: str
    id: str | None
    payload: dict[str, Any]


# A JSON string (an unterminated one runs to the end) or a bracket: enough to measure
# nesting without parsing, so a deep document is refused before it is built.
_SURROGATES = re.compile("[\ud800-\udfff]")  # "\\ud800" in JSON: a str that UTF-8 cannot encode
_JSON_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\Z)|[\[\]{}]', re.DOTALL)


def _check_depth(text: str) -> None:
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        char = token.group()[0]
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ProtocolError("message.too_deep", f"JSON may nest at most {MAX_DEPTH} levels", limit=MAX_DEPTH)
        elif char in "]}":
            depth -= 1


def _number_too_large() -> ProtocolError:
    return ProtocolError(
        "message.number_too_large",
        f"numbers are limited to {MAX_INT_DIGITS} digits (finite, at most {MAX_FLOAT_CHARS} characters with a fraction)",
        limit=MAX_INT_DIGITS,
    )


def _bounded_int(literal: str) -> int:
    if len(literal) - literal.startswith("-") > MAX_INT_DIGITS:
        raise _number_too_large()
    return int(literal)


def _bounded_float(literal: str) -> float:
    value = float(literal) if len(literal) <= MAX_FLOAT_CHARS else math.inf
    if not math.isfinite(value):
        raise _number_too_large()
    return value


def _no_constant(name: str) -> object:
    raise ProtocolError("message.malformed", f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_int=_bounded_int, parse_float=_bounded_float, parse_constant=_no_constant)


def load_json(raw: str | bytes) -> Any:
    """The one parser of untrusted JSON: socket frames and REST bodies. Refuses
    (ProtocolError) what is not JSON (``message.malformed``; NaN and Infinity too),
    nesting deeper than MAX_DEPTH (``message.too_deep``) and numbers with more than
    MAX_INT_DIGITS digits or not finite (``message.number_too_large``): a
    4,000-digit integer costs quadratic time to convert, and none is an id."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode(json.detect_encoding(raw), "surrogatepass")
        except UnicodeDecodeError:
            raise ProtocolError("message.malformed", "the message is not UTF-8 text") from None
    _check_depth(raw)
    try:
        return _DECODER.decode(raw)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise ProtocolError("message.malformed", "the message is not valid JSON") from None


def parse(message: Mapping[str, Any], max_bytes: int) -> Request:
    """Turn one received ASGI websocket message into a Request, or raise."""
    if message.get("bytes") is not None:
        raise ProtocolError("frame.binary", "binary frames are not accepted; send JSON text frames")
    text = message.get("text")
    if text is None:
        raise ProtocolError("frame.empty", "empty frame")
    if len(text) * 4 > max_bytes and len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ProtocolError("frame.too_large", f"frames are limited to {max_bytes} bytes", limit=max_bytes)
    data = load_json(text)
    if not isinstance(data, dict):
        raise ProtocolError("message.invalid", "a message is a JSON object with 'type', 'id' and 'payload'")
    rid = data.get("id")
    if rid is not None and (not isinstance(rid, str) or len(rid) > MAX_ID_CHARS or _SURROGATES.search(rid)):
        # (an id is echoed in the reply: a lone surrogate could not be sent as UTF-8)
        raise ProtocolError("message.invalid_id", f"'id' must be a string of at most {MAX_ID_CHARS} characters")
    type_ = data.get("type")
    if not isinstance(type_, str) or not type_:
        raise ProtocolError("message.missing_type", "'type' is required", rid)
    payload = data.get("payload", {})
    if not isinstance(payload, dict):
        raise ProtocolError("message.invalid_payload", "'payload' must be a JSON object", rid)
    return Request(type_, rid, payload)


def ok(request_id: str | None, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "reply", "id": request_id, "ok": True, "payload": payload or {}}


def error(request_id: str | None, code: str, message: str, details: dict[str, object] | None = None) -> dict[str, Any]:
    return {
        "type": "reply",
        "id": request_id,
        "ok": False,
        "error": {"code": code, "message": message, "details": details or {}},
    }


def dumps(message: dict[str, Any]) -> str:
    return compact_json(message)


@dataclass(frozen=True)
class Encoded:
    """A part of a message already serialised (JSON text), spliced in as is: what
    every viewer's snapshot shares (the programme) is serialised once, not per socket."""

    text: str


def snapshot_message(heads: dict[str, int], payload: dict[str, Any]) -> str:
    """The ``snapshot`` message; ``payload`` values that are Encoded are spliced in."""
    parts = [f"{json.dumps(k)}:{v.text}" for k, v in payload.items() if isinstance(v, Encoded)]
    rest = dumps({k: v for k, v in payload.items() if not isinstance(v, Encoded)})
    if rest != "{}":
        parts.append(rest[1:-1])
    return f'{{"type":"snapshot","seq":{dumps(heads)},"payload":{{{",".join(parts)}}}}}'
