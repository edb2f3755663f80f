"""FDB4xx: raw SQL."""

from __future__ import annotations

import re
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from fastdb_lint.analysis.sqlalchemy_api import LITERAL_COLUMN_FUNCTIONS, STATEMENT_EXECUTORS, TEXT_FUNCTIONS
from fastdb_lint.analysis.syntax import string_value
from fastdb_lint.analysis.strings import (
    Binding,
    BindingKind,
    Construction,
    Hole,
    Leaf,
    Scope,
    Taint,
    Text,
    construct,
    is_identifier,
    render_string,
    string_bindings,
    taint,
)
from fastdb_lint.context import FileContext
from fastdb_lint.diagnostics import FixAvailability, Severity
from fastdb_lint.fixes import FixBuilder
from fastdb_lint.rules.base import Invalid, ProjectTerms, Rule, Valid
from fastdb_lint.analysis.preconditions import EXECUTOR_SOURCES, receiver_may_be

if TYPE_CHECKING:
    from fastdb_lint.analysis.shape import FileShape

_EXECUTE_METHODS = frozenset({"execute", "scalar", "scalars"})
# Keyword names under which the SQL reaches the functions this module knows.
_SQL_KEYWORDS = frozenset({"statement", "text", "sql", "sqltext", "query", "operation"})


def _sql_arg(call: cst.Call) -> cst.Arg | None:
    """The argument carrying the SQL: the first positional one, or a known keyword."""
    for arg in call.args:
        if arg.star:
            return None
        if arg.keyword is None:
            return arg
        if arg.keyword.value in _SQL_KEYWORDS:
            return arg
    return None


def _text_is_usable(ctx: FileContext) -> bool | None:
    """True when the name ``text`` already refers to SQLAlchemy's ``text()`` here, False
    when ``from sqlalchemy import text`` can be added, None when the name is taken."""
    if ctx.values.reaching("text") is not None:
        return None
    if ctx.imports.resolve("text") in TEXT_FUNCTIONS:
        return True
    if "text" in ctx.imports.bindings or "text" in ctx.imports.local_defs:
        return None
    return False


def _with_text_import(ctx: FileContext, fix: FixBuilder) -> FixBuilder:
    usable = _text_is_usable(ctx)
    if usable is None:
        return fix.fail()
    if usable is False:
        fix.add_import("sqlalchemy", "text")
    return fix


