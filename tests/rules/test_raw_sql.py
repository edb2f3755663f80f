"""FDB401/FDB402 beyond the embedded examples: several files, messages, fixes, traps."""

from __future__ import annotations

import ast
import textwrap

import libcst as cst
import pytest

from fastdb_lint.analysis.shape import file_shape
from fastdb_lint.analysis.strings import render_string
from fastdb_lint.diagnostics import Applicability, Severity
from fastdb_lint.engine import lint_sources
from fastdb_lint.registry import get_rule
from fastdb_lint.rules.base import Invalid, ProjectTerms
from fastdb_lint.testing import fix_sources, fixed_code

PATH = "app/example.py"
DB = """\
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

engine = create_async_engine("postgresql+asyncpg://localhost/app")
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


async def get_session():
    async with SessionLocal() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
"""


def lint(code: str, select: str, files: dict[str, str] | None = None, path: str = PATH):
    sources = {**(files or {}), path: textwrap.dedent(code)}
    return lint_sources(sources, select=(select,))[path]


def fix(code: str, select: str, *, unsafe: bool = True, files: dict[str, str] | None = None) -> str:
    code = textwrap.dedent(code)
    return fix_sources({**(files or {}), PATH: code}, PATH, (select,), unsafe=unsafe)


# -- FDB401 -------------------------------------------------------------------------


def test_raw_string_through_session_alias_of_another_file():
    findings = lint(
        """\
        from fastapi import APIRouter
        from app.db import SessionDep

        router = APIRouter()

        @router.get("/raw")
        async def raw(session: SessionDep):
            return (await session.execute("SELECT count(*) FROM user")).scalar()
        """,
        "FDB401",
        files={"app/db.py": DB},
    )
    assert [(f.start.row, f.start.column) for f in findings] == [(8, 19)]
    assert "ObjectNotExecutableError" in findings[0].message
    assert "text()" in findings[0].message


def test_raw_string_fix_merges_into_existing_import():
    code = """\
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    def purge(db: Session) -> None:
        db.execute("DELETE FROM audit_log")  # nightly
    """
    assert fix(code, "FDB401", unsafe=False) == textwrap.dedent(
        """\
        from sqlalchemy import select, text
        from sqlalchemy.orm import Session

        def purge(db: Session) -> None:
            db.execute(text("DELETE FROM audit_log"))  # nightly
        """
    )


@pytest.mark.parametrize(
    "preamble",
    [
        "from rich.text import Text as text\n",
        "from markdown_it import text\n",
    ],
)
def test_raw_string_no_fix_when_text_is_another_library(preamble):
    code = preamble + "from sqlalchemy.orm import Session\ndef f(db: Session):\n    return db.execute('SELECT 1')\n"
    findings = lint(code, "FDB401")
    assert len(findings) == 1
    assert findings[0].fix is None


def test_raw_string_no_fix_when_text_is_a_parameter():
    findings = lint(
        """\
        from sqlalchemy.orm import Session
        def search(db: Session, text: str):
            return db.execute("SELECT * FROM notes")
        """,
        "FDB401",
    )
    assert len(findings) == 1 and findings[0].fix is None


def test_raw_string_uses_existing_sqlmodel_text():
    code = """\
    from sqlmodel import Session, text

    def f(session: Session):
        return session.execute("SELECT 1")
    """
    assert "session.execute(text(\"SELECT 1\"))" in fix(code, "FDB401", unsafe=False)


@pytest.mark.parametrize(
    "body",
    [
        "    sql = build_query()\n    db.execute(sql)\n",
        "    for sql in QUERIES:\n        db.execute(sql)\n",
        "    db.execute(b'SELECT 1')\n",
        "    db.exec_driver_sql('SELECT 1')\n",
        "    sql = 'SELECT 1' if flag else make()\n    db.execute(sql)\n",
    ],
)
def test_raw_string_traps(body):
    code = "from sqlalchemy.orm import Session\ndef f(db: Session, flag):\n" + body
    assert lint(code, "FDB401") == []


def test_raw_string_name_bound_in_both_branches():
    findings = lint(
        """\
        from sqlalchemy.orm import Session
        def f(db: Session, flag: bool):
            if flag:
                sql = "SELECT 1"
            else:
                sql = "SELECT 2"
            return db.scalar(sql)
        """,
        "FDB401",
    )
    assert [f.start.row for f in findings] == [7]


