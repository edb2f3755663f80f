"""The ``full`` text format: the concise line, then the offending source with the
span underlined, then the fix's message::

    app/db.py:4:16: FDB201 [*] `expire_on_commit` is not disabled: ...
      |
    4 | SessionLocal = async_sessionmaker(engine)
      |                ^^^^^^^^^^^^^^^^^^^^^^^^^^ FDB201
      |
      = help: Set `expire_on_commit=False`

Source lines come from ``ctx.sources``; without them only the concise line and the
help are shown. Tabs are shown as four spaces and wide (East Asian) characters take
two columns, so the underline stays aligned.
"""

from __future__ import annotations

import unicodedata

from fastdb_lint.diagnostics import Applicability, Finding
from fastdb_lint.report import ReportContext
from fastdb_lint.report.common import printable, sorted_findings, source_line
from fastdb_lint.report.text import Style, finding_header, join_report

TAB_WIDTH = 4
# Spans longer than this show their first and last lines around an ellipsis.
MAX_LINES = 8
_HEAD_TAIL = 3


def _char_width(char: str) -> int:
    if char == "\t":
        return TAB_WIDTH
    if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
        return len(printable(char))
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _display(text: str) -> str:
    return printable(text.replace("\t", " " * TAB_WIDTH))


def _width(text: str) -> int:
    return sum(_char_width(c) for c in text)


def _underline(line: str, start: int, end: int) -> tuple[int, int]:
    """Display offset and width of the code points ``line[start:end]`` (0-based);
    at least one column wide so that an empty span still shows a caret."""
    start = max(0, min(start, len(line)))
    end = max(start, min(end, len(line)))
    return _width(line[:start]), max(_width(line[start:end]), 1)


def _rows(first: int, last: int) -> list[int | None]:
    rows: list[int | None] = list(range(first, last + 1))
    if len(rows) > MAX_LINES:
        rows = rows[:_HEAD_TAIL] + [None] + rows[-_HEAD_TAIL:]
    return rows


def _frame(finding: Finding, ctx: ReportContext, style: Style) -> list[str]:
    first, last = finding.start.row, max(finding.end.row, finding.start.row)
    if source_line(ctx, finding.path, first) is None:
        return []
    rows = _rows(first, last)
    gutter = len(str(last))
    blank = f"{' ' * gutter} {style.sep('|')}"
    out = [blank]
    for row in rows:
        if row is None:
            out.append(f"{' ' * gutter} {style.sep('|')} ...")
            continue
        line = source_line(ctx, finding.path, row)
        if line is None:
            break
        start = finding.start.column - 1 if row == first else len(line) - len(line.lstrip())
        end = finding.end.column - 1 if row == last else len(line)
        out.append(f"{str(row).rjust(gutter)} {style.sep('|')} {_display(line)}".rstrip())
        offset, width = _underline(line, start, end)
        label = f" {style.code(finding.code)}" if row == last else ""
        out.append(f"{blank} {' ' * offset}{style.code('^' * width)}{label}")
    out.append(blank)
    return out


def _help(finding: Finding, style: Style) -> list[str]:
    if finding.fix is None:
        return []
    note = " (unsafe fix)" if finding.fix.applicability is Applicability.UNSAFE else ""
    return [f"  {style.sep('=')} help: {printable(finding.fix.message)}{note}"]


def render(findings: list[Finding], ctx: ReportContext) -> str:
    style = Style(ctx.color)
    ordered = sorted_findings(findings)
    body: list[str] = []
    for finding in ordered:
        body.append(finding_header(finding, ctx, style))
        body.extend(_frame(finding, ctx, style))
        body.extend(_help(finding, style))
        body.append("")
    return join_report(body, ordered, ctx, style)
