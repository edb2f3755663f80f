"""Bad input, one case per test: each gives a finding or one clear error line, the
right exit code, and leaves the rest of the run alone.

Every project holds a control file (``app/db.py``, one FDB201 finding at 3:16) whose
finding must be reported whatever else goes wrong. Most cases run the real CLI in a
subprocess; cases that need a failure the file system cannot be made to produce here
(the suite may run as root) run the CLI in-process with the failure patched in.
"""

from __future__ import annotations

import codecs
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import fastdb_lint.engine
import fastdb_lint.runner
from fastdb_lint.cli import main
from tests.conftest import ASYNC_FACTORY_BAD, ASYNC_FACTORY_GOOD, run_cli

REPO = Path(__file__).resolve().parents[1]
CONTROL = ("app/db.py", "FDB201", 3, 16)
CONFIG = '[tool.fastdb-lint]\nselect = ["FDB201"]\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "db.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    return tmp_path


Row = tuple[str, str, int, int]


def findings(result: subprocess.CompletedProcess[str] | Result, root: Path) -> list[Row]:
    """(path relative to ``root``, code, row, column) of a JSON report, sorted."""
    rows: list[Row] = []
    for item in json.loads(result.stdout):
        filename = os.fsdecode(os.fsencode(item["filename"]))
        rel = Path(filename).relative_to(root).as_posix() if Path(filename).is_absolute() else filename
        rows.append((rel, item["code"], item["location"]["row"], item["location"]["column"]))
    return sorted(rows)


