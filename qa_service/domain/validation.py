"""Checks on untrusted viewer input, before anything is stored."""

from __future__ import annotations

import re
import unicodedata

from .errors import DomainError

# C0/C1 controls except tab and newline; also lone surrogates and noncharacters.
_BAD_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


def clean_text(raw: object, *, field: str, max_chars: int, required: bool) -> str | None:
    """Normalise (NFC, trimmed, CRLF → LF) and validate one text field."""
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise DomainError(f"{field}.invalid", f"{field} must be a string")
    raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    if _BAD_CHARS.search(raw):
        raise DomainError(f"{field}.control_chars", f"{field} contains control characters")
    text = unicodedata.normalize("NFC", raw).strip()
    if not text:
        if required:
            raise DomainError(f"{field}.empty", f"{field} is empty")
        return None
    if len(text) > max_chars:
        raise DomainError(
            f"{field}.too_long",
            f"{field} is {len(text)} characters long; the limit is {max_chars}",
            limit=max_chars,
            length=len(text),
        )
    return text


def clean_language(raw: object) -> str:
    if not isinstance(raw, str) or not LANGUAGE_CODE.match(raw):
        raise DomainError("question.language_invalid", "language must be a code such as 'en' or 'pt-BR'")
    return raw.split("-")[0].lower()


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
