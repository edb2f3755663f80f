"""The bundled sample apps report exactly the findings their `# expect:` comments name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fastdb_lint.config import load
from fastdb_lint.runner import RunOptions, run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
APPS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
_EXPECT = re.compile(r"#\s*expect:\s*(?P<codes>FDB\d{3}(?:\s*,\s*FDB\d{3})*)")


def expected_findings(app: Path) -> set[tuple[str, int, str]]:
    expected = set()
    for path in sorted(app.rglob("*")):
        if not path.is_file() or not (path.suffix == ".py" or path.name == "alembic.ini"):
            continue
        rel = path.relative_to(FIXTURES).as_posix()
        for row, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = _EXPECT.search(line)
            if not match:
                continue
            # In alembic.ini the comment stands on the line before the finding.
            target = row + 1 if path.suffix == ".ini" else row
            for code in re.split(r"\s*,\s*", match.group("codes")):
                expected.add((rel, target, code))
    return expected


def actual_findings(target: Path) -> set[tuple[str, int, str]]:
    settings = load(None, target).with_cli()
    result = run([target], settings, RunOptions())
    assert result.errors == []
    return {
        (Path(f.path).resolve().relative_to(FIXTURES).as_posix(), f.start.row, f.code)
        for f in result.findings
    }


@pytest.mark.parametrize("app", APPS)
def test_fixture_app_reports_exactly_its_annotations(app):
    expected = expected_findings(FIXTURES / app)
    actual = actual_findings(FIXTURES / app)
    missing = sorted(expected - actual)
    unexpected = sorted(actual - expected)
    assert not missing and not unexpected, f"missing: {missing}\nunexpected: {unexpected}"


def test_clean_app_is_clean():
    assert expected_findings(FIXTURES / "async_clean_app") == set()
    assert actual_findings(FIXTURES / "async_clean_app") == set()


def test_linting_all_fixtures_at_once_keeps_projects_apart():
    expected = set().union(*(expected_findings(FIXTURES / app) for app in APPS))
    assert actual_findings(FIXTURES) == expected
