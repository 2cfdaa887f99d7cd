"""The similar-question scorer: pure, fed with texts."""

from __future__ import annotations

from qa_service.domain.similarity import (
    THRESHOLD,
    Candidate,
    common_language,
    compare,
    most_similar,
    normalise,
    score,
)


def s(a: str, b: str) -> float:
    return score(normalise(a), normalise(b))


def test_normalise_folds_case_accents_punctuation_and_compatibility_forms() -> None:
    assert normalise("¿Cuántas personas trabajan en la FÁBRICA?") == "cuantas personas trabajan en la fabrica"
    assert normalise("Ｗｈｅｒｅ   is\tthe\nreport…!!") == "where is the report"  # full-width letters (NFKC)
    assert normalise("Где вы закупаете сырьё?") == "где вы закупаете сырье"
    assert normalise("?!…") == ""


def test_paraphrases_score_above_the_threshold() -> None:
    assert s("Вы экспортируете в Европу?", "вы экспортируете в европу") == 1.0
    assert s("Экспортируете ли вы в Европу?", "Вы экспортируете в Европу?") >= THRESHOLD  # word order
    assert s("Сколько стоит тонна стали сейчас?", "Сколько стоит тонна стали?") >= THRESHOLD  # a word added
    assert s("Когда откроют водородный завод?", "Когда откроется водородный завод?") >= THRESHOLD  # an ending


def test_look_alikes_that_ask_something_else_stay_below_it() -> None:
    # One word replaced, the one that carries the meaning: not the same question.
    assert s("Вы экспортируете в Европу?", "Вы экспортируете в Азию?") < THRESHOLD
    assert s("Do you export to Europe?", "Do you export to Asia?") < THRESHOLD
    assert s("Exportieren Sie nach Europa?", "Exportieren Sie nach Asien?") < THRESHOLD
    assert s("Good morning from Lima!", "Good evening from Berlin!") < THRESHOLD
    assert s("How much water does the mine use?", "How much energy does the line save?") < THRESHOLD


def test_empty_texts_and_the_cutoff() -> None:
    assert s("", "Do you export to Europe?") == 0.0
    assert s("?!", "?!") == 0.0
    a, b = normalise("Do you export to Europe?"), normalise("Do you export to Asia?")
    full = score(a, b)
    assert 0 < full < THRESHOLD
    assert score(a, b, cutoff=THRESHOLD) == 0.0


def test_the_common_language_is_the_moderators_then_english_then_any_shared() -> None:
    es = {"es": "¿Exportan a Europa?", "en": "Do you export to Europe?", "ru": "Вы экспортируете в Европу?"}
    ru = {"ru": "Вы экспортируете в Европу?", "en": "Do you export to Europe?"}
    assert common_language(es, ru, "ru") == "ru"
    assert common_language({"es": "x", "en": "y"}, ru, "de") == "en"  # no German: the English pivot
    assert common_language({"de": "Wie?"}, {"de": "Wo?", "en": "Where?"}, "ru") == "de"
    assert common_language({"de": "Wie?"}, ru, "ru") is None
    assert common_language({"ru": ""}, ru, "ru") is None  # an empty translation is no text
    assert compare({"de": "Wie?"}, ru, "ru") == 0.0


def test_most_similar_returns_at_most_three_best_first_earlier_first_on_a_tie() -> None:
    new = {"ru": "Вы экспортируете в Европу?"}
    cands = [
        Candidate(1, {"ru": "Вы экспортируете в Азию?"}),  # a look-alike
        Candidate(2, {"es": "¿Exportan a Europa?", "ru": "Вы экспортируете в Европу?"}),
        Candidate(3, {"ru": "Экспортируете ли вы в Европу?"}),
        Candidate(4, {"ru": "вы экспортируете в европу"}),
        Candidate(5, {"ru": "Вы экспортируете в Европу сейчас?"}),
        Candidate(6, {"ru": "Вы экспортируете в Европу!"}),
        Candidate(7, {"es": "¿Exportan a Europa?"}),  # no language in common
    ]
    assert most_similar(new, cands, "ru") == [2, 4, 6]
    assert most_similar(new, cands, "ru", limit=10)[3:] == [3, 5]
    assert most_similar(new, [], "ru") == []
