"""Output formats. Each module renders a list of findings to a string.

``render(fmt, findings, ctx)`` is the entry point for ``--output-format``;
``render_statistics`` serves ``--statistics`` and ``render_fix_summary`` serves
``--show-fixes`` (both also importable from ``fastdb_lint.report.text``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastdb_lint.diagnostics import Finding

FORMATS = ("concise", "full", "json", "json-lines", "sarif", "github", "gitlab", "junit")

# The project home page and the base of every rule's documentation page.
HOMEPAGE = "https://fastdb-lint.dev"
DOCS_URL = f"{HOMEPAGE}/rules/"

# Format name -> module (in this package) whose ``render(findings, ctx)`` produces it.
_MODULES: dict[str, str] = {
    "concise": "concise",
    "full": "full",
    "json": "json",
    "json-lines": "json_lines",
    "sarif": "sarif",
    "github": "github",
    "gitlab": "gitlab",
    "junit": "junit",
}


def rule_url(code: str) -> str:
    """The documentation page of a rule."""
    return f"{DOCS_URL}{code}"


@dataclass
class ReportContext:
    """What a reporter may need besides the findings."""

    # Directory that SARIF/GitLab URIs are made relative to (the project root).
    root: Path
    # Source lines by finding path, for formats that show code (full) or hash lines
    # (SARIF fingerprints, GitLab fingerprints).
    sources: dict[str, list[str]] = field(default_factory=dict)
    # Findings whose fixes were applied (for --show-fixes summaries).
    fixed: list[Finding] = field(default_factory=list)
    show_fixes: bool = False
    unsafe_fixes: bool = False
    color: bool = False
    exit_code: int = 0
    # Files that could not be checked (path, message): reported as tool errors.
    errors: list[str] = field(default_factory=list)
    files_checked: int = 0
    # The CI checkout directory (``GITHUB_WORKSPACE``, ``CI_PROJECT_DIR``). When set,
    # the github and gitlab formats make paths relative to it instead of ``root``, so
    # that annotations land on the right file when the project is a subdirectory of
    # the repository.
    workspace: Path | None = None


def _renderer(fmt: str) -> Callable[[list[Finding], ReportContext], str]:
    module_name = _MODULES.get(fmt)
    if module_name is None:
        raise ValueError(f"unknown output format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    module = importlib.import_module(f"{__name__}.{module_name}")
    renderer: Callable[[list[Finding], ReportContext], str] = module.render
    return renderer


def render(fmt: str, findings: list[Finding], ctx: ReportContext) -> str:
    """Render ``findings`` in output format ``fmt`` (one of :data:`FORMATS`).

    Raises :class:`ValueError` for an unknown format. The result ends with a newline
    unless it is empty.
    """
    return _renderer(fmt)(findings, ctx)


def render_statistics(findings: list[Finding], ctx: ReportContext, fmt: str = "concise") -> str:
    """``--statistics``: ``count<TAB>CODE<TAB>[*]|[ ]<TAB>name`` per code, most
    frequent first, then the summary; a JSON list of ``{code, name, count, fixable,
    fixable_count}`` when ``fmt`` is ``json`` or ``json-lines``."""
    from fastdb_lint.report.text import render_statistics as _render

    return _render(findings, ctx, fmt)


def render_fix_summary(ctx: ReportContext) -> str:
    """``--show-fixes``: the codes fixed in each file (``ctx.fixed``), ending with a
    blank line; empty when nothing was fixed. The caller puts it before the report."""
    from fastdb_lint.report.text import render_fix_summary as _render

    return _render(ctx)
