"""Pieces shared by the text formats (``concise`` and ``full``): ANSI styling, the
``path:row:col: CODE [*] message`` line, the summary, the ``--statistics`` table and
the ``--show-fixes`` summary.

``[*]`` marks a fix that ``--fix`` would apply with the current options (safe fixes,
and unsafe ones under ``--unsafe-fixes``).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

from fastdb_lint.diagnostics import Finding
from fastdb_lint.report import ReportContext
from fastdb_lint.report.common import (
    is_applicable,
    is_hidden_fix,
    plural,
    printable,
    rule_name,
)

_RESET = "\x1b[0m"
_BOLD = "1"
_RED = "31"
_GREEN = "32"
_CYAN = "36"


class Style:
    """ANSI styling that is a no-op unless colour is on."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def paint(self, text: str, *codes: str) -> str:
        if not self.color or not text:
            return text
        return f"\x1b[{';'.join(codes)}m{text}{_RESET}"

    def path(self, text: str) -> str:
        return self.paint(text, _BOLD)

    def sep(self, text: str = ":") -> str:
        return self.paint(text, _CYAN)

    def code(self, text: str) -> str:
        return self.paint(text, _BOLD, _RED)

    def fixable(self, text: str = "[*]") -> str:
        return self.paint(text, _CYAN)

    def success(self, text: str) -> str:
        return self.paint(text, _BOLD, _GREEN)


def finding_header(finding: Finding, ctx: ReportContext, style: Style) -> str:
    """``path:row:col: CODE [*] message``."""
    marker = f" {style.fixable()}" if is_applicable(finding, ctx.unsafe_fixes) else ""
    sep = style.sep()
    return (
        f"{style.path(printable(finding.path))}{sep}{finding.start.row}{sep}{finding.start.column}{sep} "
        f"{style.code(finding.code)}{marker} {printable(finding.message)}"
    )


def summary_lines(findings: list[Finding], ctx: ReportContext, style: Style) -> list[str]:
    """``Found N errors.`` (with fixed/remaining counts after ``--fix``), the number
    of fixable findings and the hint about hidden unsafe fixes; ``All checks
    passed!`` when nothing remains and nothing was fixed."""
    remaining = len(findings)
    fixed = len(ctx.fixed)
    if remaining == 0 and fixed == 0:
        return [style.success("All checks passed!")]
    lines = []
    if fixed:
        lines.append(f"Found {plural(remaining + fixed, 'error')} ({fixed} fixed, {remaining} remaining).")
    else:
        lines.append(f"Found {plural(remaining, 'error')}.")
    fixable = sum(1 for f in findings if is_applicable(f, ctx.unsafe_fixes))
    hidden = sum(1 for f in findings if is_hidden_fix(f, ctx.unsafe_fixes))
    hint = ""
    if hidden:
        fixes = "hidden fix" if hidden == 1 else "hidden fixes"
        hint = f" ({hidden} {fixes} can be enabled with the --unsafe-fixes option)"
    if fixable:
        lines.append(f"{style.fixable()} {fixable} fixable with the --fix option{hint}.")
    elif hidden:
        lines.append(f"No fixes available{hint}.")
    return lines


def render_fix_summary(ctx: ReportContext) -> str:
    """``--show-fixes``: ``Fixed N errors:`` then, per file, how many of each code
    were fixed (from ``ctx.fixed``), followed by a blank line so that it can be put
    before a report; empty when nothing was fixed."""
    if not ctx.fixed:
        return ""
    style = Style(ctx.color)
    by_path: dict[str, Counter[str]] = defaultdict(Counter)
    names: dict[str, str] = {}
    for finding in ctx.fixed:
        by_path[finding.path][finding.code] += 1
        names.setdefault(finding.code, rule_name(finding))
    lines = [f"Fixed {plural(len(ctx.fixed), 'error')}:"]
    for path in sorted(by_path):
        lines.append(f"- {style.path(printable(path))}:")
        for code, count in sorted(by_path[path].items()):
            lines.append(f"    {count} x {style.code(code)} ({names[code]})")
    return "\n".join(lines) + "\n\n"


def join_report(body: list[str], findings: list[Finding], ctx: ReportContext, style: Style) -> str:
    """The findings' text followed by the summary lines."""
    return "\n".join([*body, *summary_lines(findings, ctx, style)]) + "\n"


def statistics(findings: list[Finding], ctx: ReportContext) -> list[dict[str, object]]:
    """Per code: ``code``, ``name``, ``count``, ``fixable`` (any fix that ``--fix``
    would apply) and ``fixable_count``; most frequent first, then by code."""
    counts: Counter[str] = Counter()
    fixable: Counter[str] = Counter()
    names: dict[str, str] = {}
    for finding in findings:
        counts[finding.code] += 1
        if is_applicable(finding, ctx.unsafe_fixes):
            fixable[finding.code] += 1
        names.setdefault(finding.code, rule_name(finding))
    return [
        {
            "code": code,
            "name": names[code],
            "count": count,
            "fixable": fixable[code] > 0,
            "fixable_count": fixable[code],
        }
        for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def render_statistics(findings: list[Finding], ctx: ReportContext, fmt: str = "concise") -> str:
    """``count<TAB>CODE<TAB>[*]|[ ]<TAB>name`` per code then the summary, or the same
    table as JSON when ``fmt`` is ``json``/``json-lines``."""
    rows = statistics(findings, ctx)
    if fmt in ("json", "json-lines"):
        return json.dumps(rows, indent=2) + "\n"
    style = Style(ctx.color)
    lines = [
        f"{row['count']}\t{style.code(str(row['code']))}\t"
        f"{style.fixable() if row['fixable'] else '[ ]'}\t{row['name']}"
        for row in rows
    ]
    lines.extend(summary_lines(findings, ctx, style))
    return "\n".join(lines) + "\n"
