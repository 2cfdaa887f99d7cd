from __future__ import annotations

import pytest

from qa_service.domain import queue
from qa_service.domain.errors import DomainError
from qa_service.domain.validation import clean_client_id, clean_language, clean_text


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "question.empty"),
        ("   \n\t ", "question.empty"),
        ("x" * 501, "question.too_long"),
        ("bell\x07", "question.control_chars"),
        ("nul\x00byte", "question.control_chars"),
        ("escape\x1b[31m", "question.control_chars"),
        ("c1\x85", "question.control_chars"),
        ("lone \ud800 surrogate", "question.control_chars"),
        (42, "question.invalid"),
    ],
)
def test_bad_text_is_refused_with_its_code(raw: object, code: str) -> None:
    with pytest.raises(DomainError) as err:
        clean_text(raw, field="question", max_chars=500, required=True)
    assert err.value.code == code


def test_text_is_normalised_and_may_hold_newlines_and_any_script() -> None:
    assert clean_text("  Привет\r\nмир  ", field="q", max_chars=500, required=True) == "Привет\nмир"
    assert clean_text("e\u0301", field="q", max_chars=500, required=True) == "\u00e9"  # NFC
    assert clean_text("x" * 500, field="q", max_chars=500, required=True) == "x" * 500
    assert (
        clean_text("<script>alert(1)</script>", field="q", max_chars=500, required=True) == "<script>alert(1)</script>"
    )
    assert clean_text(None, field="name", max_chars=10, required=False) is None


def test_language_and_client_id() -> None:
    assert clean_language("pt-BR") == "pt"
    assert clean_language("ar") == "ar"
    for bad in ("", "english", "e", None, "zh_CN"):
        with pytest.raises(DomainError):
            clean_language(bad)
    assert clean_client_id("abc-DEF_123") == "abc-DEF_123"
    for bad in ("short", "x" * 65, "has space!", 12345678):
        with pytest.raises(DomainError):
            clean_client_id(bad)


def test_queue_move_and_membership() -> None:
    assert queue.move([1, 2, 3, 4], 4, 0) == [4, 1, 2, 3]
    assert queue.move([1, 2, 3], 1, 99) == [2, 3, 1]
    assert queue.move([1, 2, 3], 3, -5) == [3, 1, 2]
    with pytest.raises(DomainError):
        queue.move([1, 2], 9, 0)
    queue.check_same_members([1, 2, 3], [3, 1, 2])
    for bad in ([1, 2], [1, 2, 3, 4], [1, 1, 2]):
        with pytest.raises(DomainError):
            queue.check_same_members([1, 2, 3], bad)