# -- FDB402 -------------------------------------------------------------------------


def test_injection_is_a_security_finding_reported_at_the_receiving_call():
    findings = lint(
        """\
        from sqlalchemy import text

        async def search(session, q: str):
            sql = "SELECT id FROM users WHERE "
            sql += f"email = '{q}'"
            stmt = text(sql)
            return (await session.execute(stmt)).all()
        """,
        "FDB402",
    )
    assert [(f.start.row, f.start.column) for f in findings] == [(6, 12)]
    assert findings[0].severity is Severity.SECURITY
    assert "f-string" in findings[0].message and "`text()`" in findings[0].message


def test_injection_fix_is_unsafe_only():
    code = """\
    from sqlalchemy import text
    def f(q):
        return text(f"SELECT * FROM t WHERE a = {q}")
    """
    findings = lint(code, "FDB402")
    assert findings[0].fix is not None and findings[0].fix.applicability is Applicability.UNSAFE
    assert fix(code, "FDB402", unsafe=False) == textwrap.dedent(code)


def test_injection_fix_keeps_layout_of_implicit_concatenation():
    code = """\
    from sqlalchemy import text
    def f(q: str, n: int):
        return text(
            "SELECT * FROM users "  # the table
            f"WHERE email = '{q}' "
            "AND visits > %d" % n
        )
    """
    # `%` binds tighter than the f-string concatenation: the `%` applies to the whole
    # concatenation, which is an f-string, so the construction is not rewritten.
    assert lint(code, "FDB402")[0].fix is None
    code = """\
    from sqlalchemy import text
    def f(q: str):
        return text(
            "SELECT * FROM users "  # the table
            f"WHERE email = '{q}' "
            "AND active"
        )
    """
    assert fix(code, "FDB402") == textwrap.dedent(
        """\
        from sqlalchemy import text
        def f(q: str):
            return text(
                "SELECT * FROM users "  # the table
                "WHERE email = :q "
                "AND active"
            ).bindparams(q=q)
        """
    )


def test_injection_fix_percent_template_unescapes_percent_signs():
    code = '''\
    from sqlalchemy import text
    def f(q):
        return text("""
            SELECT * FROM users
            WHERE email = '%s' AND name LIKE 'a%%'
        """ % q)
    '''
    assert fix(code, "FDB402") == textwrap.dedent(
        '''\
        from sqlalchemy import text
        def f(q):
            return text("""
                SELECT * FROM users
                WHERE email = :q AND name LIKE 'a%'
            """).bindparams(q=q)
        '''
    )


def test_injection_fix_avoids_existing_parameters():
    code = """\
    from sqlalchemy import text
    def f(org, user):
        return text(f"SELECT * FROM t WHERE org_id = :id AND user_id = {user.id}").bindparams(id=org)
    """
    assert fix(code, "FDB402") == textwrap.dedent(
        """\
        from sqlalchemy import text
        def f(org, user):
            return text("SELECT * FROM t WHERE org_id = :id AND user_id = :id2").bindparams(id2=user.id).bindparams(id=org)
        """
    )


def test_injection_fix_names_from_format_fields_and_subscripts():
    code = """\
    from sqlalchemy import text
    def f(data, since):
        return text("SELECT * FROM t WHERE a = {owner} AND b > '{}' AND c = %s".format(since, owner=data["owner_id"]) % 1)
    """
    # A `%` applied to a `.format()` result: reported, not rewritten.
    findings = lint(code, "FDB402")
    assert len(findings) == 1 and findings[0].fix is None
    code = """\
    from sqlalchemy import text
    def f(data, since):
        return text("SELECT * FROM t WHERE a = {owner} AND b > '{}' AND c = {}".format(since, data["class"], owner=data["owner_id"]))
    """
    assert fix(code, "FDB402") == textwrap.dedent(
        """\
        from sqlalchemy import text
        def f(data, since):
            return text("SELECT * FROM t WHERE a = :owner AND b > :since AND c = :p1").bindparams(owner=data["owner_id"], since=since, p1=data["class"])
        """
    )


