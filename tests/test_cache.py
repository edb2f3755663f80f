"""The result cache: hits when nothing relevant changed, re-lints what did."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from fastdb_lint.cache import Cache
from fastdb_lint.config import load
from fastdb_lint.runner import RunOptions, run
from tests.conftest import REPO


@pytest.fixture
def app(tmp_path):
    target = tmp_path / "app"
    shutil.copytree(REPO / "fixtures" / "async_bad_app", target)
    return target


def _recorded(monkeypatch: pytest.MonkeyPatch, method: str, pick: Callable[[tuple[Any, ...], Any], Any]) -> list[Any]:
    """The calls of ``Cache.<method>`` from now on, each as ``pick(arguments, result)``."""
    seen: list[Any] = []
    original = getattr(Cache, method)

    def record(self, *args):
        result = original(self, *args)
        seen.append(pick(args, result))
        return result

    monkeypatch.setattr(Cache, method, record)
    return seen


def lint(app: Path, cache_dir: Path, monkeypatch) -> tuple[list[tuple[str, int, str]], list[str]]:
    # The keys of the results written: the files linted.
    linted = _recorded(monkeypatch, "put_result", lambda args, _: args[0])
    settings = load(None, app).with_cli()
    result = run([app], settings, RunOptions(cache_dir=cache_dir, jobs=1))
    assert result.errors == []
    return sorted((f.path, f.start.row, f.code) for f in result.findings), linted


def test_warm_run_hits_and_edits_relint_only_what_they_affect(app, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    cold, linted = lint(app, cache_dir, monkeypatch)
    assert cold and len(linted) > 5
    assert (cache_dir / ".gitignore").read_text().strip().endswith("*")
    warm, linted = lint(app, cache_dir, monkeypatch)
    assert warm == cold and linted == []
    # A comment added at the top of the models file shifts lines but changes no fact
    # other files can see: only that file is linted again.
    models = app / "app" / "models.py"
    models.write_text("# a comment\n" + models.read_text(encoding="utf-8"), encoding="utf-8")
    shifted, linted = lint(app, cache_dir, monkeypatch)
    assert len(linted) == 1
    assert len(shifted) == len(cold)
    # New calls change the file's shape, which only that file's lint reads.
    models.write_text(models.read_text(encoding="utf-8") + "\nconfigure_mappers()\n", encoding="utf-8")
    _, linted = lint(app, cache_dir, monkeypatch)
    assert len(linted) == 1
    # A new session alias is a project fact: every file is linted again.
    db = app / "app" / "db.py"
    db.write_text(db.read_text(encoding="utf-8") + "OtherDep = Annotated[AsyncSession, Depends(get_session)]\n", encoding="utf-8")
    _, linted = lint(app, cache_dir, monkeypatch)
    assert len(linted) > 5


def test_a_linted_file_reads_its_shape_from_the_cache(app, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    cold, _ = lint(app, cache_dir, monkeypatch)
    shapes = _recorded(monkeypatch, "get_shape", lambda _, shape: shape)
    # Results are gone (the pack holds them too), facts and shapes are not: the files
    # are linted again with the shapes the index pass stored, and report the same.
    shutil.rmtree(cache_dir / "result")
    shutil.rmtree(cache_dir / "pack")
    again, linted = lint(app, cache_dir, monkeypatch)
    assert again == cold and linted
    # Every linted file but alembic.ini, which has no Python shape.
    assert len([shape for shape in shapes if shape is not None]) == len(shapes) - 1 >= 3


def test_corrupt_entries_are_ignored(app, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    cold, _ = lint(app, cache_dir, monkeypatch)
    for entry in cache_dir.rglob("*"):
        if entry.is_file() and entry.parent.parent.name in ("facts", "result", "pack"):
            entry.write_bytes(b"\x00garbage")
    again, linted = lint(app, cache_dir, monkeypatch)
    assert again == cold and linted


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds of the entries read from now on."""
    return _recorded(monkeypatch, "_read", lambda args, _: args[0])


