"""Why a question ended untranslated: a stable code stored with the question, and a
sentence for people that names the action which fixes it.

The worker stores the code (``Question.translation_error``, at most 300 characters);
the raw engine text goes to the worker's log, never to the database or a screen.
Stored forms::

    no_model:ar>de,zh>uz/ru;ar zh   no language pack for these pairs (a "/" lists the
                                    alternatives any one of which would do); after ";"
                                    the codes `qa-service models install` needs
    too_long                        the text is longer than the model can take
    engine_failed                   the engine failed, timed out or its worker died,
                                    on every attempt
    gone                            its speaker, studio or event no longer exists

Anything else (rows written before these codes: free engine text) reads as
``engine_failed``, and its text is never shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

NO_MODEL = "no_model"
TOO_LONG = "too_long"
ENGINE_FAILED = "engine_failed"
GONE = "gone"
CODES = (NO_MODEL, TOO_LONG, ENGINE_FAILED, GONE)
MAX_STORED = 300  # the column's length

_CODE = re.compile(r"[a-z]{2,3}")
_GAP = re.compile(r"([a-z]{2,3})>([a-z]{2,3}(?:/[a-z]{2,3})*)")

# English names of the languages Argos Translate packages cover (and a few more);
# another code is shown as is.
NAMES = {
    "ar": "Arabic",
    "az": "Azerbaijani",
    "bg": "Bulgarian",
    "bn": "Bengali",
    "ca": "Catalan",
    "cs": "Czech",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "eo": "Esperanto",
    "es": "Spanish",
    "et": "Estonian",
    "eu": "Basque",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "ga": "Irish",
    "gl": "Galician",
    "he": "Hebrew",
    "hi": "Hindi",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "kk": "Kazakh",
    "ko": "Korean",
    "ky": "Kyrgyz",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "ms": "Malay",
    "nb": "Norwegian",
    "nl": "Dutch",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sk": "Slovak",
    "sl": "Slovenian",
    "sq": "Albanian",
    "sr": "Serbian",
    "sv": "Swedish",
    "th": "Thai",
    "tl": "Tagalog",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "ur": "Urdu",
    "uz": "Uzbek",
    "vi": "Vietnamese",
    "zh": "Chinese",
    "zt": "Chinese (traditional)",
}


def name(code: str) -> str:
    return NAMES.get(code, code)


def _simplest(gaps: Iterable[tuple[str, Iterable[str]]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The gaps without those another one implies: "ar to ru or en" (the speaker's) goes
    when "ar to ru" (the moderators') is there too, since the pack for the one closes both."""
    unique: list[tuple[str, tuple[str, ...]]] = []
    for src, targets in gaps:
        gap = (src, tuple(dict.fromkeys(targets)))
        if gap not in unique:
            unique.append(gap)
    return tuple(
        (src, targets)
        for src, targets in unique
        if not any(o != (src, targets) and o[0] == src and set(o[1]) <= set(targets) for o in unique)
    )


@dataclass(frozen=True)
class Problem:
    code: str
    # No model: each gap is a source and the targets any one of which would do.
    gaps: tuple[tuple[str, tuple[str, ...]], ...] = ()
    install: tuple[str, ...] = ()  # codes for `qa-service models install`

    @classmethod
    def no_model(cls, gaps: Iterable[tuple[str, Iterable[str]]], install: Iterable[str]) -> Problem:
        return cls(NO_MODEL, _simplest(gaps), tuple(install))

    @classmethod
    def parse(cls, stored: str | None) -> Problem | None:
        """The problem a stored value names (None: none stored). Free text written
        before these codes existed reads as engine_failed."""
        if not stored:
            return None
        if stored in (TOO_LONG, ENGINE_FAILED, GONE):
            return cls(stored)
        head, _, tail = stored.partition(":")
        if head != NO_MODEL:
            return cls(ENGINE_FAILED)
        gaps_text, _, codes = tail.partition(";")
        gaps = _simplest((m[1], m[2].split("/")) for m in _GAP.finditer(gaps_text))
        return cls(NO_MODEL, gaps, tuple(c for c in codes.split() if _CODE.fullmatch(c)))

    def stored(self) -> str:
        """The value to store: at most ``MAX_STORED`` characters (the gaps that do not
        fit are left out, the install codes never), still parseable."""
        if self.code != NO_MODEL:
            return self.code
        suffix = f";{' '.join(self.install)}" if self.install else ""
        gaps = [f"{src}>{'/'.join(targets)}" for src, targets in self.gaps]
        while gaps and len(f"{NO_MODEL}:{','.join(gaps)}{suffix}") > MAX_STORED:
            gaps.pop()
        return f"{NO_MODEL}:{','.join(gaps)}{suffix}"[:MAX_STORED]

    @property
    def pairs(self) -> list[list[str]]:
        """Every (source, target) pair a language pack would close, in order."""
        return [[src, dst] for src, targets in self.gaps for dst in targets]

    @property
    def command(self) -> str | None:
        return f"qa-service models install {' '.join(self.install)}" if self.install else None

    def sentence(self) -> str:
        """What went wrong and what fixes it, in plain English."""
        if self.code == NO_MODEL:
            routes = " and ".join(
                f"{name(src)} to {' or '.join(name(t) for t in targets)}" for src, targets in self.gaps
            )
            what = f"No language pack translates {routes or 'this language'}."
            if self.command:
                return f"{what} Install one with: {self.command} — or write the translation by hand."
            return f"{what} Write the translation by hand."
        if self.code == TOO_LONG:
            return "Too long for the translation model. Write the translation by hand."
        if self.code == GONE:
            return "Not translated: its speaker, studio or event no longer exists."
        return (
            "The translation engine failed on this question, on every try. "
            "Re-translate it, or write the translation by hand."
        )

    def view(self) -> dict[str, Any]:
        """What the moderator console gets, to say it in the moderator's own language."""
        return {"code": self.code, "pairs": self.pairs, "command": self.command}
