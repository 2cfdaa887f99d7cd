"""Language detection as a hint beside the viewer's declared language.

Short texts are unreliable ("Hello?" reads as Spanish), and lingua has no Uzbek:
we only flag a confident disagreement on text long enough to judge, and stay
silent for languages the detector does not know.
"""

from __future__ import annotations

from typing import Any


class Detector:
    def __init__(self, languages: list[str], *, min_chars: int = 20, min_confidence: float = 0.8) -> None:
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

        self.min_chars = min_chars
        self.min_confidence = min_confidence
        known: dict[str, Any] = {}
        for code in languages:
            try:
                iso = IsoCode639_1.from_str(code)
                known[code] = Language.from_iso_code_639_1(iso)
            except ValueError:
                continue  # lingua does not know it (Uzbek): no opinion
        self.known = known
        self._code = {lang: code for code, lang in known.items()}
        self._detector = (
            LanguageDetectorBuilder.from_languages(*known.values()).with_preloaded_language_models().build()
            if len(known) >= 2
            else None
        )

    def disagreement(self, text: str, declared: str) -> str | None:
        """The language the text is confidently in, if that is not ``declared``."""
        if self._detector is None or declared not in self.known or len(text.strip()) < self.min_chars:
            return None
        values = self._detector.compute_language_confidence_values(text)
        if not values:
            return None
        best = values[0]
        code = self._code.get(best.language)
        if code and code != declared and best.value >= self.min_confidence:
            return code
        return None
