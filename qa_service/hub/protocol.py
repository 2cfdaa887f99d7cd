"""The one websocket message format (docs/protocol.md, version 1).

client → server   {"type": "question.ask", "id": "c1", "payload": {...}}
server → client   {"type": "reply", "id": "c1", "ok": true, "payload": {...}}
                  {"type": "reply", "id": "c1", "ok": false,
                   "error": {"code": "question.too_long", "message": "...", "details": {...}}}
events            {"type": "question.updated", "channel": "moderation", "seq": 17, "payload": {...}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 1
MAX_ID_CHARS = 64

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


def parse(message: Mapping[str, Any], max_bytes: int) -> Request:
    """Turn one received ASGI websocket message into a Request, or raise."""
    if message.get("bytes") is not None:
        raise ProtocolError("frame.binary", "binary frames are not accepted; send JSON text frames")
    text = message.get("text")
    if text is None:
        raise ProtocolError("frame.empty", "empty frame")
    if len(text) * 4 > max_bytes and len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ProtocolError("frame.too_large", f"frames are limited to {max_bytes} bytes", limit=max_bytes)
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ProtocolError("message.malformed", "the frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("message.invalid", "a message is a JSON object with 'type', 'id' and 'payload'")
    rid = data.get("id")
    if rid is not None and (not isinstance(rid, str) or len(rid) > MAX_ID_CHARS):
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
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str)
