"""Compiled code of the methods that ``dataclasses`` generates, kept between runs.

A dataclass gets its ``__init__``, ``__repr__``, ``__eq__``, ... from source text that
``dataclasses`` writes and compiles each time the class is defined, that is at every
import. LibCST's node classes are dataclasses: compiling their methods is about half of
``import libcst``, which every run that parses a file pays. While the command line runs,
``dataclasses`` compiles through a memo of code objects keyed by that source text,
stored the way Python stores bytecode: in this package's ``__pycache__`` (or under
``sys.pycache_prefix``), tagged with the interpreter's bytecode magic number, and not
written when ``sys.dont_write_bytecode`` is set. A text always compiles to the same
code, so an entry that no class asks for any more only goes unused; a store that cannot
be read is ignored."""

from __future__ import annotations

import dataclasses
import importlib.util
import marshal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import CodeType
from typing import Any

# Bytecode format, and the optimization level that compiled it.
_HEADER = importlib.util.MAGIC_NUMBER + bytes([sys.flags.optimize & 0xFF])


def default_store() -> Path | None:
    """Where the memo is kept: beside this module's bytecode, if there is such a place."""
    try:
        bytecode = importlib.util.cache_from_source(__file__)
    except (NotImplementedError, ValueError):
        return None
    return Path(bytecode).with_name(f"dataclass-code.{sys.implementation.cache_tag}.marshal")


def _load(store: Path) -> dict[str, CodeType]:
    try:
        data = store.read_bytes()
    except OSError:
        return {}
    if not data.startswith(_HEADER):
        return {}
    try:
        codes = marshal.loads(data[len(_HEADER) :])
    except (EOFError, ValueError, TypeError):
        return {}
    return codes if type(codes) is dict else {}


def _save(store: Path, codes: dict[str, CodeType]) -> None:
    from fastdb_lint.cache import write_new_atomic

    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        write_new_atomic(store, _HEADER + marshal.dumps(codes))
    except OSError:
        pass


class CodeMemo:
    """Stands in for ``exec`` in the ``dataclasses`` module: source text is compiled
    once per text, as ``exec`` would compile it there (no ``__future__`` flags)."""

    def __init__(self, known: dict[str, CodeType]) -> None:
        self.known = known
        self.used: dict[str, CodeType] = {}
        self.added = 0

    def code(self, source: str) -> CodeType:
        code = self.used.get(source)
        if code is None:
            code = self.known.get(source)
            if type(code) is not CodeType:
                code = compile(source, "<string>", "exec", dont_inherit=True)
                self.added += 1
            self.used[source] = code
        return code

    def __call__(self, source: Any, globals: Any = None, locals: Any = None, /, **kwargs: Any) -> None:
        if type(source) is str:
            source = self.code(source)
        if globals is None:
            # ``exec`` without globals runs in its caller's namespace, not in this one's.
            caller = sys._getframe(1)
            globals = caller.f_globals
            if locals is None:
                locals = caller.f_locals
        exec(source, globals, locals, **kwargs)


@contextmanager
def compiled_dataclass_methods(store: Path | None = None) -> Iterator[CodeMemo | None]:
    """Within this context, dataclasses defined in this process (and in processes forked
    from it) take their methods' code from the memo at ``store`` (default: beside the
    bytecode); on the way out, the memo is saved if new code was compiled, with the
    entries this run used."""
    store = store if store is not None else default_store()
    if store is None or "exec" in vars(dataclasses):
        yield None
        return
    memo = CodeMemo(_load(store))
    dataclasses.exec = memo  # type: ignore[attr-defined]
    try:
        yield memo
    finally:
        del dataclasses.exec  # type: ignore[attr-defined]
        if memo.added and not sys.dont_write_bytecode:
            _save(store, memo.used)
