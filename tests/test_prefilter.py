"""The raw-text pre-filters agree with the engine: a file they call quiet has no finding."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fastdb_lint.catalog import RULES
from fastdb_lint.config import load
from fastdb_lint.engine import Engine, build_index
from fastdb_lint.prefilter import BASE_TRIGGERS, lint_words
from fastdb_lint.source import SourceText

REPO = Path(__file__).resolve().parent.parent

EXTRA = {
    "app/text.py": "def slug(title: str) -> str:\n    return title.lower()\n",
    "app/broken.py": "def slug(title:\n",  # no database word: not even read for its syntax error
    # Mentions only a project symbol: the lint pass reads it for the rules that read those.
    "app/jobs.py": "from app.providers import provide_db\n\ndef nightly():\n    db = provide_db()\n    db.commit()\n",
    "app/providers.py": "from sqlalchemy.orm import sessionmaker\n\nprovide_db = sessionmaker()\n",
}


def _files() -> dict[str, str]:
    files = {
        path.relative_to(REPO / "fixtures").as_posix(): path.read_text(encoding="utf-8")
        for path in sorted((REPO / "fixtures").rglob("*.py"))
    }
    return {**files, **EXTRA}


@pytest.mark.parametrize("enabled", ["default", "all"])
def test_a_file_the_lint_words_miss_gets_no_finding(enabled):
    settings = load(None, REPO)
    if enabled == "all":
        settings = replace(settings, enabled=frozenset(RULES))
    files = _files()
    project = build_index([(path, path, text) for path, text in files.items()])
    engine = Engine(settings, project)
    words = lint_words(settings.enabled, engine.terms.session_names | engine.terms.model_names)
    assert words is not None
    quiet = [path for path, text in files.items() if words.search(text) is None]
    assert "app/text.py" in quiet and "app/broken.py" in quiet and "app/jobs.py" not in quiet
    assert "provide_db" in engine.terms.session_names
    for path in quiet:
        result = engine.lint(path, path, SourceText.decode(files[path].encode()))
        assert result.findings == [] and not result.parsed, path


def test_the_pattern_holds_the_rules_words_the_base_triggers_and_the_project_symbols():
    pattern = lint_words(["FDB301", "FDB001"], ["UserStore"])
    assert pattern is not None
    text = "UserStore query " + " ".join(BASE_TRIGGERS)
    assert {m.group() for m in pattern.finditer(text)} == {"UserStore", "query", *BASE_TRIGGERS}
    assert pattern.search("len(rows) and text") is None  # words of rules not enabled


def test_a_rule_that_reads_every_file_turns_the_filter_off(monkeypatch):
    import fastdb_lint.catalog as catalog

    everything = catalog.RULES["FDB301"]._replace(code="FDB999", triggers=())
    monkeypatch.setitem(catalog.RULES, "FDB999", everything)
    assert lint_words(["FDB301", "FDB999"], []) is None
