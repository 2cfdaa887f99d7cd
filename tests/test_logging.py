"""Log lines: QA_LOG_FORMAT=json makes every line of a real `qa-service serve` and
`qa-service worker` one JSON object, with the request's id; host-link tokens stay
redacted in both formats; the text format is what it was."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from qa_service.logs import RequestId, make_handler, request_id, reset_socket_id, set_socket_id
from qa_service.security import Signer
from qa_service.settings import Settings

from .faults import ServiceProcess, hub
from .support import SECOND, ws_client

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
HEX_ID = re.compile(r"[0-9a-f]{32}")


def host_token(settings: Settings, sample: dict[str, Any]) -> str:
    studio = sample["studios"]["moscow"]
    return Signer(settings.secret_key or "").host_token(studio.id, studio.host_token_version)


def exercise(proc: ServiceProcess, token: str) -> dict[str, httpx.Response]:
    """The requests both formats are checked with; the process is stopped after them."""
    try:
        out = {
            "healthz": httpx.get(f"{proc.base}/healthz", headers={"X-Request-ID": "probe-42"}, timeout=10 * SECOND),
            "schedule": httpx.get(
                f"{proc.base}/api/schedule", headers={"X-Request-ID": "bad id!"}, timeout=10 * SECOND
            ),
            "host": httpx.get(f"{proc.base}/host/{token}", timeout=10 * SECOND),
        }
        with ws_client(f"{proc.base.replace('http', 'ws', 1)}/ws/host?token={token}") as c:
            assert c.request("hello", {})["ok"]
    finally:
        proc.stop()
    assert [r.status_code for r in out.values()] == [200, 200, 200]
    assert out["healthz"].headers["x-request-id"] == "probe-42"  # a short ASCII id is kept
    assert HEX_ID.fullmatch(out["schedule"].headers["x-request-id"])  # any other is replaced
    return out


# ── whole processes ────────────────────────────────────────────────────────
@pytest.mark.integration
@SQLITE_ONLY
def test_json_mode_writes_one_object_per_line_with_the_request_id(settings: Settings, sample) -> None:
    proc = hub(settings, QA_LOG_FORMAT="json").start().wait_ready()
    token = host_token(settings, sample)
    responses = exercise(proc, token)
    output = proc.output()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # each line parses
    assert all(isinstance(line, dict) and {"time", "level", "logger", "message"} <= set(line) for line in lines)
    access = {line["path"]: line for line in lines if line["logger"] == "uvicorn.access"}
    assert access["/healthz"]["request_id"] == "probe-42"
    assert access["/healthz"]["status"] == 200 and access["/healthz"]["method"] == "GET"
    assert access["/api/schedule"]["request_id"] == responses["schedule"].headers["x-request-id"]
    # Tokens are redacted before either format sees them: the access line, the socket's line.
    assert "/host/[redacted]" in access
    assert any("/ws/host?token=[redacted]" in line["message"] for line in lines)
    assert token not in output and token[:20] not in output
    assert any(
        line["logger"] == "uvicorn.error" and "Application startup complete" in line["message"] for line in lines
    )


@pytest.mark.integration
@SQLITE_ONLY
def test_text_mode_is_unchanged(settings: Settings, sample) -> None:
    proc = hub(settings).start().wait_ready()
    token = host_token(settings, sample)
    exercise(proc, token)
    output = proc.output()
    assert not any(line.startswith("{") for line in output.splitlines())
    # uvicorn's own format for its lines, the service's format for the service's.
    assert re.search(r'^INFO: +127\.0\.0\.1:\d+ - "GET /healthz HTTP/1\.1" 200', output, re.M)
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING) qa_service\.\S+: ", output, re.M)
    assert "/host/[redacted]" in output and "token=[redacted]" in output
    assert token not in output and token[:20] not in output


@pytest.mark.integration
@SQLITE_ONLY
def test_a_worker_logs_json_too(settings: Settings, tmp_path: Path) -> None:
    worker = ServiceProcess(settings, "worker", "--burst", QA_LOG_FORMAT="json", QA_ARGOS_DIR=str(tmp_path / "argos"))
    worker.start()
    assert worker.proc is not None
    assert worker.proc.wait(120 * SECOND) == 0, worker.output()
    lines = [json.loads(line) for line in worker.output().splitlines() if line.strip()]
    loggers = {line["logger"] for line in lines}
    assert any(name.startswith("rq.") for name in loggers), loggers  # RQ's own lines, through our handler
    assert any(name.startswith("workers.") for name in loggers), loggers


# ── the pieces ─────────────────────────────────────────────────────────────
def _record(logger: logging.Logger, stream: io.StringIO, fmt: str, *args: Any, **kwargs: Any) -> str:
    handler = make_handler(fmt, stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(*args, **kwargs)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_json_lines_carry_ids_and_tracebacks_on_one_line() -> None:
    log = logging.getLogger("tests.logging.json")
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    token = set_socket_id("sock-7")
    rid = request_id.set("req-9")
    try:
        text = _record(log, io.StringIO(), "json", "two\nlines %s", "here", exc_info=exc_info)
    finally:
        request_id.reset(rid)
        reset_socket_id(token)
    assert text.count("\n") == 1  # one line, newlines escaped
    line = json.loads(text)
    assert line["message"] == "two\nlines here" and line["level"] == "WARNING" and line["logger"] == log.name
    assert (line["request_id"], line["socket_id"]) == ("req-9", "sock-7")
    assert "Traceback" in line["exc_info"] and "ValueError: boom" in line["exc_info"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    plain = json.loads(_record(log, io.StringIO(), "json", "no ids"))
    assert "request_id" not in plain and "socket_id" not in plain and "exc_info" not in plain


def test_text_lines_keep_their_format() -> None:
    log = logging.getLogger("tests.logging.text")
    rid = request_id.set("req-9")
    try:
        text = _record(log, io.StringIO(), "text", "hello %s", "there")
    finally:
        request_id.reset(rid)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING tests\.logging\.text: hello there\n", text)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("abc-DEF_1.2", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("bad id", False),
        ("é", False),
        ("a\tb", False),
        ("", False),
        (None, False),
    ],
)
def test_request_ids_from_clients_are_kept_only_when_short_plain_ascii(given: str | None, kept: bool) -> None:
    seen: list[str | None] = []

    async def route(request: Request) -> PlainTextResponse:
        seen.append(request_id.get())
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", route)])
    headers = {b"X-Request-ID": given.encode()} if given is not None else {}

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=RequestId(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/", headers=headers)

    # In a thread of its own: the browser tests' Playwright keeps an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        r = pool.submit(asyncio.run, get()).result()
    echoed = r.headers["x-request-id"]
    assert seen == [echoed]  # the id the route logs with is the one echoed
    assert (echoed == given) if kept else HEX_ID.fullmatch(echoed)
    assert request_id.get() is None  # reset after the request
