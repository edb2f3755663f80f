"""FDB6xx: engine configuration and drivers."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import libcst as cst

from fastdb_lint.analysis.preconditions import last_names
from fastdb_lint.analysis.alembic import alembic_file
from fastdb_lint.analysis.sqlalchemy_api import ASYNC_MODULES
from fastdb_lint.analysis.syntax import dotted_cst, string_value
from fastdb_lint.analysis.urls import (
    ASYNC_ENGINE_CLASS,
    ASYNC_ENGINE_FACTORY,
    DATABASE_BACKENDS,
    ENGINE_FACTORIES,
    ResolvedUrl,
    UrlResolver,
    has_kwargs_splat,
    keyword,
    looks_like_database_url,
    parse_url,
    replace_scheme,
    scheme_literal,
    string_template,
    url_argument,
)
from fastdb_lint.diagnostics import FixAvailability, Severity
from fastdb_lint.fixes import FixBuilder, append_arg, remove_arg
from fastdb_lint.rules.base import Invalid, ProjectTerms, Rule, Valid
from fastdb_lint.source import SourceText

if TYPE_CHECKING:
    from fastdb_lint.analysis.shape import FileShape
    from fastdb_lint.context import FileContext

NULL_POOL = "sqlalchemy.pool.NullPool"
STATIC_POOL = "sqlalchemy.pool.StaticPool"
SYNC_ENGINE_FACTORIES = frozenset({"sqlalchemy.create_engine", "sqlmodel.create_engine"})
_ECHO_KEYWORDS = frozenset({"echo", "echo_pool"})


_ENGINE_FACTORY_NAMES = last_names(ENGINE_FACTORIES)
_SYNC_ENGINE_FACTORY_NAMES = last_names(SYNC_ENGINE_FACTORIES)
_ASYNC_ENGINE_FACTORY_NAMES = last_names((ASYNC_ENGINE_FACTORY,))
_ASYNC_ENGINE_CLASS_NAMES = last_names((ASYNC_ENGINE_CLASS,))
_NULL_POOL_NAMES = last_names((NULL_POOL,))


def _is_true(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Name) and node.value == "True"


class SyncDriverInAsyncEngine(Rule):
    """
    ## What it does
    Flags `create_async_engine(url)` (and `AsyncEngine(create_engine(url))`) whose URL
    names a blocking DB-API driver, or no driver at all: `postgresql://`,
    `postgres://`, `postgresql+psycopg2://`, `mysql://`, `mysql+pymysql://`,
    `mysql+mysqldb://`, `sqlite://`, `mssql+pyodbc://`, `oracle://`...

    The URL is followed to a string in the same file: a literal, a module constant,
    the default of `os.getenv(...)`/`os.environ.get(...)`, or the default of a field
    of a settings class defined in the file (`settings.DATABASE_URL`). Module
    constants imported from another project module are read from the project index.
    URLs are parsed with SQLAlchemy's `make_url`; templated parts (`{...}`, `${...}`)
    are tolerated.

    ## Why is this bad?
    An async engine needs an async driver (`postgresql+asyncpg`, `postgresql+psycopg`,
    `mysql+aiomysql`, `mysql+asyncmy`, `sqlite+aiosqlite`). With a sync driver
    SQLAlchemy refuses to create the engine (`InvalidRequestError: The asyncio
    extension requires an async driver`), or, with a URL read from the environment in
    production, the application fails only once deployed.

    ## Example
    ```python
    engine = create_async_engine("postgresql://app:{password}@db/app")
    ```

    ## Use instead
    ```python
    engine = create_async_engine("postgresql+asyncpg://app:{password}@db/app")
    ```

    ## Fix safety
    Safe: the fix rewrites the scheme of the string literal to the async driver of
    the same database (`postgresql+asyncpg`, `mysql+aiomysql`, `sqlite+aiosqlite`).
    It is offered only when the literal is used by this engine alone (a module
    constant or settings field also read elsewhere, e.g. by a sync engine, is left
    alone), and not for PostgreSQL URLs with query options (psycopg2 options such as
    `sslmode` mean something else to asyncpg). URLs built at run time (environment
    variables without a default, settings from another module, `.replace(...)`) are
    not checked.
    """

    code = "FDB601"
    name = "sync-driver-in-async-engine"
    summary = "Async engine created with a sync database driver"
    fix = FixAvailability.SAFE
    triggers = ("create_async_engine", "AsyncEngine")
    valid = [
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            'engine = create_async_engine("postgresql+asyncpg://app@db/app")\n'
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            'engine = create_async_engine("postgresql+psycopg://app@db/app")\n'
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            'engine = create_async_engine("mysql+aiomysql://app@db/app")\n'
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            'engine = create_async_engine("mysql+asyncmy://app@db/app")\n'
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            'engine = create_async_engine("sqlite+aiosqlite:///./app.db")\n'
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            'engine = create_async_engine(f"postgresql+asyncpg://{user}:{password}@{host}:{port}/{db}")\n'
        ),
        Valid(
            "import os\n"
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            'URL = os.getenv("DATABASE_URL", "postgresql+asyncpg://${DB_USER}:${DB_PASS}@${DB_HOST}:${DB_PORT}/app")\n'
            "engine = create_async_engine(URL)\n"
        ),
        Valid(
            "import os\n"
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            'engine = create_async_engine(os.environ["DATABASE_URL"])\n'
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "from app.config import settings\n"
            'engine = create_async_engine(settings.DATABASE_URL.replace("postgresql://", "postgresql+asyncpg://"))\n'
        ),
        Valid(
            "from sqlalchemy import create_engine\n"
            'engine = create_engine("postgresql://app@db/app")\n'
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            'engine = create_async_engine("postgresql://app@db/app", echo=False)\n',
            fixed="from sqlalchemy.ext.asyncio import create_async_engine\n"
            'engine = create_async_engine("postgresql+asyncpg://app@db/app", echo=False)\n',
            line=2,
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            'DATABASE_URL = "postgresql+psycopg2://app@db/app"\n'
            "engine = create_async_engine(DATABASE_URL)\n",
            fixed="from sqlalchemy.ext.asyncio import create_async_engine\n"
            'DATABASE_URL = "postgresql+asyncpg://app@db/app"\n'
            "engine = create_async_engine(DATABASE_URL)\n",
            line=3,
        ),
        Invalid(
            "import os\n"
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            'engine = create_async_engine(os.getenv("DATABASE_URL", "sqlite:///./app.db"))\n',
            fixed="import os\n"
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            'engine = create_async_engine(os.getenv("DATABASE_URL", "sqlite+aiosqlite:///./app.db"))\n',
        ),
        Invalid(
            "from pydantic_settings import BaseSettings\n"
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "class Settings(BaseSettings):\n"
            '    database_url: str = "mysql+pymysql://app@db/app"\n'
            "settings = Settings()\n"
            "engine = create_async_engine(settings.database_url)\n",
            fixed="from pydantic_settings import BaseSettings\n"
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "class Settings(BaseSettings):\n"
            '    database_url: str = "mysql+aiomysql://app@db/app"\n'
            "settings = Settings()\n"
            "engine = create_async_engine(settings.database_url)\n",
            line=6,
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            'engine = create_async_engine(f"postgres://{user}:{password}@{host}:{port}/{db}")\n',
            fixed="from sqlalchemy.ext.asyncio import create_async_engine\n"
            'engine = create_async_engine(f"postgresql+asyncpg://{user}:{password}@{host}:{port}/{db}")\n',
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            'engine = create_async_engine("mssql+pyodbc://app@dsn")\n'
        ),
        Invalid(
            "from sqlalchemy import create_engine\n"
            "from sqlalchemy.ext.asyncio import AsyncEngine\n"
            'engine = AsyncEngine(create_engine("sqlite:///./app.db"))\n',
            fixed="from sqlalchemy import create_engine\n"
            "from sqlalchemy.ext.asyncio import AsyncEngine\n"
            'engine = AsyncEngine(create_engine("sqlite+aiosqlite:///./app.db"))\n',
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        calls = shape.calls
        return not _ASYNC_ENGINE_FACTORY_NAMES.isdisjoint(calls) or (
            not _ASYNC_ENGINE_CLASS_NAMES.isdisjoint(calls) and not _SYNC_ENGINE_FACTORY_NAMES.isdisjoint(calls)
        )

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._resolver = UrlResolver(ctx)
        self._found: list[tuple[cst.Call, ResolvedUrl]] = []

    def visit_Call(self, node: cst.Call) -> None:
        callee = self.ctx.callee(node)
        if callee == ASYNC_ENGINE_FACTORY:
            engine_call = node
        elif callee == ASYNC_ENGINE_CLASS and node.args and isinstance(node.args[0].value, cst.Call):
            inner = node.args[0].value
            if self.ctx.callee(inner) not in SYNC_ENGINE_FACTORIES:
                return
            engine_call = inner
        else:
            return
        resolved = self._resolver.resolve(url_argument(engine_call))
        if resolved is not None and resolved.url.names_sync_driver:
            self._found.append((engine_call, resolved))

    def finish(self) -> None:
        for call, resolved in self._found:
            url = resolved.url
            target = url.async_drivername
            described = f"the sync driver `{url.drivername}`" if url.driver else f"`{url.drivername}://` (no async driver)"
            message = f"Async engine created with {described}: use an async driver"
            if target is not None:
                message += f" (`{target}`)"
            self.ctx.report(call, message, self._fix(resolved, target))

    def _fix(self, resolved: ResolvedUrl, target: str | None) -> FixBuilder | None:
        url = resolved.url
        if target is None or resolved.expression is None:
            return None
        if url.backend in ("postgresql", "postgres") and url.query:
            return None
        if not self._used_once(resolved):
            return None
        literal = scheme_literal(resolved.expression)
        new = replace_scheme(literal, url.drivername, target) if literal is not None else None
        if new is None:
            return None
        return self.ctx.fix(f"Use `{target}`").replace(literal, new)

    def _used_once(self, resolved: ResolvedUrl) -> bool:
        """The literal serves only this engine: every name on the way is defined once
        and read once in this file, and no other project module imports from here
        names it passed through (or anything at all, for settings fields)."""
        ctx = self.ctx
        for name in (*resolved.via_names, *resolved.via_attributes):
            if ctx.values.file_occurrences(name) != 2:
                return False
        if not resolved.via_names and not resolved.via_attributes:
            return True
        prefix = f"{ctx.module_name}." if ctx.module_name else ""
        wanted = {prefix + n for n in resolved.via_names}
        for facts in ctx.project.files.values():
            if facts.path == ctx.path:
                continue
            for target in facts.imports.bindings.values():
                if target in wanted or (resolved.via_attributes and prefix and target.startswith(prefix)):
                    return False
                if resolved.via_attributes and target == ctx.module_name:
                    return False
        return True


class SyncDriverImportInAsyncApp(Rule):
    """
    ## What it does
    Flags `import psycopg2` / `pymysql` / `MySQLdb` / `cx_Oracle` (and their `from`
    forms and submodules) in a module that defines async route handlers or imports
    `sqlalchemy.ext.asyncio`.

    ## Why is this bad?
    These drivers block: every query they run inside the event loop stalls all other
    requests. An async application talks to the database through an async driver
    (`asyncpg`, `psycopg` 3, `aiomysql`, `asyncmy`, `oracledb`).

    ## Example
    ```python
    import psycopg2
    from sqlalchemy.ext.asyncio import create_async_engine
    ```

    ## Use instead
    ```python
    import asyncpg
    from sqlalchemy.ext.asyncio import create_async_engine
    ```

    ## Fix safety
    No fix: replacing a driver changes the code that uses it. Alembic migrations and
    `env.py`, and test files are not checked; neither are modules that are not async
    themselves (a sync helper module next to an async app).
    """

    code = "FDB602"
    name = "sync-driver-import-in-async-app"
    summary = "Sync database driver imported in an async application module"
    triggers = ("psycopg2", "pymysql", "MySQLdb", "cx_Oracle")
    skip_test_files = True
    valid = [
        Valid("import psycopg2\n\ndef connect():\n    return psycopg2.connect('')\n"),
        Valid(
            "import psycopg2\n"
            "import sqlalchemy.ext.asyncio\n"
            "from alembic import op\n"
            'revision = "0002"\n'
            'down_revision = "0001"\n'
            "def upgrade():\n"
            "    op.execute('select 1')\n"
            "def downgrade():\n"
            "    op.execute('select 1')\n",
            path="migrations/versions/0002_data.py",
        ),
        Valid(
            "import psycopg2\n"
            "from sqlalchemy.ext.asyncio import create_async_engine\n",
            path="tests/test_db.py",
        ),
        Valid(
            "import psycopg2\n"
            "from fastapi import APIRouter\n"
            "router = APIRouter()\n"
            '@router.get("/items")\n'
            "def items():\n"
            "    return []\n"
        ),
    ]
    invalid = [
        Invalid(
            "import psycopg2\n"
            "from sqlalchemy.ext.asyncio import create_async_engine\n",
            line=1,
        ),
        Invalid(
            "from pymysql.cursors import DictCursor\n"
            "from fastapi import APIRouter\n"
            "router = APIRouter()\n"
            '@router.get("/items")\n'
            "async def items():\n"
            "    return []\n",
            line=1,
        ),
        Invalid(
            "import MySQLdb, cx_Oracle\n"
            "import sqlalchemy.ext.asyncio as sa_async\n"
        ),
    ]

    _DRIVERS = frozenset({"psycopg2", "pymysql", "MySQLdb", "cx_Oracle"})

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        paths = shape.import_paths
        if not any(path.partition(".")[0] in cls._DRIVERS for path in paths):
            return False
        # An async route handler is an `async def`.
        return shape.has_async or any(path.startswith(ASYNC_MODULES) for path in paths)

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._imports: list[cst.CSTNode] = []
        self._async = False

    def visit_Import(self, node: cst.Import) -> None:
        modules = [dotted_cst(alias.name) or "" for alias in node.names]
        if any(m.split(".", 1)[0] in self._DRIVERS for m in modules):
            self._imports.append(node)
        if any(m.startswith(ASYNC_MODULES) for m in modules):
            self._async = True

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if node.relative or node.module is None:
            return
        module = dotted_cst(node.module) or ""
        if module.split(".", 1)[0] in self._DRIVERS:
            self._imports.append(node)
        names = [] if isinstance(node.names, cst.ImportStar) else [dotted_cst(a.name) or "" for a in node.names]
        if module.startswith(ASYNC_MODULES) or any(f"{module}.{n}".startswith(ASYNC_MODULES) for n in names):
            self._async = True

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        scope = self.ctx.function
        if scope is not None and scope.is_async and scope.is_route:
            self._async = True

    def finish(self) -> None:
        ctx = self.ctx
        if not self._imports or not self._async:
            return
        kind = alembic_file(ctx)
        if kind.is_migration or kind.is_env:
            return
        for node in self._imports:
            ctx.report(node, "Sync database driver imported in an async application: it blocks the event loop")


class EchoEnabled(Rule):
    """
    ## What it does
    Flags `echo=True`, `echo="debug"` and `echo_pool=True`/`"debug"` written as
    literals in `create_engine(...)`/`create_async_engine(...)`, outside test files.

    ## Why is this bad?
    Echo logs every statement with its parameters: noise and cost in production, and
    personal data or secrets in the logs. Logging belongs to configuration
    (`echo=settings.DEBUG`, or the `sqlalchemy.engine` logger), not to a literal.

    ## Example
    ```python
    engine = create_async_engine(url, echo=True)
    ```

    ## Use instead
    ```python
    engine = create_async_engine(url, echo=settings.DEBUG)
    ```

    ## Fix safety
    Safe: the fix removes the keyword (the default is no echo); only the log output
    changes. Non-literal values are not flagged.
    """

    code = "FDB603"
    name = "echo-enabled"
    summary = "Engine created with statement echo enabled"
    fix = FixAvailability.SAFE
    triggers = ("echo",)
    skip_test_files = True
    valid = [
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine(url, echo=settings.DEBUG)\n"
        ),
        Valid("from sqlalchemy import create_engine\nengine = create_engine(url, echo=False)\n"),
        Valid(
            "from sqlalchemy import create_engine\nengine = create_engine(url, echo=True)\n",
            path="tests/conftest.py",
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine(url, echo=True)\n",
            fixed="from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine(url)\n",
            line=2,
        ),
        Invalid(
            "from sqlalchemy import create_engine\n"
            "engine = create_engine(\n"
            "    url,\n"
            '    echo="debug",\n'
            "    pool_pre_ping=True,\n"
            ")\n",
            fixed="from sqlalchemy import create_engine\n"
            "engine = create_engine(\n"
            "    url,\n"
            "    pool_pre_ping=True,\n"
            ")\n",
            line=4,
        ),
        Invalid(
            "from sqlmodel import create_engine\n"
            "engine = create_engine(url, echo=True, echo_pool=True)\n",
            fixed="from sqlmodel import create_engine\nengine = create_engine(url)\n",
            count=2,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return not _ECHO_KEYWORDS.isdisjoint(shape.keywords) and not _ENGINE_FACTORY_NAMES.isdisjoint(shape.calls)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        if ctx.callee(node) not in ENGINE_FACTORIES:
            return
        for arg in node.args:
            if arg.keyword is None or arg.keyword.value not in _ECHO_KEYWORDS:
                continue
            value = arg.value
            enabled = _is_true(value) or (
                isinstance(value, cst.SimpleString) and string_value(value) == "debug"
            )
            if enabled:
                fix = ctx.fix(f"Remove `{arg.keyword.value}=`").remove_keyword(node, arg.keyword.value)
                ctx.report(arg, f"`{arg.keyword.value}` enabled by a literal: statements are logged in production", fix)


class MissingPoolPrePing(Rule):
    """
    ## What it does
    Flags `create_engine(...)`/`create_async_engine(...)` for a server database that
    do not pass `pool_pre_ping=True`. A URL the analysis cannot resolve (settings,
    environment) counts as a server database.

    ## Why is this bad?
    Pooled connections die silently (database restarts, failovers, idle timeouts in
    proxies and firewalls). Without a pre-ping the next request that checks one out
    fails with `OperationalError`/`ConnectionDoesNotExistError`; with it, the pool
    tests the connection and transparently replaces a dead one.

    ## Example
    ```python
    engine = create_async_engine(settings.DATABASE_URL, pool_size=10)
    ```

    ## Use instead
    ```python
    engine = create_async_engine(settings.DATABASE_URL, pool_size=10, pool_pre_ping=True)
    ```

    ## Fix safety
    Safe: the fix adds `pool_pre_ping=True` (or replaces `False`), which costs one
    round trip per checkout and otherwise changes nothing. Not flagged: SQLite URLs,
    `poolclass=NullPool`/`StaticPool` engines, pool classes the analysis cannot
    resolve, a ready-made `pool=`, non-literal `pool_pre_ping` values, calls with a
    `**kwargs` splat, test files, and the short-lived engines of Alembic's `env.py`
    and migrations.
    """

    code = "FDB604"
    name = "missing-pool-pre-ping"
    summary = "Server database engine without `pool_pre_ping=True`"
    fix = FixAvailability.SAFE
    triggers = ("create_engine", "create_async_engine")
    skip_test_files = True
    valid = [
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine(settings.DATABASE_URL, pool_pre_ping=True)\n"
        ),
        Valid(
            "from sqlalchemy import create_engine\n"
            'engine = create_engine("sqlite:///./app.db", connect_args={"check_same_thread": False})\n'
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            'SQLITE_URL = "sqlite+aiosqlite:///./app.db"\n'
            "engine = create_async_engine(SQLITE_URL)\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "from sqlalchemy.pool import NullPool\n"
            "engine = create_async_engine(settings.DATABASE_URL, poolclass=NullPool)\n"
        ),
        Valid(
            "from sqlalchemy import StaticPool, create_engine\n"
            "engine = create_engine(url, poolclass=StaticPool)\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine(settings.DATABASE_URL)\n",
            path="tests/conftest.py",
        ),
        Valid(
            "from alembic import context\n"
            "from sqlalchemy import create_engine\n"
            "def run_migrations_online():\n"
            '    connectable = create_engine(config.get_main_option("sqlalchemy.url"))\n'
            "    with connectable.connect() as connection:\n"
            "        context.configure(connection=connection, target_metadata=target_metadata)\n",
            path="migrations/env.py",
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine(settings.DATABASE_URL, **engine_options)\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine(settings.DATABASE_URL, pool_size=10)\n",
            fixed="from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine(settings.DATABASE_URL, pool_size=10, pool_pre_ping=True)\n",
            line=2,
        ),
        Invalid(
            "from sqlalchemy import create_engine\n"
            'engine = create_engine("postgresql+psycopg2://app@db/app")\n',
            fixed="from sqlalchemy import create_engine\n"
            'engine = create_engine("postgresql+psycopg2://app@db/app", pool_pre_ping=True)\n',
        ),
        Invalid(
            "import sqlalchemy as sa\n"
            "engine = sa.create_engine(\n"
            "    DATABASE_URL,\n"
            "    pool_pre_ping=False,\n"
            ")\n",
            fixed="import sqlalchemy as sa\n"
            "engine = sa.create_engine(\n"
            "    DATABASE_URL,\n"
            "    pool_pre_ping=True,\n"
            ")\n",
        ),
    ]

    _NO_PING_POOLS = frozenset({NULL_POOL, STATIC_POOL})
    _EMBEDDED = frozenset({"sqlite", "duckdb"})

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return not _ENGINE_FACTORY_NAMES.isdisjoint(shape.calls)

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._resolver = UrlResolver(ctx)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        if ctx.callee(node) not in ENGINE_FACTORIES or has_kwargs_splat(node):
            return
        ping = keyword(node, "pool_pre_ping")
        if ping is not None and not (isinstance(ping.value, cst.Name) and ping.value.value == "False"):
            return
        if keyword(node, "pool") is not None:
            return
        poolclass = keyword(node, "poolclass")
        if poolclass is not None:
            pool = ctx.qualname(poolclass.value)
            if pool is None or pool in self._NO_PING_POOLS:
                return
        kind = alembic_file(ctx)
        if kind.is_env or kind.is_migration:
            return
        resolved = self._resolver.resolve(url_argument(node))
        if resolved is not None and not resolved.url.scheme_is_templated and resolved.url.backend in self._EMBEDDED:
            return
        fix = ctx.fix("Add `pool_pre_ping=True`").set_keyword(node, "pool_pre_ping", "True")
        ctx.report(node, "Engine without `pool_pre_ping=True`: dead pooled connections fail the next request", fix)


class HardcodedDatabaseCredentials(Rule):
    """
    ## What it does
    Flags a database URL literal that carries a real password
    (`postgresql://app:s3cr3t@db/app`), in Python code or as `sqlalchemy.url` in
    `alembic.ini`.

    ## Why is this bad?
    Credentials in source end up in version control, images and logs, and are shared
    by every environment. They belong in the environment or a secret store; the code
    reads them (`os.environ["DATABASE_URL"]`, a settings class, `%(DB_PASSWORD)s`
    interpolation in `alembic.ini` filled from `env.py`).

    ## Example
    ```python
    DATABASE_URL = "postgresql+asyncpg://app:s3cr3t@db:5432/app"
    ```

    ## Use instead
    ```python
    DATABASE_URL = os.environ["DATABASE_URL"]
    ```

    ## Fix safety
    No fix: where the secret should come from is a deployment decision. Not flagged:
    placeholders (`{...}`, `${...}`, `%(...)s`, `<password>`, `***`, `password`,
    `pass`, `changeme`), Alembic's template URL `driver://user:pass@localhost/dbname`,
    URLs without a password, and test files.
    """

    code = "FDB605"
    name = "hardcoded-database-credentials"
    summary = "Database URL with a hard-coded password"
    severity = Severity.SECURITY
    triggers = ("postgres", "mysql", "mariadb", "mssql", "oracle", "cockroachdb", "redshift", "snowflake", "sqlalchemy.url")
    file_patterns = ("alembic.ini",)
    skip_test_files = True
    valid = [
        Valid('DATABASE_URL = "postgresql+asyncpg://{user}:{password}@{host}/app"\n'),
        Valid('DATABASE_URL = f"postgresql+asyncpg://{user}:{password}@{host}/app"\n'),
        Valid('DATABASE_URL = "postgresql://${DB_USER}:${DB_PASSWORD}@db/app"\n'),
        Valid('DATABASE_URL = "postgresql://app:%(password)s@db/app"\n'),
        Valid('DATABASE_URL = "postgresql://app:<password>@db/app"\n'),
        Valid('DATABASE_URL = "postgresql://app:***@db/app"\n'),
        Valid('DATABASE_URL = "postgresql://user:password@localhost/app"\n'),
        Valid('DATABASE_URL = "mysql://user:pass@localhost/app"\n'),
        Valid('DATABASE_URL = "postgresql://app:changeme@db/app"\n'),
        Valid('URL = "driver://user:pass@localhost/dbname"\n'),
        Valid('DATABASE_URL = "postgresql+asyncpg://app@db/app"\n'),
        Valid('DATABASE_URL = "postgresql://app:s3cr3t@localhost/test"\n', path="tests/conftest.py"),
        Valid(
            "[alembic]\nscript_location = migrations\nsqlalchemy.url = driver://user:pass@localhost/dbname\n",
            path="alembic.ini",
        ),
        Valid(
            "[alembic]\nsqlalchemy.url = postgresql://%(DB_USER)s:%(DB_PASS)s@%(DB_HOST)s/app\n",
            path="alembic.ini",
        ),
        Valid(
            "[alembic]\n# noqa: FDB605\nsqlalchemy.url = postgresql://app:s3cr3t@db/app\n",
            path="alembic.ini",
        ),
    ]
    invalid = [
        Invalid('DATABASE_URL = "postgresql+asyncpg://app:s3cr3t@db:5432/app"\n', line=1),
        Invalid(
            "from sqlalchemy import create_engine\n"
            'engine = create_engine(f"mysql+pymysql://root:hunter2@{host}/shop")\n',
            line=2,
        ),
        Invalid(
            "[alembic]\nscript_location = migrations\nsqlalchemy.url = postgresql://app:s3cr3t@db/app\n",
            path="alembic.ini",
            line=3,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # A reported literal starts with `<backend>[+driver]://`; joined to the literals
        # around it, its scheme ends the run of scheme characters before that `://`. Its
        # password has no template: it sits between a `:` and an `@` of literal text.
        return any(backend in scheme for scheme in shape.credential_url_schemes for backend in DATABASE_BACKENDS)

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        self._check(node)

    def visit_FormattedString(self, node: cst.FormattedString) -> None:
        self._check(node)

    def _check(self, node: cst.SimpleString | cst.FormattedString) -> None:
        text = string_template(node)
        if text is None or not looks_like_database_url(text):
            return
        url = parse_url(text)
        if url is not None and url.is_database and url.has_real_password:
            self.ctx.report(node, self._message(url.backend))

    @staticmethod
    def _message(backend: str) -> str:
        return f"Hard-coded password in a `{backend}` database URL: read credentials from the environment"

    _INI_URL = re.compile(r"^(\s*sqlalchemy\.url\s*[=:]\s*)(\S.*?)\s*$")

    @classmethod
    def check_text(cls, relpath: str, source: SourceText) -> list[tuple[int, int, int, str]]:
        """``sqlalchemy.url`` entries of an ``alembic.ini`` (row, 1-based columns, message)."""
        found: list[tuple[int, int, int, str]] = []
        for row, line in enumerate(source.lines, start=1):
            match = cls._INI_URL.match(line)
            if match is None:
                continue
            raw = match.group(2)
            # ConfigParser interpolation: `%%` is a literal percent sign.
            value = raw.replace("%%", "%")
            if not looks_like_database_url(value):
                continue
            url = parse_url(value)
            if url is not None and url.is_database and url.has_real_password:
                start = match.start(2) + 1
                found.append((row, start, start + len(raw), cls._message(url.backend)))
        return found


class SqliteMemoryWithoutStaticPool(Rule):
    """
    ## What it does
    Flags an in-memory SQLite engine (`sqlite://`, `sqlite:///:memory:`,
    `mode=memory`) that can hand out more than one connection: a sync (pysqlite)
    engine without `poolclass=StaticPool`, or any in-memory engine with an explicit
    pool other than `StaticPool` (e.g. `NullPool`).

    ## Why is this bad?
    Every SQLite connection to `:memory:` opens its own, empty database. The default
    `SingletonThreadPool` of a sync engine gives each thread its own connection, and
    FastAPI runs sync endpoints and dependencies in a thread pool: tables created at
    startup are missing in the request (`no such table`). `NullPool` is worse: every
    checkout is a new empty database. `StaticPool` shares one connection.

    ## Example
    ```python
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False})
    ```

    ## Use instead
    ```python
    engine = create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
    ```

    ## Fix safety
    Safe: the fix sets `poolclass=StaticPool` (adding or replacing the keyword) and
    imports `StaticPool` from `sqlalchemy.pool`; queue sizing arguments
    (`pool_size`, `max_overflow`, `pool_timeout`, `pool_use_lifo`), which `StaticPool`
    rejects with a `TypeError`, are removed with it. `sqlite+aiosqlite` in-memory engines
    with the default pool (already a `StaticPool`), shared-cache URIs
    (`cache=shared`), URLs the analysis cannot resolve and pool classes it cannot
    resolve are not flagged.
    """

    code = "FDB606"
    name = "sqlite-memory-without-static-pool"
    summary = "In-memory SQLite engine without `StaticPool`"
    fix = FixAvailability.SAFE
    triggers = ("create_engine", "create_async_engine")
    valid = [
        Valid(
            "from sqlalchemy import create_engine\n"
            "from sqlalchemy.pool import StaticPool\n"
            'engine = create_engine("sqlite://", poolclass=StaticPool)\n'
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            'engine = create_async_engine("sqlite+aiosqlite:///:memory:")\n'
        ),
        Valid(
            "from sqlalchemy import create_engine\n"
            'engine = create_engine("sqlite:///file:memdb1?mode=memory&cache=shared&uri=true")\n'
        ),
        Valid('from sqlalchemy import create_engine\nengine = create_engine("sqlite:///./app.db")\n'),
        Valid("from sqlalchemy import create_engine\nengine = create_engine(settings.DATABASE_URL)\n"),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy import create_engine\n"
            'engine = create_engine("sqlite://", connect_args={"check_same_thread": False})\n',
            fixed="from sqlalchemy import create_engine\n"
            "from sqlalchemy.pool import StaticPool\n"
            'engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)\n',
            line=2,
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "from sqlalchemy.pool import NullPool\n"
            'TEST_URL = "sqlite+aiosqlite:///:memory:"\n'
            "engine = create_async_engine(TEST_URL, poolclass=NullPool)\n",
            fixed="from sqlalchemy.ext.asyncio import create_async_engine\n"
            "from sqlalchemy.pool import NullPool, StaticPool\n"
            'TEST_URL = "sqlite+aiosqlite:///:memory:"\n'
            "engine = create_async_engine(TEST_URL, poolclass=StaticPool)\n",
            line=4,
        ),
        Invalid(
            "from sqlmodel import create_engine, SQLModel\n"
            'engine = create_engine("sqlite:///:memory:")\n',
            fixed="from sqlmodel import create_engine, SQLModel\n"
            "from sqlalchemy.pool import StaticPool\n"
            'engine = create_engine("sqlite:///:memory:", poolclass=StaticPool)\n',
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # The URL may be a constant of another module: no condition on the file's strings.
        return not _ENGINE_FACTORY_NAMES.isdisjoint(shape.calls)

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._resolver = UrlResolver(ctx)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        callee = ctx.callee(node)
        if callee not in ENGINE_FACTORIES or has_kwargs_splat(node):
            return
        resolved = self._resolver.resolve(url_argument(node))
        if resolved is None:
            return
        url = resolved.url
        if not url.is_memory_sqlite or url.is_shared_cache:
            return
        poolclass = keyword(node, "poolclass")
        if poolclass is not None:
            pool = ctx.qualname(poolclass.value)
            if pool is None or pool == STATIC_POOL:
                return
        else:
            sync_engine = callee in SYNC_ENGINE_FACTORIES and url.driver in (None, "pysqlite")
            if not sync_engine:
                return
        fix = ctx.fix("Set `poolclass=StaticPool`").replace(node, self._with_static_pool(node))
        fix.add_import("sqlalchemy.pool", "StaticPool")
        ctx.report(node, "In-memory SQLite engine without `StaticPool`: each connection sees its own empty database", fix)

    # Queue sizing arguments that `StaticPool` does not accept (`TypeError` if left).
    _QUEUE_ARGS = ("pool_size", "max_overflow", "pool_timeout", "pool_use_lifo")

    def _with_static_pool(self, call: cst.Call) -> cst.Call:
        new = call
        for name in self._QUEUE_ARGS:
            index = next((i for i, a in enumerate(new.args) if a.keyword is not None and a.keyword.value == name), None)
            if index is not None:
                new = new.with_changes(args=remove_arg(new, index))
        args = list(new.args)
        for index, arg in enumerate(args):
            if arg.keyword is not None and arg.keyword.value == "poolclass":
                args[index] = arg.with_changes(value=cst.Name("StaticPool"))
                return new.with_changes(args=args)
        static = cst.Arg(
            value=cst.Name("StaticPool"),
            keyword=cst.Name("poolclass"),
            equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")),
        )
        return new.with_changes(args=append_arg(new, static))


class PoolArgsWithNullPool(Rule):
    """
    ## What it does
    Flags engines created with `poolclass=NullPool` together with `pool_size`,
    `max_overflow` or `pool_timeout` (one finding per call).

    ## Why is this bad?
    `NullPool` keeps no connections, so it takes no sizing arguments:
    `create_engine` raises `TypeError: Invalid argument(s) 'pool_size' sent to
    create_engine()` at startup. The arguments usually survive from a `QueuePool`
    configuration and suggest pooling that does not happen.

    ## Example
    ```python
    engine = create_async_engine(url, poolclass=NullPool, pool_size=5, max_overflow=10)
    ```

    ## Use instead
    ```python
    engine = create_async_engine(url, poolclass=NullPool)
    ```

    ## Fix safety
    Safe: the arguments cannot take effect (the call fails with them), and the fix
    removes them.
    """

    code = "FDB607"
    name = "pool-args-with-nullpool"
    summary = "Pool sizing arguments given with `poolclass=NullPool`"
    fix = FixAvailability.SAFE
    triggers = ("NullPool",)
    valid = [
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "from sqlalchemy.pool import NullPool\n"
            "engine = create_async_engine(url, poolclass=NullPool)\n"
        ),
        Valid(
            "from sqlalchemy import create_engine\n"
            "from sqlalchemy.pool import QueuePool\n"
            "engine = create_engine(url, poolclass=QueuePool, pool_size=5, max_overflow=10)\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "from sqlalchemy.pool import NullPool\n"
            "engine = create_async_engine(url, poolclass=NullPool, pool_size=5, max_overflow=10, pool_timeout=30)\n",
            fixed="from sqlalchemy.ext.asyncio import create_async_engine\n"
            "from sqlalchemy.pool import NullPool\n"
            "engine = create_async_engine(url, poolclass=NullPool)\n",
            line=3,
        ),
        Invalid(
            "import sqlalchemy as sa\n"
            "engine = sa.create_engine(\n"
            "    url,\n"
            "    pool_size=5,\n"
            "    poolclass=sa.pool.NullPool,\n"
            ")\n",
            fixed="import sqlalchemy as sa\n"
            "engine = sa.create_engine(\n"
            "    url,\n"
            "    poolclass=sa.pool.NullPool,\n"
            ")\n",
            line=2,
        ),
    ]

    _POOL_ARGS = ("pool_size", "max_overflow", "pool_timeout")

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        keywords = shape.keywords
        return (
            "poolclass" in keywords
            and not keywords.isdisjoint(cls._POOL_ARGS)
            and not _NULL_POOL_NAMES.isdisjoint(shape.names)
            and not _ENGINE_FACTORY_NAMES.isdisjoint(shape.calls)
        )

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        if ctx.callee(node) not in ENGINE_FACTORIES:
            return
        poolclass = keyword(node, "poolclass")
        if poolclass is None or ctx.qualname(poolclass.value) != NULL_POOL:
            return
        present = [name for name in self._POOL_ARGS if keyword(node, name) is not None]
        if not present:
            return
        listed = ", ".join(f"`{n}`" for n in present)
        fix = ctx.fix(f"Remove {listed}").remove_keywords(node, present)
        ctx.report(node, f"{listed} given with `poolclass=NullPool`: `TypeError` at engine creation", fix)


class DeprecatedFutureFlag(Rule):
    """
    ## What it does
    Flags `future=True` passed to `create_engine`, `create_async_engine`,
    `sessionmaker`, `Session` (and their async and SQLModel counterparts).

    ## Why is this bad?
    The flag was the opt-in to 2.0 behaviour during the 1.4 transition. In 2.0 the
    behaviour is the only one and the flag a no-op kept for compatibility: it only
    suggests the code still targets 1.4.

    ## Example
    ```python
    engine = create_engine(url, future=True)
    ```

    ## Use instead
    ```python
    engine = create_engine(url)
    ```

    ## Fix safety
    Safe: the fix removes the keyword, which has no effect in SQLAlchemy 2.x.
    """

    code = "FDB608"
    name = "deprecated-future-flag"
    summary = "`future=True` is a no-op in SQLAlchemy 2.0"
    fix = FixAvailability.SAFE
    triggers = ("future",)
    valid = [
        Valid("from sqlalchemy import create_engine\nengine = create_engine(url)\n"),
        Valid("def build(factory):\n    return factory(url, future=True)\n"),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy import create_engine\n"
            "engine = create_engine(url, future=True, pool_pre_ping=True)\n",
            fixed="from sqlalchemy import create_engine\n"
            "engine = create_engine(url, pool_pre_ping=True)\n",
            line=2,
        ),
        Invalid(
            "from sqlalchemy.orm import sessionmaker\n"
            "SessionLocal = sessionmaker(\n"
            "    bind=engine,\n"
            "    autoflush=False,\n"
            "    future=True,\n"
            ")\n",
            fixed="from sqlalchemy.orm import sessionmaker\n"
            "SessionLocal = sessionmaker(\n"
            "    bind=engine,\n"
            "    autoflush=False,\n"
            ")\n",
            line=5,
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "from sqlalchemy.orm import Session\n"
            "engine = create_async_engine(url, future=True)\n"
            "def run():\n"
            "    with Session(engine, future=True) as session:\n"
            "        pass\n",
            fixed="from sqlalchemy.ext.asyncio import create_async_engine\n"
            "from sqlalchemy.orm import Session\n"
            "engine = create_async_engine(url)\n"
            "def run():\n"
            "    with Session(engine) as session:\n"
            "        pass\n",
            count=2,
        ),
    ]

    _TARGETS = ENGINE_FACTORIES | {
        "sqlalchemy.orm.sessionmaker",
        "sqlalchemy.orm.Session",
        "sqlmodel.Session",
        "sqlalchemy.ext.asyncio.async_sessionmaker",
        "sqlalchemy.ext.asyncio.AsyncSession",
        "sqlmodel.ext.asyncio.AsyncSession",
    }
    _TARGET_NAMES = last_names(_TARGETS)

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return "future" in shape.keywords and not cls._TARGET_NAMES.isdisjoint(shape.calls)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        flag = keyword(node, "future")
        if flag is None or not _is_true(flag.value) or ctx.callee(node) not in self._TARGETS:
            return
        fix = ctx.fix("Remove `future=True`").remove_keyword(node, "future")
        ctx.report(flag, "`future=True` is a no-op in SQLAlchemy 2.0", fix)