@pytest.mark.parametrize(
    "sql",
    [
        'f"SELECT * FROM {table}"',
        "f\"SELECT * FROM t WHERE name LIKE '%{q}%'\"",
        'f"SELECT * FROM t ORDER BY {q} DESC"',
        'f"SELECT * FROM t WHERE id = {q!r}"',
        'f"SELECT * FROM t WHERE id = {q}::int"',
        'f"SELECT * FROM t LIMIT {q}"',
        'f"SELECT * FROM t WHERE id = {q}{q}"',
    ],
)
def test_injection_without_fix(sql):
    code = f"from sqlalchemy import text\ndef f(q, table):\n    return text({sql})\n"
    findings = lint(code, "FDB402")
    assert len(findings) == 1
    assert findings[0].fix is None


def test_injection_variable_used_elsewhere_gets_no_fix():
    findings = lint(
        """\
        from sqlalchemy import text
        def f(session, q):
            sql = f"SELECT * FROM t WHERE a = {q}"
            log.debug(sql)
            return session.execute(text(sql))
        """,
        "FDB402",
    )
    assert len(findings) == 1 and findings[0].fix is None


def test_injection_value_rebound_after_the_string_gets_no_fix():
    findings = lint(
        """\
        from sqlalchemy import text
        def f(session, q):
            sql = f"SELECT * FROM t WHERE a = {q}"
            q = None
            return session.execute(text(sql))
        """,
        "FDB402",
    )
    assert len(findings) == 1 and findings[0].fix is None


def test_injection_through_execute_of_an_async_session_alias():
    code = """\
    from app.db import SessionDep

    async def search(session: SessionDep, name: str):
        return (await session.execute(f"SELECT * FROM users WHERE name = '{name}'")).all()
    """
    assert fix(code, "FDB402", files={"app/db.py": DB}) == textwrap.dedent(
        """\
        from app.db import SessionDep
        from sqlalchemy import text

        async def search(session: SessionDep, name: str):
            return (await session.execute(text("SELECT * FROM users WHERE name = :name").bindparams(name=name))).all()
        """
    )


def test_injection_constants_from_another_module():
    files = {
        "app/constants.py": 'from sqlalchemy import MetaData\nUSERS = "users"\nSCHEMA = os.environ["SCHEMA"]\n',
    }
    findings = lint(
        """\
        from sqlalchemy import text
        from app.constants import SCHEMA, USERS
        def f():
            a = text(f"SELECT * FROM {USERS}")
            b = text(f"SET search_path TO {SCHEMA}")
            return a, b
        """,
        "FDB402",
        files=files,
    )
    assert [f.start.row for f in findings] == [5]


@pytest.mark.parametrize(
    "body",
    [
        # identifier escaped by the dialect
        "    return text(f'SELECT * FROM {conn.dialect.identifier_preparer.quote(name)}')\n",
        # mapped table names are code
        "    return text(f'SELECT * FROM {User.__tablename__} WHERE id = :id')\n",
        "    return text(f'SELECT * FROM {User.__table__.name}')\n",
        # loop over constants / over the metadata's tables
        "    for t in ('a', 'b'):\n        conn.execute(text(f'TRUNCATE {t}'))\n",
        "    for table in reversed(Base.metadata.sorted_tables):\n        conn.execute(text(f'TRUNCATE {table.name}'))\n",
        # casts cannot carry SQL
        "    return text(f'SELECT * FROM t LIMIT {int(name)}')\n",
        # names bound only to literals
        "    col = 'name' if name else 'id'\n    return text(f'SELECT * FROM t ORDER BY {col}')\n",
        # a whitelist lookup
        "    return text(f'SELECT * FROM t ORDER BY {COLUMNS[name]}')\n",
        "    return text(f'SELECT * FROM t ORDER BY {COLUMNS.get(name, \"id\")}')\n",
        # text() of another library
        "    return markup_text(f'<b>{name}</b>')\n",
        # DB-API parameters
        "    cursor.execute('SELECT * FROM t WHERE a = %s', (name,))\n",
        # not SQL
        "    return client.execute(f'{name}')\n",
    ],
)
def test_injection_traps(body):
    code = (
        "from sqlalchemy import text\n"
        "from markup import text as markup_text\n"
        "COLUMNS = {'name': 'users.name', 'age': 'users.age'}\n"
        "def f(conn, cursor, client, name):\n" + body
    )
    assert lint(code, "FDB402") == []


