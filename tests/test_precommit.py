"""The pre-commit hooks, installed and run by the real pre-commit (`try-repo`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ASYNC_FACTORY_BAD, ASYNC_FACTORY_GOOD, REPO

pytestmark = pytest.mark.slow


def git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.email=ci@example.invalid", "-c", "user.name=ci", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory):
    return tmp_path_factory.mktemp("pre-commit-home")


def try_repo(hook: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), hook, "--all-files", "--color", "never"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


@pytest.fixture
def user_repo(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "db.py").write_text(ASYNC_FACTORY_BAD, encoding="utf-8")
    (tmp_path / "README.md").write_text("not python\n", encoding="utf-8")
    git("init", "-q", cwd=tmp_path)
    git("add", ".", cwd=tmp_path)
    git("commit", "-qm", "init", cwd=tmp_path)
    return tmp_path


def test_check_hook_fails_on_findings(user_repo, pre_commit_home):
    result = try_repo("fastdb-lint", user_repo, pre_commit_home)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FDB201" in result.stdout
    assert "Failed" in result.stdout


def test_fix_hook_fixes_then_passes(user_repo, pre_commit_home):
    result = try_repo("fastdb-lint-fix", user_repo, pre_commit_home)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "files were modified by this hook" in result.stdout
    assert (user_repo / "app" / "db.py").read_text(encoding="utf-8") == ASYNC_FACTORY_GOOD
    git("add", ".", cwd=user_repo)
    again = try_repo("fastdb-lint", user_repo, pre_commit_home)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Passed" in again.stdout
