"""The ask widget in a partner's page: framed by an allowed origin it works and tells
its height; framed by any other origin the browser refuses it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from qa_service.db.models import Question

from ..support import free_port, start_server, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# The README's two lines, as a partner pastes them (with the service's address).
SNIPPET = """<iframe id="qa" src="{base}/embed" title="Questions" style="width:100%;border:0"></iframe>
<script>addEventListener("message",e=>{{if(e.origin==="{base}"&&e.data.type==="qa-embed:height")document.getElementById("qa").style.height=e.data.height+"px"}})</script>"""


class PartnerSite:
    """A page on another origin that frames the widget."""

    def __init__(self, body: str, port: int) -> None:
        page = f"<!doctype html><meta charset='utf-8'><title>Partner</title><h1>Partner news</h1>{body}".encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = port
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def partners(settings_factory, event_id) -> Iterator[tuple[Any, PartnerSite, PartnerSite]]:
    allowed_port, other_port = free_port(), free_port()
    settings = settings_factory(embed_origins=f"http://127.0.0.1:{allowed_port}")
    server = start_server(settings)
    # The service is reached as localhost from the partner pages: another origin than theirs.
    base = server.base.replace("127.0.0.1", "localhost")
    sites = [PartnerSite(SNIPPET.format(base=base), port) for port in (allowed_port, other_port)]
    yield server, sites[0], sites[1]
    for site in sites:
        site.stop()
    server.stop()


def test_the_widget_works_in_an_allowed_partners_page_and_tells_its_height(partners, ctx, new_page) -> None:
    _server, allowed, _other = partners
    page = new_page(viewport={"width": 900, "height": 900})
    page.goto(allowed.url)
    frame = page.frame_locator("#qa")
    expect(frame.locator("#conn")).to_have_attribute("data-state", "live")
    expect(frame.locator("body")).to_have_class("embed")
    expect(frame.locator("#schedule")).to_be_hidden()  # the programme stays on the service's own page
    wait_until(lambda: page.evaluate("document.getElementById('qa').style.height") != "", what="the first height")
    before = int(page.evaluate("parseInt(document.getElementById('qa').style.height)"))
    frame.locator("#q-text").fill("Asked from the partner's site: will the plant export to Kazakhstan?")
    frame.locator("#send").click()
    expect(frame.locator("#mine li").first).to_have_attribute("data-status", "received")
    # The frame grew with its list, and the partner's page followed (no scroll bar inside).
    wait_until(
        lambda: int(page.evaluate("parseInt(document.getElementById('qa').style.height)")) > before,
        what="the partner's frame to grow",
    )
    height = int(page.evaluate("parseInt(document.getElementById('qa').style.height)"))
    inner = frame.locator("html").evaluate("(h) => h.scrollHeight")
    assert abs(height - inner) <= 2, (height, inner)
    with ctx.read() as db:
        texts = [q.text for q in db.exec(select(Question))]
    assert "Asked from the partner's site: will the plant export to Kazakhstan?" in texts
    assert page.js_errors == []


def test_the_widget_is_refused_in_a_page_of_another_origin(partners, new_page) -> None:
    server, allowed, other = partners
    page = new_page()
    refusals: list[str] = []
    page.on("console", lambda m: refusals.append(m.text) if "frame-ancestors" in m.text else None)
    page.goto(other.url)
    wait_until(lambda: refusals, what="the browser to refuse the frame")
    assert page.frame_locator("#qa").locator("#q-text").count() == 0
    # The service's own page is still never framed by anyone.
    own = page.request.get(server.base + "/")
    assert "frame-ancestors 'none'" in own.headers["content-security-policy"]
    embed = page.request.get(server.base + "/embed")
    assert f"frame-ancestors http://127.0.0.1:{allowed.port};" in embed.headers["content-security-policy"]
