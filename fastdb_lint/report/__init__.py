"""Output formats. Each module renders a list of findings to a string."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastdb_lint.diagnostics import Finding

FORMATS = ("concise", "full", "json", "json-lines", "sarif", "github", "gitlab", "junit")


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


def render(fmt: str, findings: list[Finding], ctx: ReportContext) -> str:
    raise NotImplementedError(fmt)
