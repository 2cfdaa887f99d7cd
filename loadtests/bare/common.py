"""What both bare servers share: the open-files limit, the hello and snapshot frames."""

from __future__ import annotations

import json
import resource
from typing import Any


def raise_nofile() -> int:
    """Raise this process's open-files soft limit to the hard limit; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def hello_reply(request_id: Any, n: int) -> str:
    """A reply shaped like the hub's (protocol 1, a viewer id and token)."""
    return json.dumps(
        {
            "type": "reply",
            "id": request_id,
            "ok": True,
            "payload": {"protocol": 1, "viewer_id": f"{n:032x}", "viewer_token": "t" * 70, "start": "snapshot"},
        }
    )


def snapshot_frame(size: int) -> str:
    """A snapshot frame of about ``size`` bytes (the hub's viewer snapshot is ≈6 KB)."""
    frame: dict[str, Any] = {"type": "snapshot", "seq": {"schedule": 1}, "payload": {"schedule": {}, "pad": ""}}
    base = len(json.dumps(frame))
    frame["payload"]["pad"] = "x" * max(0, size - base)
    return json.dumps(frame)


def padded(message: dict[str, Any], size: int) -> str:
    """``message`` with a ``pad`` field in its payload so that it is about ``size`` bytes."""
    message = dict(message, payload=dict(message.get("payload", {}), pad=""))
    base = len(json.dumps(message))
    message["payload"]["pad"] = "x" * max(0, size - base)
    return json.dumps(message)
