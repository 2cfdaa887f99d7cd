"""Settings: typed, one prefix, malformed values refused at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from qa_service.settings import load_settings


def test_translate_compute_type_defaults_to_auto_and_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QA_TRANSLATE_COMPUTE_TYPE", raising=False)
    assert load_settings().translate_compute_type == "auto"
    monkeypatch.setenv("QA_TRANSLATE_COMPUTE_TYPE", "float32")
    assert load_settings().translate_compute_type == "float32"


def test_unknown_compute_type_stops_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_TRANSLATE_COMPUTE_TYPE", "int4")
    with pytest.raises(ValidationError, match="translate_compute_type"):
        load_settings()
