"""GitHub Actions workflow commands, one annotation per finding::

    ::warning file=app/db.py,line=4,col=16,endLine=4,endColumn=42,title=FDB201 (expire-on-commit-enabled)::message

Level: ``error`` for security and error-severity rules and for files that cannot be
parsed, ``warning`` for every other rule (they are advice about database usage, not
broken code). Paths are relative to ``ctx.workspace`` (the checkout,
``GITHUB_WORKSPACE``) when set and containing the file, else to ``ctx.root``, else
absolute; always with ``/`` separators.

Escaping follows the Actions toolkit: in the message ``%``, ``\\r`` and ``\\n`` become
``%25``, ``%0D`` and ``%0A``; property values also escape ``:`` and ``,`` as ``%3A``
and ``%2C``.
"""

from __future__ import annotations

from fastdb_lint.diagnostics import Finding
from fastdb_lint.report import ReportContext
from fastdb_lint.report.common import display_relative, level, relative_path, rule_name, sorted_findings


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation_path(path: str, ctx: ReportContext) -> str:
    if ctx.workspace is not None:
        rel = relative_path(path, ctx.workspace)
        if rel is not None:
            return rel
    return display_relative(path, ctx.root)


def command(finding: Finding, ctx: ReportContext) -> str:
    """One ``::warning``/``::error`` workflow command (without the newline)."""
    end_row = max(finding.end.row, finding.start.row)
    end_column = finding.end.column
    if end_row == finding.start.row:
        end_column = max(end_column, finding.start.column + 1)
    properties = {
        "file": annotation_path(finding.path, ctx),
        "line": str(finding.start.row),
        "col": str(finding.start.column),
        "endLine": str(end_row),
        "endColumn": str(end_column),
        "title": f"{finding.code} ({rule_name(finding)})",
    }
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::{level(finding)} {props}::{escape_data(finding.message)}"


# GitHub shows at most this many annotations of each level per step (and 50 per job);
# the rest would be silently dropped from the pull request view.
ANNOTATIONS_PER_LEVEL = 10


def render(findings: list[Finding], ctx: ReportContext) -> str:
    """Annotations for the first findings of each level, and when some had to be left
    out, every finding as a plain log line plus a notice saying how many."""
    ordered = sorted_findings(findings)
    shown: dict[str, int] = {}
    annotated: set[int] = set()
    for index, finding in enumerate(ordered):
        kind = level(finding)
        if shown.get(kind, 0) < ANNOTATIONS_PER_LEVEL:
            shown[kind] = shown.get(kind, 0) + 1
            annotated.add(index)
    lines = [command(f, ctx) for i, f in enumerate(ordered) if i in annotated]
    hidden = len(ordered) - len(annotated)
    if hidden:
        for finding in ordered:
            lines.append(
                f"{annotation_path(finding.path, ctx)}:{finding.start.row}:{finding.start.column}: "
                f"{finding.code} {finding.message}"
            )
        summary = (
            f"{len(findings)} findings; {hidden} are not annotated because GitHub shows "
            f"{ANNOTATIONS_PER_LEVEL} per level per step. All are listed in this log; "
            "upload SARIF (--output-format sarif) to see them all in code scanning."
        )
        lines.append(f"::notice title={escape_property('fastdb-lint')}::{escape_data(summary)}")
    return "".join(line + "\n" for line in lines)
