"""Running a rule's embedded examples (used by the test suite and by rule authors)."""

from __future__ import annotations

from pathlib import Path

from fastdb_lint.config import Settings
from fastdb_lint.diagnostics import Finding, FixAvailability
from fastdb_lint.engine import Engine, build_index
from fastdb_lint.registry import resolve_selection
from fastdb_lint.rules.base import Invalid, ProjectTerms, Rule, Valid
from fastdb_lint.source import SourceText

# A project that tells rule preconditions nothing: no session symbols, models or asyncio.
NO_PROJECT_TERMS = ProjectTerms(frozenset(), frozenset(), False)


def engine_for(rule: type[Rule], files: dict[str, str]) -> Engine:
    codes = (rule.code,)
    settings = Settings(root=Path("."), select=codes, enabled=resolve_selection(codes))
    return Engine(settings, build_index([(p, p, t) for p, t in files.items()]))


def findings_for(rule: type[Rule], example: Valid | Invalid) -> list[Finding]:
    files = {**example.files, example.path: example.code}
    engine = engine_for(rule, files)
    result = engine.lint(example.path, example.path, SourceText(example.code))
    return [f for f in result.findings if f.code == rule.code]


def fixed_code(rule: type[Rule], example: Invalid, code: str | None = None) -> str:
    source = example.code if code is None else code
    files = {**example.files, example.path: source}
    engine = engine_for(rule, files)
    outcome = engine.fix(
        example.path, example.path, SourceText(source), unsafe=rule.fix is FixAvailability.UNSAFE
    )
    assert outcome.error is None, outcome.error
    return outcome.text


def fix_sources(sources: dict[str, str], path: str, select: tuple[str, ...], *, unsafe: bool) -> str:
    """Apply the selected rules' fixes to ``sources[path]`` within an in-memory project."""
    settings = Settings(root=Path("."), select=select, enabled=resolve_selection(select))
    engine = Engine(settings, build_index([(p, p, t) for p, t in sources.items()]))
    outcome = engine.fix(path, path, SourceText(sources[path]), unsafe=unsafe)
    assert outcome.error is None, outcome.error
    return outcome.text
