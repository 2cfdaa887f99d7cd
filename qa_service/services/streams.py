"""The broadcast in each language: stream specs from the event file, and the origins
the viewer page's CSP must admit to play them.

A studio or a segment may list, per language, an HLS playlist (``{"hls": url}``) or
an embeddable player (``{"embed": url}``); a segment's list replaces its studio's.
The first language listed is the original. URLs are checked strictly here, once,
because their origins go into a Content-Security-Policy header.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, select

from ..db.models import Segment, Studio
from ..domain.validation import LANGUAGE_CODE

log = logging.getLogger(__name__)
KINDS = ("hls", "embed")
MAX_URL = 2000
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*")
_URL_CHARS = re.compile(r"[!#$&-;=?-\[\]_a-z~%]+", re.IGNORECASE)  # RFC 3986, printable ASCII only


class StreamError(ValueError):
    """A stream spec the event file must not hold; the message names what is wrong."""


def check_url(url: object) -> str:
    """An absolute http(s) URL with a plain host name or IPv4 address (CSP cannot name an
    IPv6 literal), no credentials, nothing a header could be split by."""
    if not isinstance(url, str) or not url:
        raise StreamError("a stream URL must be a non-empty string")
    if len(url) > MAX_URL or not _URL_CHARS.fullmatch(url) or "'" in url or ";" in url or "," in url:
        raise StreamError(f"{url[:80]!r} is not a plain URL (printable ASCII, no quotes, ';' or ',')")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise StreamError(f"{url!r}: only http and https streams are allowed")
    if parts.username is not None or parts.password is not None or not parts.hostname:
        raise StreamError(f"{url!r}: needs a host name, and no user or password")
    if not _HOST.fullmatch(parts.hostname):
        raise StreamError(f"{url!r}: the host must be a name or an IPv4 address")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise StreamError(f"{url!r}: bad port") from None
    return url


def origin(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port not in (None, default) else ""
    return f"{parts.scheme}://{(parts.hostname or '').lower()}{port}"


def parse(value: Any) -> dict[str, dict[str, str]]:
    """``streams:`` of a studio or segment: {language: url.m3u8 | {hls: url} | {embed: url}},
    plus optionally ``original: <language>`` (else the first listed is the original).
    Returns {language: {kind: url}}, the original first."""
    if not isinstance(value, dict) or not value:
        raise StreamError("streams must be a mapping of languages to a URL, e.g. {en: https://…/en.m3u8}")
    original = value.get("original")
    out: dict[str, dict[str, str]] = {}
    for lang, spec in value.items():
        if lang == "original":
            continue
        if not isinstance(lang, str) or not LANGUAGE_CODE.match(lang):
            raise StreamError(f"{lang!r} is not a language code such as en or pt-BR")
        if isinstance(spec, str):
            if not urlsplit(spec).path.endswith(".m3u8"):
                raise StreamError(f"{lang}: {spec!r} is not an HLS playlist (.m3u8); write {{embed: URL}} for a player")
            out[lang.lower()] = {"hls": check_url(spec)}
        elif isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in KINDS:
            kind, url = next(iter(spec.items()))
            try:
                out[lang.lower()] = {kind: check_url(url)}
            except StreamError as exc:
                raise StreamError(f"{lang}: {exc}") from None
        else:
            raise StreamError(f"{lang}: write a URL ending .m3u8, or {{hls: URL}} or {{embed: URL}}")
    if not out:
        raise StreamError("streams lists no language")
    if original is not None:
        if not isinstance(original, str) or original.lower() not in out:
            raise StreamError(f"original: {original!r} is not one of the languages listed ({', '.join(out)})")
        first = original.lower()
        out = {first: out[first], **{k: v for k, v in out.items() if k != first}}
    return out


def as_list(streams: dict[str, Any]) -> list[dict[str, str]]:
    """The public form: [{"language", "hls" | "embed"}], the original first."""
    return [{"language": lang, **spec} for lang, spec in streams.items() if isinstance(spec, dict)]


def sources(db: Session, event_id: int) -> tuple[list[str], list[str]]:
    """The origins of the event's HLS streams and of its embedded players, sorted."""
    media: set[str] = set()
    frames: set[str] = set()
    rows = [
        *db.exec(select(Studio.streams).where(Studio.event_id == event_id)),
        *db.exec(select(Segment.streams).where(Segment.event_id == event_id)),
    ]
    for streams in rows:
        for spec in (streams or {}).values():
            for kind, url in spec.items() if isinstance(spec, dict) else ():
                try:
                    (media if kind == "hls" else frames).add(origin(check_url(url)))
                except StreamError as exc:  # never from the loader: a row edited by hand
                    log.warning("stream not admitted to the viewer page's CSP: %s", exc)
    return sorted(media), sorted(frames)
