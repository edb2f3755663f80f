"""Database URLs: finding the URL an engine is created with, and reading it.

URLs are parsed by SQLAlchemy's own :func:`sqlalchemy.engine.make_url` (imported
lazily: linting must not pay for importing SQLAlchemy unless a URL is actually read).
Templated parts (``{user}``, ``${DB_HOST}``, ``%(pw)s``, f-string expressions) are
replaced by neutral tokens before parsing and restored afterwards, so a URL such as
``f"postgresql://{user}:{password}@{host}:{port}/db"`` still tells its driver.

:class:`UrlResolver` follows an engine call's URL argument to a string literal in the
same file: the literal itself, a module constant, the default of ``os.getenv`` /
``os.environ.get``, or the default of a field of a settings class defined in the file
(``settings.DATABASE_URL`` where ``settings = Settings()``). Anything else is
unresolved, and rules that need the URL stay silent (or, where RULES.md says so,
assume a server database).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst

from fastdb_lint.analysis.index import CallValue, LiteralValue, NameValue
from fastdb_lint.analysis.syntax import statement_blocks, string_value

if TYPE_CHECKING:
    from fastdb_lint.context import FileContext

ENGINE_FACTORIES = frozenset(
    {"sqlalchemy.create_engine", "sqlmodel.create_engine", "sqlalchemy.ext.asyncio.create_async_engine"}
)
ASYNC_ENGINE_FACTORY = "sqlalchemy.ext.asyncio.create_async_engine"
ASYNC_ENGINE_CLASS = "sqlalchemy.ext.asyncio.AsyncEngine"
GETENV = frozenset({"os.getenv", "os.environ.get"})

_TEMPLATE = re.compile(r"\$\{[^}]*\}|\{[^{}]*\}|%\([^)]*\)[sdr]|%[sd]|\$[A-Za-z_][A-Za-z0-9_]*")
_SCHEME = re.compile(r"([A-Za-z0-9_+]+)://")

# Dialect names SQLAlchemy (or a well-known third-party dialect) accepts as a URL scheme.
DATABASE_BACKENDS = frozenset(
    {
        "postgresql", "postgres", "mysql", "mariadb", "sqlite", "mssql", "oracle",
        "cockroachdb", "redshift", "snowflake", "clickhouse", "db2", "ibm_db_sa", "sybase",
        "firebird", "teradatasql", "trino", "presto", "hana", "duckdb", "databricks",
        "bigquery", "crate", "spanner", "timescaledb", "yugabytedb", "access", "informix",
    }
)

# (backend, explicit driver or None) pairs that are blocking DB-API drivers.
_SYNC_DRIVERS: dict[str, frozenset[str | None]] = {
    "postgresql": frozenset({None, "psycopg2", "psycopg2cffi", "pg8000"}),
    "postgres": frozenset({None, "psycopg2", "psycopg2cffi", "pg8000"}),
    "mysql": frozenset({None, "pymysql", "mysqldb", "mysqlconnector", "cymysql", "pyodbc"}),
    "mariadb": frozenset({None, "pymysql", "mysqldb", "mysqlconnector", "mariadbconnector"}),
    "sqlite": frozenset({None, "pysqlite", "pysqlcipher"}),
    "mssql": frozenset({None, "pyodbc", "pymssql"}),
    "oracle": frozenset({None, "cx_oracle"}),
}
# The async driver a sync URL is switched to (backends not listed get no fix).
ASYNC_DRIVER_FOR = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+aiomysql",
    "sqlite": "sqlite+aiosqlite",
}

_PLACEHOLDER_PASSWORDS = frozenset(
    {
        "password", "pass", "passwd", "pwd", "changeme", "change_me", "change-me",
        "your_password", "yourpassword", "your-password", "secret_password_here",
    }
)
_PLACEHOLDER_SHAPES = re.compile(r"\*+|x{3,}|X{3,}|\.{3}|<[^<>]*>|\[[^\[\]]*\]")


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed URL; components keep their template text (``{password}``) verbatim."""

    text: str
    drivername: str
    username: str | None
    password: str | None
    host: str | None
    port: str | None
    database: str | None
    query: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return self.drivername.partition("+")[0].lower()

    @property
    def driver(self) -> str | None:
        """The driver named in the URL, None when the URL names none."""
        _, plus, driver = self.drivername.partition("+")
        return driver.lower() if plus else None

    @property
    def scheme_is_templated(self) -> bool:
        return has_template(self.drivername)

    @property
    def is_database(self) -> bool:
        return not self.scheme_is_templated and self.backend in DATABASE_BACKENDS

    @property
    def is_sqlite(self) -> bool:
        return not self.scheme_is_templated and self.backend == "sqlite"

    @property
    def names_sync_driver(self) -> bool:
        """True when the URL selects a blocking driver (explicitly or by default)."""
        if self.scheme_is_templated:
            return False
        drivers = _SYNC_DRIVERS.get(self.backend)
        return drivers is not None and self.driver in drivers

    @property
    def async_drivername(self) -> str | None:
        return ASYNC_DRIVER_FOR.get(self.backend)

    def query_value(self, key: str) -> str | None:
        value = self.query.get(key)
        if isinstance(value, tuple):
            return value[-1] if value else None
        return value

    @property
    def is_memory_sqlite(self) -> bool:
        """An in-memory SQLite database (``sqlite://``, ``:memory:``, ``mode=memory``)."""
        if not self.is_sqlite:
            return False
        database = self.database or ""
        if has_template(database):
            return False
        return (
            database in ("", ":memory:")
            or database.startswith("file::memory:")
            or self.query_value("mode") == "memory"
            or "mode=memory" in database
        )

    @property
    def is_shared_cache(self) -> bool:
        return self.query_value("cache") == "shared" or "cache=shared" in (self.database or "")

    @property
    def has_real_password(self) -> bool:
        """A password that is neither empty, templated nor an obvious placeholder."""
        password = self.password
        if not password or has_template(password):
            return False
        if password.lower() in _PLACEHOLDER_PASSWORDS:
            return False
        return _PLACEHOLDER_SHAPES.fullmatch(password) is None


