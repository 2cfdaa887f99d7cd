"""A real headless Chromium (Debian's) driven by Playwright. Screenshots go to
test-artifacts/screenshots/ and are kept."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# The screenshots the README links to. A test run leaves the checkout as it was: they are
# written into docs/screens/ only with QA_UPDATE_SCREENS=1, else next to the others.
SCREENS = (
    Path(__file__).resolve().parents[2] / "docs" / "screens"
    if os.environ.get("QA_UPDATE_SCREENS") == "1"
    else ARTIFACTS.parent / "docs-screens"
)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def make(locale: str = "en-US", viewport: dict[str, int] | None = None) -> Any:
        ctx = browser.new_context(locale=locale, viewport=viewport or {"width": 1366, "height": 768})
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors  # type: ignore[attr-defined]
        return page

    yield make
    for ctx in contexts:
        ctx.close()


def shot(page: Any, name: str, *, transparent: bool = False) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False, omit_background=transparent)
    return path


def doc_shot(page: Any, name: str, **kwargs: Any) -> Path:
    """A screenshot for the docs (see SCREENS), also kept with the others."""
    path = shot(page, name, **kwargs)
    SCREENS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENS / f"{name}.png")
    return path


@pytest.fixture
def db_url(sql_templates: dict[str, Any], tmp_path: Path) -> str:
    """Browser journeys run on SQLite only: the services under them are tested on
    both databases, and a browser adds nothing database-specific."""
    target = tmp_path / "qa.sqlite3"
    shutil.copy(sql_templates["sqlite"], target)
    return f"sqlite:///{target}"
