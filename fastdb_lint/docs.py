"""Rule documentation generated from the rule classes.

``fastdb-lint rule CODE`` prints :func:`rule_markdown`; ``python -m fastdb_lint.docs``
writes ``docs/rules/<CODE>.md`` for every rule, the rules table of ``README.md``
(between the ``rules-table`` markers) and the rule catalog ``fastdb_lint/catalog.py``.
``tests/test_docs.py`` fails when any of them is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fastdb_lint.registry import all_rules
from fastdb_lint.rules.base import Rule

TABLE_START = "<!-- rules-table:start -->"
TABLE_END = "<!-- rules-table:end -->"
_GROUPS = {
    "FDB0": "The linter itself",
    "FDB1": "Sessions and engines",
    "FDB2": "Async correctness",
    "FDB3": "Query API (SQLAlchemy 2.0 style)",
    "FDB4": "Raw SQL",
    "FDB5": "Models and schema",
    "FDB6": "Engine configuration and drivers",
    "FDB7": "Alembic migrations",
    "FDB8": "Transactions and writes",
    "FDB9": "FastAPI integration",
}


def _fix_text(rule: type[Rule]) -> str:
    return {
        "safe": "safe (applied by `--fix`)",
        "unsafe": "unsafe (applied by `--fix --unsafe-fixes`)",
        "none": "none",
    }[rule.fix.value]


def rule_markdown(rule: type[Rule], *, examples: int = 3) -> str:
    status = f"opt-in: enable it with `--select {rule.code}`" if rule.opt_in else "enabled by default"
    lines = [
        f"# {rule.name} ({rule.code})",
        "",
        f"{rule.summary}.",
        "",
        f"Fix: {_fix_text(rule)}. Status: {status}. Severity: {rule.severity.value}.",
        "",
        rule.documentation(),
    ]
    if rule.invalid:
        lines += ["", "## Flagged", ""]
        for example in rule.invalid[:examples]:
            lines += ["```python", example.code.rstrip("\n"), "```", ""]
            if example.fixed is not None:
                lines += ["Fixed:", "", "```python", example.fixed.rstrip("\n"), "```", ""]
    if rule.valid:
        lines += ["## Not flagged", ""]
        for example in rule.valid[:examples]:
            lines += ["```python", example.code.rstrip("\n"), "```", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def rules_table() -> str:
    rows = []
    group = None
    for rule in all_rules().values():
        prefix = rule.code[:4]
        if prefix != group:
            group = prefix
            rows += ["", f"**{_GROUPS.get(prefix, prefix)}**", "", "| code | name | summary | fix | default |", "|---|---|---|---|---|"]
        fix = {"safe": "safe", "unsafe": "unsafe", "none": ""}[rule.fix.value]
        rows.append(
            f"| [{rule.code}](docs/rules/{rule.code}.md) | {rule.name} | {rule.summary} | {fix} | "
            f"{'opt-in' if rule.opt_in else 'yes'} |"
        )
    return "\n".join(rows).strip("\n")


_CATALOG_HEADER = '''"""The rule catalog: code, name, summary, fix availability, opt-in status, severity and
tags of every rule, as plain data.

Generated from the rule classes by ``python -m fastdb_lint.docs``; do not edit. Rule
selection, configuration and reports read it, so a run answered from the cache never
imports the rule modules or LibCST.
"""

from __future__ import annotations

from typing import NamedTuple

from fastdb_lint.diagnostics import FixAvailability, Severity


class RuleInfo(NamedTuple):
    code: str
    name: str
    summary: str
    fix: FixAvailability
    opt_in: bool
    severity: Severity
    tags: tuple[str, ...]
    # Words one of which a Python file must mention to be linted by the rule (with the
    # project's symbols, for rules that read them); () for every file.
    triggers: tuple[str, ...]


RULES: dict[str, RuleInfo] = {
    info.code: info
    for info in (
'''


def catalog_module() -> str:
    lines = [_CATALOG_HEADER.rstrip("\n")]
    for rule in all_rules().values():
        fields = [
            repr(rule.code),
            repr(rule.name),
            repr(rule.summary),
            f"FixAvailability.{rule.fix.name}",
            repr(bool(rule.opt_in)),
            f"Severity.{rule.severity.name}",
            repr(tuple(rule.tags)),
            repr(tuple(rule.trigger_words())),
        ]
        lines.append(f"        RuleInfo({', '.join(fields)}),")
    lines += ["    )", "}", ""]
    return "\n".join(lines)


def expected_files(repo: Path) -> dict[Path, str]:
    files = {repo / "docs" / "rules" / f"{code}.md": rule_markdown(rule, examples=100) for code, rule in all_rules().items()}
    readme = repo / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if start != -1 and end != -1:
        text = text[: start + len(TABLE_START)] + "\n" + rules_table() + "\n" + text[end:]
    files[readme] = text
    files[repo / "fastdb_lint" / "catalog.py"] = catalog_module()
    return files


def main(argv: list[str] | None = None) -> int:
    repo = Path(argv[0] if argv else ".").resolve()
    expected = expected_files(repo)
    docs = repo / "docs" / "rules"
    docs.mkdir(parents=True, exist_ok=True)
    for stale in docs.glob("*.md"):
        if stale not in expected:
            stale.unlink()
    for path, text in expected.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(repo)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
