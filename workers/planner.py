"""Which translations a question needs, and through which pairs. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from qa_service.domain.translation_problem import Problem

PIVOT = "en"


def path(src: str, dst: str, pairs: set[tuple[str, str]]) -> list[str] | None:
    """Languages to go through, src first and dst last; None if impossible.
    Direct where a pair exists, else one pivot through English."""
    if src == dst:
        return [src]
    if (src, dst) in pairs:
        return [src, dst]
    if (src, PIVOT) in pairs and (PIVOT, dst) in pairs:
        return [src, PIVOT, dst]
    return None


@dataclass(frozen=True)
class Gap:
    """A translation no installed model can make: ``source`` into any of ``targets``."""

    source: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.source}→{'/'.join(self.targets) or '?'}"


@dataclass
class Plan:
    targets: dict[str, list[str]] = field(default_factory=dict)  # target language -> path
    missing: list[Gap] = field(default_factory=list)
    speaker_language: str | None = None  # the language the speaker will read


def plan(
    source: str,
    speaker_languages: list[str],
    moderator_language: str,
    host_languages: list[str],
    pairs: set[tuple[str, str]],
) -> Plan:
    """(a) the speaker's first readable language with a path, (b) the moderators'
    language, (c) the host's first language if different. Nothing into itself."""
    result = Plan()
    # (a) the speaker: the first of their languages that is the source or reachable.
    for lang in speaker_languages:
        if lang == source:
            result.speaker_language = source
            break
        route = path(source, lang, pairs)
        if route:
            result.speaker_language = lang
            result.targets[lang] = route
            break
    else:
        result.missing.append(Gap(source, tuple(speaker_languages)))
    # (b), (c)
    for lang in _unique([moderator_language, *host_languages[:1]]):
        if lang == source or lang in result.targets:
            continue
        route = path(source, lang, pairs)
        if route:
            result.targets[lang] = route
        elif Gap(source, (lang,)) not in result.missing:
            result.missing.append(Gap(source, (lang,)))
    return result


def install_codes(gap: Gap, pairs: set[tuple[str, str]]) -> list[str]:
    """What `qa-service models install` needs to close ``gap`` (each code brings
    en→code and code→en): the legs through English of its cheapest target."""
    options = []
    for dst in gap.targets:
        need = [gap.source] if gap.source != PIVOT and (gap.source, PIVOT) not in pairs else []
        options.append(need + ([dst] if dst != PIVOT and (PIVOT, dst) not in pairs else []))
    return min(options, key=len) if options else []


def missing_reason(gaps: list[Gap], pairs: set[tuple[str, str]]) -> str:
    """One line a moderator can act on: "no model zh→ru; install: qa-service models install zh"."""
    codes = _unique(c for gap in gaps for c in install_codes(gap, pairs))
    reason = "no model " + ", ".join(_unique(str(g) for g in gaps))
    return reason + (f"; install: qa-service models install {' '.join(codes)}" if codes else "")


def missing_problem(gaps: list[Gap], pairs: set[tuple[str, str]]) -> Problem:
    """The same as a stored problem (``no_model``), for the console to explain."""
    codes = _unique(c for gap in gaps for c in install_codes(gap, pairs))
    unique = list(dict.fromkeys(gaps))
    return Problem.no_model(((g.source, g.targets) for g in unique), codes)


def _unique(items: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for x in items:
        if x and x not in seen:
            seen.append(x)
    return seen


def uncovered(
    viewer_languages: list[str],
    speaker_languages: list[list[str]],
    moderator_language: str,
    host_languages: list[list[str]],
    pairs: set[tuple[str, str]],
) -> list[str]:
    """What an event needs that the installed models do not cover (for `models list`)."""
    problems = []
    for src in viewer_languages:
        if src != moderator_language and path(src, moderator_language, pairs) is None:
            problems.append(f"{src}→{moderator_language} (moderators)")
        for langs in speaker_languages:
            if not any(path(src, lang, pairs) for lang in langs):
                problems.append(f"{src}→{'/'.join(langs)} (speaker)")
        for langs in host_languages:
            if langs and path(src, langs[0], pairs) is None and src != langs[0]:
                problems.append(f"{src}→{langs[0]} (host)")
    return _unique(problems)
