"""The fix-invariant checker (scripts/check_fix_invariants.py) over the bundled
fixtures, and on trees made to break each invariant it checks."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ASYNC_FACTORY_BAD, ASYNC_FACTORY_GOOD

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "check_fix_invariants.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_fix_invariants", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


checker = _load()


def test_fixtures_keep_every_invariant(capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: p.read_bytes() for p in (REPO / "fixtures").rglob("*") if p.is_file()}
    assert checker.main([str(REPO / "fixtures")]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert ": OK: " in out and "files fixed" in out
    after = {p: p.read_bytes() for p in (REPO / "fixtures").rglob("*") if p.is_file()}
    assert after == before, "the checked tree itself is never modified"


def _tree(root: Path) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.fastdb-lint]\nselect = ["FDB201"]\n', encoding="utf-8")
    (root / "app" / "db.py").write_bytes(b"\xef\xbb\xbf" + ASYNC_FACTORY_BAD.replace("\n", "\r\n").encode())
    (root / "app" / "clean.py").write_text(ASYNC_FACTORY_GOOD, encoding="utf-8")
    (root / "app" / "broken.py").write_text("import sqlalchemy\ndef f(:\n", encoding="utf-8")
    (root / "app" / "latin.py").write_bytes(b"# coding: latin-1\n# caf\xe9\n" + ASYNC_FACTORY_BAD.encode())
    os.chmod(root / "app" / "db.py", 0o600)
    return root


def test_a_small_tree_passes(tmp_path: Path) -> None:
    report = checker.check_tree(_tree(tmp_path / "tree"), ["FDB201"], keep=False)
    assert report.violations == []
    assert (report.python_files, report.fixable_before, report.fixed_files, report.remaining) == (4, 2, 2, 1)


def test_a_fix_that_breaks_an_invariant_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fix run that rewrites files carelessly (LF endings, no BOM, new mode, an
    untouched file rewritten) is caught on every count."""
    tree = _tree(tmp_path / "tree")
    real_run = checker.run_check

    def careless(root: Path, select: list[str], *args: str) -> subprocess.CompletedProcess[str]:
        result = real_run(root, select, *args)
        if "--fix" in args:
            db = root / "app" / "db.py"
            text = db.read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
            db.write_text(text + "def broken(:\n", encoding="utf-8")
            os.chmod(db, 0o644)
            clean = root / "app" / "clean.py"
            clean.write_bytes(clean.read_bytes())
            (root / "app" / "new.py").write_text("x = 1\n", encoding="utf-8")
        return result

    monkeypatch.setattr(checker, "run_check", careless)
    report = checker.check_tree(tree, ["FDB201"], keep=False)
    text = "\n".join(report.violations)
    for needle in (
        "app/db.py: permissions changed",
        "app/db.py: encoding utf-8/BOM True became utf-8/BOM False",
        "app/db.py: line endings",
        "app/db.py: fixed file does not parse",
        "app/clean.py: rewritten without a change",
        "app/new.py: file appeared",
        "app/db.py: the second fix run changed it again",
    ):
        assert needle in text, text


def test_missing_tree_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert checker.main([str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err
