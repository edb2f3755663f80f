#!/usr/bin/env python3
"""Check what ``fastdb-lint check --fix --unsafe-fixes`` does to a real tree.

Usage: ``python scripts/check_fix_invariants.py TREE [TREE ...] [--select CODES] [--keep]``

Each TREE is copied to a temporary directory (TREE itself is never touched); on the
copy the script lints, fixes, and fixes again, then checks that

* every file the fix changed still parses (and still compiles, if it compiled before);
* fixing a second time changes nothing;
* no finding with a fix, of a code that was applied to a file, remains in that file;
* files without an applied fix are byte-identical with their mtime untouched, and no
  file appears or disappears;
* a changed file keeps its encoding, BOM, line-ending style and permission bits;
* the runs print no internal error, crash or "produced invalid code" line.

It prints a report and exits 1 on any violation (2 on a usage error).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fastdb_lint.parsing import parse_module  # noqa: E402
from fastdb_lint.registry import all_rules  # noqa: E402
from fastdb_lint.source import SourceError, SourceText  # noqa: E402

SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".ruff_cache",
             ".pytest_cache", ".tox", ".fastdb_lint_cache"}
# Error lines about the input itself, not about fixing it.
INPUT_ERRORS = ("cannot decode", "binary file", "cannot determine the encoding", "cannot read")
_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass
class Snapshot:
    data: bytes
    mtime_ns: int
    mode: int


@dataclass
class Report:
    tree: str
    files: int = 0
    python_files: int = 0
    findings_before: int = 0
    fixable_before: int = 0
    fixed_files: int = 0
    remaining: int = 0
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def snapshot(root: Path) -> dict[str, Snapshot]:
    found: dict[str, Snapshot] = {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for name in files:
            path = Path(directory) / name
            if path.is_symlink() or not path.is_file():
                continue
            info = path.stat()
            found[path.relative_to(root).as_posix()] = Snapshot(path.read_bytes(), info.st_mtime_ns, stat.S_IMODE(info.st_mode))
    return found


def run_check(root: Path, select: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "fastdb_lint", "check", ".", "--no-cache", "--unsafe-fixes", *args]
    if select:
        command += ["--select", ",".join(select)]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, errors="replace", check=False)


def findings_by_file(result: subprocess.CompletedProcess[str], root: Path) -> dict[str, list[dict[str, object]]]:
    try:
        items = json.loads(result.stdout or "[]")
    except ValueError:
        return {}
    found: dict[str, list[dict[str, object]]] = {}
    for item in items:
        filename = str(item["filename"])
        try:
            rel = Path(filename).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            rel = filename
        found.setdefault(rel, []).append(item)
    return found


def problem_lines(stderr: str) -> Iterator[str]:
    for line in stderr.splitlines():
        if not line.strip() or any(marker in line for marker in INPUT_ERRORS):
            continue
        yield line


def line_endings(data: bytes) -> set[bytes]:
    return set(_LINE_END.findall(data))


def compiles(text: str, name: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(text, name, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def check_changed_file(rel: str, before: Snapshot, after: Snapshot, report: Report) -> None:
    if after.mode != before.mode:
        report.violations.append(f"{rel}: permissions changed from {before.mode:o} to {after.mode:o}")
    try:
        old = SourceText.decode(before.data)
        new = SourceText.decode(after.data)
    except SourceError as exc:
        report.violations.append(f"{rel}: fixed file no longer decodes: {exc}")
        return
    if (new.encoding, new.bom) != (old.encoding, old.bom):
        report.violations.append(f"{rel}: encoding {old.encoding}/BOM {old.bom} became {new.encoding}/BOM {new.bom}")
    old_endings, new_endings = line_endings(before.data), line_endings(after.data)
    if old_endings and not new_endings <= old_endings:
        report.violations.append(f"{rel}: line endings {sorted(old_endings)} became {sorted(new_endings)}")
    if not rel.endswith((".py", ".pyi")):
        return
    try:
        parse_module(new.text)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the violation
        report.violations.append(f"{rel}: fixed file does not parse: {type(exc).__name__}: {str(exc)[:200]}")
        return
    if compiles(old.text, rel) and not compiles(new.text, rel):
        report.violations.append(f"{rel}: compiled before the fix, does not compile after it")


def check_tree(tree: Path, select: list[str], keep: bool) -> Report:
    report = Report(str(tree))
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="fastdb-fix-invariants-"))
    copy = workdir / (tree.resolve().name or "tree")
    try:
        shutil.copytree(tree, copy, symlinks=True, ignore=shutil.ignore_patterns(*SKIP_DIRS))
        before = snapshot(copy)
        report.files = len(before)
        report.python_files = sum(1 for rel in before if rel.endswith((".py", ".pyi")))

        lint = run_check(copy, select, "--output-format", "json")
        if lint.returncode not in (0, 1, 2) or not lint.stdout.strip().startswith("["):
            report.violations.append(f"lint run failed (exit {lint.returncode}): {lint.stderr.strip()[:500]}")
            return report
        report.violations.extend(f"lint run: {line}" for line in problem_lines(lint.stderr))
        initial = findings_by_file(lint, copy)
        report.findings_before = sum(len(items) for items in initial.values())
        fixable = {rel: {str(i["code"]) for i in items if i.get("fix")} for rel, items in initial.items()}
        fixable = {rel: codes for rel, codes in fixable.items() if codes}
        report.fixable_before = sum(1 for items in initial.values() for i in items if i.get("fix"))

        fix = run_check(copy, select, "--fix", "--output-format", "json")
        if fix.returncode not in (0, 1, 2):
            report.violations.append(f"fix run failed (exit {fix.returncode}): {fix.stderr.strip()[:500]}")
        report.violations.extend(f"fix run: {line}" for line in problem_lines(fix.stderr))
        remaining = findings_by_file(fix, copy)
        report.remaining = sum(len(items) for items in remaining.values())
        after = snapshot(copy)

        appeared, vanished = sorted(set(after) - set(before)), sorted(set(before) - set(after))
        report.violations.extend(f"{rel}: file appeared during the fix run" for rel in appeared)
        report.violations.extend(f"{rel}: file vanished during the fix run" for rel in vanished)
        for rel in sorted(set(before) & set(after)):
            old, new = before[rel], after[rel]
            if new.data == old.data:
                if new.mtime_ns != old.mtime_ns:
                    report.violations.append(f"{rel}: rewritten without a change (mtime moved)")
                continue
            report.fixed_files += 1
            if rel not in fixable:
                report.violations.append(f"{rel}: changed although it had no fixable finding")
            check_changed_file(rel, old, new, report)
            applied = fixable.get(rel, set())
            for item in remaining.get(rel, []):
                if item.get("fix") and item["code"] in applied:
                    location = item["location"]
                    assert isinstance(location, dict)
                    report.violations.append(
                        f"{rel}:{location['row']}:{location['column']}: {item['code']} still fixable after --fix"
                    )

        second = run_check(copy, select, "--fix", "--output-format", "json")
        report.violations.extend(f"second fix run: {line}" for line in problem_lines(second.stderr))
        final = snapshot(copy)
        for rel in sorted(set(after) | set(final)):
            if rel not in after or rel not in final or after[rel].data != final[rel].data:
                report.violations.append(f"{rel}: the second fix run changed it again (fixes are not idempotent)")
        second_count = sum(len(items) for items in findings_by_file(second, copy).values())
        if second_count != report.remaining:
            # Not a change to any file: a fix in one file can settle a finding in another
            # (a model's relationship loading, say) that the first run had already reported.
            report.notes.append(
                f"the second fix run reported {second_count} findings, the first {report.remaining} "
                "(cross-file findings settled by fixes elsewhere)"
            )
    finally:
        report.seconds = time.monotonic() - started
        if keep:
            report.notes.append(f"copy kept at {copy}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return report


def default_selection() -> list[str]:
    """Every rule, opt-in ones included."""
    return sorted(all_rules())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("trees", nargs="+", type=Path, help="directories to check (copied first; never modified)")
    parser.add_argument("--select", help="comma-separated rule selection (default: every rule, opt-in ones too)")
    parser.add_argument("--keep", action="store_true", help="keep the fixed copies and print where they are")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    args = parser.parse_args(argv)
    select = [s for s in (args.select or "").split(",") if s] or default_selection()
    reports = []
    for tree in args.trees:
        if not tree.is_dir():
            print(f"check_fix_invariants: error: {tree}: not a directory", file=sys.stderr)
            return 2
        reports.append(check_tree(tree, select, args.keep))
    if args.json:
        print(json.dumps([report.__dict__ for report in reports], indent=2))
    else:
        for report in reports:
            status = "OK" if not report.violations else f"{len(report.violations)} VIOLATION(S)"
            print(
                f"{report.tree}: {status}: {report.files} files ({report.python_files} Python), "
                f"{report.findings_before} findings ({report.fixable_before} fixable), "
                f"{report.fixed_files} files fixed, {report.remaining} findings remaining, {report.seconds:.1f}s"
            )
            for violation in report.violations:
                print(f"  violation: {violation}")
            for note in report.notes:
                print(f"  note: {note}")
    return 1 if any(report.violations for report in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
