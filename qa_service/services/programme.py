"""The programme in the viewers' languages: studio names, segment titles, speaker titles.

A record's ``i18n`` column holds ``{field: {language: {"text", "machine", "source"}}}``.
Translations written in the event file have ``machine: false``; the translation
workers fill the gaps (workers/programme.py) with ``machine: true`` and ``source``,
a short hash of the text they translated, so a reload re-translates only what
changed and a machine translation of an old text is never shown. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from typing import Any

# What may be translated in the event file, per record; what the workers translate.
GIVEN = {"studio": ("name", "city", "country"), "segment": ("title",), "speaker": ("title", "organisation")}
MACHINE = {"studio": ("name", "city", "country"), "segment": ("title",), "speaker": ("title",)}


def source_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def merge(old: dict[str, Any], given: dict[str, dict[str, str]], originals: dict[str, str]) -> dict[str, Any]:
    """The new ``i18n`` of a record at load: the file's translations (``given``:
    {language: {field: text}}), and the machine ones still true to their original."""
    out: dict[str, dict[str, Any]] = {}
    for field, by_lang in (old or {}).items():
        current = source_hash(originals.get(field, ""))
        for lang, entry in (by_lang or {}).items():
            if isinstance(entry, dict) and entry.get("machine") and entry.get("source") == current:
                out.setdefault(field, {})[lang] = entry
    for lang, fields in given.items():
        for field, text in fields.items():
            out.setdefault(field, {})[lang] = {"text": text, "machine": False}
    return out


def missing(i18n: dict[str, Any], field: str, text: str, lang: str) -> bool:
    """Whether ``field`` (now ``text``) still needs a machine translation into ``lang``."""
    entry = (i18n or {}).get(field, {}).get(lang)
    if not isinstance(entry, dict):
        return True
    return bool(entry.get("machine")) and entry.get("source") != source_hash(text)


def with_machine(i18n: dict[str, Any], field: str, lang: str, text: str, translated: str) -> dict[str, Any]:
    """A copy of ``i18n`` with a machine translation of ``text`` into ``lang``."""
    out = {f: dict(v) for f, v in (i18n or {}).items()}
    out.setdefault(field, {})[lang] = {"text": translated, "machine": True, "source": source_hash(text)}
    return out


def public(i18n: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """What viewers see: {field: {language: {"text", "machine"}}}."""
    return {
        field: {
            lang: {"text": e["text"], "machine": bool(e.get("machine"))}
            for lang, e in by_lang.items()
            if isinstance(e, dict) and isinstance(e.get("text"), str)
        }
        for field, by_lang in (i18n or {}).items()
        if isinstance(by_lang, dict)
    }
