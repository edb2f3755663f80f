"""Baselines: accept the findings a legacy codebase has today, fail on new ones.

A baseline records, per finding, its code, its path (relative to the configuration
root) and a hash of the offending line's content with white space removed, so that
edits elsewhere in the file (lines added above, re-indentation) do not bring baselined
findings back. Each entry has a count: three identical findings on identical lines
need three entries.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from fastdb_lint.diagnostics import Finding

VERSION = 1


class BaselineError(Exception):
    pass


def _line_hash(line: str) -> str:
    return hashlib.sha256("".join(line.split()).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _key(finding: Finding, root: Path, lines: list[str]) -> tuple[str, str, str]:
    path = Path(finding.path)
    try:
        rel = path.resolve().relative_to(root).as_posix()
    except (ValueError, OSError):
        rel = path.as_posix()
    row = finding.start.row
    line = lines[row - 1] if 0 < row <= len(lines) else finding.message
    return finding.code, rel, _line_hash(line)


def write(path: Path, findings: list[Finding], root: Path, sources: dict[str, list[str]]) -> int:
    counts = Counter(_key(f, root, sources.get(f.path, [])) for f in findings)
    entries = [
        {"code": code, "path": rel, "line_hash": digest, "count": count}
        for (code, rel, digest), count in sorted(counts.items())
    ]
    data = {"version": VERSION, "tool": "fastdb-lint", "findings": entries}
    try:
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BaselineError(f"cannot write baseline {path}: {exc.strerror or exc}") from exc
    return sum(counts.values())


def load(path: Path) -> Counter[tuple[str, str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise BaselineError(f"baseline {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("findings"), list):
        raise BaselineError(f"baseline {path} is not a fastdb-lint baseline (version {VERSION})")
    counts: Counter[tuple[str, str, str]] = Counter()
    for entry in data["findings"]:
        try:
            counts[(entry["code"], entry["path"], entry["line_hash"])] += int(entry.get("count", 1))
        except (KeyError, TypeError, ValueError) as exc:
            raise BaselineError(f"baseline {path}: malformed entry {entry!r}") from exc
    return counts


def filter_new(
    findings: list[Finding], baseline: Counter[tuple[str, str, str]], root: Path, sources: dict[str, list[str]]
) -> tuple[list[Finding], int]:
    """Findings not covered by the baseline, and how many were covered."""
    remaining = Counter(baseline)
    new: list[Finding] = []
    covered = 0
    for finding in findings:
        key = _key(finding, root, sources.get(finding.path, []))
        if remaining[key] > 0:
            remaining[key] -= 1
            covered += 1
        else:
            new.append(finding)
    return new, covered