class RawSqlString(Rule):
    """
    ## What it does
    Flags a plain string passed as the statement to `execute()`, `scalar()` or
    `scalars()` of a `Session`, `AsyncSession` or `Connection` (also a
    `scoped_session`): a string literal, an f-string or other string expression, or a
    name bound to one in the same function or module.

    ## Why is this bad?
    SQLAlchemy 2.0 no longer executes plain strings: the call raises
    `ObjectNotExecutableError`. Textual SQL has to be declared with `text()`, which
    also gives it bound parameters (`:name`) instead of string formatting.

    ## Example
    ```python
    result = await session.execute("SELECT count(*) FROM users")
    ```

    ## Use instead
    ```python
    from sqlalchemy import text

    result = await session.execute(text("SELECT count(*) FROM users"))
    ```

    ## Fix safety
    Safe: the fix wraps the string in `text(...)` and adds `from sqlalchemy import
    text`. When `text` is already bound to something else in the module (another
    library's `text`, a parameter named `text`), the finding has no fix.

    Not flagged: `text(...)`, `select(...)` and other statements; `exec_driver_sql()`,
    which takes driver SQL strings by design; `execute()` of objects not known to be
    SQLAlchemy sessions or connections (DB-API cursors); names whose value the analysis
    cannot tell (parameters, call results). SQL built from values is also reported by
    FDB402.
    """

    code = "FDB401"
    name = "raw-sql-string"
    summary = "Plain string passed to `execute()`: wrap SQL in `text()`"
    fix = FixAvailability.SAFE
    valid = [
        Valid(
            "from sqlalchemy import text\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def count(session: AsyncSession) -> int:\n"
            '    return (await session.execute(text("SELECT count(*) FROM users"))).scalar_one()\n'
        ),
        Valid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session\n"
            "def names(session: Session):\n"
            "    return session.scalars(select(User.name)).all()\n"
        ),
        Valid(
            "from sqlalchemy import Connection\n"
            "def vacuum(conn: Connection) -> None:\n"
            '    conn.exec_driver_sql("VACUUM")\n'
        ),
        Valid(
            "import sqlite3\n"
            "def count(path: str) -> int:\n"
            "    cursor = sqlite3.connect(path).cursor()\n"
            '    cursor.execute("SELECT count(*) FROM users")\n'
            "    return cursor.fetchone()[0]\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "def run(session: Session, statement):\n"
            "    return session.execute(statement)\n"
        ),
        Valid(
            "from sqlalchemy import text\n"
            "from sqlalchemy.orm import Session\n"
            "def run(session: Session):\n"
            '    stmt = text("SELECT 1")\n'
            "    return session.execute(stmt)\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def count(session: AsyncSession) -> int:\n"
            '    return (await session.execute("SELECT count(*) FROM users")).scalar_one()\n',
            fixed="from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from sqlalchemy import text\n"
            "async def count(session: AsyncSession) -> int:\n"
            '    return (await session.execute(text("SELECT count(*) FROM users"))).scalar_one()\n',
            line=3,
        ),
        Invalid(
            "from sqlalchemy import select, text\n"
            "from sqlalchemy.orm import Session\n"
            "def purge(session: Session) -> None:\n"
            '    sql = "DELETE FROM audit_log"\n'
            "    session.execute(sql)\n",
            fixed="from sqlalchemy import select, text\n"
            "from sqlalchemy.orm import Session\n"
            "def purge(session: Session) -> None:\n"
            '    sql = "DELETE FROM audit_log"\n'
            "    session.execute(text(sql))\n",
            line=5,
        ),
        Invalid(
            "from sqlalchemy import create_engine\n"
            'COUNT_USERS = "SELECT count(*) FROM users"\n'
            'engine = create_engine("sqlite://")\n'
            "def count() -> int:\n"
            "    with engine.connect() as conn:\n"
            "        return conn.scalar(COUNT_USERS)\n",
            fixed="from sqlalchemy import create_engine, text\n"
            'COUNT_USERS = "SELECT count(*) FROM users"\n'
            'engine = create_engine("sqlite://")\n'
            "def count() -> int:\n"
            "    with engine.connect() as conn:\n"
            "        return conn.scalar(text(COUNT_USERS))\n",
            line=6,
        ),
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def lookup(session: Session, user_id: int):\n"
            '    return session.execute(f"SELECT * FROM users WHERE id = {user_id}").all()\n',
            fixed="from sqlalchemy.orm import Session\n"
            "from sqlalchemy import text\n"
            "def lookup(session: Session, user_id: int):\n"
            '    return session.execute(text(f"SELECT * FROM users WHERE id = {user_id}")).all()\n',
        ),
        # `text` is another library's function here: reported without a fix.
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "from rich.text import Text as text\n"
            "def count(session: Session):\n"
            '    return session.scalar("SELECT count(*) FROM users")\n',
            fixed="from sqlalchemy.orm import Session\n"
            "from rich.text import Text as text\n"
            "def count(session: Session):\n"
            '    return session.scalar("SELECT count(*) FROM users")\n',
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return not shape.calls_with_args.isdisjoint(_EXECUTE_METHODS) and receiver_may_be(
            shape, project, EXECUTOR_SOURCES, _EXECUTE_METHODS
        )

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in _EXECUTE_METHODS:
            return
        if ctx.kind(func.value) not in STATEMENT_EXECUTORS:
            return
        arg = _sql_arg(node)
        if arg is None or construct(ctx, arg.value) is None:
            return
        wrapped = cst.Call(func=cst.Name("text"), args=[cst.Arg(value=arg.value)])
        fix = _with_text_import(ctx, ctx.fix("Wrap the SQL in `text()`").replace(arg.value, wrapped))
        ctx.report(
            node,
            f"Plain string passed to `{func.attr.value}()`: SQLAlchemy 2.0 cannot execute it "
            "(`ObjectNotExecutableError`); wrap the SQL in `text()`",
            fix,
        )


# -- FDB402 -----------------------------------------------------------------------

