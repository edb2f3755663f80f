"""Whole runs under stress: a write that fails half-way through a fix run, broken
configuration, code with import-time side effects, and two runs at once."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import fastdb_lint.runner
from tests.conftest import ASYNC_FACTORY_BAD, ASYNC_FACTORY_GOOD, REPO, run_cli
from tests.test_reliability import error_lines, invoke

CONFIG = '[tool.fastdb-lint]\nselect = ["FDB201"]\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "app").mkdir()
    return tmp_path


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if "fastdb-tmp" in p.name or p.name.startswith(".tmp-")]


# -- atomic writes ----------------------------------------------------------------

NAMES = ("a.py", "b.py", "c.py", "d.py")


def _bad_files(project: Path) -> dict[str, bytes]:
    originals = {}
    for index, name in enumerate(NAMES):
        # Each file a little different, so that a mix-up would show.
        data = (ASYNC_FACTORY_BAD + f"MARK = {index}\n" + "PAD = 'x'\n" * (index * 50)).encode()
        (project / "app" / name).write_bytes(data)
        originals[name] = data
    return originals


def _fixed(data: bytes) -> bytes:
    return data.replace(b"(engine)", b"(engine, expire_on_commit=False)")


def _assert_old_or_new(project: Path, originals: dict[str, bytes], failed: str) -> None:
    for name, data in originals.items():
        current = (project / "app" / name).read_bytes()
        assert current == (data if name == failed else _fixed(data)), name
    assert temp_files(project) == []


def test_failed_replace_leaves_that_file_old_and_the_others_new(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    originals = _bad_files(project)
    real_replace = os.replace

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        if Path(dst).name == "c.py":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(fastdb_lint.runner.os, "replace", replace)
    result = invoke(project, "--fix")
    assert result.exit_code == 2
    _assert_old_or_new(project, originals, "c.py")
    assert error_lines(result.stderr) == [
        "fastdb-lint: error: app/c.py: cannot write fixed file (No space left on device); file left unchanged"
    ]
    assert "app/c.py:3:16: FDB201" in result.stdout, "the finding that could not be fixed is still reported"
    monkeypatch.undo()
    again = invoke(project, "--fix")
    assert again.exit_code == 0, again.stdout + again.stderr
    for name, data in originals.items():
        assert (project / "app" / name).read_bytes() == _fixed(data)


def test_failure_while_writing_the_temporary_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk that fills up half-way through writing: the temporary file goes, the
    file keeps its old content."""
    originals = _bad_files(project)
    real_fdopen = os.fdopen

    class Truncating:
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> Truncating:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data: bytes) -> int:
            self.handle.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name: str) -> Any:
            return getattr(self.handle, name)

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        handle = real_fdopen(fd, *args, **kwargs)
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".b.py."):
            return Truncating(handle)
        return handle

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to tell which file a descriptor belongs to")
    monkeypatch.setattr(fastdb_lint.runner.os, "fdopen", fdopen)
    result = invoke(project, "--fix")
    assert result.exit_code == 2
    _assert_old_or_new(project, originals, "b.py")
    [line] = error_lines(result.stderr)
    assert line.startswith("fastdb-lint: error: app/b.py: cannot write fixed file"), line


