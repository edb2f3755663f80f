"""The index pass's facts and the parse that the lint pass runs on its own thread."""

from __future__ import annotations

import gc
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import libcst as cst
import pytest

from fastdb_lint.analysis.index import collect_facts
from fastdb_lint.engine import parse_module


def facts_of(code: str):  # type: ignore[no-untyped-def]
    return collect_facts("app/p.py", "app/p.py", code)


# -- facts ------------------------------------------------------------------------


def test_dependency_sources_are_listed_breadth_first():
    facts = facts_of(
        "from a import A, B, C, D, E\n"
        "def get_session():\n"
        "    if ready:\n"
        "        with A() as s:\n"
        "            with B() as other:\n"
        "                pass\n"
        "    with C() as s:\n"
        "        t = D()\n"
        "    s = E()\n"
        "    yield s\n"
        "    return t\n"
    )
    function = facts.functions["get_session"]
    assert function.is_generator
    assert function.yields_from == ["a.C", "a.E", "a.A", "a.D"]


def test_yields_of_nested_scopes_belong_to_them():
    facts = facts_of(
        "from a import A, B\n"
        "class Repo:\n"
        "    async def connect(self, hook=lambda: (yield)):\n"
        "        async with A() as conn:\n"
        "            def inner():\n"
        "                yield conn\n"
        "                with B() as q:\n"
        "                    pass\n"
        "            return conn\n"
        "        q = B()\n"
    )
    method = facts.functions["Repo.connect"]
    assert not method.is_generator
    assert method.yields_from == ["a.A"]
    assert "inner" not in facts.functions


def test_calls_resolve_against_the_imports_above_them():
    facts = facts_of(
        "def early():\n"
        "    return Depends(get_a)\n"
        "from fastapi import Depends\n"
        "def late():\n"
        "    return Depends(get_b)\n"
        "def get_a(): ...\n"
        "def get_b(): ...\n"
    )
    assert facts.depends == {"app.p.get_b"}


def test_a_tree_too_deep_to_analyse_is_not_indexed():
    assert facts_of("x = " + " + ".join(["a"] * 50) + "\n").parse_ok
    deep = facts_of("from fastapi import Depends\nx = " + " + ".join(["a"] * 2000) + "\n")
    assert not deep.parse_ok
    assert deep.imports.resolve("Depends") == "fastapi.Depends"


# -- parsing ----------------------------------------------------------------------


def parse_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "fastdb-lint-parse"]


def test_parses_share_one_thread():
    for n in range(5):
        code = f"x = {n}\n"
        assert parse_module(code).code == code
    assert len(parse_threads()) == 1


def test_parse_errors_reach_the_caller():
    with pytest.raises(cst.ParserSyntaxError):
        parse_module("def (:\n")
    assert parse_module("y = 1\n").code == "y = 1\n"


def test_concurrent_parses():
    texts = [f"def f{n}():\n    return {n}\n" * 20 for n in range(40)]
    with ThreadPoolExecutor(4) as pool:
        assert [m.code for m in pool.map(parse_module, texts)] == texts


def test_a_long_text_parses_on_a_thread_of_its_own():
    code = "value = 1\n" * 20_000
    assert parse_module(code).code == code
    assert len(parse_threads()) <= 1


def test_collector_state_is_restored():
    parse_module("a = [1]\n")
    assert gc.isenabled()
    gc.disable()
    try:
        parse_module("b = [2]\n")
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_parse_in_a_forked_child():
    parse_module("before = 1\n")
    pid = os.fork()
    if pid == 0:  # the child: a hang is ended by the alarm
        signal.alarm(30)
        try:
            ok = parse_module("after = 2\n").code == "after = 2\n"
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert parse_module("again = 3\n").code == "again = 3\n"


def test_the_index_pass_runs_without_importing_libcst():
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from fastdb_lint.analysis.index import collect_facts\n"
        "facts = collect_facts('app/db.py', 'app/db.py', "
        "'from sqlalchemy.ext.asyncio import AsyncSession\\n"
        "async def get(session: AsyncSession, key: \"int | None\" = None):\\n"
        "    return await session.get(User, key)\\n')\n"
        "assert facts.parse_ok and facts.shape is not None and 'get' in facts.functions\n"
        "print(sorted(m for m in sys.modules if m == 'libcst' or m.startswith('libcst.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_parsing_skips_node_validation_only_while_it_parses():
    from fastdb_lint.engine import _unvalidated_nodes

    code = "async def f(session):\n    return (await session.execute(q)).scalars()\n"
    module = parse_module(code)
    assert module.code == code and module.deep_equals(cst.parse_module(code))
    # Outside a parse, an invalid node is refused as LibCST always does.
    with pytest.raises(cst.CSTValidationError):
        cst.Name("not a name")
    with _unvalidated_nodes():
        with _unvalidated_nodes():
            cst.Name("not a name")
        cst.Name("still unvalidated")
    with pytest.raises(cst.CSTValidationError):
        cst.Name("not a name")
    # A parse that fails leaves validation on.
    with pytest.raises(cst.ParserSyntaxError):
        parse_module("def (:\n", compiled=True)
    with pytest.raises(cst.CSTValidationError):
        cst.Name("not a name")
