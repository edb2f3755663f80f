"""Helpers shared by the output formats: rule metadata, fix applicability, levels,
paths and URIs, source lines and line-content fingerprints."""

from __future__ import annotations

import bisect
import os
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath
from urllib.parse import quote

from fastdb_lint.catalog import RULES
from fastdb_lint.diagnostics import PARSE_ERROR, Applicability, Finding, FixAvailability, Location, Severity
from fastdb_lint.report import ReportContext, rule_url


@dataclass(frozen=True)
class RuleMeta:
    """What the reporters show about a rule; taken from the catalog when the code is
    known there, else from the finding itself."""

    code: str
    name: str
    summary: str
    fix: FixAvailability
    severity: Severity
    tags: tuple[str, ...]
    url: str
    known: bool = True

    @property
    def is_security(self) -> bool:
        return self.severity is Severity.SECURITY

    @property
    def documentation(self) -> str:
        """The rule's full documentation (imports the rule classes), "" if unknown."""
        if not self.known:
            return ""
        from fastdb_lint.registry import get_rule

        rule = get_rule(self.code)
        return rule.documentation() if rule is not None else ""


def rule_meta(code: str, finding: Finding | None = None) -> RuleMeta:
    rule = RULES.get(code)
    if rule is not None:
        return RuleMeta(
            code=code,
            name=rule.name,
            summary=rule.summary,
            fix=rule.fix,
            severity=rule.severity,
            tags=rule.tags,
            url=rule_url(code),
        )
    name = (finding.rule_name if finding is not None else "") or code.lower()
    if finding is not None and finding.fix is not None:
        fix = FixAvailability(finding.fix.applicability.value)
    else:
        fix = FixAvailability.NONE
    return RuleMeta(
        code=code,
        name=name,
        summary=name.replace("-", " ").capitalize(),
        fix=fix,
        severity=finding.severity if finding is not None else Severity.WARNING,
        tags=(),
        url=rule_url(code),
        known=False,
    )


def rule_name(finding: Finding) -> str:
    return finding.rule_name or rule_meta(finding.code, finding).name


def sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.sort_key, f.end.row, f.end.column, f.message))


# -- fixes --------------------------------------------------------------------------


def is_applicable(finding: Finding, unsafe_fixes: bool) -> bool:
    """Whether ``--fix`` with the current options would apply the finding's fix."""
    if finding.fix is None:
        return False
    return finding.fix.applicability is Applicability.SAFE or unsafe_fixes


def is_hidden_fix(finding: Finding, unsafe_fixes: bool) -> bool:
    """An unsafe fix that only ``--unsafe-fixes`` would apply."""
    return finding.fix is not None and not is_applicable(finding, unsafe_fixes)


def edit_spans(finding: Finding, ctx: ReportContext) -> list[tuple[str, Location, Location]]:
    """Each fix edit as (content, start, end), with 1-based rows and columns.

    Positions come from ``finding.edit_locations``; when those are missing they are
    computed from the source lines (assuming one-character line endings).
    """
    if finding.fix is None:
        return []
    edits = finding.fix.edits
    if len(finding.edit_locations) == len(edits):
        return [(e.content, a, b) for e, (a, b) in zip(edits, finding.edit_locations, strict=True)]
    lines = ctx.sources.get(finding.path)
    if lines is None:
        return []
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(strip_newline(line)) + 1)

    def locate(offset: int) -> Location:
        row = max(bisect.bisect_right(starts, offset, hi=len(lines)) - 1, 0)
        return Location(row + 1, offset - starts[row] + 1)

    return [(e.content, locate(e.start), locate(e.end)) for e in edits]


# -- levels ------------------------------------------------------------------------


def is_error(finding: Finding) -> bool:
    """Security and error rules, and files that cannot be parsed, are errors; the
    other rules are warnings."""
    return finding.severity in (Severity.ERROR, Severity.SECURITY) or finding.code == PARSE_ERROR


def level(finding: Finding) -> str:
    """``error`` or ``warning`` (SARIF levels, GitHub workflow commands)."""
    return "error" if is_error(finding) else "warning"


# -- text ----------------------------------------------------------------------------


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def printable(text: str) -> str:
    """``text`` with control characters (terminal escapes, line breaks) shown as
    escapes so that one finding stays one line and cannot drive the terminal."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char != "\t" and unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def strip_newline(line: str) -> str:
    return line.rstrip("\r\n")


def source_line(ctx: ReportContext, path: str, row: int) -> str | None:
    """The 1-based ``row`` of ``path`` without its line terminator, if known."""
    lines = ctx.sources.get(path)
    if lines is None or not 1 <= row <= len(lines):
        return None
    return strip_newline(lines[row - 1])


# -- paths and URIs ------------------------------------------------------------------


def absolute_path(path: str | PurePath) -> str:
    """``path`` made absolute against the current directory (symlinks kept)."""
    return os.path.abspath(os.fspath(path))


def relative_path(path: str, base: Path) -> str | None:
    """``path`` relative to ``base`` with POSIX separators, or None when it lies
    outside ``base``. Symlinks are resolved when the plain paths do not nest."""
    for resolve in (os.path.abspath, os.path.realpath):
        target = resolve(path)
        root = resolve(os.fspath(base))
        try:
            if os.path.commonpath([target, root]) != root:
                continue
        except ValueError:  # different drives
            continue
        rel = os.path.relpath(target, root)
        return PurePath(rel).as_posix()
    return None


def display_relative(path: str, base: Path) -> str:
    """``path`` relative to ``base`` when inside it, else absolute; POSIX separators."""
    rel = relative_path(path, base)
    if rel is not None:
        return rel
    return PurePath(absolute_path(path)).as_posix()


def file_uri(path: str | PurePath, directory: bool = False) -> str:
    """An absolute ``file://`` URI, percent-encoded; directories end in ``/``."""
    uri = Path(absolute_path(path)).as_uri()
    if directory and not uri.endswith("/"):
        uri += "/"
    return uri


def relative_uri(relpath: str) -> str:
    """A relative POSIX path as a percent-encoded URI reference (undecodable bytes of a
    file name, kept by Python as surrogates, are encoded as the original bytes)."""
    return quote(os.fsencode(relpath), safe="/")


# -- fingerprints ----------------------------------------------------------------


def normalized_content(line: str) -> str:
    """A line with all whitespace removed, so re-indenting does not change it."""
    return "".join(line.split())


def line_hash(content: str) -> str:
    import hashlib

    return hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()


def line_content_keys(findings: list[Finding], ctx: ReportContext) -> list[tuple[str, int]]:
    """For each finding (in the given order), the hash of its line's content and the
    occurrence number of that (path, code, content) among the findings before it.

    Neither depends on the line number, so both stay the same when lines are added
    or removed above the finding. Without the source, the message stands in for the
    line's content.
    """
    seen: dict[tuple[str, str, str], int] = {}
    keys: list[tuple[str, int]] = []
    for finding in findings:
        line = source_line(ctx, finding.path, finding.start.row)
        content = f"line:{normalized_content(line)}" if line is not None else f"message:{finding.message}"
        digest = line_hash(content)
        key = (finding.path, finding.code, digest)
        seen[key] = seen.get(key, 0) + 1
        keys.append((digest, seen[key]))
    return keys
