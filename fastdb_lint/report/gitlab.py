"""GitLab Code Quality report: a JSON list of Code Climate issues with
``description``, ``check_name``, ``fingerprint``, ``severity`` and
``location.path``/``location.lines``.

The description starts with the rule code because GitLab shows the description but
not ``check_name``. Severity: ``critical`` for security rules, ``major`` for error
rules and unparsable files, ``minor`` for the other rules. Paths are relative to
``ctx.workspace`` (``CI_PROJECT_DIR``) when set and containing the file, else to
``ctx.root``. The fingerprint hashes the path, the code, the offending line's
content (whitespace removed) and the occurrence number of that triple, so it is
unique within a report and survives lines being added or removed above the finding.
"""

from __future__ import annotations

import hashlib
import json

from fastdb_lint.diagnostics import PARSE_ERROR, Finding, Severity
from fastdb_lint.report import ReportContext
from fastdb_lint.report.common import (
    display_relative,
    line_content_keys,
    relative_path,
    sorted_findings,
)


def severity(finding: Finding) -> str:
    if finding.severity is Severity.SECURITY:
        return "critical"
    if finding.severity is Severity.ERROR or finding.code == PARSE_ERROR:
        return "major"
    return "minor"


def report_path(path: str, ctx: ReportContext) -> str:
    if ctx.workspace is not None:
        rel = relative_path(path, ctx.workspace)
        if rel is not None:
            return rel
    return display_relative(path, ctx.root)


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def issues(findings: list[Finding], ctx: ReportContext) -> list[dict[str, object]]:
    ordered = sorted_findings(findings)
    seen: set[str] = set()
    out: list[dict[str, object]] = []
    for finding, (digest, occurrence) in zip(ordered, line_content_keys(ordered, ctx), strict=True):
        path = report_path(finding.path, ctx)
        fingerprint = _fingerprint(path, finding.code, digest, str(occurrence))
        salt = 0
        while fingerprint in seen:
            salt += 1
            fingerprint = _fingerprint(path, finding.code, digest, str(occurrence), str(salt))
        seen.add(fingerprint)
        out.append(
            {
                "description": f"{finding.code} {finding.message}",
                "check_name": finding.code,
                "fingerprint": fingerprint,
                "severity": severity(finding),
                "location": {
                    "path": path,
                    "lines": {"begin": finding.start.row, "end": max(finding.end.row, finding.start.row)},
                },
            }
        )
    return out


def render(findings: list[Finding], ctx: ReportContext) -> str:
    return json.dumps(issues(findings, ctx), indent=2) + "\n"
