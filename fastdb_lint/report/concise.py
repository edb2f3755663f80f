"""The default text format, one line per finding (ruff's ``concise``)::

    app/db.py:4:16: FDB201 [*] `expire_on_commit` is not disabled: ...
    Found 1 error.
    [*] 1 fixable with the --fix option.
"""

from __future__ import annotations

from fastdb_lint.diagnostics import Finding
from fastdb_lint.report import ReportContext
from fastdb_lint.report.common import sorted_findings
from fastdb_lint.report.text import Style, finding_header, join_report


def render(findings: list[Finding], ctx: ReportContext) -> str:
    style = Style(ctx.color)
    ordered = sorted_findings(findings)
    return join_report([finding_header(f, ctx, style) for f in ordered], ordered, ctx, style)
