"""The ``fastdb-lint`` program: the command line, with the code of dataclass methods
compiled once and kept (see :mod:`fastdb_lint.dataclass_code`)."""

from __future__ import annotations


def main() -> None:
    from fastdb_lint.dataclass_code import compiled_dataclass_methods

    with compiled_dataclass_methods():
        from fastdb_lint.cli import main as command

        command(prog_name="fastdb-lint")
