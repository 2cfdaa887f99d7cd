"""Checks on untrusted viewer input, before anything is stored."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection

from .errors import DomainError

# C0/C1 controls except tab and newline; also lone surrogates and noncharacters.
_BAD_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_LINE_BREAKS = re.compile("[\n\u2028\u2029]")
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
# Characters that show nothing on their own: format (zero-width space, joiners, BOM,
# tags), combining marks without a base, separators; and letters that render blank.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Mn", "Mc", "Me", "Zs", "Zl", "Zp"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")  # Hangul fillers, Braille blank

# ISO 639-1: the languages a question may declare (besides the event's own, which may
# name others, e.g. a three-letter ISO 639-3 code).
ISO_639_1 = frozenset(
    """aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv
    dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik
    io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn
    mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg
    si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo
    xh yi yo za zh zu""".split()
)

# Integers from clients: ids and versions fit the database's 32-bit integer columns.
MAX_ID = 2_147_483_647
MAX_INDEX = 100_000  # a position in a queue (larger ones would be clamped to its end anyway)
_INT_TEXT = re.compile(r"-?[0-9]{1,20}")  # ASCII digits only: int() also takes "١٢", "1_000" and " 7 "


def check_int(value: object, *, field: str, low: int, high: int, code: str = "request.invalid") -> int:
    """The one range check for integers a client sends (JSON bodies, socket payloads,
    paths and query strings): a bool or an out-of-range number is refused with ``code``,
    never handed to the database (SQLite overflows at 64 bits, PostgreSQL at 32)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise DomainError(code, f"{field} must be an integer", field=field)
    if not low <= value <= high:
        raise DomainError(code, f"{field} must be from {low} to {high}", field=field, low=low, high=high)
    return value


def check_id(value: object, *, field: str, code: str = "request.invalid") -> int:
    """A row id or a question version: 1 to 2,147,483,647."""
    return check_int(value, field=field, low=1, high=MAX_ID, code=code)


def parse_int(text: object, *, field: str, code: str = "request.invalid") -> int:
    """An integer written in a path or query string: an optional minus and 1-20 ASCII digits."""
    if not isinstance(text, str) or not _INT_TEXT.fullmatch(text):
        raise DomainError(code, f"{field} must be an integer", field=field)
    return int(text)


def is_blank(text: str) -> bool:
    """True if nothing of ``text`` would show: only whitespace, zero-width and other
    format characters, combining marks or blank-rendering letters."""
    return not any(
        unicodedata.category(ch) not in _INVISIBLE_CATEGORIES and ch not in _BLANK_LETTERS and not ch.isspace()
        for ch in text
    )


def clean_text(raw: object, *, field: str, max_chars: int, required: bool, single_line: bool = False) -> str | None:
    """Normalise (NFC, trimmed, CRLF → LF) and validate one text field. Text that
    shows nothing (zero-width characters, lone combining marks) counts as empty;
    ``single_line`` refuses line breaks inside it."""
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise DomainError(f"{field}.invalid", f"{field} must be a string")
    raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    if _BAD_CHARS.search(raw):
        raise DomainError(f"{field}.control_chars", f"{field} contains control characters")
    text = unicodedata.normalize("NFC", raw).strip()
    if is_blank(text):
        if required:
            raise DomainError(f"{field}.empty", f"{field} is empty (or made only of invisible characters)")
        return None
    if single_line and _LINE_BREAKS.search(text):
        raise DomainError(f"{field}.line_break", f"{field} must be one line")
    if len(text) > max_chars:
        raise DomainError(
            f"{field}.too_long",
            f"{field} is {len(text)} characters long; the limit is {max_chars}",
            limit=max_chars,
            length=len(text),
        )
    return text


def language_code(raw: object) -> str:
    """A language tag ("pt-BR") reduced to its language ("pt"); the form only."""
    if not isinstance(raw, str) or not LANGUAGE_CODE.match(raw):
        raise DomainError("question.language_invalid", "language must be a code such as 'en' or 'pt-BR'")
    return raw.split("-")[0].lower()


def clean_language(raw: object, also: Collection[str] = ()) -> str:
    """A language tag reduced to its language, which must be an ISO 639-1 code or
    one of ``also`` (the event's own languages)."""
    code = language_code(raw)
    if code not in ISO_639_1 and code not in also:
        raise DomainError(
            "question.language_unknown",
            f"{code!r} is not a known language; use an ISO 639-1 code such as 'en' or one of the event's",
            language=code,
        )
    return code


def clean_country(raw: object) -> str | None:
    """An optional ISO 3166-1 alpha-2 code ("EG"); anything else is dropped, not refused:
    it comes from the browser's locale, not from the viewer's typing."""
    if isinstance(raw, str) and re.fullmatch(r"[A-Za-z]{2}", raw):
        return raw.upper()
    return None


def clean_client_id(raw: object) -> str:
    if not isinstance(raw, str) or not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", raw):
        raise DomainError("question.client_id_invalid", "client_id must be 8-64 characters of [A-Za-z0-9_-]")
    return raw