def test_injection_quoted_name_does_not_escape():
    findings = lint(
        """\
        from sqlalchemy import text
        from sqlalchemy.sql.elements import quoted_name
        def f(conn, table):
            name = quoted_name(table, quote=True)
            conn.execute(text(f"DROP TABLE {name}"))
        """,
        "FDB402",
    )
    assert [f.start.row for f in findings] == [5]


def test_injection_module_level_script_and_several_findings():
    findings = lint(
        """\
        import sqlite3
        conn = sqlite3.connect("app.db")
        name = input()
        conn.execute("SELECT * FROM t WHERE name = '%s'" % name)
        conn.execute("SELECT * FROM t WHERE name = '" + name + "'")
        conn.execute("SELECT * FROM t WHERE name = '{}'".format(name))
        conn.execute("SELECT * FROM t WHERE name = ?", (name,))
        """,
        "FDB402",
    )
    assert [f.start.row for f in findings] == [4, 5, 6]
    assert "`%` formatting" in findings[0].message
    assert "string concatenation" in findings[1].message
    assert "`.format()`" in findings[2].message


def test_injection_in_migration_op_execute():
    findings = lint(
        """\
        from alembic import op
        revision = "0002"
        def upgrade() -> None:
            conn = op.get_bind()
            for row in conn.execute(sa.text("SELECT id, name FROM org")).fetchall():
                op.execute(f"UPDATE org SET slug = '{slugify(row[1])}' WHERE id = {row[0]}")
        """,
        "FDB402",
        path="migrations/versions/0002_slugs.py",
    )
    assert [(f.start.row, f.message.count("op.execute()")) for f in findings] == [(6, 1)]


def test_render_string_keeps_quote_style():
    simple = cst.parse_expression("'a'")
    triple = cst.parse_expression('"""a"""')
    raw = cst.parse_expression(r'r"a\d"')
    assert isinstance(simple, cst.SimpleString) and isinstance(triple, cst.SimpleString)
    assert isinstance(raw, cst.SimpleString)
    assert render_string("it's\n", simple) == "'it\\'s\\n'"
    assert render_string('x = "y"\n', triple) == '"""x = "y"\n"""'
    assert render_string('ends with "', triple) == '"""ends with \\""""'
    assert render_string(r"\d+ :x", raw) == r'r"\d+ :x"'
    for value, like in (("it's\n", simple), ('x = "y"\n', triple), ('ends with "', triple), (r"\d+ :x", raw)):
        rendered = render_string(value, like)
        assert rendered is not None
        node = cst.parse_expression(rendered)
        assert isinstance(node, cst.SimpleString) and node.evaluated_value == value


def test_fixed_examples_are_stable():
    rule = get_rule("FDB402")
    assert rule is not None
    example = Invalid(
        "from sqlalchemy import text\n"
        "def f(a, b):\n"
        "    x = text(f\"SELECT * FROM t WHERE a = '{a}' AND b IN ({b}, {a})\")\n"
        "    return x\n"
    )
    fixed = fixed_code(rule, example)
    assert fixed == (
        "from sqlalchemy import text\n"
        "def f(a, b):\n"
        '    x = text("SELECT * FROM t WHERE a = :a AND b IN (:b, :a)").bindparams(a=a, b=b)\n'
        "    return x\n"
    )
    assert fixed_code(rule, example, fixed) == fixed


def test_injection_parameter_may_still_reach_the_call():
    findings = lint(
        """\
        from sqlalchemy import text
        def f(session, x, q, sql=None, flag=False):
            if flag:
                q = "fixed"
            a = text(f"SELECT * FROM t WHERE b = {q}")
            if sql is None:
                sql = f"SELECT * FROM t WHERE a = {x}"
            return a, session.execute(text(sql))
        """,
        "FDB402",
    )
    # The caller's own `sql` may reach text(): rewriting the local string would break it.
    assert [(f.start.row, f.fix is None) for f in findings] == [(5, False), (8, True)]


# -- applies: the files each rule is run on ---------------------------------------------

