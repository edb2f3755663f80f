from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path, stdin: bytes | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "fastdb_lint", *args],
        cwd=cwd,
        input=stdin.decode("utf-8", "surrogateescape") if stdin is not None else None,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


def run_python(script: str) -> str:
    """Run ``script`` in a fresh interpreter (nothing imported yet); its standard output."""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def cli():
    return run_cli


ASYNC_FACTORY_BAD = (
    "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
    "\n"
    "SessionLocal = async_sessionmaker(engine)\n"
)
ASYNC_FACTORY_GOOD = (
    "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
    "\n"
    "SessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n"
)
