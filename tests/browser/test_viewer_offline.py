"""A viewer on a phone whose network silently dies (issue 12): a TCP proxy between
the browser and the hub is frozen, a black-holed route where connections stay open
and nothing flows. The page must say "offline" within 10 s, keep what was asked
meanwhile, and deliver each question exactly once when the route comes back."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from qa_service.db.models import Question

from ..faults import TcpProxy
from ..support import SECOND, free_port, start_server
from .conftest import doc_shot

pytestmark = [pytest.mark.browser, pytest.mark.integration]
PHONE = {"width": 390, "height": 844}
EN = json.loads((Path(__file__).resolve().parents[2] / "viewer_ui/static/locales/en.json").read_text(encoding="utf-8"))
# The promise, in wall-clock time: not scaled, a phone does not get slower in CI.
OFFLINE_WITHIN = 10.0


def stored(ctx: Any, text: str) -> list[Question]:
    with ctx.transaction() as (db, _):
        return list(db.exec(select(Question).where(Question.text == text)))


@pytest.fixture
def proxied(settings: Any, event_id: int) -> Iterator[tuple[str, TcpProxy]]:
    """The hub on a port of its own and the base URL of a proxy in front of it: the
    page, its locales and its socket all go through the proxy, as through a phone's link."""
    port = free_port()
    proxy = TcpProxy("127.0.0.1", port).start()
    server = start_server(settings, port)
    try:
        yield f"http://127.0.0.1:{proxy.port}", proxy
    finally:
        server.stop()
        proxy.stop()


def test_a_dead_network_shows_offline_within_10_s_and_every_question_arrives_once(
    proxied, ctx, sample, new_page
) -> None:
    base, proxy = proxied
    page = new_page(locale="en-US", viewport=PHONE)
    page.goto(base + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#send")).to_have_text(EN["send"])  # the locale is in: the route may die now

    proxy.freeze()
    frozen_at = time.monotonic()
    # Sent before the page can know: the request (and, for the hub, the question) is
    # held in the black hole; the proxy delivers it late, after the page has resent it.
    in_the_hole = "Sent as the network died: what is your export plan?"
    page.fill("#q-text", in_the_hole)
    page.click("#send")
    expect(page.locator("#conn")).to_have_attribute("data-state", "offline", timeout=OFFLINE_WITHIN * 1000)
    took = time.monotonic() - frozen_at
    assert took < OFFLINE_WITHIN, f"offline shown {took:.1f}s after the network died"
    expect(page.locator("#conn")).to_have_text(EN["state_offline"])

    typed_offline = "Typed while offline: when does the next segment start?"
    page.fill("#q-text", typed_offline)
    page.click("#send")
    expect(page.locator("#mine li")).to_have_count(2)
    for li in page.locator("#mine li").all():
        expect(li).to_have_attribute("data-status", "waiting")
    expect(page.locator("#sent")).to_contain_text(EN["queued_offline"])
    page.wait_for_timeout(3000)  # a reconnect attempt or two into the hole: still offline, still kept
    expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
    doc_shot(page, "viewer-offline")
    assert stored(ctx, typed_offline) == []

    proxy.thaw()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=20_000 * SECOND)
    for text in (in_the_hole, typed_offline):
        item = page.locator("#mine li", has_text=text)
        expect(item).to_have_attribute("data-status", "received", timeout=10_000 * SECOND)
    expect(page.locator("#mine li")).to_have_count(2)
    expect(page.locator("#sent")).to_contain_text(EN["sent_received"])
    assert len(stored(ctx, in_the_hole)) == 1
    assert len(stored(ctx, typed_offline)) == 1
    assert page.evaluate("JSON.parse(localStorage.getItem('qa.outbox'))") == []
    page.reload()  # and a reload neither resends nor loses anything
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#mine li")).to_have_count(2)
    assert len(stored(ctx, in_the_hole)) == len(stored(ctx, typed_offline)) == 1
    assert page.js_errors == []


def test_a_request_without_a_reply_times_out_and_the_question_is_sent_once_later(
    proxied, ctx, sample, new_page
) -> None:
    """The socket stays alive (pings are answered) but the first ask gets no reply and
    its event is lost too: the request times out, the question is kept, sent again
    (the hub finds it by client_id), and stored once."""
    base, _ = proxied
    page = new_page(locale="en-US", viewport=PHONE)
    swallowed: list[str] = []

    def route(ws: Any) -> None:
        server_ws = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            msg = json.loads(message)
            if msg.get("type") == "question.created" or (
                msg.get("type") == "reply" and "question" in (msg.get("payload") or {}) and "reply" not in swallowed
            ):
                swallowed.append(msg["type"])  # stored by the hub, the news lost on the way
                return
            ws.send(message)

        server_ws.on_message(from_server)
        ws.on_message(lambda message: server_ws.send(message))

    page.route_web_socket(re.compile(r".*/ws/viewer$"), route)
    page.goto(base + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    text = "Is the reply lost or the question?"
    page.fill("#q-text", text)
    page.click("#send")
    expect(page.locator("#mine li").first).to_have_attribute("data-status", "waiting")
    expect(page.locator("#mine li").first).to_have_attribute("data-status", "received", timeout=30_000 * SECOND)
    assert "reply" in swallowed, "no reply was swallowed: the test did not exercise the timeout"
    expect(page.locator("#mine li")).to_have_count(1)
    assert len(stored(ctx, text)) == 1
    assert page.evaluate("JSON.parse(localStorage.getItem('qa.outbox'))") == []
    assert page.js_errors == []
