"""The CI formats: GitHub workflow commands, GitLab Code Quality and JUnit XML."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from fastdb_lint.diagnostics import Finding, Location, Severity
from fastdb_lint.engine import lint_sources
from fastdb_lint.report import ReportContext, render
from fastdb_lint.report.github import escape_data, escape_property

CODE = """\
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

engine = create_async_engine("sqlite+aiosqlite://")
SessionLocal = async_sessionmaker(engine)
Other = async_sessionmaker(engine, expire_on_commit=True)
"""


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def lint(code: str) -> list[Finding]:
    return lint_sources({"app/db.py": code}, select=("FDB201",))["app/db.py"]


def make(
    code: str = "FDB201",
    message: str = "msg",
    path: str = "app/db.py",
    row: int = 1,
    severity: Severity = Severity.WARNING,
    name: str = "expire-on-commit-enabled",
) -> Finding:
    return Finding(
        code, message, path, Location(row, 3), Location(row, 9), noqa_row=row, severity=severity, rule_name=name
    )


# -- GitHub -----------------------------------------------------------------------------------

COMMAND = re.compile(r"^::(?P<level>error|warning|notice) (?P<props>[^:]*)::(?P<data>.*)$")


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    match = COMMAND.match(line)
    assert match, line
    props = dict(item.split("=", 1) for item in match.group("props").split(","))
    return match.group("level"), props, match.group("data")


def test_github_annotation_for_a_real_finding(in_tmp: Path) -> None:
    findings = lint(CODE)
    lines = render("github", findings, ReportContext(root=in_tmp)).splitlines()
    assert len(lines) == 2
    level, props, data = parse_command(lines[0])
    assert level == "warning"
    assert props == {
        "file": "app/db.py",
        "line": "4",
        "col": "16",
        "endLine": "4",
        "endColumn": "42",
        "title": "FDB201 (expire-on-commit-enabled)",
    }
    assert data == findings[0].message
    assert lines[0] == (
        "::warning file=app/db.py,line=4,col=16,endLine=4,endColumn=42,"
        f"title=FDB201 (expire-on-commit-enabled)::{findings[0].message}"
    )


def test_github_levels() -> None:
    findings = [
        make(code="FDB402", severity=Severity.SECURITY, name="sql-injection"),
        make(row=2),
        make(code="FDB001", row=3, name="parse-error"),
        make(code="FDB999", row=4, severity=Severity.ERROR, name="made-up"),
    ]
    lines = render("github", findings, ReportContext(root=Path("."))).splitlines()
    assert [parse_command(line)[0] for line in lines] == ["error", "warning", "error", "error"]


def test_github_escaping() -> None:
    assert escape_data("100% done\r\nnext: a, b") == "100%25 done%0D%0Anext: a, b"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    finding = make(message="50% of rows\nsecond: line, here", path="we,ird:name.py")
    (line,) = render("github", [finding], ReportContext(root=Path("."))).splitlines()
    assert line.endswith("::50%25 of rows%0Asecond: line, here")
    assert "file=we%2Cird%3Aname.py," in line
    level, props, data = parse_command(line)
    assert props["file"] == "we%2Cird%3Aname.py"


def test_github_paths(in_tmp: Path) -> None:
    inside = str(in_tmp / "svc" / "app" / "db.py")
    outside = str(in_tmp.parent / "other.py")
    findings = [make(path=inside), make(path=outside, row=2)]
    lines = render("github", findings, ReportContext(root=in_tmp / "svc")).splitlines()
    files = {parse_command(line)[1]["line"]: parse_command(line)[1]["file"] for line in lines}
    assert files["1"] == "app/db.py"
    assert files["2"] == escape_property(Path(outside).as_posix())
    # In a monorepo the checkout (workspace) decides.
    lines = render("github", findings[:1], ReportContext(root=in_tmp / "svc", workspace=in_tmp)).splitlines()
    assert parse_command(lines[0])[1]["file"] == "svc/app/db.py"


def test_github_empty() -> None:
    assert render("github", [], ReportContext(root=Path("."))) == ""


# -- GitLab -----------------------------------------------------------------------------------


def gitlab(findings: list[Finding], ctx: ReportContext) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(render("gitlab", findings, ctx))
    return data


def test_gitlab_required_fields(in_tmp: Path) -> None:
    findings = lint(CODE)
    issues = gitlab(findings, ReportContext(root=in_tmp, sources={"app/db.py": CODE.splitlines()}))
    assert len(issues) == 2
    first = issues[0]
    assert set(first) == {"description", "check_name", "fingerprint", "severity", "location"}
    assert first["check_name"] == "FDB201"
    assert first["description"].startswith("FDB201 ") and findings[0].message in first["description"]
    assert first["severity"] == "minor"
    assert first["location"] == {"path": "app/db.py", "lines": {"begin": 4, "end": 4}}
    assert all(isinstance(i["fingerprint"], str) and i["fingerprint"] for i in issues)


def test_gitlab_severities() -> None:
    issues = gitlab(
        [
            make(code="FDB402", severity=Severity.SECURITY),
            make(row=2),
            make(code="FDB001", row=3),
            make(code="FDB999", row=4, severity=Severity.ERROR),
        ],
        ReportContext(root=Path(".")),
    )
    assert [i["severity"] for i in issues] == ["critical", "minor", "major", "major"]
    assert {i["severity"] for i in issues} <= {"info", "minor", "major", "critical", "blocker"}


def test_gitlab_fingerprints_unique_and_stable(in_tmp: Path) -> None:
    code = CODE + "SessionLocal = async_sessionmaker(engine)\n"

    def prints(text: str) -> list[str]:
        ctx = ReportContext(root=in_tmp, sources={"app/db.py": text.splitlines()})
        return [i["fingerprint"] for i in gitlab(lint(text), ctx)]

    before = prints(code)
    assert len(before) == 3
    assert len(set(before)) == 3  # identical lines 4 and 6 still differ
    assert prints("import os\n\n" + code) == before
    assert prints(code) == before
    assert prints(code.replace("Other", "Renamed"))[1] != before[1]


def test_gitlab_fingerprints_depend_on_path_and_code(in_tmp: Path) -> None:
    sources = {"a.py": ["same line"], "b.py": ["same line"]}
    findings = [make(path="a.py"), make(path="b.py"), make(path="a.py", code="FDB202")]
    issues = gitlab(findings, ReportContext(root=in_tmp, sources=sources))
    assert len({i["fingerprint"] for i in issues}) == 3


def test_gitlab_paths_relative_to_root_or_workspace(in_tmp: Path) -> None:
    finding = make(path=str(in_tmp / "svc" / "app" / "db.py"))
    (issue,) = gitlab([finding], ReportContext(root=in_tmp / "svc"))
    assert issue["location"]["path"] == "app/db.py"
    (issue,) = gitlab([finding], ReportContext(root=in_tmp / "svc", workspace=in_tmp))
    assert issue["location"]["path"] == "svc/app/db.py"


def test_gitlab_empty() -> None:
    assert gitlab([], ReportContext(root=Path("."))) == []


# -- JUnit --------------------------------------------------------------------------------------


def junit(findings: list[Finding], ctx: ReportContext) -> ET.Element:
    out = render("junit", findings, ctx)
    assert out.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(out.encode("utf-8"))


def test_junit_counts_match(in_tmp: Path) -> None:
    findings = [*lint(CODE), make(path="app/models.py", code="FDB301", name="rule-x")]
    root = junit(findings, ReportContext(root=in_tmp))
    assert root.tag == "testsuites"
    assert root.get("name") == "fastdb-lint"
    assert root.get("tests") == "3" and root.get("failures") == "3" and root.get("errors") == "0"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["app/db.py", "app/models.py"]
    for suite in suites:
        cases = suite.findall("testcase")
        assert suite.get("tests") == str(len(cases))
        assert suite.get("failures") == str(len(suite.findall("testcase/failure")))
    case = suites[0].findall("testcase")[0]
    assert case.get("line") == "4"
    assert case.get("classname") == "app/db.py"
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("type") == "FDB201"
    assert failure.get("message") == findings[0].message
    assert failure.text == f"app/db.py:4:16: FDB201 {findings[0].message}"
    assert sum(len(s.findall("testcase/failure")) for s in suites) == int(root.get("failures") or 0)


def test_junit_clean_run_has_a_passing_case() -> None:
    root = junit([], ReportContext(root=Path(".")))
    assert root.get("tests") == "1" and root.get("failures") == "0"
    cases = root.findall("testsuite/testcase")
    assert len(cases) == 1
    assert cases[0].find("failure") is None and cases[0].find("error") is None


def test_junit_reports_errors() -> None:
    ctx = ReportContext(root=Path("."), errors=["bad.py: cannot decode as utf-8"])
    root = junit([make()], ctx)
    assert root.get("tests") == "2" and root.get("failures") == "1" and root.get("errors") == "1"
    errors = root.findall("testsuite/testcase/error")
    assert [e.get("message") for e in errors] == ["bad.py: cannot decode as utf-8"]


def test_junit_is_well_formed_with_awkward_text() -> None:
    finding = make(message='<tag> & "quotes" \x00\x1b control', path="dir/<odd>&.py")
    root = junit([finding], ReportContext(root=Path(".")))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == '<tag> & "quotes" \ufffd\ufffd control'
    assert root.find("testsuite").get("name") == "dir/<odd>&.py"  # type: ignore[union-attr]


def test_github_respects_the_annotation_limit() -> None:
    findings = [make(row=row) for row in range(1, 16)] + [
        make(code="FDB402", row=20 + row, severity=Severity.SECURITY, name="sql-injection") for row in range(3)
    ]
    lines = render("github", findings, ReportContext(root=Path("."))).splitlines()
    commands = [line for line in lines if line.startswith("::")]
    kinds = [parse_command(line)[0] for line in commands]
    assert kinds.count("warning") == 10 and kinds.count("error") == 3
    assert kinds[-1] == "notice" and "5 are not annotated" in commands[-1]
    plain = [line for line in lines if not line.startswith("::")]
    assert len(plain) == len(findings)


def test_github_no_notice_under_the_limit() -> None:
    lines = render("github", [make(row=1), make(row=2)], ReportContext(root=Path("."))).splitlines()
    assert len(lines) == 2 and all(line.startswith("::warning") for line in lines)
