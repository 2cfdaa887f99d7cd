"""The /staff page in real headless Chromium: an admin disables a moderator whose
console is open in another browser, and that console falls back to its login; a host
link issued there carries a QR code that reads back (decoded from the canvas's
pixels, tests/browser/qr_decode.py) as the link, the link opens the studio display,
and revoking it turns that display to "link revoked". In English and Arabic."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from qa_service.services import accounts

from ..conftest import MOD_PASSWORD
from ..support import SCALE, start_server
from .conftest import doc_shot, shot
from .qr_decode import decode

pytestmark = [pytest.mark.browser, pytest.mark.integration]

LOCALES = Path(__file__).resolve().parents[2] / "moderator_ui" / "static" / "locales"
ADMIN_PASSWORD = "admin-password"
RECHECK = 0.5  # seconds: QA_ACCESS_RECHECK_SECONDS for these tests
WAIT_MS = int(10_000 * SCALE)


def strings(screen: str, lang: str) -> dict[str, str]:
    return dict(json.loads((LOCALES / f"{screen}.{lang}.json").read_text(encoding="utf-8")))


@pytest.fixture
def srv(settings_factory: Any, ctx: Any, event_id: int) -> Iterator[Any]:
    accounts.add_user(ctx, "boss", ADMIN_PASSWORD, "admin")
    server = start_server(settings_factory(access_recheck_seconds=RECHECK))
    yield server
    server.stop()


def log_in(page: Any, base: str, path: str, username: str, password: str) -> Any:
    page.goto(base + path)
    page.fill("#login-user", username)
    page.fill("#login-pass", password)
    page.click("#login-form button[type=submit]")
    return page


def qr_text(page: Any, canvas: Any) -> str:
    """Read the QR code off the canvas's pixels (module centres) and decode it."""
    matrix = canvas.evaluate(
        """(c) => {
          const n = Number(c.dataset.modules), s = Number(c.dataset.scale), quiet = 4;
          const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          const dark = (x, y) => px[(y * c.width + x) * 4] < 128;
          // The quiet zone is white all round, as a camera needs it.
          for (let i = 0; i < c.width; i += 1) if (dark(i, 1) || dark(1, i)) return null;
          const rows = [];
          for (let r = 0; r < n; r += 1) {
            const row = [];
            for (let k = 0; k < n; k += 1) row.push(dark((k + quiet) * s + (s >> 1), (r + quiet) * s + (s >> 1)));
            rows.push(row);
          }
          return rows;
        }"""
    )
    assert matrix is not None, "the QR code has no white quiet zone"
    return decode(matrix)


