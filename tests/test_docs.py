"""Generated rule documentation is up to date (regenerate: python -m fastdb_lint.docs)."""

from __future__ import annotations

from fastdb_lint.docs import TABLE_END, TABLE_START, expected_files
from fastdb_lint.registry import all_rules
from fastdb_lint.report import rule_url
from tests.conftest import REPO


def test_generated_docs_are_current():
    stale = [
        str(path.relative_to(REPO))
        for path, text in expected_files(REPO).items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"out of date (run `python -m fastdb_lint.docs`): {stale}"
    documented = {p.stem for p in (REPO / "docs" / "rules").glob("*.md")}
    assert documented == set(all_rules())


def test_readme_has_the_table_and_urls_point_at_the_docs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert TABLE_START in readme and TABLE_END in readme
    for code in all_rules():
        assert f"[{code}](docs/rules/{code}.md)" in readme
        assert rule_url(code).endswith(f"docs/rules/{code}.md")