def has_template(text: str) -> bool:
    return _TEMPLATE.search(text) is not None


def looks_like_database_url(text: str) -> bool:
    """Cheap test before parsing: ``<database scheme>://`` at the start, no blanks."""
    match = _SCHEME.match(text)
    if match is None or any(c.isspace() for c in text):
        return False
    scheme = match.group(1)
    return has_template(scheme) or scheme.partition("+")[0].lower() in DATABASE_BACKENDS


def parse_url(text: str) -> DatabaseUrl | None:
    """Parse ``text`` with SQLAlchemy's ``make_url``, leniently with templates."""
    if "://" not in text:
        return None
    from sqlalchemy.engine import make_url

    templates: list[str] = []

    def keep(match: re.Match[str]) -> str:
        templates.append(match.group())
        return f"\x00{len(templates) - 1}\x00"

    marked = _TEMPLATE.sub(keep, text)
    for style in ("word", "digits"):
        tokens = [_token(style, i) for i in range(len(templates))]
        candidate = marked
        for i, token in enumerate(tokens):
            candidate = candidate.replace(f"\x00{i}\x00", token)
        try:
            url = make_url(candidate)
        except Exception:  # make_url raises ArgumentError/ValueError on malformed input
            continue

        def restore(value: object) -> str | None:
            if value is None:
                return None
            out = str(value)
            for i, token in enumerate(tokens):
                out = out.replace(token, templates[i])
            return out

        query: dict[str, str | tuple[str, ...]] = {}
        for key, value in url.query.items():
            if isinstance(value, tuple):
                query[restore(key) or key] = tuple(restore(v) or "" for v in value)
            else:
                query[restore(key) or key] = restore(value) or ""
        return DatabaseUrl(
            text=text,
            drivername=restore(url.drivername) or "",
            username=restore(url.username),
            password=restore(url.password),
            host=restore(url.host),
            port=restore(url.port),
            database=restore(url.database),
            query=query,
        )
    return None


def _token(style: str, index: int) -> str:
    return f"fdbtpl{index}x" if style == "word" else f"6{index:04d}"


# -- string expressions ----------------------------------------------------------


def string_template(node: cst.BaseExpression) -> str | None:
    """The text of a string expression, with its non-constant parts as ``{}``.

    Handles literals, f-strings, implicit concatenation and ``"...".format(...)`` /
    ``"..." % (...)`` (whose placeholders are already templates)."""
    if isinstance(node, cst.SimpleString):
        value = string_value(node)
        return value if isinstance(value, str) else None
    if isinstance(node, cst.FormattedString):
        if "b" in node.prefix.lower():
            return None
        pieces: list[str] = []
        for part in node.parts:
            if isinstance(part, cst.FormattedStringText):
                pieces.append(part.value.replace("{{", "{").replace("}}", "}"))
            else:
                pieces.append("{}")
        return "".join(pieces)
    if isinstance(node, cst.ConcatenatedString):
        left = string_template(node.left)
        right = string_template(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "format":
        return string_template(node.func.value)
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Modulo):
        return string_template(node.left)
    return None


