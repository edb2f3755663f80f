"""JUnit XML (the Ant/Surefire shape CI servers read): ``<testsuites>`` with one
``<testsuite>`` per file with findings and one failing ``<testcase>`` per finding.
Files that could not be checked (``ctx.errors``) become test cases with an
``<error>`` in a separate suite. A clean run has one passing test case, so CI does
not report "no tests".
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from itertools import groupby

from fastdb_lint.diagnostics import Finding
from fastdb_lint.report import ReportContext
from fastdb_lint.report.common import rule_name, sorted_findings

SUITE_NAME = "fastdb-lint"
# Characters XML 1.0 cannot represent, even escaped.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def _suite(parent: ET.Element, name: str, tests: int, failures: int, errors: int) -> ET.Element:
    return ET.SubElement(
        parent,
        "testsuite",
        {
            "name": _clean(name),
            "tests": str(tests),
            "failures": str(failures),
            "errors": str(errors),
            "skipped": "0",
        },
    )


def _testcase(suite: ET.Element, finding: Finding) -> None:
    path = _clean(finding.path)
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "name": f"{finding.code} ({_clean(rule_name(finding))}) at {finding.start.row}:{finding.start.column}",
            "classname": path,
            "file": path,
            "line": str(finding.start.row),
        },
    )
    failure = ET.SubElement(case, "failure", {"message": _clean(finding.message), "type": finding.code})
    failure.text = _clean(
        f"{finding.path}:{finding.start.row}:{finding.start.column}: {finding.code} {finding.message}"
    )


def junit_tree(findings: list[Finding], ctx: ReportContext) -> ET.Element:
    ordered = sorted_findings(findings)
    total = len(ordered) + len(ctx.errors) + (0 if ordered or ctx.errors else 1)
    root = ET.Element(
        "testsuites",
        {
            "name": SUITE_NAME,
            "tests": str(total),
            "failures": str(len(ordered)),
            "errors": str(len(ctx.errors)),
            "skipped": "0",
        },
    )
    for path, group in groupby(ordered, key=lambda f: f.path):
        items = list(group)
        suite = _suite(root, path, len(items), len(items), 0)
        for finding in items:
            _testcase(suite, finding)
    if ctx.errors:
        suite = _suite(root, f"{SUITE_NAME} errors", len(ctx.errors), 0, len(ctx.errors))
        for i, message in enumerate(ctx.errors, 1):
            case = ET.SubElement(suite, "testcase", {"name": f"error {i}", "classname": SUITE_NAME})
            error = ET.SubElement(case, "error", {"message": _clean(message)})
            error.text = _clean(message)
    if not ordered and not ctx.errors:
        suite = _suite(root, SUITE_NAME, 1, 0, 0)
        ET.SubElement(suite, "testcase", {"name": "no findings", "classname": SUITE_NAME})
    return root


def render(findings: list[Finding], ctx: ReportContext) -> str:
    root = junit_tree(findings, ctx)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
