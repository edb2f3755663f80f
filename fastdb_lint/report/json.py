"""ruff-compatible JSON: a list of findings, each with ``code``, ``message``,
``filename`` (absolute), ``location``/``end_location`` (1-based ``row``/``column``,
end exclusive), ``fix`` (null or ``applicability``, ``message`` and ``edits``),
``noqa_row``, ``url``, plus fastdb-lint's ``name`` and ``severity``."""

from __future__ import annotations

import json

from fastdb_lint.diagnostics import Finding, Location
from fastdb_lint.report import ReportContext, rule_url
from fastdb_lint.report.common import absolute_path, edit_spans, rule_name, sorted_findings


def _location(location: Location) -> dict[str, int]:
    return {"row": location.row, "column": location.column}


def finding_dict(finding: Finding, ctx: ReportContext) -> dict[str, object]:
    """One finding in ruff's JSON shape (keys in ruff's order, then ours)."""
    fix: dict[str, object] | None = None
    if finding.fix is not None:
        fix = {
            "applicability": finding.fix.applicability.value,
            "edits": [
                {"content": content, "end_location": _location(end), "location": _location(start)}
                for content, start, end in edit_spans(finding, ctx)
            ],
            "message": finding.fix.message,
        }
    return {
        "cell": None,
        "code": finding.code,
        "end_location": _location(finding.end),
        "filename": absolute_path(finding.path),
        "fix": fix,
        "location": _location(finding.start),
        "message": finding.message,
        "noqa_row": finding.noqa_row,
        "url": rule_url(finding.code),
        "name": rule_name(finding),
        "severity": finding.severity.value,
    }


def render(findings: list[Finding], ctx: ReportContext) -> str:
    data = [finding_dict(f, ctx) for f in sorted_findings(findings)]
    return json.dumps(data, indent=2) + "\n"
