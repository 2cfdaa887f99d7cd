"""The event's asker fields and the contact offer: the event file's words in, clean values out."""

from __future__ import annotations

from typing import Any

import pytest

from qa_service.domain import asker
from qa_service.domain.errors import DomainError

OPTIONS = asker.parse_options(
    {
        "asker_fields": ["company", {"key": "city", "label": {"en": "City", "ru": "Город"}, "required": True}],
        "contact": True,
    }
)


def test_options_are_read_with_their_defaults() -> None:
    assert OPTIONS == {
        "asker_fields": [
            {"key": "company", "labels": {}, "max_chars": 80, "required": False},
            {"key": "city", "labels": {"en": "City", "ru": "Город"}, "max_chars": 80, "required": True},
        ],
        "contact": {"retention_days": 30},
    }
    assert asker.parse_options({}) == {}
    assert asker.parse_options({"contact": False, "asker_fields": []}) == {}


@pytest.mark.parametrize(
    "doc, words",
    [
        ({"asker_fields": "company"}, "a list"),
        ({"asker_fields": [{"key": "Company"}]}, "lower-case"),
        ({"asker_fields": ["company", "company"]}, "twice"),
        ({"asker_fields": [{"key": "company", "max_chars": 0}]}, "max_chars"),
        ({"asker_fields": [{"key": "company", "label": {"english": "x"}}]}, "language code"),
        ({"asker_fields": [{"key": "company", "required": "yes"}]}, "true or false"),
        ({"asker_fields": [f"f{i}" for i in range(7)]}, "at most 6"),
        ({"contact": {"retention_days": 0}}, "retention_days"),
        ({"contact": "yes"}, "contact"),
    ],
)
def test_a_bad_option_is_named(doc: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        asker.parse_options(doc)


def test_fields_are_cleaned_and_checked_against_the_event() -> None:
    assert asker.clean_fields(OPTIONS, {"company": "  Uralmash ", "city": "Perm"}) == {
        "company": "Uralmash",
        "city": "Perm",
    }
    assert asker.clean_fields({}, None) is None
    cases = [
        ({"city": ""}, "question.field_required"),
        ({"company": "x"}, "question.field_required"),
        ({"city": "Perm", "salary": "1"}, "question.field_unknown"),
        ({"city": "Perm\nLine two"}, "field.line_break"),
        ({"city": "x" * 81}, "field.too_long"),
        ({"city": 42}, "field.invalid"),
        (["city"], "question.fields_invalid"),
    ]
    for raw, code in cases:
        with pytest.raises(DomainError) as err:
            asker.clean_fields(OPTIONS, raw)
        assert err.value.code == code, raw


def test_an_address_is_kept_only_with_consent_and_only_where_offered() -> None:
    assert asker.clean_contact(OPTIONS, {"email": " ana@example.org ", "consent": True}) == "ana@example.org"
    assert asker.clean_contact(OPTIONS, None) is None
    cases = [
        ({"email": "ana@example.org"}, "question.consent_required"),
        ({"email": "ana@example.org", "consent": "true"}, "question.consent_required"),
        ({"email": "ana@example", "consent": True}, "question.email_invalid"),
        ({"email": "<script>@x.org", "consent": True}, "question.email_invalid"),
        ({"email": "a b@example.org", "consent": True}, "question.email_invalid"),
        ("ana@example.org", "question.contact_invalid"),
    ]
    for raw, code in cases:
        with pytest.raises(DomainError) as err:
            asker.clean_contact(OPTIONS, raw)
        assert err.value.code == code, raw
    with pytest.raises(DomainError) as err:
        asker.clean_contact({}, {"email": "ana@example.org", "consent": True})
    assert err.value.code == "question.contact_unavailable"
