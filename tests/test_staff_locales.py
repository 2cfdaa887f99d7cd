"""The staff screens' strings: every language has every key with the same
placeholders, and every key the pages use exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[1] / "moderator_ui" / "static"
LANGS = ["en", "ru", "zh", "id", "uz", "ar", "de", "fr", "es"]
SCREENS = ["console", "host", "staff"]


def strings(screen: str, lang: str) -> dict[str, str]:
    return json.loads((STATIC / "locales" / f"{screen}.{lang}.json").read_text(encoding="utf-8"))


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("lang", LANGS[1:])
def test_every_language_has_every_key_with_its_placeholders(screen: str, lang: str) -> None:
    english, other = strings(screen, "en"), strings(screen, lang)
    assert sorted(other) == sorted(english)
    for key, text in english.items():
        assert placeholders(other[key]) == placeholders(text), (lang, key)
        assert other[key].strip(), (lang, key)


def used_keys(screen: str) -> set[str]:
    html = (STATIC / f"{screen}.html").read_text(encoding="utf-8")
    js = (STATIC / f"{screen}.js").read_text(encoding="utf-8")
    keys = set(re.findall(r'data-i18n(?:-[a-z]+)?="([^"]+)"', html))
    keys |= set(re.findall(r'\bt\("([a-z_][a-z0-9_.]*)"', js))
    return keys


@pytest.mark.parametrize("screen", SCREENS)
def test_every_key_the_page_uses_exists(screen: str) -> None:
    missing = used_keys(screen) - set(strings(screen, "en"))
    assert not missing


def test_every_status_and_connection_state_has_a_word() -> None:
    english = strings("console", "en")
    for status in ("pending", "approved", "queued", "on_air", "answered", "rejected", "merged"):
        assert f"status.{status}" in english
    for s in ("connecting", "live", "reconnecting", "offline", "refused"):
        assert f"conn.{s}" in english
    for reason in ("duplicate", "off_topic", "answered", "inappropriate", "no_time"):
        assert f"reason.{reason}" in english
