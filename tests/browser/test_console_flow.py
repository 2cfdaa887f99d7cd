"""The moderation console while questions pour in: every scroll stays where the
moderator put it and every click lands on the card it was aimed at."""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from qa_service.services import questions

from ..support import wait_until
from .conftest import doc_shot
from .test_console import open_console

pytestmark = [pytest.mark.browser, pytest.mark.integration]

RATE = 10  # questions per second
FLOOD_SECONDS = 30


class Flood:
    """Asks RATE questions a second, and approves or re-translates older ones
    (cards change under the pointer), in a thread, until stopped."""

    def __init__(self, ctx: Any, event_id: int, speaker_id: int) -> None:
        self.ctx, self.event_id, self.speaker_id = ctx, event_id, speaker_id
        self.asked: list[int] = []
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def ask(self, n: int) -> int:
        payload = {
            "client_id": uuid.uuid4().hex,
            "speaker_id": self.speaker_id,
            "text": f"Question {n}: how will the plant change the region's economy next year?" + " More." * (n % 9),
            "language": "en",
            "display_name": f"Asker {n}",
        }
        qid = int(questions.ask(self.ctx, self.event_id, f"viewer-{n:04d}", payload).question["id"])
        self.asked.append(qid)
        return qid

    def run(self) -> None:
        rng = random.Random(7)
        n = first = len(self.asked)
        started = time.monotonic()
        try:
            while not self.stop.is_set():
                n += 1
                self.ask(n)
                if n % 3 == 0:  # another moderator at work: cards in view change status
                    old = rng.choice(self.asked[:-5])
                    q = self.current(old)
                    if q["status"] == "pending":
                        questions.moderate(
                            self.ctx, self.event_id, old, "approve", "mod2", expected_version=q["version"]
                        )
                self.stop.wait(max(0.0, started + (n - first) / RATE - time.monotonic()))
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)

    def current(self, qid: int) -> dict[str, Any]:
        from qa_service.db.models import Question

        with self.ctx.read() as db:
            q = db.get(Question, qid)
            assert q is not None
            return {"status": q.status, "version": q.version}


def visible_cards(page: Any) -> list[dict[str, Any]]:
    """Cards fully inside the list's visible box: id and the centre of their text area."""
    return page.evaluate(
        """() => {
          const box = document.getElementById('list').getBoundingClientRect();
          return [...document.querySelectorAll('#questions li.card:not(.left)')].map((li) => {
            const r = li.querySelector('.texts').getBoundingClientRect();
            const c = li.querySelector('input.pick').getBoundingClientRect();
            return {id: Number(li.dataset.id), top: li.getBoundingClientRect().top, bottom: li.getBoundingClientRect().bottom,
                    x: r.left + 30, y: r.top + r.height / 2, cx: c.left + c.width / 2, cy: c.top + c.height / 2};
          }).filter((c) => c.top >= box.top && c.bottom <= box.bottom);
        }"""
    )


def settled_scroll(page: Any) -> float:
    """The list's scroll position once a wheel's smooth scrolling has ended."""
    last = None
    for _ in range(40):
        page.wait_for_timeout(60)
        now = page.evaluate("document.getElementById('list').scrollTop")
        if now == last:
            return float(now)
        last = now
    raise AssertionError("the list never stopped scrolling")


def test_scrolls_and_clicks_land_while_ten_questions_a_second_arrive(server, ctx, event_id, sample, new_page) -> None:
    speaker = sample["speakers"]["moscow"][1].id
    flood = Flood(ctx, event_id, speaker)
    for n in range(60):  # enough for the list to scroll
        flood.ask(n)
    page = open_console(new_page, server.base)
    expect(page.locator(f"#questions li[data-id='{flood.asked[-1]}']")).to_be_attached()
    rng = random.Random(11)
    clicks = boxes = scrolls = 0
    flood.thread.start()
    try:
        deadline = time.monotonic() + FLOOD_SECONDS
        list_box = page.locator("#list").bounding_box()
        assert list_box is not None
        while time.monotonic() < deadline:
            page.mouse.move(list_box["x"] + list_box["width"] / 2, list_box["y"] + list_box["height"] / 2)
            start, delta = settled_scroll(page), rng.choice([-900, -400, 300, 700, 1200])
            page.mouse.wheel(0, delta)
            before = settled_scroll(page)
            bottom = page.evaluate(
                "(() => { const l = document.getElementById('list'); return l.scrollHeight - l.clientHeight; })()"
            )
            assert abs(before - min(max(start + delta, 0), bottom)) < 2, f"scrolled from {start} by {delta} to {before}"
            page.wait_for_timeout(250)  # events keep arriving meanwhile
            after = page.evaluate("document.getElementById('list').scrollTop")
            assert abs(after - before) < 2, f"the list moved by itself from {before} to {after}"
            scrolls += 1
            cards = visible_cards(page)
            assert cards, "no card in view"
            target = rng.choice(cards)
            if rng.random() < 0.5:
                page.mouse.click(target["x"], target["y"])
                assert page.evaluate("state.selected") == target["id"], f"a click aimed at #{target['id']} missed"
                clicks += 1
            else:
                was = page.evaluate(f"state.checked.has({target['id']})")
                page.mouse.click(target["cx"], target["cy"])
                now = page.evaluate(f"state.checked.has({target['id']})")
                assert now is not was, f"the checkbox of #{target['id']} missed"
                assert page.locator(f"#questions li[data-id='{target['id']}'] input.pick").is_checked() is now
                boxes += 1
    finally:
        flood.stop.set()
        flood.thread.join(10)
    assert not flood.errors, flood.errors
    assert len(flood.asked) >= 60 + RATE * FLOOD_SECONDS * 0.8
    assert clicks >= 10 and boxes >= 10 and scrolls >= 30
    # The newest questions are all there (appended, counted as new while out of view).
    last = flood.asked[-1]
    expect(page.locator(f"#questions li[data-id='{last}']")).to_be_attached()
    page.evaluate("document.getElementById('list').scrollTop = 0")
    expect(page.locator("#new-pill")).to_be_visible()
    doc_shot(page, "console-flood")
    unseen = page.evaluate("view.unseen.size")
    first = page.evaluate("Math.min(...view.unseen)")
    assert unseen > 0 and page.locator("#new-pill").inner_text() == f"↓ {unseen} new"
    page.locator("#new-pill").click()
    wait_until(lambda: page.evaluate("view.unseen.size") < unseen, what="the new questions scrolled to")
    expect(page.locator(f"#questions li[data-id='{first}']")).to_be_in_viewport()
    assert page.js_errors == []
