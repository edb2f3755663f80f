"""The ``fastdb-lint`` program: the command line, with the code of dataclass methods
compiled once and kept (see :mod:`fastdb_lint.dataclass_code`), ending without the
interpreter's teardown."""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def main() -> None:
    from fastdb_lint.dataclass_code import compiled_dataclass_methods

    with compiled_dataclass_methods():
        from fastdb_lint.cli import main as command

        try:
            command(prog_name="fastdb-lint")
        except SystemExit as exit:
            code = exit.code
        else:
            code = 0
    _finish(code)


def _finish(code: object) -> NoReturn:
    """Flush the standard streams and end the process with the command's exit status.

    Everything the command writes (reports, cache entries, fixed files) is written and
    closed by then; what is left is the interpreter freeing every object of the run (the
    project index, the trees, the cache) one by one, and collecting them: about 0.2 s
    after a run over a large project. Like mypy, the program skips that. A status that
    is not a number is printed, as ``sys.exit`` would."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        if stream is None or stream.closed:
            continue
        try:
            stream.flush()
        except OSError:
            # The reader went away: as at a normal exit, a clean status says so.
            if status == 0:
                status = 120
    os._exit(status)