def test_a_disabled_moderators_open_console_is_logged_out(srv: Any, new_page: Any) -> None:
    console = log_in(new_page(), srv.base, "/moderate", "mod1", MOD_PASSWORD)
    expect(console.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(console.locator("#staff-link")).to_be_hidden()  # a moderator gets no link to /staff

    staff = log_in(new_page(), srv.base, "/staff", "boss", ADMIN_PASSWORD)
    row = staff.locator('#accounts tr[data-username="mod1"]')
    expect(row).to_contain_text("Active")
    expect(row.locator("td.num")).to_have_text("1")  # the console's session
    expect(staff.locator('#accounts tr[data-username="boss"] button.disable')).to_have_count(0)  # not oneself
    row.locator("button.disable").click()
    expect(staff.locator("#confirm-text")).to_contain_text("mod1")
    staff.click("#confirm-ok")
    expect(row).to_contain_text("Disabled")
    expect(row.locator("td.num")).to_have_text("0")

    # Within the access re-check interval the console's socket is closed (4401) and it shows the login.
    expect(console.locator("#login")).to_be_visible(timeout=WAIT_MS)
    expect(console.locator("#app")).to_be_hidden()
    log_in(console, srv.base, "/moderate", "mod1", MOD_PASSWORD)
    expect(console.locator("#login-error")).to_be_visible()  # and it cannot log in again

    # A moderator who opens /staff is told it is for admins; an admin's console links to it.
    other = log_in(new_page(), srv.base, "/staff", "mod2", MOD_PASSWORD)
    expect(other.locator("#forbidden")).to_be_visible()
    expect(other.locator("#forbidden h1")).to_have_text("Admins only")
    expect(other.locator("#app")).to_be_hidden()
    admin_console = log_in(new_page(), srv.base, "/moderate", "boss", ADMIN_PASSWORD)
    expect(admin_console.locator("#staff-link")).to_be_visible(timeout=WAIT_MS)
    admin_console.locator("#staff-link button").click()
    expect(admin_console).to_have_url(re.compile(re.escape(srv.base) + r"/staff\??$"))  # a GET form adds "?"
    for page in (console, staff, other, admin_console):
        assert page.js_errors == []


def test_a_host_link_issued_on_staff_reads_from_its_qr_opens_the_display_and_revoking_closes_it(
    srv: Any, sample: Any, new_page: Any
) -> None:
    staff = log_in(new_page(viewport={"width": 1440, "height": 900}), srv.base, "/staff", "boss", ADMIN_PASSWORD)
    studio = staff.locator('.studio[data-studio="moscow"]')
    expect(studio).to_be_visible()
    expect(studio.locator(".none")).to_be_visible()
    studio.locator(".issue-label").fill("Main screen")
    studio.locator(".issue-hours").fill("6")
    studio.locator(".issue button[type=submit]").click()
    item = studio.locator(".link-item")
    expect(item).to_have_count(1)
    expect(item.locator(".link-state")).to_have_text("open")
    url = item.locator(".link-url").input_value()
    assert url.startswith(srv.base + "/host/")

    assert qr_text(staff, item.locator("canvas.qr")) == url
    item.locator("button.large").click()
    expect(staff.locator("#large-dlg")).to_be_visible()
    assert qr_text(staff, staff.locator("#large-qr")) == url
    assert staff.locator("#large-qr").bounding_box()["width"] >= 400  # big enough to scan across a room
    shot(staff, "admin-staff-qr-large")
    staff.keyboard.press("Escape")

    # A second link to the same studio, issued until a date and time.
    studio.locator(".issue-label").fill("Backup laptop")
    studio.locator('.issue-mode[value="until"]').check()
    studio.locator(".issue-until").fill("2099-01-01T10:00")
    studio.locator(".issue button[type=submit]").click()
    expect(studio.locator(".error")).to_have_count(0)
    expect(staff.locator("#secret")).to_contain_text("a year")  # refused: at most a year ahead
    staff.click("#secret-close")
    studio.locator('.issue-mode[value="hours"]').check()
    studio.locator(".issue-hours").fill("24")
    studio.locator(".issue button[type=submit]").click()
    expect(studio.locator(".link-item")).to_have_count(2)
    doc_shot(staff, "admin-staff")

    host = new_page(viewport={"width": 1280, "height": 720})
    host.goto(url)
    expect(host.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    first = studio.locator(".link-item", has_text="Main screen")
    first.locator("button.revoke").click()
    staff.click("#confirm-ok")
    expect(first.locator(".link-state")).to_have_text("revoked")
    expect(first.locator("canvas.qr")).to_have_count(0)  # a revoked link shows no code and no URL
    expect(host.locator("#conn")).to_have_attribute("data-state", "refused", timeout=WAIT_MS)
    # The Moscow display speaks its host's language, Russian.
    expect(host.locator("#conn")).to_have_text(strings("host", "ru")["state_refused"])
    other_url = studio.locator(".link-item", has_text="Backup").locator(".link-url").input_value()
    again = new_page()
    again.goto(other_url)
    expect(again.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    for page in (staff, host, again):
        assert page.js_errors == []


def test_the_staff_page_in_arabic_reads_right_to_left(srv: Any, sample: Any, new_page: Any) -> None:
    page = new_page(locale="ar", viewport={"width": 1440, "height": 900})
    log_in(page, srv.base, "/staff", "boss", ADMIN_PASSWORD)
    ar = strings("staff", "ar")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("#links-h")).to_have_text(ar["host_links"])
    page.fill("#add-name", "layla")
    page.select_option("#add-role", "host")
    page.click("#add-form button[type=submit]")
    expect(page.locator("#secret")).to_contain_text(ar["password_of"].split("{")[0].strip())
    password = page.locator("#secret-value").text_content() or ""
    assert len(password) >= 16
    expect(page.locator('#accounts tr[data-username="layla"]')).to_contain_text(ar["role.host"])
    studio = page.locator('.studio[data-studio="moscow"]')
    studio.locator(".issue-label").fill("الشاشة الرئيسية")
    studio.locator(".issue button[type=submit]").click()
    expect(studio.locator(".link-item .link-state")).to_have_text(ar["state.open"])
    # Right to left: the QR code sits at the right of its link, the URL still reads left to right.
    box = studio.locator(".link-item canvas.qr").bounding_box()
    body = studio.locator(".link-item .link-body").bounding_box()
    assert box["x"] > body["x"]
    assert studio.locator(".link-url").evaluate("e => getComputedStyle(e).direction") == "ltr"
    page.evaluate("window.scrollTo(0, 0)")
    doc_shot(page, "admin-staff-ar")
    assert page.js_errors == []