_METHOD_WORDS = {"f-string": "an f-string", "%": "`%` formatting", "format": "`.format()`", "+": "string concatenation"}
_FORMATTING = frozenset(_METHOD_WORDS)
_SQL_START = re.compile(
    r"\s*\(?\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|DROP|ALTER|TRUNCATE|REPLACE|MERGE|UPSERT|GRANT|REVOKE"
    r"|SET|SHOW|EXPLAIN|PRAGMA|VACUUM|ANALYZE|CALL|COPY|REFRESH|REINDEX)\b",
    re.IGNORECASE,
)
_SQL_ANYWHERE = re.compile(
    r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\b[\s\S]*\bSET\b|\bDELETE\s+FROM\b", re.IGNORECASE
)
# Text right before a value: a comparison, `IN (`, `LIKE`, `VALUES (`.
_VALUE_BEFORE = re.compile(r"(?:[=<>]|\bIN\s*\(|\bI?LIKE|\bVALUES\s*\()$", re.IGNORECASE)
_LIST_OPENER = re.compile(r"\b(?:IN|VALUES)$", re.IGNORECASE)
_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?![:\w])")
_HOLE_MARK = "\x00"
# Last names of the calls that can receive SQL (imported aliases are resolved).
_SINK_NAMES = frozenset({"text", "literal_column", "execute", "exec_driver_sql"})


@dataclass
class _SqlValue:
    """The SQL handed to a sink, as far as the analysis can follow it."""

    # Each construction with the binding it is the value of (None: the argument itself).
    constructions: list[tuple[Construction, Binding | None]]
    # The one construction the fix may rewrite, and the binding holding it (None when
    # the construction is the sink's argument itself).
    site: Construction | None
    binding: Binding | None
    scope: Scope | None


@dataclass
class _Sink:
    label: str
    arg: cst.Arg
    # "text": text(...) itself; "wrap": a session's execute() (the fix adds text());
    # None: no fix.
    fix_mode: str | None
    # The receiver is unknown: only SQL-looking text counts.
    needs_sql: bool = False


