"""The admin page's strings: every language has every key with the same placeholders,
and every key the page uses exists (the staff screens' rules, tests/test_staff_locales.py)."""

from __future__ import annotations

import pytest

from .test_staff_locales import LANGS, placeholders, strings, used_keys


@pytest.mark.parametrize("lang", LANGS[1:])
def test_every_language_has_every_key_with_its_placeholders(lang: str) -> None:
    english, other = strings("admin", "en"), strings("admin", lang)
    assert sorted(other) == sorted(english)
    for key, text in english.items():
        assert placeholders(other[key]) == placeholders(text), (lang, key)
        assert other[key].strip(), (lang, key)


def test_every_key_the_page_uses_exists() -> None:
    english = strings("admin", "en")
    assert not used_keys("admin") - set(english)
    for s in ("connecting", "live", "reconnecting", "offline", "refused"):
        assert f"conn.{s}" in english
    for s in ("upcoming", "live", "ended"):
        assert f"seg.{s}" in english
