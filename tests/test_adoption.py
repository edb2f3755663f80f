"""Baselines, --add-noqa, --show-files and --show-settings, through the real CLI."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ASYNC_FACTORY_BAD


@pytest.fixture
def project(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.fastdb-lint]\nselect = ["FDB201"]\n', encoding="utf-8")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "db.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    return tmp_path


def test_baseline_hides_recorded_findings_but_not_new_ones(cli, project):
    written = cli("check", ".", "--write-baseline", "baseline.json", cwd=project)
    assert written.returncode == 0, written.stderr
    assert "Wrote 1 finding" in written.stderr
    data = json.loads((project / "baseline.json").read_text(encoding="utf-8"))
    assert data["findings"][0]["code"] == "FDB201" and data["findings"][0]["path"] == "app/db.py"
    assert cli("check", ".", "--baseline", "baseline.json", cwd=project).returncode == 0
    # Lines inserted above do not resurrect the baselined finding.
    db = project / "app" / "db.py"
    db.write_text("# a new comment\n\n" + db.read_text(encoding="utf-8"), encoding="utf-8")
    assert cli("check", ".", "--baseline", "baseline.json", cwd=project).returncode == 0
    # A new occurrence fails the gate.
    db.write_text(db.read_text(encoding="utf-8") + "Other = async_sessionmaker(engine2)\n", encoding="utf-8")
    result = cli("check", ".", "--baseline", "baseline.json", "--output-format", "json", cwd=project)
    assert result.returncode == 1
    assert [item["location"]["row"] for item in json.loads(result.stdout)] == [6]


def test_bad_baseline_is_an_error(cli, project):
    (project / "baseline.json").write_text("{not json", encoding="utf-8")
    result = cli("check", ".", "--baseline", "baseline.json", cwd=project)
    assert result.returncode == 2
    assert "baseline" in result.stderr and "Traceback" not in result.stderr


def test_add_noqa_then_clean(cli, project):
    db = project / "app" / "db.py"
    db.write_text(
        ASYNC_FACTORY_BAD
        + "Second = async_sessionmaker(engine)  # noqa: FDB301\n",
        encoding="utf-8",
    )
    result = cli("check", ".", "--add-noqa", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "Added 2 noqa directives." in result.stderr
    text = db.read_text(encoding="utf-8")
    assert "SessionLocal = async_sessionmaker(engine)  # noqa: FDB201\n" in text
    assert "Second = async_sessionmaker(engine)  # noqa: FDB201, FDB301\n" in text
    assert cli("check", ".", cwd=project).returncode == 0
    again = cli("check", ".", "--add-noqa", cwd=project)
    assert "Added 0 noqa directives." in again.stderr


def test_add_noqa_leaves_multiline_strings_alone(cli, project):
    db = project / "app" / "db.py"
    source = (
        "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
        'S = async_sessionmaker(engine, info={"doc": """line one\n'
        'line two"""})\n'
    )
    db.write_text(source, encoding="utf-8")
    result = cli("check", ".", "--add-noqa", cwd=project)
    assert "Added 0 noqa directives." in result.stderr
    assert db.read_text(encoding="utf-8") == source


def test_show_files_and_settings(cli, project):
    (project / ".venv").mkdir()
    (project / ".venv" / "x.py").write_text("import sqlalchemy\n", encoding="utf-8")
    files = cli("check", ".", "--show-files", cwd=project)
    assert files.returncode == 0
    assert files.stdout.split() == ["app/db.py"]
    settings = cli("check", ".", "--show-settings", cwd=project)
    assert settings.returncode == 0
    assert f"config file: {project / 'pyproject.toml'}" in settings.stdout
    assert "enabled rules (2): FDB001, FDB201" in settings.stdout