def scheme_literal(node: cst.BaseExpression) -> cst.SimpleString | cst.FormattedString | None:
    """The literal piece of a string expression that holds its start (the scheme)."""
    if isinstance(node, (cst.SimpleString, cst.FormattedString)):
        return node
    if isinstance(node, cst.ConcatenatedString):
        return scheme_literal(node.left)
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        return scheme_literal(node.func.value)
    if isinstance(node, cst.BinaryOperation):
        return scheme_literal(node.left)
    return None


def replace_scheme(node: cst.BaseExpression, old: str, new: str) -> cst.CSTNode | None:
    """``node`` (a literal piece from :func:`scheme_literal`) with its leading
    ``old://`` rewritten to ``new://``; None when the scheme is not plainly there."""
    if isinstance(node, cst.SimpleString):
        head = len(node.prefix) + len(node.quote)
        body = node.value[head:]
        if not body.startswith(f"{old}://"):
            return None
        return node.with_changes(value=node.value[:head] + new + body[len(old) :])
    if isinstance(node, cst.FormattedString):
        if not node.parts or not isinstance(node.parts[0], cst.FormattedStringText):
            return None
        first = node.parts[0]
        if not first.value.startswith(f"{old}://"):
            return None
        parts = [first.with_changes(value=new + first.value[len(old) :]), *node.parts[1:]]
        return node.with_changes(parts=parts)
    return None


# -- resolving an engine's URL argument ---------------------------------------------


@dataclass(frozen=True)
class ResolvedUrl:
    url: DatabaseUrl
    # The string expression the URL was read from, when it is in this file.
    expression: cst.BaseExpression | None
    # Module-level names / settings fields passed through on the way (for fix safety).
    via_names: tuple[str, ...] = ()
    via_attributes: tuple[str, ...] = ()

    @property
    def inline(self) -> bool:
        return self.expression is not None and not self.via_names and not self.via_attributes


