"""Why a question is untranslated: stored codes, sentences for people, the console's view."""

from __future__ import annotations

import pytest

from qa_service.domain.translation_problem import MAX_STORED, Problem


def test_no_model_round_trips_and_names_the_fix() -> None:
    problem = Problem.no_model([("ar", ["de"]), ("ar", ["en"])], ["ar", "de"])
    assert problem.stored() == "no_model:ar>de,ar>en;ar de"
    again = Problem.parse(problem.stored())
    assert again == problem
    assert again.view() == {
        "code": "no_model",
        "pairs": [["ar", "de"], ["ar", "en"]],
        "command": "qa-service models install ar de",
    }
    assert again.sentence() == (
        "No language pack translates Arabic to German and Arabic to English. "
        "Install one with: qa-service models install ar de — or write the translation by hand."
    )


def test_alternatives_and_no_command() -> None:
    problem = Problem.parse("no_model:zh>uz/ru")
    assert problem is not None and problem.pairs == [["zh", "uz"], ["zh", "ru"]] and problem.command is None
    assert (
        problem.sentence() == "No language pack translates Chinese to Uzbek or Russian. Write the translation by hand."
    )


def test_a_gap_another_one_closes_is_not_named_twice() -> None:
    # The speaker takes ru or en, the moderators ru: a pack for ar→ru closes both.
    problem = Problem.no_model([("ar", ["ru", "en"]), ("ar", ["ru"]), ("ar", ["ru"])], ["ar"])
    assert problem.pairs == [["ar", "ru"]]
    assert problem.sentence() == (
        "No language pack translates Arabic to Russian. "
        "Install one with: qa-service models install ar — or write the translation by hand."
    )
    assert Problem.parse("no_model:ar>ru/en,ar>ru;ar") == problem  # rows stored before read the same


@pytest.mark.parametrize(
    ("stored", "code", "says"),
    [
        ("too_long", "too_long", "Too long for the translation model"),
        ("engine_failed", "engine_failed", "Re-translate it, or write the translation by hand"),
        ("gone", "gone", "no longer exists"),
    ],
)
def test_the_other_codes(stored: str, code: str, says: str) -> None:
    problem = Problem.parse(stored)
    assert problem is not None and problem.view() == {"code": code, "pairs": [], "command": None}
    assert says in problem.sentence()


@pytest.mark.parametrize(
    "old",
    [
        "untranslated: No position encodings are defined for positions >= 64, but got position 500",
        "translation failed: RuntimeError('engine crashed') (4 attempts)",
        "no model ar→de; install: qa-service models install ar de",
    ],
)
def test_free_text_of_old_rows_reads_as_engine_failed_and_is_never_shown(old: str) -> None:
    problem = Problem.parse(old)
    assert problem is not None and problem.code == "engine_failed"
    assert "position" not in problem.sentence() and "RuntimeError" not in problem.sentence()


def test_nothing_stored_is_no_problem() -> None:
    assert Problem.parse(None) is None and Problem.parse("") is None


def test_a_long_list_of_gaps_still_fits_the_column_and_parses() -> None:
    sources = [chr(97 + i // 26) + chr(97 + i % 26) for i in range(40)]
    problem = Problem.no_model([(src, ["en", "de", "ru"]) for src in sources], ["xx", "yy"])
    stored = problem.stored()
    assert len(stored) <= MAX_STORED
    parsed = Problem.parse(stored)
    assert parsed is not None and parsed.code == "no_model"
    assert parsed.pairs[:3] == [["aa", "en"], ["aa", "de"], ["aa", "ru"]]
    assert parsed.command == "qa-service models install xx yy"
