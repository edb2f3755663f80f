"""The command line, run for real in a subprocess."""

from __future__ import annotations

import codecs
import json
import os
import stat

import pytest

from tests.conftest import ASYNC_FACTORY_BAD, ASYNC_FACTORY_GOOD


@pytest.fixture
def project(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.fastdb-lint]\nselect = ["FDB201"]\n', encoding="utf-8")
    (tmp_path / "app").mkdir()
    return tmp_path


def test_exit_codes_clean_findings_and_errors(cli, project):
    (project / "app" / "db.py").write_text(ASYNC_FACTORY_GOOD, encoding="utf-8")
    clean = cli("check", ".", cwd=project)
    assert clean.returncode == 0, clean.stderr
    (project / "app" / "db.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    dirty = cli("check", ".", cwd=project)
    assert dirty.returncode == 1
    assert "app/db.py:3:16: FDB201" in dirty.stdout
    assert cli("check", ".", "--exit-zero", cwd=project).returncode == 0
    missing = cli("check", "nope.py", cwd=project)
    assert missing.returncode == 2
    assert "nope.py" in missing.stderr and "Traceback" not in missing.stderr
    unknown = cli("check", ".", "--select", "FDB999", cwd=project)
    assert unknown.returncode == 2
    assert "unknown rule selector" in unknown.stderr
    bad_flag = cli("check", "--no-such-flag", cwd=project)
    assert bad_flag.returncode == 2


def test_bad_config_exits_2_with_one_line(cli, project):
    (project / "pyproject.toml").write_text('[tool.fastdb-lint]\nselct = ["FDB2"]\n', encoding="utf-8")
    result = cli("check", ".", cwd=project)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "selct" in result.stderr


def test_json_output_shape(cli, project):
    (project / "app" / "db.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    result = cli("check", ".", "--output-format", "json", cwd=project)
    assert result.returncode == 1
    [item] = json.loads(result.stdout)
    assert item["code"] == "FDB201"
    assert item["location"] == {"row": 3, "column": 16}
    assert item["filename"] == str(project / "app" / "db.py")
    assert item["fix"]["applicability"] == "safe"
    assert item["noqa_row"] == 3
    assert item["url"].endswith("docs/rules/FDB201.md")


def test_fix_writes_and_preserves_bytes_conventions(cli, project):
    path = project / "app" / "db.py"
    crlf_bom = codecs.BOM_UTF8 + ASYNC_FACTORY_BAD.replace("\n", "\r\n").encode()
    path.write_bytes(crlf_bom)
    os.chmod(path, 0o640)
    untouched = project / "app" / "other.py"
    untouched.write_text(ASYNC_FACTORY_GOOD, encoding="utf-8")
    os.utime(untouched, (1_000_000, 1_000_000))
    result = cli("check", ".", "--fix", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    fixed = path.read_bytes()
    assert fixed == codecs.BOM_UTF8 + ASYNC_FACTORY_GOOD.replace("\n", "\r\n").encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert untouched.stat().st_mtime == 1_000_000
    assert not [p for p in (project / "app").iterdir() if "fastdb-tmp" in p.name]
    again = cli("check", ".", "--fix", cwd=project)
    assert again.returncode == 0
    assert path.read_bytes() == fixed


def test_fix_keeps_latin1_encoding(cli, project):
    path = project / "app" / "db.py"
    source = "# -*- coding: latin-1 -*-\n# caf\xe9\n" + ASYNC_FACTORY_BAD
    path.write_bytes(source.encode("latin-1"))
    assert cli("check", ".", "--fix", cwd=project).returncode == 0
    assert path.read_bytes() == ("# -*- coding: latin-1 -*-\n# caf\xe9\n" + ASYNC_FACTORY_GOOD).encode("latin-1")


def test_diff_prints_and_writes_nothing(cli, project):
    path = project / "app" / "db.py"
    path.write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    result = cli("check", ".", "--diff", cwd=project)
    assert result.returncode == 1
    assert "-SessionLocal = async_sessionmaker(engine)" in result.stdout
    assert "+SessionLocal = async_sessionmaker(engine, expire_on_commit=False)" in result.stdout
    assert path.read_text(encoding="utf-8") == ASYNC_FACTORY_BAD
    path.write_text(ASYNC_FACTORY_GOOD, encoding="utf-8")
    assert cli("check", ".", "--diff", cwd=project).returncode == 0


def test_stdin(cli, project):
    result = cli("check", "--stdin-filename", "app/db.py", cwd=project, stdin=ASYNC_FACTORY_BAD.encode())
    assert result.returncode == 1
    assert "app/db.py:3:16: FDB201" in result.stdout
    fixed = cli("check", "--stdin-filename", "app/db.py", "--fix", cwd=project, stdin=ASYNC_FACTORY_BAD.encode())
    assert fixed.stdout == ASYNC_FACTORY_GOOD
    assert fixed.returncode == 0


def test_noqa_suppresses(cli, project):
    lines = ASYNC_FACTORY_BAD.splitlines()
    lines[2] += "  # noqa: FDB201"
    (project / "app" / "db.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (project / "app" / "bare.py").write_text(ASYNC_FACTORY_BAD.replace("(engine)", "(engine)  # noqa"), encoding="utf-8")
    (project / "app" / "other_code.py").write_text(ASYNC_FACTORY_BAD.replace("(engine)", "(engine)  # noqa: FDB301"), encoding="utf-8")
    (project / "app" / "whole.py").write_text("# fastdb-lint: noqa: FDB201\n" + ASYNC_FACTORY_BAD, encoding="utf-8")
    result = cli("check", ".", "--output-format", "json", cwd=project)
    paths = {os.path.basename(item["filename"]) for item in json.loads(result.stdout)}
    assert paths == {"other_code.py"}


def test_syntax_error_is_a_finding_and_the_run_goes_on(cli, project):
    (project / "app" / "broken.py").write_text("import sqlalchemy\ndef f(:\n", encoding="utf-8")
    (project / "app" / "db.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    result = cli("check", ".", "--output-format", "json", cwd=project)
    assert result.returncode == 1
    codes = sorted((os.path.basename(i["filename"]), i["code"], i["location"]["row"]) for i in json.loads(result.stdout))
    assert codes == [("broken.py", "FDB001", 2), ("db.py", "FDB201", 3)]


def test_binary_file_is_reported_and_exits_2(cli, project):
    (project / "app" / "blob.py").write_bytes(b"\x00\x01\x02sqlalchemy")
    (project / "app" / "db.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    result = cli("check", ".", "--output-format", "json", cwd=project)
    assert result.returncode == 2
    assert "blob.py" in result.stderr and "binary" in result.stderr
    codes = sorted(i["code"] for i in json.loads(result.stdout))
    assert codes == ["FDB001", "FDB201"]


def test_gitignore_and_excludes(cli, project):
    (project / ".gitignore").write_text("generated/\n", encoding="utf-8")
    (project / "generated").mkdir()
    (project / "generated" / "db.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    (project / "vendor").mkdir()
    (project / "vendor" / "db.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    (project / "pyproject.toml").write_text(
        '[tool.fastdb-lint]\nselect = ["FDB201"]\nextend-exclude = ["vendor"]\n', encoding="utf-8"
    )
    assert cli("check", ".", cwd=project).returncode == 0
    # Explicit files are linted unless --force-exclude.
    assert cli("check", "vendor/db.py", cwd=project).returncode == 1
    assert cli("check", "vendor/db.py", "--force-exclude", cwd=project).returncode == 0
    assert cli("check", ".", cwd=project, env={}).returncode == 0
    (project / "pyproject.toml").write_text(
        '[tool.fastdb-lint]\nselect = ["FDB201"]\nrespect-gitignore = false\n', encoding="utf-8"
    )
    assert "generated/db.py" in cli("check", ".", cwd=project).stdout


def test_per_file_ignores(cli, project):
    (project / "pyproject.toml").write_text(
        '[tool.fastdb-lint]\nselect = ["FDB201"]\n[tool.fastdb-lint.per-file-ignores]\n"app/legacy/*.py" = ["FDB2"]\n',
        encoding="utf-8",
    )
    (project / "app" / "legacy").mkdir()
    (project / "app" / "legacy" / "db.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    assert cli("check", ".", cwd=project).returncode == 0
    (project / "app" / "db.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    assert cli("check", ".", cwd=project).returncode == 1


def test_rule_and_rules_commands(cli, project):
    doc = cli("rule", "FDB201", cwd=project)
    assert doc.returncode == 0
    assert "expire-on-commit-enabled" in doc.stdout and "## Why is this bad?" in doc.stdout
    assert cli("rule", "expire-on-commit-enabled", cwd=project).returncode == 0
    assert cli("rule", "FDB999", cwd=project).returncode == 2
    listing = cli("rules", cwd=project)
    assert "FDB201" in listing.stdout and "expire-on-commit-enabled" in listing.stdout
    rules = json.loads(cli("rules", "--output-format", "json", cwd=project).stdout)
    assert {"code", "name", "fix", "opt_in", "summary"} <= set(rules[0])
    assert any(r["code"] == "FDB201" and r["fix"] == "safe" for r in rules)


def test_a_closed_pipe_ends_the_output_quietly(project):
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))}
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line (``| head`` that exited)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "fastdb_lint", "rules"],
            cwd=project,
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            timeout=60,
        )
    finally:
        os.close(write_end)
    stderr = proc.stderr.decode()
    assert proc.returncode == 2
    assert "Traceback" not in stderr and "internal error" not in stderr


def test_version_and_module_entry(cli, project):
    from fastdb_lint import __version__

    result = cli("--version", cwd=project)
    assert result.returncode == 0
    assert __version__ in result.stdout and "fastdb-lint" in result.stdout


def test_statistics_and_output_file(cli, project):
    (project / "app" / "db.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    stats = cli("check", ".", "--statistics", cwd=project)
    assert stats.returncode == 1
    assert "FDB201" in stats.stdout and "expire-on-commit-enabled" in stats.stdout
    out = project / "report.json"
    result = cli("check", ".", "--output-format", "json", "-o", str(out), cwd=project)
    assert result.returncode == 1 and result.stdout == ""
    assert json.loads(out.read_text(encoding="utf-8"))[0]["code"] == "FDB201"


def _run_with_terminal_stderr(args: list[str], cwd, env_extra: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal; (exit code, stdout, terminal output)."""
    import pty
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TERM")}
    env.update({"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])), **(env_extra or {})})
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastdb_lint", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=follower, env=env
        )
        os.close(follower)
        stdout = proc.communicate(timeout=120)[0].decode()
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal is closed once the process is gone
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    return proc.returncode, stdout, b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_shows_on_a_terminal_only_and_never_in_the_report(tmp_path, cli):
    from fastdb_lint.progress import MIN_FILES

    count = MIN_FILES + 10
    for i in range(count):
        (tmp_path / f"m{i}.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    args = ["check", "--no-cache", "--output-format", "json", "."]
    code, stdout, terminal = _run_with_terminal_stderr(args, tmp_path)
    assert code == 1
    assert f"fastdb-lint: linting {count}/{count} files" in terminal
    assert terminal.endswith("files\r\x1b[K"), "the line is erased at the end"
    assert len(json.loads(stdout)) == count

    code, _, terminal = _run_with_terminal_stderr(args, tmp_path, {"CI": "true"})
    assert code == 1 and terminal == ""
    assert cli(*args, cwd=tmp_path).stderr == ""


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_no_progress_for_a_few_files(tmp_path):
    (tmp_path / "db.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    code, _, terminal = _run_with_terminal_stderr(["check", "--no-cache", "."], tmp_path)
    assert code == 1 and terminal == ""
