"""The report page's strings (locales/report.<lang>.json): every language has every key
with the same placeholders, and every key the page uses exists, those it builds too."""

from __future__ import annotations

import pytest

from qa_service.services import report

from .test_staff_locales import LANGS, placeholders, strings, used_keys


@pytest.mark.parametrize("lang", LANGS[1:])
def test_every_language_has_every_key_with_its_placeholders(lang: str) -> None:
    english, other = strings("report", "en"), strings("report", lang)
    assert sorted(other) == sorted(english)
    for key, text in english.items():
        assert placeholders(other[key]) == placeholders(text), (lang, key)
        assert other[key].strip(), (lang, key)


def test_every_key_the_page_uses_exists() -> None:
    english = set(strings("report", "en"))
    assert used_keys("report") - english == set()
    built = {f"kind.{k}" for k in report.KIND_ORDER}
    built |= {
        f"funnel.{k}" for k in ("asked", "approved", "on_air", "answered", "pending", "rejected", "merged", "hidden")
    }
    built |= {f"status.{s}" for s in ("pending", "approved", "queued", "on_air", "answered", "rejected", "merged")}
    assert built - english == set()


def test_the_console_links_to_the_report() -> None:
    assert "report" in strings("console", "en")
