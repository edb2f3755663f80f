"""The index pass's facts."""

from __future__ import annotations

from fastdb_lint.analysis.index import collect_facts
from tests.conftest import run_python


def facts_of(code: str):  # type: ignore[no-untyped-def]
    return collect_facts("app/p.py", "app/p.py", code)


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


def test_the_index_pass_runs_without_importing_libcst():
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
    assert run_python(script).strip() == "[]"