def url_argument(call: cst.Call) -> cst.BaseExpression | None:
    """The URL passed to ``create_engine``/``create_async_engine``."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "url":
            return arg.value
    if call.args and call.args[0].keyword is None and not call.args[0].star:
        return call.args[0].value
    return None


def keyword(call: cst.Call, name: str) -> cst.Arg | None:
    return next((a for a in call.args if a.keyword is not None and a.keyword.value == name), None)


def has_kwargs_splat(call: cst.Call) -> bool:
    return any(a.star == "**" for a in call.args)


class UrlResolver:
    """Resolves URL expressions of one file (module-level tables built on first use)."""

    MAX_DEPTH = 6

    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx
        self._assignments: dict[str, list[cst.BaseExpression | None]] | None = None
        self._classes: dict[str, cst.ClassDef] = {}
        self._functions: dict[str, cst.FunctionDef] = {}
        self._locals: dict[int, tuple[cst.FunctionDef, dict[str, list[cst.BaseExpression | None]]]] = {}

    # -- module tables ------------------------------------------------------------

    def _tables(self) -> dict[str, list[cst.BaseExpression | None]]:
        if self._assignments is None:
            self._assignments = {}
            self._scan(self.ctx.module.body, self._assignments, top=True)
        return self._assignments

    def _scan(self, body: object, assignments: dict[str, list[cst.BaseExpression | None]], *, top: bool) -> None:
        """Record the values assigned to names directly in ``body`` (a module or
        function body); names bound in nested blocks get an extra ``None`` entry, and
        names bound otherwise (imports aside) a ``None`` entry, so that only names
        assigned exactly once, unconditionally, have a single known value."""
        if not isinstance(body, (list, tuple)):
            return
        for stmt in body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, cst.Assign):
                        for target in small.targets:
                            if isinstance(target.target, cst.Name):
                                assignments.setdefault(target.target.value, []).append(small.value)
                            else:
                                for name in _names_in_target(target.target):
                                    assignments.setdefault(name, []).append(None)
                    elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                        if small.value is not None:
                            assignments.setdefault(small.target.value, []).append(small.value)
                    elif isinstance(small, cst.AugAssign) and isinstance(small.target, cst.Name):
                        assignments.setdefault(small.target.value, []).append(None)
                    elif isinstance(small, (cst.Global, cst.Nonlocal)):
                        for item in small.names:
                            assignments.setdefault(item.name.value, []).extend((None, None))
            elif isinstance(stmt, cst.ClassDef):
                assignments.setdefault(stmt.name.value, []).append(None)
                if top:
                    self._classes[stmt.name.value] = stmt
            elif isinstance(stmt, cst.FunctionDef):
                assignments.setdefault(stmt.name.value, []).append(None)
                if top:
                    self._functions[stmt.name.value] = stmt
            elif isinstance(stmt, (cst.If, cst.Try, cst.With, cst.For, cst.While)):
                if isinstance(stmt, (cst.For, cst.With)):
                    targets = [stmt.target] if isinstance(stmt, cst.For) else [
                        i.asname.name for i in stmt.items if i.asname is not None
                    ]
                    for target in targets:
                        for name in _names_in_target(target):
                            assignments.setdefault(name, []).extend((None, None))
                for block in statement_blocks(stmt):
                    before = {k: len(v) for k, v in assignments.items()}
                    self._scan(block, assignments, top=False)
                    for name, values in assignments.items():
                        if len(values) > before.get(name, 0):
                            values.append(None)

    def function_value(self, function: cst.FunctionDef, name: str) -> cst.BaseExpression | None:
        """The value of a local of ``function`` assigned exactly once, unconditionally."""
        table = self._locals.get(id(function))
        if table is None or table[0] is not function:
            assignments: dict[str, list[cst.BaseExpression | None]] = {}
            if isinstance(function.body, cst.IndentedBlock):
                self._scan(function.body.body, assignments, top=False)
            table = (function, assignments)
            self._locals[id(function)] = table
        values = table[1].get(name)
        return values[0] if values and len(values) == 1 else None

    def module_value(self, name: str) -> cst.BaseExpression | None:
        """The value of a module-level name assigned exactly once, unconditionally."""
        values = self._tables().get(name)
        if not values or len(values) != 1:
            return None
        return values[0]

    def module_class(self, name: str) -> cst.ClassDef | None:
        values = self._tables().get(name)
        return self._classes.get(name) if values and len(values) == 1 else None

    def module_function(self, name: str) -> cst.FunctionDef | None:
        values = self._tables().get(name)
        return self._functions.get(name) if values and len(values) == 1 else None

    def _is_module_name(self, node: cst.Name) -> bool:
        ctx = self.ctx
        qual = ctx.qualname(node)
        own = f"{ctx.module_name}.{node.value}" if ctx.module_name else node.value
        return qual == own

    # -- resolution ------------------------------------------------------------------

    def resolve(self, expr: cst.BaseExpression | None) -> ResolvedUrl | None:
        if expr is None:
            return None
        return self._resolve(expr, 0, (), ())

    def _resolve(
        self,
        expr: cst.BaseExpression,
        depth: int,
        names: tuple[str, ...],
        attrs: tuple[str, ...],
    ) -> ResolvedUrl | None:
        if depth > self.MAX_DEPTH:
            return None
        text = string_template(expr)
        if text is not None:
            url = parse_url(text)
            return ResolvedUrl(url, expr, names, attrs) if url is not None else None
        ctx = self.ctx
        if isinstance(expr, cst.Name):
            if self._is_module_name(expr):
                value = self.module_value(expr.value)
                if value is None:
                    return None
                return self._resolve(value, depth + 1, (*names, expr.value), attrs)
            for scope in reversed(ctx.functions):
                if expr.value in scope.params:
                    return None
                if expr.value in scope.bindings:
                    value = self.function_value(scope.node, expr.value)
                    if value is None:
                        return None
                    return self._resolve(value, depth + 1, (*names, expr.value), attrs)
            qual = ctx.qualname(expr)
            return self._resolve_project(qual, depth) if qual else None
        if isinstance(expr, cst.Call):
            callee = ctx.callee(expr)
            if callee in GETENV:
                default = _getenv_default(expr)
                return self._resolve(default, depth + 1, names, attrs) if default is not None else None
            if self._is_builtin(expr.func, "str"):
                if len(expr.args) == 1 and expr.args[0].keyword is None and not expr.args[0].star:
                    return self._resolve(expr.args[0].value, depth + 1, names, attrs)
            return None
        if isinstance(expr, cst.Attribute):
            cls = self._settings_class(expr.value)
            if cls is None:
                return None
            value = self._class_field(cls, expr.attr.value)
            if value is None:
                return None
            return self._resolve(value, depth + 1, names, (*attrs, expr.attr.value))
        return None

    def _resolve_project(self, qual: str, depth: int) -> ResolvedUrl | None:
        project = self.ctx.project
        for _ in range(self.MAX_DEPTH - depth):
            value = project.value(qual)
            if isinstance(value, NameValue):
                qual = value.qualname
                continue
            text: object = None
            if isinstance(value, LiteralValue):
                text = value.value
            elif isinstance(value, CallValue) and value.callee in GETENV:
                default = value.keywords.get("default")
                if default is None and len(value.args) >= 2:
                    default = value.args[1]
                text = default
            if isinstance(text, str) and "://" in text:
                url = parse_url(text)
                return ResolvedUrl(url, None, (qual,)) if url is not None else None
            return None
        return None

    def _settings_class(self, owner: cst.BaseExpression) -> cst.ClassDef | None:
        """The same-file class whose instance (or self) ``owner`` is."""
        if isinstance(owner, cst.Name):
            if not self._is_module_name(owner):
                return None
            cls = self.module_class(owner.value)
            if cls is not None:
                return cls
            value = self.module_value(owner.value)
            return self._instance_class(value) if value is not None else None
        return self._instance_class(owner)

    def _instance_class(self, expr: cst.BaseExpression) -> cst.ClassDef | None:
        if not isinstance(expr, cst.Call) or not isinstance(expr.func, cst.Name):
            return None
        if not self._is_module_name(expr.func):
            return None
        cls = self.module_class(expr.func.value)
        if cls is not None:
            return cls
        function = self.module_function(expr.func.value)
        if function is None:
            return None
        returned = _single_return(function)
        if isinstance(returned, cst.Call) and isinstance(returned.func, cst.Name):
            return self.module_class(returned.func.value)
        return None

    def _is_builtin(self, node: cst.BaseExpression, name: str) -> bool:
        """``node`` is the builtin ``name`` (not shadowed by an import, a module-level
        definition or a local)."""
        if not isinstance(node, cst.Name) or node.value != name:
            return False
        ctx = self.ctx
        if name in ctx.imports.bindings or name in ctx.imports.local_defs:
            return False
        return not any(name in scope.bindings or name in scope.params for scope in ctx.functions)

    def _qualname(self, node: cst.BaseExpression) -> str | None:
        if isinstance(node, cst.Name):
            for builtin in ("property",):
                if self._is_builtin(node, builtin):
                    return f"builtins.{builtin}"
        return self.ctx.qualname(node)

    def _class_field(self, cls: cst.ClassDef, name: str) -> cst.BaseExpression | None:
        """The default of field ``name`` in a settings class body (``NAME: str = "..."``,
        ``Field(default=...)``), or the returned value of a one-line property."""
        found: list[cst.BaseExpression | None] = []
        body = cls.body
        if not isinstance(body, cst.IndentedBlock):
            return None
        for stmt in body.body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                        if small.target.value == name:
                            found.append(self._field_default(small.value) if small.value is not None else None)
                    elif isinstance(small, cst.Assign):
                        for target in small.targets:
                            if isinstance(target.target, cst.Name) and target.target.value == name:
                                found.append(self._field_default(small.value))
            elif isinstance(stmt, cst.FunctionDef) and stmt.name.value == name:
                decorators = {self._qualname(d.decorator) for d in stmt.decorators}
                if decorators & _PROPERTY_DECORATORS and decorators <= _PROPERTY_DECORATORS:
                    found.append(_single_return(stmt))
                else:
                    found.append(None)
        return found[0] if len(found) == 1 else None

    def _field_default(self, value: cst.BaseExpression) -> cst.BaseExpression | None:
        """``Field(default=x)`` / ``Field(x)`` -> x; other calls (except getenv) -> the
        call itself, which resolves only if it is a getenv."""
        if isinstance(value, cst.Call) and self.ctx.callee(value) in _FIELD_FUNCTIONS:
            for arg in value.args:
                if arg.keyword is not None and arg.keyword.value == "default":
                    return arg.value
            if value.args and value.args[0].keyword is None and not value.args[0].star:
                return value.args[0].value
            return None
        return value


_FIELD_FUNCTIONS = frozenset({"pydantic.Field", "pydantic.fields.Field", "sqlmodel.Field"})


def _names_in_target(target: cst.BaseExpression) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        out: list[str] = []
        for element in target.elements:
            out.extend(_names_in_target(element.value))
        return out
    return []


def _getenv_default(call: cst.Call) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "default":
            return arg.value
    positional = [a for a in call.args if a.keyword is None and not a.star]
    return positional[1].value if len(positional) >= 2 else None


def _single_return(function: cst.FunctionDef) -> cst.BaseExpression | None:
    body = function.body
    if not isinstance(body, cst.IndentedBlock):
        return None
    statements = [s for s in body.body if not _is_docstring(s)]
    if len(statements) != 1 or not isinstance(statements[0], cst.SimpleStatementLine):
        return None
    small = statements[0].body
    if len(small) == 1 and isinstance(small[0], cst.Return):
        return small[0].value
    return None


def _is_docstring(stmt: cst.CSTNode) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


_PROPERTY_DECORATORS = frozenset(
    {"builtins.property", "functools.cached_property", "pydantic.computed_field"}
)