def test_a_run_over_the_same_files_reads_one_pack(app, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    cold, _ = lint(app, cache_dir, monkeypatch)
    kinds = _reads(monkeypatch)
    warm, linted = lint(app, cache_dir, monkeypatch)
    assert warm == cold and linted == []
    # The pack answers for every file's facts digest and result.
    assert kinds.count("pack") == 1 and "result" not in kinds and "facts" not in kinds
    # A damaged pack is ignored, and written again.
    (pack,) = (entry for entry in (cache_dir / "pack").rglob("*") if entry.is_file())
    pack.write_bytes(pickle.dumps({"facts": [1], "results": 2}))
    kinds.clear()
    again, linted = lint(app, cache_dir, monkeypatch)
    assert again == cold and linted == []
    assert "result" in kinds and "facts" in kinds
    kinds.clear()
    assert lint(app, cache_dir, monkeypatch) == (cold, [])
    assert "result" not in kinds and "facts" not in kinds
    # An edit: the pack answers for the other files, and is brought up to date.
    models = app / "app" / "models.py"
    models.write_text("# a comment\n" + models.read_text(encoding="utf-8"), encoding="utf-8")
    kinds.clear()
    _, linted = lint(app, cache_dir, monkeypatch)
    assert len(linted) == 1 and kinds.count("result") == 1
    kinds.clear()
    _, linted = lint(app, cache_dir, monkeypatch)
    assert linted == [] and "result" not in kinds and "facts" not in kinds


def test_a_run_over_other_files_keeps_its_own_pack(app, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    cold, _ = lint(app, cache_dir, monkeypatch)
    settings = load(None, app).with_cli()
    one = run([app / "app" / "models.py"], settings, RunOptions(cache_dir=cache_dir, jobs=1))
    assert one.findings and all(f.path.endswith("models.py") for f in one.findings)
    kinds = _reads(monkeypatch)
    warm, linted = lint(app, cache_dir, monkeypatch)
    assert warm == cold and linted == []
    assert kinds.count("pack") == 1 and "result" not in kinds


WARM_RUN_MODULES = """
import sys
from fastdb_lint.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
loaded = sorted(m for m in sys.modules if m == "libcst" or m.startswith(("libcst.", "fastdb_lint.rules", "fastdb_lint.engine", "fastdb_lint.analysis", "sqlalchemy")))
print("\\nMODULES:" + ",".join(loaded))
"""


def test_a_fully_cached_run_imports_neither_libcst_nor_the_rules(app, tmp_path):
    import os
    import subprocess
    import sys

    cache_dir = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))}
    args = ["check", "--exit-zero", "--cache-dir", str(cache_dir), "--output-format", "json", "."]

    def loaded_modules() -> tuple[list[str], str]:
        proc = subprocess.run(
            [sys.executable, "-c", WARM_RUN_MODULES, *args], cwd=app, capture_output=True, text=True, env=env, timeout=120
        )
        assert "\nMODULES:" in proc.stdout, proc.stderr
        report, _, modules = proc.stdout.rpartition("\nMODULES:")
        return [m for m in modules.strip().split(",") if m], report

    (app / "app" / "text.py").write_text("def slug(title: str) -> str:\n    return title.lower()\n", encoding="utf-8")
    cold_modules, cold_report = loaded_modules()
    assert "libcst" in cold_modules and any(m.startswith("fastdb_lint.rules.") for m in cold_modules)
    warm_modules, warm_report = loaded_modules()
    # Only the terms' plain data type: neither analyses, rules, LibCST nor SQLAlchemy.
    assert set(warm_modules) <= {"fastdb_lint.analysis", "fastdb_lint.analysis.terms"}
    assert warm_report == cold_report and '"code"' in warm_report

    def linting_modules(modules: list[str]) -> list[str]:
        return [m for m in modules if m == "libcst" or m.startswith(("fastdb_lint.rules", "fastdb_lint.engine"))]

    # An edited file that mentions nothing the rules look for is known to be clean
    # without the rules or LibCST.
    with (app / "app" / "text.py").open("a", encoding="utf-8") as handle:
        handle.write("\n\ndef shout(title: str) -> str:\n    return title.upper()\n")
    quiet_modules, quiet_report = loaded_modules()
    assert linting_modules(quiet_modules) == []
    assert quiet_report == cold_report
    # A file with database code needs them, however small the edit.
    with (app / "app" / "db.py").open("a", encoding="utf-8") as handle:
        handle.write("# reviewed\n")
    edited_modules, edited_report = loaded_modules()
    assert "libcst" in edited_modules
    assert edited_report == cold_report


def test_the_build_id_reads_every_source_of_the_package(tmp_path: Path) -> None:
    from fastdb_lint.cache import _sources

    for relative in ("a.py", "rules/b.py", "rules/__pycache__/b.cpython-311.py", "notes.txt", "z/deep/c.py"):
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("x = 1\n", encoding="utf-8")
    assert [name.replace(os.sep, "/") for name in _sources(str(tmp_path))] == ["a.py", "rules/b.py", "z/deep/c.py"]
