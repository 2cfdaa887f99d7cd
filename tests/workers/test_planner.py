"""Which languages a question is translated into, and by which route (pure)."""

from __future__ import annotations

from workers.planner import Gap, missing_reason, path, plan, uncovered

PAIRS = {("en", "ru"), ("ru", "en"), ("es", "en"), ("en", "de")}


def test_direct_pivot_and_impossible_routes() -> None:
    assert path("en", "ru", PAIRS) == ["en", "ru"]
    assert path("es", "ru", PAIRS) == ["es", "en", "ru"]
    assert path("ru", "de", PAIRS) == ["ru", "en", "de"]
    assert path("ar", "ru", PAIRS) is None
    assert path("ru", "ru", PAIRS) == ["ru"]


def test_speaker_gets_first_readable_language_moderators_and_host_theirs() -> None:
    # An Uzbek speaker reads uz, then ru: no uz model exists, so Russian.
    p = plan("en", ["uz", "ru"], "ru", ["uz", "ru"], PAIRS)
    assert p.speaker_language == "ru"
    assert p.targets == {"ru": ["en", "ru"]}
    assert p.missing == [Gap("en", ("uz",))]  # the host's first language
    assert missing_reason(p.missing, PAIRS) == "no model en→uz; install: qa-service models install uz"


def test_nothing_is_translated_into_its_own_language() -> None:
    p = plan("ru", ["ru"], "ru", ["ru", "en"], PAIRS)
    assert p.speaker_language == "ru" and p.targets == {} and p.missing == []


def test_pivot_for_speaker_and_moderators() -> None:
    p = plan("es", ["de"], "ru", ["de", "en"], PAIRS)
    assert p.targets == {"de": ["es", "en", "de"], "ru": ["es", "en", "ru"]}


def test_missing_pairs_are_named_once_with_what_to_install() -> None:
    p = plan("ar", ["ru"], "ru", ["ru"], PAIRS)
    assert p.speaker_language is None
    assert p.missing == [Gap("ar", ("ru",))]  # the speaker's and the moderators' gap are one
    assert missing_reason(p.missing, PAIRS) == "no model ar→ru; install: qa-service models install ar"


def test_install_hint_takes_the_cheapest_of_a_speakers_languages() -> None:
    # zh→uz needs zh and uz; zh→ru needs zh only (en→ru is installed).
    p = plan("zh", ["uz", "ru"], "de", ["de"], PAIRS)
    assert [str(g) for g in p.missing] == ["zh→uz/ru", "zh→de"]
    assert missing_reason(p.missing, PAIRS) == "no model zh→uz/ru, zh→de; install: qa-service models install zh"
    # Both legs missing: both codes.
    assert missing_reason(plan("uz", ["fr"], "uz", [], PAIRS).missing, PAIRS) == (
        "no model uz→fr; install: qa-service models install uz fr"
    )


def test_uncovered_lists_what_an_event_lacks() -> None:
    gaps = uncovered(["en", "ar"], [["uz", "ru"], ["de"]], "ru", [["uz", "ru"], ["de"]], PAIRS)
    assert "ar→ru (moderators)" in gaps
    assert "ar→uz/ru (speaker)" in gaps
    assert "en→uz (host)" in gaps
    assert not [g for g in gaps if g.startswith("en→ru")]
