"""SARIF 2.1.0, shaped for GitHub code scanning.

One run whose ``tool.driver`` describes every rule that has findings (catalog
metadata: summary, documentation as ``help``, docs URL, default level, tags;
``security-severity`` only on security rules). Results point at files by a URI
relative to ``ctx.root`` with ``uriBaseId`` ``%SRCROOT%`` (files outside the root get
an absolute ``file://`` URI), use 1-based regions with exclusive end columns counted
in code points (``columnKind: unicodeCodePoints``), carry
``partialFingerprints.primaryLocationLineHash`` and describe fixes as artifact
changes. ``invocations`` records the exit code and files that could not be checked.
"""

from __future__ import annotations

import json
import os
import re

from fastdb_lint import __version__
from fastdb_lint.diagnostics import PARSE_ERROR, Finding, Location, Severity
from fastdb_lint.report import HOMEPAGE, ReportContext
from fastdb_lint.report.common import (
    RuleMeta,
    edit_spans,
    file_uri,
    level,
    line_content_keys,
    relative_path,
    relative_uri,
    rule_meta,
    sorted_findings,
)

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
SRCROOT = "%SRCROOT%"
# GitHub's limit on shortDescription/fullDescription text.
MAX_DESCRIPTION = 1024
# GitHub shows at most 10 tags and accepts 20.
MAX_TAGS = 20

# CVSS-like scores (GitHub banding: >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium)
# for the security rules; any other rule of severity "security" gets the default.
SECURITY_SEVERITY: dict[str, str] = {
    "FDB402": "8.8",  # SQL injection
    "FDB605": "7.5",  # hard-coded database credentials
}
DEFAULT_SECURITY_SEVERITY = "7.0"
SECURITY_TAGS: dict[str, tuple[str, ...]] = {
    "FDB402": ("external/cwe/cwe-089",),
    "FDB605": ("external/cwe/cwe-798",),
}

_SECTION = re.compile(r"^#+\s*(?P<title>.+?)\s*$", re.MULTILINE)


def _section(doc: str, title: str) -> str:
    """The text of a ``## title`` section of a rule's documentation."""
    matches = list(_SECTION.finditer(doc))
    for i, match in enumerate(matches):
        if match.group("title").lower() == title.lower():
            end = matches[i + 1].start() if i + 1 < len(matches) else len(doc)
            return " ".join(doc[match.end() : end].split())
    return ""


def _clip(text: str, limit: int = MAX_DESCRIPTION) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _rule_level(meta: RuleMeta) -> str:
    if meta.severity in (Severity.ERROR, Severity.SECURITY) or meta.code == PARSE_ERROR:
        return "error"
    return "warning"


def reporting_descriptor(meta: RuleMeta) -> dict[str, object]:
    """A rule as a SARIF ``reportingDescriptor`` with GitHub's required texts."""
    summary = meta.summary or meta.name
    full = _section(meta.documentation, "What it does") or summary
    doc = meta.documentation or summary
    tags = list(dict.fromkeys(meta.tags))
    properties: dict[str, object] = {}
    if meta.is_security:
        tags = list(dict.fromkeys([*tags, "security", *SECURITY_TAGS.get(meta.code, ())]))
        properties["security-severity"] = SECURITY_SEVERITY.get(meta.code, DEFAULT_SECURITY_SEVERITY)
    if tags:
        properties["tags"] = tags[:MAX_TAGS]
    properties["problem.severity"] = _rule_level(meta)
    return {
        "id": meta.code,
        "name": meta.name,
        "shortDescription": {"text": _clip(summary)},
        "fullDescription": {"text": _clip(full)},
        "help": {
            "text": doc,
            "markdown": f"{doc}\n\n[Rule documentation]({meta.url})",
        },
        "helpUri": meta.url,
        "defaultConfiguration": {"level": _rule_level(meta)},
        "properties": properties,
    }


def _region(start: Location, end: Location, *, nonempty: bool) -> dict[str, int]:
    start_line = max(start.row, 1)
    start_column = max(start.column, 1)
    end_line = max(end.row, start_line)
    end_column = max(end.column, 1)
    if end_line == start_line:
        end_column = max(end_column, start_column + 1 if nonempty else start_column)
    return {
        "startLine": start_line,
        "startColumn": start_column,
        "endLine": end_line,
        "endColumn": end_column,
    }


def _artifact_location(path: str, ctx: ReportContext) -> dict[str, str]:
    rel = relative_path(path, ctx.root)
    if rel is None:
        return {"uri": file_uri(path)}
    return {"uri": relative_uri(rel), "uriBaseId": SRCROOT}


def _fix(finding: Finding, ctx: ReportContext, location: dict[str, str]) -> dict[str, object] | None:
    if finding.fix is None:
        return None
    spans = edit_spans(finding, ctx)
    if not spans:
        return None
    return {
        "description": {"text": finding.fix.message},
        "artifactChanges": [
            {
                "artifactLocation": dict(location),
                "replacements": [
                    {
                        "deletedRegion": _region(start, end, nonempty=False),
                        "insertedContent": {"text": content},
                    }
                    for content, start, end in spans
                ],
            }
        ],
        "properties": {"applicability": finding.fix.applicability.value},
    }


def sarif_log(findings: list[Finding], ctx: ReportContext) -> dict[str, object]:
    """The SARIF log as a JSON-ready dict."""
    ordered = sorted_findings(findings)
    metas: dict[str, RuleMeta] = {}
    for finding in ordered:
        if finding.code not in metas:
            metas[finding.code] = rule_meta(finding.code, finding)
    codes = sorted(metas)
    index = {code: i for i, code in enumerate(codes)}
    keys = line_content_keys(ordered, ctx)

    results = []
    for finding, (digest, occurrence) in zip(ordered, keys, strict=True):
        location = _artifact_location(finding.path, ctx)
        result: dict[str, object] = {
            "ruleId": finding.code,
            "ruleIndex": index[finding.code],
            "level": level(finding),
            "message": {"text": finding.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": location,
                        "region": _region(finding.start, finding.end, nonempty=True),
                    }
                }
            ],
            "partialFingerprints": {"primaryLocationLineHash": f"{digest[:16]}:{occurrence}"},
        }
        fix = _fix(finding, ctx, location)
        if fix is not None:
            result["fixes"] = [fix]
        results.append(result)

    invocation: dict[str, object] = {
        "executionSuccessful": ctx.exit_code in (0, 1),
        "exitCode": ctx.exit_code,
        "workingDirectory": {"uri": file_uri(os.getcwd(), directory=True)},
    }
    if ctx.errors:
        invocation["toolExecutionNotifications"] = [
            {"level": "error", "message": {"text": error}} for error in ctx.errors
        ]

    run: dict[str, object] = {
        "tool": {
            "driver": {
                "name": "fastdb-lint",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": HOMEPAGE,
                "rules": [reporting_descriptor(metas[code]) for code in codes],
            }
        },
        "columnKind": "unicodeCodePoints",
        "originalUriBaseIds": {SRCROOT: {"uri": file_uri(ctx.root, directory=True)}},
        "invocations": [invocation],
        "results": results,
    }
    return {"$schema": SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def render(findings: list[Finding], ctx: ReportContext) -> str:
    return json.dumps(sarif_log(findings, ctx), indent=2) + "\n"
