"""The ``json`` and ``json-lines`` formats (ruff's JSON shape)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fastdb_lint.diagnostics import Applicability, Edit, Finding, Fix, Location, Severity
from fastdb_lint.engine import lint_sources
from fastdb_lint.report import DOCS_URL, ReportContext, render, rule_url

CODE = """\
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

engine = create_async_engine("sqlite+aiosqlite://")
Other = async_sessionmaker(engine, expire_on_commit=True)
"""

KEYS = {
    "cell",
    "code",
    "end_location",
    "filename",
    "fix",
    "location",
    "message",
    "noqa_row",
    "url",
    "name",
    "severity",
}


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_json_for_a_real_finding(in_tmp: Path) -> None:
    findings = lint_sources({"app/db.py": CODE}, select=("FDB201",))["app/db.py"]
    data = json.loads(render("json", findings, ReportContext(root=in_tmp)))
    assert isinstance(data, list) and len(data) == 1
    item = data[0]
    assert set(item) == KEYS
    assert item["code"] == "FDB201"
    assert item["name"] == "expire-on-commit-enabled"
    assert item["severity"] == "warning"
    assert item["message"] == findings[0].message
    assert item["filename"] == os.path.join(str(in_tmp), "app", "db.py")
    assert os.path.isabs(item["filename"])
    assert item["location"] == {"row": 4, "column": 9}
    assert item["end_location"] == {"row": 4, "column": 58}
    assert item["noqa_row"] == 4
    assert item["url"] == rule_url("FDB201") == DOCS_URL + "FDB201.md"
    assert item["url"].startswith(DOCS_URL)
    assert item["cell"] is None
    fix = item["fix"]
    assert fix["applicability"] == "safe"
    assert fix["message"] == "Set `expire_on_commit=False`"
    # `True` in `expire_on_commit=True` is replaced.
    line = CODE.splitlines()[3]
    assert fix["edits"] == [
        {
            "content": "False",
            "location": {"row": 4, "column": line.index("True") + 1},
            "end_location": {"row": 4, "column": line.index("True") + 5},
        }
    ]


def test_json_without_fix_and_with_unsafe_fix(in_tmp: Path) -> None:
    plain = Finding(
        "FDB001", "Cannot parse file: oops", "bad.py", Location(2, 3), Location(2, 3), rule_name="parse-error"
    )
    unsafe = Finding(
        "FDB402",
        "SQL built from values",
        str(in_tmp / "app" / "q.py"),
        Location(1, 1),
        Location(1, 10),
        fix=Fix("Use bound parameters", Applicability.UNSAFE, (Edit(0, 0, "x"), Edit(3, 9, ""))),
        noqa_row=1,
        severity=Severity.SECURITY,
        rule_name="sql-injection",
        edit_locations=[(Location(1, 1), Location(1, 1)), (Location(1, 4), Location(1, 10))],
    )
    data = json.loads(render("json", [unsafe, plain], ReportContext(root=in_tmp)))
    by_code = {item["code"]: item for item in data}
    assert by_code["FDB001"]["fix"] is None
    assert by_code["FDB001"]["noqa_row"] is None
    assert by_code["FDB001"]["filename"] == str(in_tmp / "bad.py")
    assert by_code["FDB001"]["name"] == "parse-error"
    security = by_code["FDB402"]
    assert security["severity"] == "security"
    assert security["filename"] == str(in_tmp / "app" / "q.py")
    assert security["fix"]["applicability"] == "unsafe"
    assert [e["content"] for e in security["fix"]["edits"]] == ["x", ""]
    assert security["fix"]["edits"][0]["location"] == security["fix"]["edits"][0]["end_location"]


def test_edit_positions_computed_from_source_when_missing(in_tmp: Path) -> None:
    finding = Finding(
        "FDB201",
        "m",
        "a.py",
        Location(2, 1),
        Location(2, 4),
        fix=Fix("f", Applicability.SAFE, (Edit(6, 9, "new"),)),
    )
    ctx = ReportContext(root=in_tmp, sources={"a.py": ["first", "old = 1"]})
    edit = json.loads(render("json", [finding], ctx))[0]["fix"]["edits"][0]
    assert edit == {"content": "new", "location": {"row": 2, "column": 1}, "end_location": {"row": 2, "column": 4}}


def test_empty_json() -> None:
    ctx = ReportContext(root=Path("."))
    assert json.loads(render("json", [], ctx)) == []
    assert render("json-lines", [], ctx) == ""


def test_json_lines_matches_json(in_tmp: Path) -> None:
    findings = lint_sources({"app/db.py": CODE + "Again = async_sessionmaker(engine)\n"}, select=("FDB201",))[
        "app/db.py"
    ]
    assert len(findings) == 2
    ctx = ReportContext(root=in_tmp)
    out = render("json-lines", findings, ctx)
    lines = out.splitlines()
    assert len(lines) == 2 and out.endswith("\n")
    assert [json.loads(line) for line in lines] == json.loads(render("json", findings, ctx))