def test_interrupted_write_leaves_no_temporary_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even an exception that is not an OSError (Ctrl-C during fsync) removes the
    temporary file and leaves the target untouched."""
    path = project / "app" / "db.py"
    path.write_text(ASYNC_FACTORY_BAD, encoding="utf-8")

    def fsync(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fastdb_lint.runner.os, "fsync", fsync)
    with pytest.raises(KeyboardInterrupt):
        fastdb_lint.runner.write_atomic(path, ASYNC_FACTORY_GOOD.encode())
    assert path.read_text(encoding="utf-8") == ASYNC_FACTORY_BAD
    assert temp_files(project) == []


# -- configuration ----------------------------------------------------------------


def _one_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("fastdb-lint: error: ") or lines[0].startswith("Error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ("select = [", ("pyproject.toml", "invalid TOML")),
        ("select = 'FDB2'", ("pyproject.toml", "`select` must be a list of strings")),
        ("select = [2]", ("`select` must be a list of strings",)),
        ("exclude = 'vendor'", ("`exclude` must be a list of strings",)),
        ("respect-gitignore = 'yes'", ("`respect-gitignore` must be true or false",)),
        ("force-exclude = 1", ("`force-exclude` must be true or false",)),
        ("per-file-ignores = ['x']", ("`per-file-ignores` must be a table",)),
        ("[tool.fastdb-lint.per-file-ignores]\n'x.py' = 'FDB2'", ("per-file-ignores.x.py", "list of strings")),
        ("[tool.fastdb-lint.per-file-ignores]\n'x.py' = ['NOPE1']", ("unknown rule selector", "NOPE1")),
        ("select = ['FDB999']", ("unknown rule selector", "FDB999")),
        ("ignore = ['E501']", ("unknown rule selector", "E501")),
        ("extend-select = ['SQL1']", ("unknown rule selector", "SQL1")),
        ("selct = ['FDB2']", ("unknown key `selct`",)),
    ],
)
def test_bad_configuration_is_one_clear_error(project: Path, body: str, needles: tuple[str, ...]) -> None:
    (project / "pyproject.toml").write_text(f"[tool.fastdb-lint]\n{body}\n", encoding="utf-8")
    (project / "app" / "db.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    line = _one_error(run_cli("check", "--fix", ".", cwd=project))
    for needle in needles:
        assert needle in line, line
    assert (project / "app" / "db.py").read_text(encoding="utf-8") == ASYNC_FACTORY_BAD


def test_configuration_that_is_not_utf8(project: Path) -> None:
    (project / "pyproject.toml").write_bytes(b"[tool.fastdb-lint]\n# caf\xe9\n")
    line = _one_error(run_cli("check", ".", cwd=project))
    assert "pyproject.toml" in line and "UTF-8" in line


def test_configuration_that_is_a_directory(project: Path) -> None:
    (project / "fastdb-lint.toml").mkdir()
    line = _one_error(run_cli("check", "--config", "fastdb-lint.toml", ".", cwd=project))
    assert "fastdb-lint.toml" in line


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--select", "FDB999"), ("unknown rule selector", "FDB999")),
        (("--ignore", "XYZ"), ("unknown rule selector", "XYZ")),
        (("--extend-select", "FDB2,,NOPE"), ("unknown rule selector", "NOPE")),
        (("--config", "missing.toml"), ("config file not found", "missing.toml")),
        (("--add-noqa", "--fix"), ("--add-noqa cannot be used with --fix",)),
        (("--add-noqa", "--diff"), ("--add-noqa cannot be used with --diff",)),
        (("--add-noqa", "--stdin-filename", "app/db.py"), ("--add-noqa cannot be used with standard input",)),
        (("--no-cache", "--cache-dir", "cache"), ("--no-cache cannot be used with --cache-dir",)),
        (("--jobs", "0"), ("--jobs",)),
        (("--output-format", "xml"), ("--output-format",)),
    ],
)
def test_bad_command_line_is_one_clear_error(project: Path, args: tuple[str, ...], needles: tuple[str, ...]) -> None:
    path = project / "app" / "db.py"
    path.write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    result = run_cli("check", *args, cwd=project, stdin=b"x = 1\n")
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(("Usage:", "Try "))]
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert path.read_text(encoding="utf-8") == ASYNC_FACTORY_BAD, "nothing is written after a usage error"


def test_configuration_without_table_given_explicitly(project: Path) -> None:
    (project / "other.toml").write_text("[tool.black]\nline-length = 100\n", encoding="utf-8")
    (project / "other").mkdir()
    (project / "other" / "pyproject.toml").write_text("[tool.black]\n", encoding="utf-8")
    line = _one_error(run_cli("check", "--config", "other/pyproject.toml", ".", cwd=project))
    assert "no [tool.fastdb-lint] table" in line


# -- no code execution ------------------------------------------------------------

SIDE_EFFECT = (
    "import pathlib\n"
    "pathlib.Path({marker!r}).write_text('imported')\n"
    "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
    "SessionLocal = async_sessionmaker(engine)\n"
    "if __name__ == '__main__':\n"
    "    pathlib.Path({marker!r}).write_text('run')\n"
)


def test_linted_code_is_never_executed(project: Path) -> None:
    markers = []
    for relative in ("app/db.py", "app/__init__.py", "conftest.py", "setup.py", "migrations/env.py", "app/__main__.py"):
        marker = project / f"marker-{relative.replace('/', '-')}"
        markers.append(marker)
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SIDE_EFFECT.format(marker=str(marker)), encoding="utf-8")
    (project / "pyproject.toml").write_text('[tool.fastdb-lint]\nselect = ["ALL", "FDB107"]\n', encoding="utf-8")
    for args in ((), ("--fix", "--unsafe-fixes"), ("--diff",), ("--statistics",)):
        result = run_cli("check", *args, cwd=project)
        assert result.returncode in (0, 1), result.stdout + result.stderr
        assert [m for m in markers if m.exists()] == [], args
    stdin = run_cli("check", "--stdin-filename", "app/x.py", cwd=project, stdin=SIDE_EFFECT.format(marker="m").encode())
    assert stdin.returncode in (0, 1)
    assert not (project / "m").exists()


# -- concurrency ------------------------------------------------------------------


def _concurrency_tree(root: Path) -> None:
    (root / "pyproject.toml").write_text('[tool.fastdb-lint]\nselect = ["ALL"]\n', encoding="utf-8")
    for package in range(4):
        directory = root / "app" / f"pkg{package}"
        directory.mkdir(parents=True)
        for module in range(40):
            kind = module % 4
            text = {
                0: ASYNC_FACTORY_BAD,
                1: ASYNC_FACTORY_GOOD,
                2: "import sqlalchemy\ndef broken(:\n",
                3: "from sqlalchemy import text\n\nasync def q(session, name):\n"
                "    return await session.execute(text(f\"SELECT * FROM t WHERE n = '{name}'\"))\n",
            }[kind]
            (directory / f"m{module:02d}.py").write_text(text, encoding="utf-8")


def _popen(root: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return subprocess.Popen(
        [sys.executable, "-m", "fastdb_lint", "check", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _together(root: Path, *args: str) -> list[tuple[int, str, str]]:
    processes = [_popen(root, *args), _popen(root, *args)]
    outcomes = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        outcomes.append((process.returncode, out, err))
    return outcomes


def _normalized(report: str) -> list[tuple[Any, ...]]:
    return sorted(
        (i["filename"], i["code"], i["location"]["row"], i["location"]["column"], i["message"])
        for i in json.loads(report)
    )


def test_two_runs_at_once_agree_with_a_sequential_run(tmp_path: Path) -> None:
    _concurrency_tree(tmp_path)
    sequential = run_cli("check", "--no-cache", "--output-format", "json", cwd=tmp_path)
    assert sequential.returncode == 1, sequential.stderr
    expected = _normalized(sequential.stdout)
    assert len({row[0] for row in expected}) == 120, "every file but the clean ones is reported"
    # Cold cache, then warm cache: both runs share it and write it at the same time.
    for _ in range(2):
        for code, out, err in _together(tmp_path, "--output-format", "json"):
            assert code == 1, err
            assert "Traceback" not in err and err.strip() == "", err
            assert _normalized(out) == expected
    assert temp_files(tmp_path) == []


def test_two_fix_runs_at_once_end_like_one(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    shared = tmp_path / "shared"
    for root in (reference, shared):
        root.mkdir()
        _concurrency_tree(root)
    once = run_cli("check", "--fix", "--no-cache", cwd=reference)
    assert once.returncode == 1, once.stderr
    outcomes = _together(shared, "--fix")
    for code, _out, err in outcomes:
        assert code in (1, 2), err
        assert "Traceback" not in err
        # A run may find that the other one fixed a file first; it then says so and leaves it.
        for line in err.splitlines():
            assert "the file changed during the run" in line, line
    for path in sorted(reference.rglob("*.py")):
        twin = shared / path.relative_to(reference)
        assert twin.read_bytes() == path.read_bytes(), twin
    assert temp_files(shared) == []
    final = run_cli("check", "--no-cache", "--output-format", "json", cwd=shared)
    again = run_cli("check", "--no-cache", "--output-format", "json", cwd=reference)
    assert [row[1:] for row in _normalized(final.stdout)] == [row[1:] for row in _normalized(again.stdout)]