class SqlInjection(Rule):
    """
    ## What it does
    Flags SQL text built from non-constant values with an f-string, `%` formatting,
    `.format()` or `+`, when it is passed to `text()`, `literal_column()`,
    `execute()`/`exec_driver_sql()` of a session or connection, Alembic's
    `op.execute()`, or a DB-API `cursor.execute()`. The string may be built earlier in
    the function: the finding is reported at the call that receives it.

    ## Why is this bad?
    Values formatted into SQL are SQL: a quote in a user-supplied value ends the literal
    and the rest runs as code (SQL injection). Bound parameters send values separately
    from the statement, so they can never change its meaning.

    ## Example
    ```python
    stmt = text(f"SELECT id FROM users WHERE email = '{email}'")
    ```

    ## Use instead
    ```python
    stmt = text("SELECT id FROM users WHERE email = :email").bindparams(email=email)
    ```

    ## Fix safety
    Unsafe. When every interpolated value sits in a value position (after `=`, `<`,
    `>`, `IN (`, `LIKE`, `VALUES (`, or a `,` inside `IN (...)`/`VALUES (...)`), the fix
    replaces each by a bound parameter named after the interpolated expression
    (`{user_id}` -> `:user_id`, `{user.id}` -> `:id`, made unique with a numeric suffix,
    else `:p1`, `:p2`...), drops the SQL quotes around it and appends
    `.bindparams(...)`. A value that was formatted as text is then sent with its own
    type, which can change comparisons. Table and column names (identifiers) cannot be
    bound: such SQL gets no fix. A string built in a local variable is fixed only when
    the variable is assigned once and used only by that call.

    Not flagged: SQL whose interpolated parts are all constants (literals, names bound
    only to literals, module-level ALL_CAPS constants, `Model.__tablename__`, lookups in
    constant tables); identifiers escaped with the dialect's
    `identifier_preparer.quote(...)` (`quoted_name(...)` does not escape anything when
    formatted into a string, so it is flagged); SQL assembled with `str.join` from parts
    the analysis cannot see; `execute()` of unknown objects when the text does not look
    like SQL.
    """

    code = "FDB402"
    name = "sql-injection"
    summary = "SQL built from non-constant values: SQL injection"
    fix = FixAvailability.UNSAFE
    severity = Severity.SECURITY
    triggers = ("execute", "text", "literal_column", "exec_driver_sql")
    valid = [
        Valid(
            "from sqlalchemy import text\n"
            "def find(email: str):\n"
            '    return text("SELECT id FROM users WHERE email = :email").bindparams(email=email)\n'
        ),
        Valid(
            "from sqlalchemy import text\n"
            'TABLE = "users"\n'
            "def count():\n"
            '    return text(f"SELECT count(*) FROM {TABLE}")\n'
        ),
        Valid(
            "from sqlalchemy import text\n"
            "from app.tables import USERS\n"
            "def active():\n"
            '    return text("SELECT * FROM " + USERS + " WHERE active = %s" % "true")\n',
            files={"app/tables.py": 'from sqlalchemy import MetaData\nUSERS = "users"\n'},
        ),
        Valid(
            "from sqlalchemy import text\n"
            "def by_age(descending: bool):\n"
            '    order = "DESC" if descending else "ASC"\n'
            '    return text(f"SELECT * FROM users ORDER BY age {order}")\n'
        ),
        Valid(
            "from sqlalchemy import Connection, text\n"
            "def truncate(conn: Connection, table: str) -> None:\n"
            "    quoted = conn.dialect.identifier_preparer.quote(table)\n"
            '    conn.execute(text(f"TRUNCATE TABLE {quoted}"))\n'
        ),
        Valid(
            "from sqlalchemy import text\n"
            "def drop(engine, table: str):\n"
            "    preparer = engine.dialect.identifier_preparer\n"
            '    return text("DROP TABLE " + preparer.quote(table))\n'
        ),
        Valid(
            "import sqlite3\n"
            "def find(conn: sqlite3.Connection, name: str):\n"
            '    return conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchall()\n'
        ),
        Valid(
            "def fetch(client, user_id: str):\n"
            '    return client.execute(f"query {{ user(id: \\"{user_id}\\") {{ name }} }}")\n'
        ),
        Valid(
            "from sqlalchemy import text\n"
            "def search(filters: dict):\n"
            "    clauses = [f\"{key} = :{key}\" for key in filters if key in ALLOWED]\n"
            '    where = " AND ".join(clauses)\n'
            '    return text(f"SELECT * FROM users WHERE {where}").bindparams(**filters)\n'
        ),
        Valid(
            "from sqlalchemy import text\n"
            'SORTS = {"name": "users.name", "age": "users.age"}\n'
            "def listing(sort: str):\n"
            '    return text(f"SELECT * FROM users ORDER BY {SORTS[sort]}")\n'
        ),
        Valid(
            "from sqlalchemy import literal_column, select\n"
            "def query():\n"
            '    return select(literal_column("1"))\n'
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy import text\n"
            "async def search(q: str, session):\n"
            "    stmt = text(f\"SELECT id FROM users WHERE email = '{q}'\")\n"
            "    return (await session.execute(stmt)).all()\n",
            fixed="from sqlalchemy import text\n"
            "async def search(q: str, session):\n"
            '    stmt = text("SELECT id FROM users WHERE email = :q").bindparams(q=q)\n'
            "    return (await session.execute(stmt)).all()\n",
            line=3,
        ),
        Invalid(
            "from sqlalchemy import text\n"
            "def find(name: str):\n"
            "    return text(\"SELECT * FROM users WHERE name = '%s'\" % name)\n",
            fixed="from sqlalchemy import text\n"
            "def find(name: str):\n"
            '    return text("SELECT * FROM users WHERE name = :name").bindparams(name=name)\n',
        ),
        Invalid(
            "import sqlalchemy as sa\n"
            "def find(user_id: int, status: str):\n"
            "    return sa.text(\"SELECT * FROM users WHERE id = {} AND status = '{}'\".format(user_id, status))\n",
            fixed="import sqlalchemy as sa\n"
            "def find(user_id: int, status: str):\n"
            '    return sa.text("SELECT * FROM users WHERE id = :user_id AND status = :status").bindparams(user_id=user_id, status=status)\n',
        ),
        Invalid(
            "from sqlalchemy import text\n"
            "def find(user_id: int):\n"
            '    return text("SELECT * FROM users WHERE id = " + str(user_id))\n',
            fixed="from sqlalchemy import text\n"
            "def find(user_id: int):\n"
            '    return text("SELECT * FROM users WHERE id = :user_id").bindparams(user_id=user_id)\n',
        ),
        # Built earlier in a local variable: reported at text(), fixed at both places.
        Invalid(
            "from sqlalchemy import text\n"
            "async def orders(session, user, since):\n"
            '    sql = f"SELECT * FROM orders WHERE user_id = {user.id} AND created_at > {since}"\n'
            "    result = await session.execute(text(sql))\n"
            "    return result.all()\n",
            fixed="from sqlalchemy import text\n"
            "async def orders(session, user, since):\n"
            '    sql = "SELECT * FROM orders WHERE user_id = :id AND created_at > :since"\n'
            "    result = await session.execute(text(sql).bindparams(id=user.id, since=since))\n"
            "    return result.all()\n",
            line=4,
        ),
        Invalid(
            "from sqlalchemy import text\n"
            "def pair(a, b):\n"
            '    return text(f"SELECT * FROM t WHERE x IN ({a.id}, {b.id}, {a.id}) OR y = {compute()}")\n',
            fixed="from sqlalchemy import text\n"
            "def pair(a, b):\n"
            '    return text("SELECT * FROM t WHERE x IN (:id, :id2, :id) OR y = :p1").bindparams(id=a.id, id2=b.id, p1=compute())\n',
        ),
        # Identifiers cannot be bound: no fix.
        Invalid(
            "from sqlalchemy import text\n"
            "def count(table: str):\n"
            '    return text(f"SELECT count(*) FROM {table}")\n'
        ),
        Invalid(
            "from sqlalchemy import text\n"
            "from sqlalchemy.sql import quoted_name\n"
            "def count(table: str):\n"
            '    return text(f"SELECT count(*) FROM {quoted_name(table, quote=True)}")\n'
        ),
        Invalid(
            "from sqlalchemy import text\n"
            "def search(session, name: str | None, limit: int):\n"
            '    sql = "SELECT * FROM users WHERE active"\n'
            "    if name:\n"
            "        sql += f\" AND name = '{name}'\"\n"
            "    return session.execute(text(sql))\n",
            line=6,
        ),
        Invalid(
            "import sqlite3\n"
            "def find(conn: sqlite3.Connection, name: str):\n"
            "    cursor = conn.cursor()\n"
            "    cursor.execute(f\"SELECT * FROM users WHERE name = '{name}'\")\n"
            "    return cursor.fetchall()\n",
            line=4,
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncConnection\n"
            "async def vacuum(conn: AsyncConnection, table: str) -> None:\n"
            '    await conn.exec_driver_sql("VACUUM " + table)\n'
        ),
        Invalid(
            "from sqlalchemy import literal_column, select\n"
            "def labelled(label: str):\n"
            "    return select(literal_column(f\"'{label}'\").label(\"tag\"))\n"
        ),
        Invalid(
            "from alembic import op\n"
            'revision = "0002"\n'
            "def upgrade() -> None:\n"
            '    for status in load_statuses():\n'
            "        op.execute(f\"INSERT INTO status (name) VALUES ('{status}')\")\n",
            path="migrations/versions/0002_statuses.py",
        ),
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def lookup(session: Session, user_id: int):\n"
            '    return session.execute(f"SELECT * FROM users WHERE id = {user_id}").all()\n',
            fixed="from sqlalchemy.orm import Session\n"
            "from sqlalchemy import text\n"
            "def lookup(session: Session, user_id: int):\n"
            '    return session.execute(text("SELECT * FROM users WHERE id = :user_id").bindparams(user_id=user_id)).all()\n',
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # A sink gets the SQL as an argument; the SQL is built by one of the operations
        # `has_formatting` records or by `.format()`.
        return not shape.calls_with_args.isdisjoint(_SINK_NAMES) and (shape.has_formatting or "format" in shape.calls)

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        # Fixes through a local variable: valid only if the variable has no other use.
        self._variable_fixes: list[tuple[FixBuilder, Scope, str]] = []

    # -- traversal -------------------------------------------------------------

    def visit_Call(self, node: cst.Call) -> None:
        sink = self._sink(node)
        if sink is None:
            return
        ctx = self.ctx
        value = self._sql_value(sink.arg.value)
        if value is None:
            return
        methods: set[str] = set()
        worst = Taint.CONSTANT
        for built, binding in value.constructions:
            methods |= built.methods & _FORMATTING
            # Interpolated names are judged by what they held when the string was built.
            with ctx.values.evaluating(binding) if binding is not None else nullcontext():
                worst = max([worst, *(taint(ctx, hole.expr) for hole in built.holes)])
        if not methods or worst is not Taint.DYNAMIC:
            return
        if sink.needs_sql and not any(self._looks_like_sql(c) for c, _ in value.constructions):
            return
        how = " and ".join(_METHOD_WORDS[m] for m in sorted(methods, key=list(_METHOD_WORDS).index))
        message = (
            f"SQL built from non-constant values with {how} is passed to `{sink.label}`: SQL injection; "
            "use bound parameters (`text(\"... :name\").bindparams(name=value)`)"
        )
        fix = self._fix(node, sink, value)
        ctx.report(node, message, fix)

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._settle(self.ctx.values.scope)

    def finish(self) -> None:
        self._settle(None)

    def _settle(self, scope: Scope | None) -> None:
        """Drop variable fixes whose variable is used elsewhere in its scope."""
        keep = []
        for fix, fix_scope, name in self._variable_fixes:
            if scope is not None and fix_scope is not scope:
                keep.append((fix, fix_scope, name))
                continue
            if self.ctx.values.occurrences(fix_scope, name) != 2:
                fix.fail()
        self._variable_fixes = keep

    # -- sinks -----------------------------------------------------------------

    def _sink(self, node: cst.Call) -> _Sink | None:
        ctx = self.ctx
        func = node.func
        if isinstance(func, cst.Name):
            if func.value not in ctx.imports.bindings:
                return None
        elif not isinstance(func, cst.Attribute) or func.attr.value not in _SINK_NAMES:
            return None
        arg = _sql_arg(node)
        if arg is None:
            return None
        callee = ctx.callee(node)
        if callee in TEXT_FUNCTIONS:
            return _Sink("text()", arg, "text")
        if callee in LITERAL_COLUMN_FUNCTIONS:
            return _Sink("literal_column()", arg, None)
        if callee == "alembic.op.execute":
            return _Sink("op.execute()", arg, None)
        if not isinstance(func, cst.Attribute):
            return None
        method = func.attr.value
        if method == "exec_driver_sql":
            return _Sink("exec_driver_sql()", arg, None)
        if method != "execute":
            return None
        kind = ctx.kind(func.value)
        if kind in STATEMENT_EXECUTORS:
            return _Sink("execute()", arg, "wrap")
        if kind is not None:
            return _Sink("execute()", arg, None)
        return _Sink("execute()", arg, None, needs_sql=True)

    def _sql_value(self, expr: cst.BaseExpression, depth: int = 0) -> _SqlValue | None:
        ctx = self.ctx
        if not isinstance(expr, cst.Name):
            built = construct(ctx, expr)
            if built is None:
                return None
            return _SqlValue([(built, None)], built, None, None)
        if depth > 4:
            return None
        reach = ctx.values.reaching(expr.value)
        if reach is None or not reach.bindings:
            return None
        constructions: list[tuple[Construction, Binding | None]] = []
        for binding in reach.bindings:
            if binding.kind not in (BindingKind.VALUE, BindingKind.AUGMENTED) or binding.value is None:
                continue
            if isinstance(binding.value, cst.Name) and binding.kind is BindingKind.VALUE:
                with ctx.values.evaluating(binding):
                    inner = self._sql_value(binding.value, depth + 1)
                if inner is not None:
                    constructions.extend(inner.constructions)
                continue
            with ctx.values.evaluating(binding):
                built = construct(ctx, binding.value)
            if built is None:
                continue
            if binding.kind is BindingKind.AUGMENTED and built.holes:
                built = Construction(built.site, built.pieces, built.methods | {"+"}, built.template, built.exact)
            constructions.append((built, binding))
        if not constructions:
            return None
        single = reach.single
        only = constructions[0][0]
        if single is not None and len(constructions) == 1 and reach.scope is ctx.values.scope and single.value is only.site:
            return _SqlValue(constructions, only, single, reach.scope)
        return _SqlValue(constructions, None, None, None)

    def _looks_like_sql(self, built: Construction, depth: int = 0) -> bool:
        text = self._flat_text(built, depth)
        return bool(_SQL_START.match(text) or _SQL_ANYWHERE.search(text))

    def _flat_text(self, built: Construction, depth: int) -> str:
        parts: list[str] = []
        for piece in built.pieces:
            if isinstance(piece, Text):
                parts.append(piece.value)
                continue
            inner = None
            if isinstance(piece.expr, cst.Name) and depth < 4:
                found = string_bindings(self.ctx, piece.expr.value)
                if found is not None and len(found) >= 1:
                    inner = "".join(self._flat_text(c, depth + 1) for c in found)
            parts.append(inner if inner is not None else " ? ")
        return "".join(parts)

    # -- fix -------------------------------------------------------------------

    def _fix(self, call: cst.Call, sink: _Sink, value: _SqlValue) -> FixBuilder | None:
        ctx = self.ctx
        site = value.site
        if sink.fix_mode is None or site is None or not site.exact:
            return None
        plan = _bound_parameters(site, ctx.module)
        if plan is None:
            return None
        new_site, params = plan
        fix = ctx.fix("Use bound parameters", unsafe=True)
        binding = value.binding
        if binding is not None:
            if not self._holes_unchanged(site, binding, value.scope):
                return None
            fix.replace(site.site, new_site)
            statement: cst.BaseExpression = sink.arg.value
        else:
            statement = new_site
        bind_args = [
            cst.Arg(
                value=expr,
                keyword=cst.Name(name),
                equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")),
                comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")) if index < len(params) - 1 else cst.MaybeSentinel.DEFAULT,
            )
            for index, (name, expr) in enumerate(params)
        ]
        if sink.fix_mode == "text":
            text_call: cst.BaseExpression = call
            if binding is None:
                text_call = call.with_changes(
                    args=[a.with_changes(value=statement) if a is sink.arg else a for a in call.args]
                )
            bound = cst.Call(func=cst.Attribute(value=text_call, attr=cst.Name("bindparams")), args=bind_args)
            fix.replace(call, bound)
        else:
            wrapped = cst.Call(func=cst.Name("text"), args=[cst.Arg(value=statement)])
            bound = cst.Call(func=cst.Attribute(value=wrapped, attr=cst.Name("bindparams")), args=bind_args)
            fix.replace(sink.arg.value, bound)
            _with_text_import(ctx, fix)
        if binding is not None and value.scope is not None:
            self._variable_fixes.append((fix, value.scope, binding.name))
        return fix

    def _holes_unchanged(self, site: Construction, binding: Binding, scope: Scope | None) -> bool:
        """The interpolated names are not rebound between the string and the call."""
        if scope is None:
            return False
        for hole in site.holes:
            root = hole.expr
            while isinstance(root, (cst.Attribute, cst.Subscript, cst.Call)):
                root = root.func if isinstance(root, cst.Call) else root.value
            if isinstance(root, cst.Name):
                if any(r.order > binding.order for r in scope.records.get(root.value, ())):
                    return False
            elif root is not None and not isinstance(root, (cst.SimpleString, cst.Integer, cst.Float)):
                return False
        return True


# -- bound parameters -------------------------------------------------------------


def _unwrap_str(expr: cst.BaseExpression) -> cst.BaseExpression:
    if (
        isinstance(expr, cst.Call)
        and isinstance(expr.func, cst.Name)
        and expr.func.value == "str"
        and len(expr.args) == 1
        and not expr.args[0].star
        and expr.args[0].keyword is None
    ):
        return expr.args[0].value
    return expr


def _base_name(hole: Hole) -> str | None:
    if hole.field is not None and is_identifier(hole.field):
        return hole.field
    expr = _unwrap_str(hole.expr) if hole.expr is not None else None
    name: str | None = None
    if isinstance(expr, cst.Name):
        name = expr.value
    elif isinstance(expr, cst.Attribute):
        name = expr.attr.value
    elif isinstance(expr, cst.Subscript) and len(expr.slice) == 1:
        index = expr.slice[0].slice
        if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString):
            key = string_value(index.value)
            name = key if isinstance(key, str) else None
    return name if name is not None and is_identifier(name) else None