TERMS = ProjectTerms(frozenset({"SessionLocal", "get_session", "SessionDep"}), frozenset(), True)


def applies(code: str, rule: str) -> bool:
    return get_rule(rule).applies(file_shape(ast.parse(textwrap.dedent(code))), TERMS)


def test_raw_sql_rules_skip_files_that_pass_sql_to_nothing():
    code = """\
    import logging

    from app.db import SessionDep

    log = logging.getLogger(__name__)

    async def audit(session: SessionDep, user_id: int):
        query = f"SELECT * FROM audit WHERE user_id = {user_id}"
        log.info("running %s", query)
        session.add(Audit(user_id=user_id, note="checked " + str(user_id)))
        await session.commit()
    """
    assert not applies(code, "FDB401")
    assert not applies(code, "FDB402")
    assert lint(code, "FDB402", files={"app/db.py": DB}) == []


def test_raw_sql_string_applies_to_every_statement_method():
    for method in ("execute", "scalar", "scalars"):
        code = f"""\
        from app.db import SessionLocal

        def count():
            with SessionLocal() as db:
                return db.{method}("SELECT count(*) FROM users")
        """
        assert applies(code, "FDB401"), method
    # Plain strings are not executable anywhere, but only these methods are checked.
    assert not applies('def f(conn):\n    return conn.exec_driver_sql("VACUUM")\n', "FDB401")


def test_sql_injection_applies_to_every_sink_and_through_import_aliases():
    aliased = """\
    from sqlalchemy import text as sql_text

    def by_name(name):
        return sql_text(f"SELECT * FROM users WHERE name = '{name}'")
    """
    assert applies(aliased, "FDB402")
    assert [f.code for f in lint(aliased, "FDB402")] == ["FDB402"]
    sinks = [
        "literal_column(f'{col} + 1')",
        "op.execute('UPDATE t SET a = ' + value)",
        "conn.exec_driver_sql('VACUUM ' + table)",
        "cursor.execute('SELECT * FROM t WHERE a = %s' % value)",
    ]
    for sink in sinks:
        assert applies(f"def f(col, value, table, conn, cursor):\n    return {sink}\n", "FDB402"), sink
    formatted = "def f(ident, conn):\n    return conn.execute('SELECT * FROM t WHERE id = {}'.format(ident))\n"
    assert applies(formatted, "FDB402")
    augmented = """\
    def f(conn, name):
        sql = "SELECT * FROM users WHERE true"
        sql += tail(name)
        return conn.execute(sql)
    """
    assert applies(augmented, "FDB402")


def test_sql_injection_skips_constant_sql_and_argumentless_execute():
    migration = """\
    from alembic import op
    import sqlalchemy as sa

    def upgrade():
        op.execute("UPDATE recipe SET public = true")
        op.execute(sa.text("DELETE FROM token WHERE expired"))
    """
    assert not applies(migration, "FDB402")
    assert lint(migration, "FDB402") == []
    # Google API requests run with `.execute()`: no SQL reaches it.
    google_api = """\
    def files(service, folder):
        query = f"'{folder}' in parents"
        return service.files().list(q=query).execute()
    """
    assert not applies(google_api, "FDB402")


def test_raw_sql_string_needs_a_session_or_connection_name():
    cursor = """\
    import sqlite3

    def count(path):
        cursor = sqlite3.connect(path).cursor()
        cursor.execute("SELECT count(*) FROM users")
    """
    assert not applies(cursor, "FDB401")
    assert lint(cursor, "FDB401") == []
    for annotation in ("Session", "'AsyncSession'", "sa.Connection", "AsyncConnection", "SessionDep"):
        code = f"def count(db: {annotation}):\n    return db.scalar('SELECT count(*) FROM users')\n"
        assert applies(code, "FDB401"), annotation
    engine = """\
    from sqlalchemy import create_engine as make

    def count():
        with make(URL).connect() as conn:
            return conn.execute("SELECT 1")
    """
    assert applies(engine, "FDB401")
    assert [f.code for f in lint(engine, "FDB401")] == ["FDB401"]
    # `execute()` without an argument has no statement to check.
    assert not applies("def f(db: Session):\n    return db.execute()\n", "FDB401")
