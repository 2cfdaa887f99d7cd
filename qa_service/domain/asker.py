"""Who is asking, for business audiences: the optional fields an event asks of its
viewers (company, country, …) and the "answer me after the event" contact. Pure:
the event file's words in, the stored options out; a viewer's payload in, the
clean values out (or a DomainError a viewer can act on).

Stored options (``Event.options``)::

    {"asker_fields": [{"key": "company", "labels": {"en": "Company", "ru": "Компания"},
                       "max_chars": 80, "required": false}],
     "contact": {"retention_days": 30}}     # absent: the event offers no contact

The e-mail address is kept only with explicit consent (``consent`` true in the same
request), only ``retention_days`` after the event's last segment ends
(services/privacy.purge_contacts), and shown to nobody but the organiser's export.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import DomainError
from .validation import LANGUAGE_CODE, clean_text

MAX_FIELDS = 6
MAX_FIELD_CHARS = 200
DEFAULT_FIELD_CHARS = 80
DEFAULT_CONTACT_DAYS = 30
MAX_CONTACT_DAYS = 365
FIELD_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")
# Enough to catch a typo, not a full RFC 5322 parser: one @, a dot in the domain, no spaces or markup.
EMAIL = re.compile(r"[^@\s<>\"'(),;:\\\[\]]{1,64}@[^@\s<>\"'(),;:\\\[\]]{1,189}\.[^@\s<>\"'(),;:\\\[\].]{2,63}")


def parse_options(doc: dict[str, Any], where: str = "event") -> dict[str, Any]:
    """The options of an event file's ``event:`` mapping (``asker_fields``, ``contact``).
    Raises ValueError naming what is wrong."""
    options: dict[str, Any] = {}
    raw_fields = doc.get("asker_fields") or []
    if not isinstance(raw_fields, list) or len(raw_fields) > MAX_FIELDS:
        raise ValueError(f"{where}.asker_fields: a list of at most {MAX_FIELDS} fields")
    fields: list[dict[str, Any]] = []
    for i, raw in enumerate(raw_fields):
        w = f"{where}.asker_fields[{i}]"
        if isinstance(raw, str):
            raw = {"key": raw}
        if not isinstance(raw, dict):
            raise ValueError(f"{w}: a mapping with key, label and optional max_chars, required")
        key = raw.get("key")
        if not isinstance(key, str) or not FIELD_KEY.fullmatch(key):
            raise ValueError(f"{w}: key must be lower-case letters, digits or _ (such as company)")
        if key in {f["key"] for f in fields}:
            raise ValueError(f"{w}: key {key!r} is given twice")
        labels = raw.get("label", {})
        if isinstance(labels, str):
            labels = {"en": labels}
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and LANGUAGE_CODE.match(k) and isinstance(v, str) and 0 < len(v) <= 100
            for k, v in labels.items()
        ):
            raise ValueError(f"{w}: label is a text, or a mapping of language code to text (at most 100 characters)")
        max_chars = raw.get("max_chars", DEFAULT_FIELD_CHARS)
        if not isinstance(max_chars, int) or isinstance(max_chars, bool) or not 1 <= max_chars <= MAX_FIELD_CHARS:
            raise ValueError(f"{w}: max_chars must be 1 to {MAX_FIELD_CHARS}")
        required = raw.get("required", False)
        if not isinstance(required, bool):
            raise ValueError(f"{w}: required must be true or false")
        fields.append({"key": key, "labels": dict(labels), "max_chars": max_chars, "required": required})
    if fields:
        options["asker_fields"] = fields
    contact = doc.get("contact")
    if contact is True:
        contact = {}
    if contact not in (None, False):
        if not isinstance(contact, dict):
            raise ValueError(f"{where}.contact: true, or a mapping with retention_days")
        days = contact.get("retention_days", DEFAULT_CONTACT_DAYS)
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_CONTACT_DAYS:
            raise ValueError(f"{where}.contact.retention_days must be 1 to {MAX_CONTACT_DAYS}")
        options["contact"] = {"retention_days": days}
    return options


def clean_fields(options: dict[str, Any], raw: object) -> dict[str, str] | None:
    """A viewer's answers to the event's asker fields: only those fields, each a one-line
    text within its limit, the required ones present. None if nothing was given."""
    specs = {f["key"]: f for f in options.get("asker_fields", [])}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise DomainError("question.fields_invalid", "fields must be an object of the event's asker fields")
    unknown = sorted(k for k in raw if k not in specs)
    if unknown:
        raise DomainError(
            "question.field_unknown", f"this event asks no field {unknown[0]!r}", field=unknown[0], known=sorted(specs)
        )
    out: dict[str, str] = {}
    for key, spec in specs.items():
        value = clean_text(raw.get(key), field="field", max_chars=spec["max_chars"], required=False, single_line=True)
        if value is None:
            if spec["required"]:
                raise DomainError("question.field_required", f"{key} is required by this event", field=key)
            continue
        out[key] = value
    return out or None


def clean_contact(options: dict[str, Any], raw: object) -> str | None:
    """The e-mail address of a viewer who wants an answer after the event, only with
    explicit consent; None if the viewer asked for none."""
    if raw is None:
        return None
    if "contact" not in options:
        raise DomainError("question.contact_unavailable", "this event does not offer answers after the event")
    if not isinstance(raw, dict):
        raise DomainError("question.contact_invalid", "contact must be an object with email and consent")
    if raw.get("consent") is not True:
        raise DomainError(
            "question.consent_required", "an e-mail address is kept only with your consent: tick the box to give it"
        )
    email = raw.get("email")
    if not isinstance(email, str) or len(email.strip()) > 254 or not EMAIL.fullmatch(email.strip()):
        raise DomainError("question.email_invalid", "this does not look like an e-mail address (name@example.com)")
    return email.strip()
