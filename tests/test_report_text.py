"""The text formats (concise, full), --statistics, --show-fixes and the dispatcher."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fastdb_lint.diagnostics import Applicability, Edit, Finding, Fix, Location, Severity
from fastdb_lint.engine import lint_sources
from fastdb_lint.report import FORMATS, ReportContext, render, render_fix_summary, render_statistics

ANSI = re.compile(r"\x1b\[[0-9;]*m")

CODE = """\
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

engine = create_async_engine("sqlite+aiosqlite://")
SessionLocal = async_sessionmaker(engine)
"""


def make(
    code: str = "FDB201",
    message: str = "something is wrong",
    path: str = "app/db.py",
    start: tuple[int, int] = (1, 1),
    end: tuple[int, int] = (1, 5),
    fix: Applicability | None = None,
    severity: Severity = Severity.WARNING,
    name: str = "expire-on-commit-enabled",
) -> Finding:
    fix_obj = None
    edit_locations: list[tuple[Location, Location]] = []
    if fix is not None:
        fix_obj = Fix("Do the right thing", fix, (Edit(0, 4, "good"),))
        edit_locations = [(Location(*start), Location(*end))]
    return Finding(
        code=code,
        message=message,
        path=path,
        start=Location(*start),
        end=Location(*end),
        fix=fix_obj,
        noqa_row=start[0],
        severity=severity,
        rule_name=name,
        edit_locations=edit_locations,
    )


def ctx(**kwargs: object) -> ReportContext:
    return ReportContext(root=Path("."), **kwargs)  # type: ignore[arg-type]


def real_findings() -> list[Finding]:
    return lint_sources({"app/db.py": CODE}, select=("FDB201",))["app/db.py"]


# -- concise ---------------------------------------------------------------------------


def test_concise_line_and_summary_for_real_finding() -> None:
    findings = real_findings()
    assert len(findings) == 1
    out = render("concise", findings, ctx())
    lines = out.splitlines()
    assert lines[0] == f"app/db.py:4:16: FDB201 [*] {findings[0].message}"
    assert lines[1:] == ["Found 1 error.", "[*] 1 fixable with the --fix option."]


def test_clean_run() -> None:
    assert render("concise", [], ctx()) == "All checks passed!\n"
    assert render("full", [], ctx()) == "All checks passed!\n"


def test_findings_are_sorted_by_path_and_position() -> None:
    findings = [make(path="b.py", start=(1, 1)), make(path="a.py", start=(9, 2)), make(path="a.py", start=(3, 7))]
    lines = render("concise", findings, ctx()).splitlines()
    assert [line.split(" ")[0] for line in lines[:3]] == ["a.py:3:7:", "a.py:9:2:", "b.py:1:1:"]
    assert lines[3] == "Found 3 errors."
    assert len(lines) == 4  # nothing fixable: no fix line


def test_unsafe_fix_is_marked_only_with_unsafe_fixes() -> None:
    findings = [make(fix=Applicability.SAFE, start=(1, 1)), make(fix=Applicability.UNSAFE, start=(2, 1))]
    lines = render("concise", findings, ctx()).splitlines()
    assert "[*]" in lines[0]
    assert "[*]" not in lines[1]
    assert lines[-1] == (
        "[*] 1 fixable with the --fix option (1 hidden fix can be enabled with the --unsafe-fixes option)."
    )

    lines = render("concise", findings, ctx(unsafe_fixes=True)).splitlines()
    assert "[*]" in lines[0] and "[*]" in lines[1]
    assert lines[-1] == "[*] 2 fixable with the --fix option."


def test_only_hidden_fixes() -> None:
    findings = [make(fix=Applicability.UNSAFE), make(fix=Applicability.UNSAFE, start=(2, 1))]
    lines = render("concise", findings, ctx()).splitlines()
    assert lines[-1] == "No fixes available (2 hidden fixes can be enabled with the --unsafe-fixes option)."


def test_summary_after_fixing() -> None:
    fixed = [make(fix=Applicability.SAFE), make(fix=Applicability.SAFE, start=(2, 1))]
    out = render("concise", [make(start=(5, 1))], ctx(fixed=fixed))
    assert "Found 3 errors (2 fixed, 1 remaining)." in out.splitlines()
    out = render("concise", [], ctx(fixed=fixed))
    assert out == "Found 2 errors (2 fixed, 0 remaining).\n"


def test_no_ansi_without_color_and_ansi_with_color() -> None:
    findings = [*real_findings(), make(fix=Applicability.UNSAFE, start=(2, 1))]
    sources = {"app/db.py": CODE.splitlines()}
    fixed = [make(fix=Applicability.SAFE)]
    for fmt in ("concise", "full"):
        plain = render(fmt, findings, ctx(sources=sources, fixed=fixed))
        assert "\x1b" not in plain
        colored = render(fmt, findings, ctx(sources=sources, fixed=fixed, color=True))
        assert ANSI.search(colored)
        assert ANSI.sub("", colored) == plain
    assert "\x1b" not in render_statistics(findings, ctx())
    assert ANSI.sub("", render_statistics(findings, ctx(color=True))) == render_statistics(findings, ctx())
    assert "\x1b" not in render_fix_summary(ctx(fixed=fixed))
    assert ANSI.sub("", render_fix_summary(ctx(fixed=fixed, color=True))) == render_fix_summary(ctx(fixed=fixed))
    assert "\x1b" not in render("concise", [], ctx())
    assert ANSI.search(render("concise", [], ctx(color=True)))


def test_control_characters_in_messages_are_escaped() -> None:
    out = render("concise", [make(message="evil \x1b[31mred\x1b[0m\nsecond line")], ctx())
    assert "\x1b" not in out
    assert "\\x1b[31mred" in out
    assert out.splitlines()[0].endswith("\\x0asecond line")


# -- full ---------------------------------------------------------------------------


def test_full_shows_source_caret_and_help() -> None:
    findings = real_findings()
    out = render("full", findings, ctx(sources={"app/db.py": CODE.splitlines()}))
    lines = out.splitlines()
    assert lines[0] == f"app/db.py:4:16: FDB201 [*] {findings[0].message}"
    source_row = next(line for line in lines if line.startswith("4 | "))
    assert source_row == "4 | SessionLocal = async_sessionmaker(engine)"
    caret_row = lines[lines.index(source_row) + 1]
    carets = caret_row[caret_row.index("^") :].split(" ")[0]
    # The underline starts under column 16 and spans `async_sessionmaker(engine)`.
    assert caret_row.index("^") - len("4 | ") == 15
    assert len(carets) == len("async_sessionmaker(engine)")
    assert caret_row.endswith("FDB201")
    assert "  = help: Set `expire_on_commit=False`" in lines
    assert lines[-1] == "[*] 1 fixable with the --fix option."


def test_full_multiline_span_and_unsafe_help() -> None:
    source = ["x = call(", "    a,", "    b,", ")"]
    finding = make(start=(1, 5), end=(4, 2), fix=Applicability.UNSAFE)
    lines = render("full", [finding], ctx(sources={"app/db.py": source})).splitlines()
    assert "1 | x = call(" in lines
    assert "4 | )" in lines
    under_first = lines[lines.index("1 | x = call(") + 1]
    assert under_first == "  |     " + "^" * len("call(")
    under_last = lines[lines.index("4 | )") + 1]
    assert under_last == "  | ^ FDB201"
    assert "  = help: Do the right thing (unsafe fix)" in lines


def test_full_long_span_is_elided() -> None:
    source = [f"line{i}" for i in range(1, 31)]
    lines = render("full", [make(start=(2, 1), end=(25, 3))], ctx(sources={"app/db.py": source})).splitlines()
    shown = [line for line in lines if re.match(r"^\s*\d+ \| ", line)]
    assert len(shown) == 6
    assert any(line.endswith("| ...") for line in lines)


def test_full_aligns_tabs_and_wide_characters() -> None:
    source = ["\tname = '日本'; bad()"]
    column = source[0].index("bad") + 1
    finding = make(start=(1, column), end=(1, column + 5))
    lines = render("full", [finding], ctx(sources={"app/db.py": source})).splitlines()
    row = next(line for line in lines if line.startswith("1 | "))
    caret = lines[lines.index(row) + 1]
    # Display columns: the tab takes 4 and each CJK character 2.
    expected_offset = 4 + len("name = '") + 4 + len("'; ")
    assert row == "1 |     name = '日本'; bad()"
    assert caret == "  | " + " " * expected_offset + "^^^^^ FDB201"


def test_full_without_source_falls_back_to_header_and_help() -> None:
    out = render("full", [make(fix=Applicability.SAFE)], ctx())
    lines = out.splitlines()
    assert lines[0].startswith("app/db.py:1:1: FDB201 [*]")
    assert lines[1] == "  = help: Do the right thing"
    assert "|" not in out


# -- statistics and fixes summary -------------------------------------------------------


def test_statistics_sorted_by_count() -> None:
    findings = [
        make(code="FDB101", name="rule-a", start=(1, 1)),
        make(code="FDB201", fix=Applicability.SAFE, start=(2, 1)),
        make(code="FDB201", start=(3, 1)),
        make(code="FDB301", name="rule-c", fix=Applicability.UNSAFE, start=(4, 1)),
        make(code="FDB301", name="rule-c", start=(5, 1)),
        make(code="FDB301", name="rule-c", start=(6, 1)),
    ]
    lines = render_statistics(findings, ctx()).splitlines()
    assert lines[:3] == [
        "3\tFDB301\t[ ]\trule-c",
        "2\tFDB201\t[*]\texpire-on-commit-enabled",
        "1\tFDB101\t[ ]\trule-a",
    ]
    assert lines[3] == "Found 6 errors."
    lines = render_statistics(findings, ctx(unsafe_fixes=True)).splitlines()
    assert lines[0] == "3\tFDB301\t[*]\trule-c"

    data = json.loads(render_statistics(findings, ctx(), "json"))
    assert data[0] == {"code": "FDB301", "name": "rule-c", "count": 3, "fixable": False, "fixable_count": 0}
    assert data[1]["fixable_count"] == 1


def test_fixes_summary() -> None:
    fixed = [
        make(path="b.py", fix=Applicability.SAFE),
        make(path="a.py", fix=Applicability.SAFE),
        make(path="a.py", fix=Applicability.SAFE, start=(2, 1)),
        make(path="a.py", code="FDB101", name="rule-a", fix=Applicability.SAFE, start=(3, 1)),
    ]
    assert render_fix_summary(ctx()) == ""
    assert render_fix_summary(ctx(fixed=fixed)).splitlines() == [
        "Fixed 4 errors:",
        "- a.py:",
        "    1 x FDB101 (rule-a)",
        "    2 x FDB201 (expire-on-commit-enabled)",
        "- b.py:",
        "    1 x FDB201 (expire-on-commit-enabled)",
        "",
    ]
    assert render_fix_summary(ctx(fixed=fixed)).endswith(")\n\n")
    # The report itself only counts them.
    out = render("concise", [], ctx(fixed=fixed, show_fixes=True))
    assert out == "Found 4 errors (4 fixed, 0 remaining).\n"


def test_text_module_exports_what_the_cli_uses() -> None:
    from fastdb_lint.report import text

    fixed = [make(fix=Applicability.SAFE)]
    assert text.render_fix_summary(ctx(fixed=fixed)) == render_fix_summary(ctx(fixed=fixed))
    assert text.render_statistics([make()], ctx()) == render_statistics([make()], ctx())


# -- dispatch -----------------------------------------------------------------------------


def test_unknown_format_raises_value_error() -> None:
    with pytest.raises(ValueError, match="unknown output format"):
        render("yaml", [], ctx())


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders(fmt: str) -> None:
    findings = [*real_findings(), make(code="FDB402", severity=Severity.SECURITY, name="sql-injection")]
    out = render(fmt, findings, ctx(sources={"app/db.py": CODE.splitlines()}))
    assert out.endswith("\n")
    assert "FDB201" in out and "FDB402" in out
    assert isinstance(render(fmt, [], ctx()), str)
