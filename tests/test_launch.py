"""The program's end: the command's exit status and everything it wrote survive the
skipped interpreter teardown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli


def _finish_in_child(code: str, before: str = "") -> subprocess.CompletedProcess[str]:
    script = f"import sys\nfrom fastdb_lint.launch import _finish\n{before}\n_finish({code})\n"
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO
    )


@pytest.mark.parametrize(
    ("code", "status", "stderr"),
    [("None", 0, ""), ("0", 0, ""), ("1", 1, ""), ("2", 2, ""), ("'fatal: no way'", 1, "fatal: no way\n")],
)
def test_the_exit_status_is_the_commands(code: str, status: int, stderr: str) -> None:
    done = _finish_in_child(code, "print('buffered', end='')\nsys.stderr.write('')")
    assert (done.returncode, done.stdout, done.stderr) == (status, "buffered", stderr)


def test_buffered_output_is_flushed_before_the_end() -> None:
    done = _finish_in_child("1", "sys.stdout.write('x' * 200_000)\nsys.stderr.write('note')")
    assert (done.returncode, done.stdout, done.stderr) == (1, "x" * 200_000, "note")


def test_a_stream_that_cannot_be_flushed_makes_a_clean_run_fail() -> None:
    # As at a normal interpreter exit: output that cannot be written turns status 0
    # into 120; a stream the program closed itself is left alone.
    gone = (
        "import io, os\nread, write = os.pipe()\nos.close(read)\n"
        "sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(write, 'w')))\nsys.stdout.write('lost')"
    )
    assert _finish_in_child("0", gone).returncode == 120
    assert _finish_in_child("1", gone).returncode == 1
    closed = _finish_in_child("0", "sys.stdout.write('kept')\nsys.stdout.close()")
    assert (closed.returncode, closed.stdout) == (0, "kept")


def test_a_run_reports_and_exits_as_before(tmp_path: Path) -> None:
    source = tmp_path / "app.py"
    source.write_text(
        "from sqlalchemy.orm import Session\n\ndef f(session: Session):\n    return session.query(User).all()\n"
    )
    report = tmp_path / "report.json"
    done = run_cli("check", "--no-cache", "--output-format", "json", "-o", str(report), str(source), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert '"FDB301"' in report.read_text(encoding="utf-8")
    missing = run_cli("check", "--no-cache", "--select", "FDB301", str(tmp_path / "missing.py"), cwd=tmp_path)
    assert missing.returncode == 2 and "missing.py" in missing.stderr