def check_json(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("check", *args, "--output-format", "json", cwd=project)


def error_lines(stderr: str) -> list[str]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert not any("Traceback" in line for line in lines), stderr
    assert not any("internal error" in line for line in lines), stderr
    return lines


def assert_clean_stderr(stderr: str) -> None:
    assert error_lines(stderr) == [], stderr


# -- text oddities that are still Python -----------------------------------------


def test_empty_file(project: Path) -> None:
    (project / "app" / "empty.py").write_bytes(b"")
    result = check_json(project)
    assert result.returncode == 1
    assert findings(result, project) == [CONTROL]
    assert_clean_stderr(result.stderr)
    alone = run_cli("check", "app/empty.py", cwd=project)
    assert alone.returncode == 0, alone.stdout + alone.stderr


def test_only_comments(project: Path) -> None:
    (project / "app" / "notes.py").write_text(
        "# sqlalchemy Session async_sessionmaker(engine)\n#!/usr/bin/env python\n\n# -*- coding: utf-8 -*-\n",
        encoding="utf-8",
    )
    result = check_json(project)
    assert result.returncode == 1
    assert findings(result, project) == [CONTROL]
    assert_clean_stderr(result.stderr)


def test_utf8_bom(project: Path) -> None:
    path = project / "app" / "bom.py"
    path.write_bytes(codecs.BOM_UTF8 + ASYNC_FACTORY_BAD.encode())
    result = check_json(project)
    assert result.returncode == 1
    assert findings(result, project) == sorted([("app/bom.py", "FDB201", 3, 16), CONTROL])
    assert_clean_stderr(result.stderr)
    fixed = run_cli("check", "--fix", "app/bom.py", cwd=project)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert path.read_bytes() == codecs.BOM_UTF8 + ASYNC_FACTORY_GOOD.encode()


def test_crlf_line_endings(project: Path) -> None:
    path = project / "app" / "crlf.py"
    path.write_bytes(ASYNC_FACTORY_BAD.replace("\n", "\r\n").encode())
    result = check_json(project)
    assert findings(result, project) == sorted([("app/crlf.py", "FDB201", 3, 16), CONTROL])
    assert_clean_stderr(result.stderr)
    assert run_cli("check", "--fix", "app/crlf.py", cwd=project).returncode == 0
    assert path.read_bytes() == ASYNC_FACTORY_GOOD.replace("\n", "\r\n").encode()


def test_mixed_line_endings(project: Path) -> None:
    path = project / "app" / "mixed.py"
    original = (
        b"from sqlalchemy.ext.asyncio import async_sessionmaker\r\n"
        b"x = 1\r"
        b"y = 2\n"
        b"\r\n"
        b"SessionLocal = async_sessionmaker(engine)\r\n"
        b"z = 3\n"
    )
    path.write_bytes(original)
    result = check_json(project)
    assert result.returncode == 1
    assert findings(result, project) == sorted([("app/mixed.py", "FDB201", 5, 16), CONTROL])
    assert_clean_stderr(result.stderr)
    assert run_cli("check", "--fix", "app/mixed.py", cwd=project).returncode == 0
    assert path.read_bytes() == original.replace(b"(engine)", b"(engine, expire_on_commit=False)")


def test_tab_indentation(project: Path) -> None:
    path = project / "app" / "tabs.py"
    original = (
        "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
        "\n"
        "def make(engine):\n"
        "\tif engine:\n"
        "\t\treturn async_sessionmaker(\n"
        "\t\t\tengine)\n"
    )
    path.write_text(original, encoding="utf-8")
    result = check_json(project)
    assert findings(result, project) == sorted([("app/tabs.py", "FDB201", 5, 10), CONTROL])
    assert_clean_stderr(result.stderr)
    assert run_cli("check", "--fix", "app/tabs.py", cwd=project).returncode == 0
    fixed = path.read_text(encoding="utf-8")
    assert "expire_on_commit=False" in fixed
    assert fixed.splitlines()[:4] == original.splitlines()[:4]
    assert all(not line.startswith(" ") for line in fixed.splitlines()), fixed


def test_pep263_latin1(project: Path) -> None:
    path = project / "app" / "latin.py"
    original = "# -*- coding: latin-1 -*-\n" + ASYNC_FACTORY_BAD + "NAME = 'caf\xe9 \xa3'\n"
    path.write_bytes(original.encode("latin-1"))
    result = check_json(project)
    assert result.returncode == 1
    assert findings(result, project) == sorted([("app/latin.py", "FDB201", 4, 16), CONTROL])
    assert_clean_stderr(result.stderr)
    assert run_cli("check", "--fix", "app/latin.py", cwd=project).returncode == 0
    assert path.read_bytes() == original.replace("(engine)", "(engine, expire_on_commit=False)").encode("latin-1")


# -- bytes that are not Python text ------------------------------------------------


def _assert_not_python(project: Path, name: str, data: bytes, needle: str, row: int = 1) -> None:
    (project / "app" / name).write_bytes(data)
    result = check_json(project)
    assert result.returncode == 2
    rows = findings(result, project)
    assert CONTROL in rows
    [(path, code, found_row, _column)] = [r for r in rows if r != CONTROL]
    assert (path, code, found_row) == (f"app/{name}", "FDB001", row)
    [line] = error_lines(result.stderr)
    assert line.startswith(f"fastdb-lint: error: app/{name}: ") and needle in line, line


def test_undecodable_bytes(project: Path) -> None:
    _assert_not_python(project, "bad.py", b"import sqlalchemy\nx = '\xff\xfe'\n", "cannot decode as utf-8", row=2)


def test_wrong_encoding_cookie(project: Path) -> None:
    _assert_not_python(project, "cookie.py", b"# coding: no-such-codec\nimport sqlalchemy\n", "encoding")


def test_nul_bytes(project: Path) -> None:
    _assert_not_python(project, "nul.py", b"import sqlalchemy\nx = 1\x00\n", "binary file", row=2)


def test_binary_file_named_py(project: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 20
    # The finding points at the first NUL byte: line 3 of the PNG signature.
    _assert_not_python(project, "image.py", png, "binary file", row=3)


# -- size and depth ----------------------------------------------------------------


def _generated_module(target_bytes: int) -> str:
    """A generated module of about ``target_bytes``: an embedded data blob, a table,
    and a finding on its last line."""
    head = "from sqlalchemy.ext.asyncio import async_sessionmaker\n\n"
    table = "ROWS = [\n" + "".join(f"    ({i}, 'row-{i:08d}'),  # generated\n" for i in range(2000)) + "]\n"
    line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo" * 2
    count = max(0, (target_bytes - len(head) - len(table)) // (len(line) + 9))
    blob = 'BLOB = """\n' + "".join(f"{i:08d}{line}\n" for i in range(count)) + '"""\n'
    return head + blob + table + "\nSessionLocal = async_sessionmaker(engine)\n"


def test_five_megabyte_file(project: Path) -> None:
    path = project / "app" / "table.py"
    text = _generated_module(5 * 1024 * 1024)
    assert len(text) >= 5 * 1024 * 1024 - 200
    path.write_text(text, encoding="utf-8")
    last_row = text.count("\n")
    result = run_cli("check", "--fix", "--show-fixes", "--no-cache", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_clean_stderr(result.stderr)
    fixed = path.read_text(encoding="utf-8")
    before, after = text.splitlines(keepends=True), fixed.splitlines(keepends=True)
    assert len(after) == len(before) == last_row
    assert after[:-1] == before[:-1]
    assert after[-1] == "SessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n"


@pytest.mark.parametrize(
    ("name", "expression", "row"),
    [
        ("parens", "(" * 5000 + "1" + ")" * 5000, 2),
        ("brackets", "[" * 5000 + "1" + "]" * 5000, 2),
        ("mixed", "{'a': [(" * 2000 + "1" + ")]}" * 2000, 2),
        # CPython gives up on these without a position.
        ("unary", "-" * 50_000 + "1", 1),
        ("power", "2 ** " * 15_000 + "1", 1),
    ],
)
def test_deep_nesting_is_a_parse_error(project: Path, name: str, expression: str, row: int) -> None:
    (project / "app" / f"deep_{name}.py").write_text(f"import sqlalchemy\nx = {expression}\n", encoding="utf-8")
    result = check_json(project)
    assert result.returncode == 1, result.stderr[-2000:]
    rows = findings(result, project)
    assert CONTROL in rows
    [(path, code, found_row, _column)] = [r for r in rows if r != CONTROL]
    assert (path, code, found_row) == (f"app/deep_{name}.py", "FDB001", row)
    assert_clean_stderr(result.stderr)


def test_long_flat_chain_parses(project: Path) -> None:
    """``a and a and ...`` is flat for CPython but one level per operand for LibCST."""
    chain = " and\n".join(["a"] * 30_000)
    (project / "app" / "chain.py").write_text(f"import sqlalchemy\nx = ({chain})\n", encoding="utf-8")
    result = check_json(project)
    assert result.returncode == 1, result.stderr[-2000:]
    assert findings(result, project) == [CONTROL]
    assert_clean_stderr(result.stderr)


def test_line_too_long_to_parse(project: Path) -> None:
    # The file calls ``async_sessionmaker``, so the selected rule applies and it must be parsed.
    text = "import sqlalchemy\nimport a" + ".a" * 60_000 + "\nfactory = async_sessionmaker(engine)\n"
    (project / "app" / "wide.py").write_text(text, encoding="utf-8")
    result = check_json(project)
    assert result.returncode == 1
    rows = findings(result, project)
    assert rows == sorted([("app/wide.py", "FDB001", 2, 1), CONTROL])
    assert_clean_stderr(result.stderr)


# -- syntax ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("pep758", "try:\n    pass\nexcept ValueError, TypeError:\n    pass\n"),
        ("pep695", "def first[T](items: list[T]) -> T:\n    return items[0]\n\ntype Pair[T] = tuple[T, T]\n\nclass Box[T]:\n    pass\n"),
        ("tstring", "name = 'db'\ngreeting = t'hello {name!r:>{10}}'\n"),
        ("match", "match command:\n    case {'kind': 'x', **rest}:\n        pass\n    case _:\n        pass\n"),
        ("except_star", "try:\n    pass\nexcept* (ValueError, TypeError):\n    pass\n"),
    ],
)
def test_newest_syntax_gets_findings_normally(project: Path, name: str, code: str) -> None:
    lines = ASYNC_FACTORY_BAD.splitlines(keepends=True)
    (project / "app" / f"{name}.py").write_text("".join(lines[:2]) + code + "".join(lines[2:]), encoding="utf-8")
    row = 3 + code.count("\n")
    result = check_json(project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert findings(result, project) == sorted([(f"app/{name}.py", "FDB201", row, 16), CONTROL])
    assert_clean_stderr(result.stderr)


def test_jinja_template_named_py(project: Path) -> None:
    (project / "app" / "template.py").write_text(
        "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
        "{% for model in models %}\n"
        "class {{ model.name }}(Base):\n"
        "    __tablename__ = '{{ model.table }}'\n"
        "{% endfor %}\n",
        encoding="utf-8",
    )
    result = check_json(project)
    assert result.returncode == 1
    rows = findings(result, project)
    assert CONTROL in rows
    [(path, code, row, _column)] = [r for r in rows if r != CONTROL]
    assert (path, code, row) == ("app/template.py", "FDB001", 2)
    assert_clean_stderr(result.stderr)


def test_fix_is_refused_where_the_parser_drops_part_of_the_layout(project: Path) -> None:
    """LibCST drops a backslash continuation before the first statement, so its
    positions are one line off: the finding is reported, the file is not touched."""
    path = project / "app" / "cont.py"
    original = "\\\n" + ASYNC_FACTORY_BAD
    path.write_text(original, encoding="utf-8")
    result = run_cli("check", "--fix", "--output-format", "json", cwd=project)
    assert result.returncode == 2
    assert path.read_text(encoding="utf-8") == original
    assert [row[:2] for row in findings(result, project)] == [("app/cont.py", "FDB201")]
    [line] = error_lines(result.stderr)
    assert line.startswith("fastdb-lint: error: app/cont.py: fixes not applied: the parser does not reproduce"), line
    assert (project / "app" / "db.py").read_text(encoding="utf-8") == ASYNC_FACTORY_GOOD


def test_syntax_error_mid_file_keeps_other_files(project: Path) -> None:
    (project / "app" / "broken.py").write_text("import sqlalchemy\n\ndef f(:\n    pass\n", encoding="utf-8")
    result = check_json(project)
    assert result.returncode == 1
    assert findings(result, project) == sorted([("app/broken.py", "FDB001", 3, 7), CONTROL])
    assert_clean_stderr(result.stderr)


# -- paths -------------------------------------------------------------------------


def test_symlink_loop(project: Path) -> None:
    (project / "app" / "loop_a.py").symlink_to("loop_b.py")
    (project / "app" / "loop_b.py").symlink_to("loop_a.py")
    (project / "app" / "parent").symlink_to("..", target_is_directory=True)
    walked = check_json(project)
    assert walked.returncode == 1
    assert findings(walked, project) == [CONTROL]
    assert_clean_stderr(walked.stderr)
    named = check_json(project, "app/loop_a.py", "app/db.py")
    assert named.returncode == 2
    assert findings(named, project) == [CONTROL]
    assert error_lines(named.stderr) == ["fastdb-lint: error: app/loop_a.py: symbolic link loop"]


def test_dangling_symlink(project: Path) -> None:
    (project / "app" / "gone.py").symlink_to("nowhere.py")
    walked = check_json(project)
    assert walked.returncode == 1
    assert_clean_stderr(walked.stderr)
    named = check_json(project, "app/gone.py", "app/db.py")
    assert named.returncode == 2
    assert findings(named, project) == [CONTROL]
    assert error_lines(named.stderr) == ["fastdb-lint: error: app/gone.py: broken symbolic link"]


def test_directory_named_like_a_module(project: Path) -> None:
    package = project / "app" / "models.py"
    package.mkdir()
    (package / "inner.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    for args in ((), ("app/models.py", "app/db.py")):
        result = check_json(project, *args)
        assert result.returncode == 1, result.stderr
        assert findings(result, project) == [CONTROL, ("app/models.py/inner.py", "FDB201", 3, 16)]
        assert_clean_stderr(result.stderr)


def test_missing_path(project: Path) -> None:
    result = check_json(project, "app/nope.py", "app/db.py")
    assert result.returncode == 2
    assert findings(result, project) == [CONTROL]
    assert error_lines(result.stderr) == ["fastdb-lint: error: app/nope.py: no such file or directory"]


def test_fifo_and_socket_are_not_read(project: Path) -> None:
    os.mkfifo(project / "app" / "pipe.py")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(project / "app" / "sock.py"))
    except OSError:  # path too long for a socket address
        sock.close()
        sock = None  # type: ignore[assignment]
    try:
        walked = check_json(project)
        assert walked.returncode == 1
        assert findings(walked, project) == [CONTROL]
        assert_clean_stderr(walked.stderr)
        named = check_json(project, "app/pipe.py", "app/db.py")
        assert named.returncode == 2
        assert findings(named, project) == [CONTROL]
        assert error_lines(named.stderr) == ["fastdb-lint: error: app/pipe.py: not a file or directory"]
    finally:
        if sock is not None:
            sock.close()


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_for_real(project: Path) -> None:
    path = project / "app" / "secret.py"
    path.write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    path.chmod(0)
    try:
        result = check_json(project)
    finally:
        path.chmod(0o644)
    assert result.returncode == 2
    assert findings(result, project) == [CONTROL]
    assert error_lines(result.stderr) == ["fastdb-lint: error: app/secret.py: cannot read: Permission denied"]


# -- in-process cases (failures patched in) ------------------------------------------


def invoke(project: Path, *args: str) -> Result:
    """The CLI in-process, from ``project``, with stdout and stderr apart."""
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # click >= 8.2 keeps them apart anyway
        runner = CliRunner()
    cwd = Path.cwd()
    os.chdir(project)
    try:
        return runner.invoke(main, ["check", "--no-cache", "--jobs", "1", *args], catch_exceptions=False)
    finally:
        os.chdir(cwd)


def _patch_read(monkeypatch: pytest.MonkeyPatch, name: str, error: OSError) -> None:
    original = fastdb_lint.runner.read_bytes

    def read_bytes(path: Path) -> bytes:
        if path.name == name:
            raise OSError(f"{path}: {error.strerror}") from error
        return original(path)

    monkeypatch.setattr(fastdb_lint.runner, "read_bytes", read_bytes)


def test_unreadable_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "app" / "secret.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    _patch_read(monkeypatch, "secret.py", PermissionError(13, "Permission denied"))
    result = invoke(project, "--output-format", "json")
    assert result.exit_code == 2
    assert findings(result, project) == [CONTROL]
    assert error_lines(result.stderr) == ["fastdb-lint: error: app/secret.py: cannot read: Permission denied"]


def test_file_vanishing_between_discovery_and_reading(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doomed = project / "app" / "doomed.py"
    doomed.write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    original = fastdb_lint.runner.discover

    def discover(*args: Any, **kwargs: Any) -> Any:
        found = original(*args, **kwargs)
        doomed.unlink()
        return found

    monkeypatch.setattr(fastdb_lint.runner, "discover", discover)
    result = invoke(project, "--output-format", "json")
    assert result.exit_code == 2
    assert findings(result, project) == [CONTROL]
    assert error_lines(result.stderr) == ["fastdb-lint: error: app/doomed.py: cannot read: No such file or directory"]


def _patch_fix(monkeypatch: pytest.MonkeyPatch, name: str, action: Callable[[Path], None], project: Path) -> None:
    """Run ``action`` on ``project/app/name`` once its fixes are computed."""
    engine_type = fastdb_lint.engine.Engine
    original = engine_type.fix

    def fix(self: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        outcome = original(self, path, *args, **kwargs)
        if Path(path).name == name:
            action(project / "app" / name)
        return outcome

    monkeypatch.setattr(engine_type, "fix", fix)


def test_file_vanishing_before_the_fix_is_written(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "app" / "other.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    _patch_fix(monkeypatch, "db.py", Path.unlink, project)
    result = invoke(project, "--fix")
    assert result.exit_code == 2
    assert not (project / "app" / "db.py").exists(), "a deleted file is not brought back"
    assert (project / "app" / "other.py").read_text(encoding="utf-8") == ASYNC_FACTORY_GOOD
    assert error_lines(result.stderr) == [
        "fastdb-lint: error: app/db.py: cannot write fixed file (No such file or directory); file left unchanged"
    ]


def test_file_edited_before_the_fix_is_written(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edited = ASYNC_FACTORY_BAD + "# edited meanwhile\n"
    _patch_fix(monkeypatch, "db.py", lambda path: path.write_text(edited, encoding="utf-8"), project)
    result = invoke(project, "--fix")
    assert result.exit_code == 2
    assert (project / "app" / "db.py").read_text(encoding="utf-8") == edited, "a concurrent edit is never overwritten"
    [line] = error_lines(result.stderr)
    assert "the file changed during the run" in line and "left unchanged" in line


def run_cli_bytes(*args: str, cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """The CLI with its input and output as bytes (file names need not be UTF-8)."""
    env = {**os.environ, "NO_COLOR": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "fastdb_lint", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("data", "exit_code"),
    [
        (b"import sqlalchemy\nx = '\xff'\n", 2),
        (b"import sqlalchemy\x00\n", 2),
        (b"import sqlalchemy\r\ndef f(:\r\n", 1),
        (b"", 0),
    ],
)
def test_fixing_standard_input_that_cannot_be_fixed_echoes_it(project: Path, data: bytes, exit_code: int) -> None:
    """An editor pipes its buffer through ``--fix``: what comes back must be the buffer."""
    result = run_cli_bytes("check", "--fix", "--stdin-filename", "app/x.py", cwd=project, stdin=data)
    assert result.returncode == exit_code, result.stderr
    assert result.stdout == data
    assert b"Traceback" not in result.stderr


def test_non_utf8_file_name(project: Path) -> None:
    raw = b"caf\xe9.py"
    path = project / "app" / os.fsdecode(raw)
    path.write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    for fmt in ("concise", "full", "json", "json-lines", "github", "gitlab", "junit"):
        result = run_cli_bytes("check", "--output-format", fmt, cwd=project)
        assert result.returncode == 1, (fmt, result.stderr)
        assert_clean_stderr(result.stderr.decode("utf-8", "replace"))
        # The raw bytes, a JSON escape, or U+FFFD where the format must be UTF-8 (XML).
        forms = (b"caf\xe9.py", b"caf\\udce9.py", "caf\ufffd.py".encode())
        assert any(form in result.stdout for form in forms), (fmt, result.stdout[:500])
    report = json.loads(run_cli_bytes("check", "--output-format", "json", cwd=project).stdout)
    names = sorted(Path(os.fsdecode(os.fsencode(item["filename"]))).name for item in report)
    assert names == sorted(["db.py", os.fsdecode(raw)])
    assert run_cli_bytes("check", "--fix", cwd=project).returncode == 0
    assert path.read_text(encoding="utf-8") == ASYNC_FACTORY_GOOD


def test_non_utf8_file_name_in_sarif(project: Path) -> None:
    (project / "app" / os.fsdecode(b"caf\xe9.py")).write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    result = run_cli("check", "--output-format", "sarif", cwd=project)
    assert result.returncode == 1, result.stderr
    assert_clean_stderr(result.stderr)
    assert "caf%E9.py" in result.stdout


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli("check", "empty", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_clean_stderr(result.stderr)


def _tree(root: Path, packages: int, modules: int) -> Iterator[Path]:
    for package in range(packages):
        directory = root / "app" / f"pkg{package:02d}"
        directory.mkdir(parents=True)
        (directory / "__init__.py").write_text("", encoding="utf-8")
        for module in range(modules):
            path = directory / f"m{module:03d}.py"
            path.write_text(ASYNC_FACTORY_BAD if module % 10 == 0 else "import sqlalchemy\nVALUE = 1\n", encoding="utf-8")
            yield path


def test_huge_tree(project: Path) -> None:
    paths = list(_tree(project, 30, 100))
    flagged = sorted((p.relative_to(project).as_posix(), "FDB201", 3, 16) for p in paths if int(p.stem[1:]) % 10 == 0)
    result = check_json(project)
    assert result.returncode == 1
    assert findings(result, project) == sorted([CONTROL, *flagged])
    assert len(flagged) == 300
    assert_clean_stderr(result.stderr)


# -- fixing -----------------------------------------------------------------------


def test_fix_follows_symlinks_and_keeps_them(project: Path) -> None:
    (project / "app" / "link.py").symlink_to("db.py")
    result = run_cli("check", "--fix", "app/link.py", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (project / "app" / "link.py").is_symlink()
    assert (project / "app" / "db.py").read_text(encoding="utf-8") == ASYNC_FACTORY_GOOD


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root writes files whatever their mode")
def test_read_only_file_is_not_replaced(project: Path) -> None:
    path = project / "app" / "db.py"
    path.chmod(0o444)
    result = run_cli("check", "--fix", cwd=project)
    assert result.returncode == 2
    assert path.read_text(encoding="utf-8") == ASYNC_FACTORY_BAD
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_read_only_file_is_not_replaced_in_process(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = project / "app" / "db.py"
    real_access = os.access
    monkeypatch.setattr(
        fastdb_lint.runner.os,
        "access",
        lambda p, mode, **kwargs: False if Path(p).name == "db.py" else real_access(p, mode, **kwargs),
    )
    result = invoke(project, "--fix")
    assert result.exit_code == 2
    assert path.read_text(encoding="utf-8") == ASYNC_FACTORY_BAD
    [line] = error_lines(result.stderr)
    assert line == "fastdb-lint: error: app/db.py: cannot write fixed file (file is not writable); file left unchanged"
