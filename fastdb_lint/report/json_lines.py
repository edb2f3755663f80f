"""JSON Lines: the objects of the ``json`` format, one per line."""

from __future__ import annotations

import json

from fastdb_lint.diagnostics import Finding
from fastdb_lint.report import ReportContext
from fastdb_lint.report.common import sorted_findings
from fastdb_lint.report.json import finding_dict


def render(findings: list[Finding], ctx: ReportContext) -> str:
    return "".join(
        json.dumps(finding_dict(f, ctx)) + "\n" for f in sorted_findings(findings)
    )