def _inside_list(before: str) -> bool:
    """``before`` ends inside the parentheses of ``IN (...)`` or ``VALUES (...)``."""
    depth = 0
    quoted = False
    for index in range(len(before) - 1, -1, -1):
        char = before[index]
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == ")":
            depth += 1
        elif char == "(":
            if depth == 0:
                return bool(_LIST_OPENER.search(before[:index].rstrip()))
            depth -= 1
    return False


def _bound_parameters(
    site: Construction, module: cst.Module
) -> tuple[cst.BaseExpression, list[tuple[str, cst.BaseExpression]]] | None:
    """The site rewritten with bound parameters and the parameters, or None when some
    interpolated value is not in a value position."""
    pieces = list(site.pieces)
    if not any(isinstance(p, Hole) for p in pieces):
        return None
    # Text with each hole marked, to judge positions and find existing parameters.
    marked = "".join(p.value if isinstance(p, Text) else _HOLE_MARK for p in pieces)
    reserved = set(_BIND.findall(marked.replace(_HOLE_MARK, " ")))
    used: set[str] = set(reserved)
    by_code: dict[str, str] = {}
    params: list[tuple[str, cst.BaseExpression]] = []
    anonymous = 0
    new_pieces: list[Text] = []
    starts: list[int] = []
    offset = 0
    for piece in pieces:
        starts.append(offset)
        offset += len(piece.value) if isinstance(piece, Text) else len(_HOLE_MARK)
    for index, piece in enumerate(pieces):
        if isinstance(piece, Text):
            new_pieces.append(piece)
            continue
        if piece.expr is None or not piece.simple:
            return None
        previous = pieces[index - 1] if index > 0 else None
        following = pieces[index + 1] if index + 1 < len(pieces) else None
        if isinstance(previous, Hole) or isinstance(following, Hole):
            return None
        before = marked[: starts[index]]
        after = following.value if isinstance(following, Text) else ""
        quoted = before.endswith("'")
        if quoted != after.startswith("'"):
            return None
        if quoted:
            if before.endswith("''") or after.startswith("''"):
                return None
            before, after = before[:-1], after[1:]
        stripped = before.rstrip()
        if not (_VALUE_BEFORE.search(stripped) or (stripped.endswith(",") and _inside_list(stripped[:-1]))):
            return None
        if after and after[0] not in " \t\r\n),;":
            return None
        expr = _unwrap_str(piece.expr)
        code = module.code_for_node(expr)
        name = by_code.get(code)
        if name is None:
            base = _base_name(piece)
            if base is None:
                anonymous += 1
                name = f"p{anonymous}"
                while name in used:
                    anonymous += 1
                    name = f"p{anonymous}"
            else:
                name, suffix = base, 2
                while name in used:
                    name = f"{base}{suffix}"
                    suffix += 1
            used.add(name)
            by_code[code] = name
            params.append((name, expr))
        if quoted:
            # Drop the SQL quotes around the value.
            last = new_pieces[-1]
            new_pieces[-1] = Text(last.value[:-1], last.leaf)
            assert isinstance(following, Text)
            pieces[index + 1] = Text(following.value[1:], following.leaf)
        new_pieces.append(Text(f":{name}", piece.leaf or (previous.leaf if isinstance(previous, Text) else None)))
    rebuilt = _rebuild(site, new_pieces)
    if rebuilt is None:
        return None
    return rebuilt, params


