"""Which earlier questions read like a new one, across languages. Pure: no I/O.

Two questions are compared in one language both have: the moderators' language
first, else English (the pivot every translation route passes through), else the
new question's own language or any other both have (two questions asked in the same
language, or both translated for the same speaker). A question is a mapping
``{language: text}``: its original and its stored translations.

The score (0 to 1) is rapidfuzz's ``token_sort_ratio`` of the normalised texts (so word
order does not matter), lowered by the share of words that have no counterpart on
*either* side: a word added ("…to Europe today?") costs little, a word replaced
("…to Asia?" for "…to Europe?") costs much, since replacing the one word that carries
the meaning is what tells two look-alike questions apart. Two words count as
counterparts when they are close (``fuzz.ratio`` ≥ 80) or share a stem of five letters
(``откроют``/``откроется``, ``Menschen``/``Menscht``).

THRESHOLD was chosen on the labelled pairs in tests/data/similar_pairs.tsv (run through
the real test models): every pair of different questions scores at most 0.65 there (the
look-alikes "Do you export to Europe?" / "…to Asia?"), paraphrases that survive translation
score 0.88 and more; 0.75 leaves room on both sides rather than sitting on either.
A false suggestion costs more than a missed one (one key merges it), so the line leans
towards precision. ``python -m workers.bench_similarity`` measures it again.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import Prefix

PIVOT = "en"
THRESHOLD = 0.75
MAX_SUGGESTIONS = 3
_WORD_MATCH = 80  # fuzz.ratio of two words that count as the same word (a typo, an ending)
_STEM = 5  # ...or this many letters of common prefix (an inflected form)

Texts = Mapping[str, str]  # {language: text}


@lru_cache(maxsize=8192)
def normalise(text: str) -> str:
    """Compatibility forms folded (NFKC), case folded, accents dropped (an asker without
    a Spanish keyboard types "Cuantas"), punctuation, symbols and extra spaces removed.
    Cached: a studio's open questions are normalised again for every new one."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    folded = unicodedata.normalize("NFKC", bare).casefold()
    return " ".join("".join(c if unicodedata.category(c)[0] in "LN" else " " for c in folded).split())


def _unmatched_share(words: list[str], others: list[str]) -> float:
    """Share of ``words`` (by letters) with no counterpart among ``others``."""
    total = sum(len(w) for w in words)
    alone = sum(
        len(w)
        for w in words
        if not any(fuzz.ratio(w, o) >= _WORD_MATCH or Prefix.similarity(w, o) >= _STEM for o in others)
    )
    return alone / total if total else 1.0


def score(a: str, b: str, cutoff: float = 0.0) -> float:
    """How alike two NORMALISED texts of one language are, 0 to 1 (0 below ``cutoff``)."""
    if not a or not b:
        return 0.0
    base = fuzz.token_sort_ratio(a, b, score_cutoff=cutoff * 100) / 100
    if base == 0.0:  # the penalty only lowers a score: below the cutoff already
        return 0.0
    wa, wb = a.split(), b.split()
    result = base * (1.0 - min(_unmatched_share(wa, wb), _unmatched_share(wb, wa)))
    return result if result >= cutoff else 0.0


def common_language(new: Texts, other: Texts, moderator_language: str, own_language: str | None = None) -> str | None:
    """The language to compare two questions in (see the module's docstring), or None."""
    for lang in (moderator_language, PIVOT, own_language):
        if lang and new.get(lang) and other.get(lang):
            return lang
    shared = sorted(lang for lang in new.keys() & other.keys() if new[lang] and other[lang])
    return shared[0] if shared else None


def compare(new: Texts, other: Texts, moderator_language: str, *, own_language: str | None = None) -> float:
    """The score of two questions in their common language; 0 when they share none."""
    lang = common_language(new, other, moderator_language, own_language)
    return score(normalise(new[lang]), normalise(other[lang])) if lang else 0.0


@dataclass(frozen=True)
class Candidate:
    id: int
    texts: Texts


def most_similar(
    new: Texts,
    candidates: Iterable[Candidate],
    moderator_language: str,
    *,
    own_language: str | None = None,
    threshold: float = THRESHOLD,
    limit: int = MAX_SUGGESTIONS,
) -> list[int]:
    """Ids of the candidates scoring ``threshold`` or more, best first (an earlier one
    first on a tie: it is the one to keep), at most ``limit``."""
    found: list[tuple[float, int]] = []
    for c in candidates:
        lang = common_language(new, c.texts, moderator_language, own_language)
        if lang is None:
            continue
        s = score(normalise(new[lang]), normalise(c.texts[lang]), cutoff=threshold)
        if s >= threshold and s > 0.0:
            found.append((s, c.id))
    found.sort(key=lambda x: (-x[0], x[1]))
    return [cid for _, cid in found[:limit]]
