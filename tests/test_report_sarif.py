"""The SARIF format: schema validity, GitHub code-scanning requirements, URIs,
fingerprints, rule metadata and fixes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fastdb_lint import __version__
from fastdb_lint.diagnostics import Applicability, Edit, Finding, Fix, Location, Severity
from fastdb_lint.engine import lint_sources
from fastdb_lint.registry import all_rules
from fastdb_lint.report import ReportContext, render, rule_url
from fastdb_lint.report.common import rule_meta
from fastdb_lint.report.sarif import reporting_descriptor

SCHEMA_PATH = Path(__file__).parents[2] / "shared" / "schemas" / "sarif-schema-2.1.0.json"

CODE = """\
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

engine = create_async_engine("sqlite+aiosqlite://")
SessionLocal = async_sessionmaker(engine)
Other = async_sessionmaker(engine, expire_on_commit=True)
"""
INSERTED = "import os\nimport sys\n\n"


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def lint(code: str, path: str = "app/db.py") -> list[Finding]:
    return lint_sources({path: code}, select=("FDB201",))[path]


def sarif(findings: list[Finding], ctx: ReportContext) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(render("sarif", findings, ctx))
    return data


def security_finding(path: str = "app/queries.py") -> Finding:
    return Finding(
        code="FDB402",
        message="SQL text built from values with an f-string",
        path=path,
        start=Location(3, 20),
        end=Location(3, 52),
        fix=Fix(
            "Use a bound parameter",
            Applicability.UNSAFE,
            (Edit(40, 50, ":user_id"), Edit(60, 60, ".bindparams(user_id=user_id)")),
        ),
        noqa_row=3,
        severity=Severity.SECURITY,
        rule_name="sql-injection",
        edit_locations=[(Location(3, 40), Location(3, 50)), (Location(3, 60), Location(3, 60))],
    )


def varied_findings(root: Path) -> list[Finding]:
    return [
        *lint(CODE),
        security_finding(),
        Finding(
            "FDB001",
            "Cannot parse file: unexpected EOF",
            "broken.py",
            Location(7, 1),
            Location(7, 1),
            rule_name="parse-error",
        ),
        Finding("FDB201", "multi-line", "my app/ünï.py", Location(2, 5), Location(4, 2), severity=Severity.WARNING),
        Finding("FDB201", "outside", str(root.parent / "elsewhere.py"), Location(1, 1), Location(1, 2)),
    ]


def full_ctx(root: Path, **kwargs: Any) -> ReportContext:
    return ReportContext(
        root=root,
        sources={
            "app/db.py": CODE.splitlines(),
            "app/queries.py": ["", "", "    q = text(f'select * from users where id = {user_id}')"],
        },
        exit_code=1,
        **kwargs,
    )


# -- schema --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def validator() -> Any:
    if not SCHEMA_PATH.is_file():
        pytest.skip(f"SARIF schema not found at {SCHEMA_PATH}")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_valid_against_the_schema(validator: Any, in_tmp: Path) -> None:
    log = sarif(varied_findings(in_tmp), full_ctx(in_tmp, errors=["secret.py: cannot decode as utf-8"]))
    errors = [e.message for e in validator.iter_errors(log)]
    assert errors == []
    assert len(log["runs"][0]["results"]) == 6


def test_empty_log_is_valid(validator: Any, in_tmp: Path) -> None:
    log = sarif([], ReportContext(root=in_tmp))
    assert list(validator.iter_errors(log)) == []
    run = log["runs"][0]
    assert run["results"] == []
    assert run["tool"]["driver"]["rules"] == []
    assert run["invocations"][0] == {
        "executionSuccessful": True,
        "exitCode": 0,
        "workingDirectory": {"uri": in_tmp.resolve().as_uri() + "/"},
    }


def test_schema_catches_a_broken_log(validator: Any, in_tmp: Path) -> None:
    log = sarif(lint(CODE), ReportContext(root=in_tmp))
    log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    assert list(validator.iter_errors(log))


# -- GitHub requirements ---------------------------------------------------------------------


def test_top_level_and_driver(in_tmp: Path) -> None:
    log = sarif(lint(CODE), full_ctx(in_tmp))
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "fastdb-lint"
    assert driver["version"] == __version__
    assert driver["informationUri"].startswith("https://")
    assert run["columnKind"] == "unicodeCodePoints"
    assert [rule["id"] for rule in driver["rules"]] == ["FDB201"]


def test_rules_have_every_text_github_requires(in_tmp: Path) -> None:
    log = sarif(varied_findings(in_tmp), full_ctx(in_tmp))
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["FDB001", "FDB201", "FDB402"]
    for rule in rules:
        assert rule["name"]
        assert 0 < len(rule["shortDescription"]["text"]) <= 1024
        assert 0 < len(rule["fullDescription"]["text"]) <= 1024
        assert rule["help"]["text"]
        assert rule["help"]["markdown"]
        assert rule["helpUri"] == rule_url(rule["id"])
        assert rule["helpUri"] in rule["help"]["markdown"]
        assert rule["defaultConfiguration"]["level"] in ("note", "warning", "error")
    fdb201 = rules[1]
    assert fdb201["name"] == "expire-on-commit-enabled"
    assert fdb201["shortDescription"]["text"] == all_rules()["FDB201"].summary
    assert fdb201["help"]["text"] == all_rules()["FDB201"].documentation()
    assert "## Why is this bad?" in fdb201["help"]["markdown"]
    assert fdb201["fullDescription"]["text"].startswith("Flags `async_sessionmaker(...)`")


def test_results_reference_their_rule(in_tmp: Path) -> None:
    log = sarif(varied_findings(in_tmp), full_ctx(in_tmp))
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"]
        assert len(result["locations"]) == 1
        region = result["locations"][0]["physicalLocation"]["region"]
        assert set(region) == {"startLine", "startColumn", "endLine", "endColumn"}
        assert all(value >= 1 for value in region.values())
        assert result["partialFingerprints"]["primaryLocationLineHash"]
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels == {"FDB201": "warning", "FDB402": "error", "FDB001": "error"}


def test_region_matches_the_finding(in_tmp: Path) -> None:
    findings = lint(CODE)
    log = sarif(findings, full_ctx(in_tmp))
    region = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]
    first = findings[0]
    assert region == {
        "startLine": first.start.row,
        "startColumn": first.start.column,
        "endLine": first.end.row,
        "endColumn": first.end.column,
    }
    # An empty span (a parse error) still covers one column.
    parse_error = Finding("FDB001", "Cannot parse", "x.py", Location(3, 4), Location(3, 4))
    result = sarif([parse_error], full_ctx(in_tmp))["runs"][0]["results"][0]
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 3, "startColumn": 4, "endLine": 3, "endColumn": 5}


# -- URIs ----------------------------------------------------------------------------------


def test_relative_uris_with_srcroot(in_tmp: Path) -> None:
    findings = [*lint(CODE), Finding("FDB201", "m", "my app/ünï.py", Location(1, 1), Location(1, 2))]
    log = sarif(findings, full_ctx(in_tmp))
    run = log["runs"][0]
    root_uri = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert root_uri == in_tmp.resolve().as_uri() + "/"
    assert root_uri.startswith("file:///") and root_uri.endswith("/")
    locations = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]]
    assert locations[0] == {"uri": "app/db.py", "uriBaseId": "%SRCROOT%"}
    assert locations[-1] == {"uri": "my%20app/%C3%BCn%C3%AF.py", "uriBaseId": "%SRCROOT%"}


def test_absolute_paths_inside_root_become_relative(in_tmp: Path) -> None:
    path = str(in_tmp / "pkg" / "models.py")
    log = sarif([Finding("FDB201", "m", path, Location(1, 1), Location(1, 2))], ReportContext(root=in_tmp))
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "pkg/models.py", "uriBaseId": "%SRCROOT%"}


def test_root_given_relatively(in_tmp: Path) -> None:
    (in_tmp / "proj").mkdir()
    finding = Finding("FDB201", "m", "proj/app/db.py", Location(1, 1), Location(1, 2))
    log = sarif([finding], ReportContext(root=Path("proj")))
    run = log["runs"][0]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == (in_tmp / "proj").resolve().as_uri() + "/"
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "app/db.py"


def test_files_outside_root_get_absolute_uris(in_tmp: Path) -> None:
    outside = in_tmp.parent / "elsewhere.py"
    log = sarif([Finding("FDB201", "m", str(outside), Location(1, 1), Location(1, 2))], ReportContext(root=in_tmp))
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": outside.as_uri()}


# -- fingerprints ----------------------------------------------------------------------------


def fingerprints(code: str, root: Path) -> list[str]:
    findings = lint(code)
    ctx = ReportContext(root=root, sources={"app/db.py": code.splitlines()})
    return [r["partialFingerprints"]["primaryLocationLineHash"] for r in sarif(findings, ctx)["runs"][0]["results"]]


def test_fingerprints_survive_lines_added_above(in_tmp: Path) -> None:
    before = fingerprints(CODE, in_tmp)
    after = fingerprints(INSERTED + CODE, in_tmp)
    assert len(before) == 2
    assert before == after
    assert before[0] != before[1]
    for value in before:
        digest, occurrence = value.split(":")
        assert len(digest) == 16 and int(digest, 16) >= 0
        assert occurrence == "1"
    # Re-indenting the line does not change it; editing it does.
    assert fingerprints(CODE.replace("SessionLocal = ", "SessionLocal  =  "), in_tmp)[0] == before[0]
    assert fingerprints(CODE.replace("SessionLocal", "Factory"), in_tmp)[0] != before[0]


def test_identical_lines_get_distinct_occurrences(in_tmp: Path) -> None:
    code = CODE + "SessionLocal = async_sessionmaker(engine)\n"
    values = fingerprints(code, in_tmp)
    assert len(values) == 3
    assert len(set(values)) == 3
    assert values[0].split(":")[0] == values[2].split(":")[0]
    assert [v.split(":")[1] for v in values] == ["1", "1", "2"]


def test_fingerprint_without_source_is_still_stable(in_tmp: Path) -> None:
    def value(row: int) -> str:
        finding = Finding("FDB201", "msg", "a.py", Location(row, 1), Location(row, 2))
        log = sarif([finding], ReportContext(root=in_tmp))
        return str(log["runs"][0]["results"][0]["partialFingerprints"]["primaryLocationLineHash"])

    assert value(3) == value(10)


# -- security rules --------------------------------------------------------------------------


def test_security_severity_only_on_security_rules(in_tmp: Path) -> None:
    log = sarif(varied_findings(in_tmp), full_ctx(in_tmp))
    for rule in log["runs"][0]["tool"]["driver"]["rules"]:
        props = rule["properties"]
        if rule["id"] == "FDB402":
            assert 0.0 < float(props["security-severity"]) <= 10.0
            assert "security" in props["tags"]
            assert rule["defaultConfiguration"]["level"] == "error"
        else:
            assert "security-severity" not in props
            assert "security" not in props.get("tags", [])


def test_catalog_security_severity_follows_rule_severity() -> None:
    for code, rule in all_rules().items():
        props = reporting_descriptor(rule_meta(code))["properties"]
        assert isinstance(props, dict)
        is_security = rule.severity is Severity.SECURITY
        assert ("security-severity" in props) == is_security, code
        if code in ("FDB402", "FDB605"):
            assert is_security, f"{code} is a security rule"


@pytest.mark.parametrize("code", ["FDB402", "FDB605"])
def test_named_security_rules(code: str, in_tmp: Path) -> None:
    finding = security_finding()
    finding.code = code
    rule = sarif([finding], ReportContext(root=in_tmp))["runs"][0]["tool"]["driver"]["rules"][0]
    assert rule["id"] == code
    assert float(rule["properties"]["security-severity"]) >= 7.0


# -- fixes and invocations -------------------------------------------------------------------


def test_fixes_as_artifact_changes(in_tmp: Path) -> None:
    findings = lint(CODE)
    log = sarif([*findings, security_finding()], full_ctx(in_tmp))
    results = {
        (r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"]): r
        for r in log["runs"][0]["results"]
    }
    second = results[("FDB201", 5)]
    (fix,) = second["fixes"]
    assert fix["description"]["text"] == "Set `expire_on_commit=False`"
    (change,) = fix["artifactChanges"]
    assert change["artifactLocation"] == {"uri": "app/db.py", "uriBaseId": "%SRCROOT%"}
    line = CODE.splitlines()[4]
    column = line.index("True") + 1
    assert change["replacements"] == [
        {
            "deletedRegion": {"startLine": 5, "startColumn": column, "endLine": 5, "endColumn": column + 4},
            "insertedContent": {"text": "False"},
        }
    ]
    unsafe = results[("FDB402", 3)]["fixes"][0]
    assert unsafe["properties"]["applicability"] == "unsafe"
    insertion = unsafe["artifactChanges"][0]["replacements"][1]
    # A pure insertion is an empty region.
    assert insertion["deletedRegion"]["startColumn"] == insertion["deletedRegion"]["endColumn"] == 60
    assert "fixes" not in sarif(
        [Finding("FDB201", "m", "a.py", Location(1, 1), Location(1, 2))], full_ctx(in_tmp)
    )["runs"][0]["results"][0]


def test_invocation_reports_exit_code_and_errors(in_tmp: Path) -> None:
    ctx = ReportContext(root=in_tmp, exit_code=2, errors=["bad.py: cannot decode as utf-8", "gone.py: not found"])
    invocation = sarif([], ctx)["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["exitCode"] == 2
    assert [n["message"]["text"] for n in invocation["toolExecutionNotifications"]] == ctx.errors
    assert all(n["level"] == "error" for n in invocation["toolExecutionNotifications"])
    ok = sarif(lint(CODE), ReportContext(root=in_tmp, exit_code=1))["runs"][0]["invocations"][0]
    assert ok["executionSuccessful"] is True and ok["exitCode"] == 1
    assert "toolExecutionNotifications" not in ok