def _rebuild(site: Construction, pieces: list[Text]) -> cst.BaseExpression | None:
    template = site.template
    if template is None:
        first = next((p.leaf for p in pieces if p.leaf is not None), None)
        if first is None:
            return None
        rendered = render_string("".join(p.value for p in pieces), first)
        if rendered is None:
            return None
        node = site.site
        return cst.SimpleString(rendered, lpar=node.lpar, rpar=node.rpar)
    texts: dict[int, list[str]] = {}
    for piece in pieces:
        if piece.leaf is None:
            return None
        texts.setdefault(id(piece.leaf), []).append(piece.value)

    def leaf(node: Leaf) -> cst.BaseExpression | None:
        value = "".join(texts.get(id(node), []))
        if isinstance(node, cst.SimpleString) and string_value(node) == value:
            return node
        rendered = render_string(value, node)
        if rendered is None:
            return None
        return cst.SimpleString(rendered, lpar=node.lpar, rpar=node.rpar)

    def walk(node: cst.BaseExpression) -> cst.BaseExpression | None:
        if isinstance(node, (cst.SimpleString, cst.FormattedString)):
            return leaf(node)
        if isinstance(node, cst.ConcatenatedString):
            left = walk(node.left)
            right = walk(node.right)
            if left is None or right is None:
                return None
            return node.with_changes(left=left, right=right)
        return None

    new = walk(template)
    if new is None:
        return None
    outer = site.site
    if outer is not template:
        new = new.with_changes(lpar=[*outer.lpar, *new.lpar], rpar=[*new.rpar, *outer.rpar])
    return new
