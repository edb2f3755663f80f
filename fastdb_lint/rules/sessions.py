"""FDB1xx: session and engine lifecycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import libcst as cst

from fastdb_lint.analysis.fastapi import decorator_qualname, is_app_or_router, is_cached_function, is_lifespan
from fastdb_lint.analysis.sessions import product_of
from fastdb_lint.analysis.sqlalchemy_api import CLASS_KINDS, SESSION_CLASSES, DbKind
from fastdb_lint.analysis.syntax import dotted_cst, string_value
from fastdb_lint.rules.base import Invalid, ProjectTerms, Rule, Valid
from fastdb_lint.analysis.preconditions import last_names, SESSION_SOURCES, may_see_db_object, typed_names

if TYPE_CHECKING:
    from fastdb_lint.analysis.shape import FileShape
    from fastdb_lint.context import FileContext, FunctionScope

ENGINE_FACTORIES = frozenset(
    {"sqlalchemy.create_engine", "sqlmodel.create_engine", "sqlalchemy.ext.asyncio.create_async_engine"}
)
SESSION_FACTORIES = frozenset({"sqlalchemy.orm.sessionmaker", "sqlalchemy.ext.asyncio.async_sessionmaker"})
ASYNC_ENGINE_CONSTRUCTORS = frozenset(
    {
        "sqlalchemy.ext.asyncio.create_async_engine",
        "sqlalchemy.ext.asyncio.AsyncEngine",
        "sqlmodel.ext.asyncio.AsyncEngine",
    }
)
FIXTURE_DECORATORS = frozenset({"pytest.fixture", "pytest_asyncio.fixture"})
CLOSE_METHODS = frozenset({"close", "aclose"})
# Methods that take ownership of what they receive (exit stacks, context variables).
HANDOFF_METHODS = frozenset(
    {"enter_context", "enter_async_context", "push", "push_async_exit", "callback", "push_async_callback", "set"}
)
CLOSING_WRAPPERS = frozenset({"contextlib.closing", "contextlib.aclosing"})
_FACTORIES = (DbKind.SYNC_FACTORY, DbKind.ASYNC_FACTORY)
_REGISTRIES = (DbKind.SYNC_REGISTRY, DbKind.ASYNC_REGISTRY)
_CONTAINERS = (
    cst.Tuple, cst.List, cst.Set, cst.Dict, cst.Element, cst.StarredElement, cst.DictElement, cst.Arg, cst.Await
)


# Last names of the session classes, factory and registry types and of the callees above,
# for the rules' shape preconditions.
SESSION_CLASS_NAMES = last_names(SESSION_CLASSES)
FACTORY_TYPE_NAMES = last_names(n for n, k in CLASS_KINDS.items() if k in _FACTORIES)
REGISTRY_TYPE_NAMES = last_names(n for n, k in CLASS_KINDS.items() if k in _REGISTRIES)
_CREATOR_TYPE_NAMES = FACTORY_TYPE_NAMES | REGISTRY_TYPE_NAMES
ENGINE_FACTORY_NAMES = last_names(ENGINE_FACTORIES)
SESSION_FACTORY_NAMES = last_names(SESSION_FACTORIES)
ASYNC_ENGINE_CONSTRUCTOR_NAMES = last_names(ASYNC_ENGINE_CONSTRUCTORS)


# -- shared helpers ------------------------------------------------------------------


def executing_scope(ctx: FileContext) -> FunctionScope | cst.Lambda | None:
    """The function (or lambda) whose body runs the current node; None when the node
    runs at import time (module or class level, parameter defaults, decorators)."""
    stack = ctx.stack
    scopes: dict[int, FunctionScope] | None = None
    for index in range(len(stack) - 2, -1, -1):
        node, child = stack[index], stack[index + 1]
        if isinstance(node, cst.FunctionDef) and child is node.body:
            if scopes is None:
                scopes = {id(scope.node): scope for scope in ctx.functions}
            return scopes.get(id(node))
        if isinstance(node, cst.Lambda) and child is node.body:
            return node
    return None


def created_session(
    call: cst.Call, ctx: FileContext, *, registries: bool = False, begin: bool = False
) -> DbKind | None:
    """The session kind ``call`` creates: a session class constructed directly, a
    session factory called (``SessionLocal()``), with ``registries`` a
    ``scoped_session`` registry called, with ``begin`` ``factory.begin()``."""
    func = call.func
    if isinstance(func, cst.Attribute) and func.attr.value == "begin":
        owner = ctx.kind(func.value)
        return product_of(owner) if begin and owner in _FACTORIES else None
    qual = ctx.callee(call)
    if qual in SESSION_CLASSES:
        return CLASS_KINDS[qual]
    owner = ctx.kind(func)
    if owner in _FACTORIES or (registries and owner in _REGISTRIES):
        return product_of(owner)
    return None


def may_create_session(shape: FileShape, project: ProjectTerms, *, registries: bool = False) -> bool:
    """Whether :func:`created_session` can recognise a call in a file of this shape. A
    session class is called by its name. A factory (with ``registries``, a registry)
    callee or ``begin()`` receiver gets its kind from a name the file mentions, called
    or not: a factory type (called, or annotating the parameter, variable or attribute
    the callee is bound to) or a project symbol that can stand for a factory (a value,
    a type alias, a dependency or a function providing one, possibly bound to a local
    name first)."""
    if not shape.calls.isdisjoint(SESSION_CLASS_NAMES):
        return True
    types = _CREATOR_TYPE_NAMES if registries else FACTORY_TYPE_NAMES
    symbols = project.factory_names | project.registry_names if registries else project.factory_names
    if not shape.names.isdisjoint(types) or not shape.string_annotation_names.isdisjoint(types):
        return True
    return may_name_symbol(shape, symbols)


# Modules whose ``Session``/``AsyncSession`` are the session classes themselves.
_SESSION_CLASS_MODULES = ("sqlalchemy.", "sqlmodel.")


def may_name_symbol(shape: FileShape, symbols: frozenset[str]) -> bool:
    """Whether a file of this shape can refer to one of the project ``symbols``. A
    symbol named like a session class (``Session = scoped_session(...)``) is not what
    the bare name means in a file that imports that name from SQLAlchemy or SQLModel
    only: the file reaches the symbol through an attribute (``database.Session``), a
    string annotation, or another import of the name (relative ones included). A
    module-level ``Session = ...`` of the file itself names its own source of the
    symbol's kind, which the callers check too."""
    if not shape.string_annotation_names.isdisjoint(symbols):
        return True
    for name in shape.names & symbols:
        if name not in SESSION_CLASS_NAMES or name in shape.attribute_names or shape.relative_import:
            return True
        suffix = "." + name
        if any(p.endswith(suffix) and not p.startswith(_SESSION_CLASS_MODULES) for p in shape.import_paths):
            return True
    return False


CONNECTION_GETTERS = frozenset({"alembic.op.get_bind"})
_CONNECTIONS = (DbKind.SYNC_CONNECTION, DbKind.ASYNC_CONNECTION)


def _is_connection(expr: cst.BaseExpression, ctx: FileContext, depth: int = 0) -> bool:
    """``expr`` is an existing connection: typed as one, ``op.get_bind()``,
    ``session.connection()``, or a local name assigned from one of these."""
    if ctx.kind(expr) in _CONNECTIONS:
        return True
    if isinstance(expr, cst.Await):
        expr = expr.expression
    if isinstance(expr, cst.Call):
        func = expr.func
        if ctx.callee(expr) in CONNECTION_GETTERS:
            return True
        return isinstance(func, cst.Attribute) and func.attr.value == "connection" and ctx.is_session(func.value)
    if isinstance(expr, cst.Name) and depth < 4:
        values = ctx.assigned(expr.value)
        return bool(values) and values[-1] is not None and _is_connection(values[-1], ctx, depth + 1)
    return False


def bound_to_connection(call: cst.Call, ctx: FileContext) -> bool:
    """The session is bound to a connection its caller owns (``Session(bind=conn)``):
    closing it is not what returns that connection to the pool."""
    for index, arg in enumerate(call.args):
        is_bind = arg.keyword.value == "bind" if arg.keyword is not None else index == 0 and not arg.star
        if is_bind and _is_connection(arg.value, ctx):
            return True
    return False


def _under_main_guard(ctx: FileContext) -> bool:
    for node in ctx.ancestors():
        if isinstance(node, cst.If) and isinstance(node.test, cst.Comparison):
            test = node.test
            operands = [test.left, *(c.comparator for c in test.comparisons)]
            names = {o.value for o in operands if isinstance(o, cst.Name)}
            strings = {string_value(o) for o in operands if isinstance(o, cst.SimpleString)}
            if names == {"__name__"} and strings == {"__main__"}:
                return True
    return False


def _directly_in_function(ctx: FileContext) -> bool:
    """The current statement belongs to a function body (not to a class nested in it)."""
    for node in ctx.ancestors():
        kind = type(node)
        if kind is cst.FunctionDef:
            return True
        if kind is cst.ClassDef or kind is cst.Lambda:
            return False
    return False


def _is_per_request_function(ctx: FileContext) -> FunctionScope | None:
    """The route handler or dependency whose body runs the current node, unless its
    result is cached or it is a lifespan handler."""
    scope = executing_scope(ctx)
    if scope is None or isinstance(scope, cst.Lambda):
        return None
    if not (scope.is_route or scope.is_dependency):
        return None
    if is_cached_function(scope.node, ctx) or is_lifespan(scope.node, scope.qualname, ctx):
        return None
    return scope


def _session_key(expr: cst.BaseExpression, ctx: FileContext) -> str | None:
    """A name for the session object ``expr`` evaluates to (``db``, ``self.session``)."""
    if not ctx.is_session(expr):
        return None
    return dotted_cst(expr)


def _sessions_used_by(expr: cst.BaseExpression, ctx: FileContext) -> set[str]:
    """Sessions a coroutine call uses: as the receiver (``db.execute(...)``) or as an
    argument (``f(db)``, ``f(session=db)``)."""
    if not isinstance(expr, cst.Call):
        return set()
    keys: set[str] = set()
    if isinstance(expr.func, cst.Attribute):
        key = _session_key(expr.func.value, ctx)
        if key is not None:
            keys.add(key)
    for arg in expr.args:
        if arg.star:
            continue
        key = _session_key(arg.value, ctx)
        if key is not None:
            keys.add(key)
    return keys


# -- FDB101 --------------------------------------------------------------------------


class GlobalSession(Rule):
    """
    ## What it does
    Flags a session *instance* created when a module is imported: `db = SessionLocal()`,
    `session = AsyncSession(engine)` or `Session(engine)` at module or class level
    (parameter defaults included, since they are evaluated once).

    ## Why is this bad?
    Sessions are request-scoped: one unit of work, then closed. A module-level session
    is shared by every request, thread and task of the process, is never closed,
    accumulates every loaded object in its identity map and is left unusable by the
    first failed flush (`PendingRollbackError` for everyone). Factories belong at
    module level, session instances do not.

    ## Example
    ```python
    SessionLocal = sessionmaker(engine)
    db = SessionLocal()
    ```

    ## Use instead
    ```python
    SessionLocal = sessionmaker(engine)

    def get_db():
        with SessionLocal() as db:
            yield db
    ```

    ## Fix safety
    No fix: where the session should come from depends on the application. Factories
    (`sessionmaker(...)`, `async_sessionmaker(...)`), `scoped_session` registries,
    annotations without a value, sessions opened in a `with` block of a script, code
    under `if __name__ == "__main__":` and test files are not flagged.
    """

    code = "FDB101"
    name = "global-session"
    summary = "Session instance created at module or class level"
    skip_test_files = True
    valid = [
        Valid(
            "from sqlalchemy.orm import sessionmaker\n"
            "SessionLocal = sessionmaker(bind=engine)\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "AsyncSessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n"
        ),
        Valid(
            "from sqlalchemy.orm import scoped_session, sessionmaker\n"
            "db_session = scoped_session(sessionmaker(bind=engine))\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import async_scoped_session, async_sessionmaker\n"
            "from asyncio import current_task\n"
            "Session = async_scoped_session(async_sessionmaker(engine), scopefunc=current_task)\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "class Repository:\n"
            "    session: Session\n"
            "db: Session\n"
        ),
        Valid(
            "from sqlalchemy.orm import sessionmaker\n"
            "SessionLocal = sessionmaker(bind=engine)\n"
            "db = SessionLocal()\n",
            path="tests/conftest.py",
        ),
        Valid(
            "from sqlalchemy.orm import sessionmaker\n"
            "SessionLocal = sessionmaker(bind=engine)\n"
            "def get_db():\n"
            "    db = SessionLocal()\n"
            "    try:\n"
            "        yield db\n"
            "    finally:\n"
            "        db.close()\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "with Session(engine) as session:\n"
            "    session.add(User(name='admin'))\n"
            "    session.commit()\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "if __name__ == '__main__':\n"
            "    session = Session(engine)\n"
            "    seed(session)\n"
        ),
        Valid(
            "from app.db import SessionLocal\n"
            "make_session = lambda: SessionLocal()\n",
            files={"app/db.py": "from sqlalchemy.orm import sessionmaker\nSessionLocal = sessionmaker()\n"},
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.orm import sessionmaker\n"
            "SessionLocal = sessionmaker(bind=engine)\n"
            "db = SessionLocal()\n",
            line=3,
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "session = AsyncSession(engine)\n",
            line=2,
        ),
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "class UserRepository:\n"
            "    session = Session(engine)\n",
            line=3,
        ),
        Invalid(
            "from app.db import SessionLocal\n"
            "db = SessionLocal()\n"
            "def get_user(user_id: int):\n"
            "    return db.get(User, user_id)\n",
            files={"app/db.py": "from sqlalchemy.orm import sessionmaker\nSessionLocal = sessionmaker()\n"},
            line=2,
        ),
        Invalid(
            "from sqlmodel import Session\n"
            "def list_users(session=Session(engine)):\n"
            "    return session.exec(select(User)).all()\n",
            line=2,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # At import time there are no local bindings: the callee is a session class, a
        # project symbol, or a call giving a factory (`sessionmaker(...)()`).
        calls = shape.module_calls
        if not calls.isdisjoint(SESSION_CLASS_NAMES) or not calls.isdisjoint(project.session_names):
            return True
        return not (calls & shape.called_results).isdisjoint(_CREATOR_TYPE_NAMES)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        if created_session(node, ctx, registries=True) is None:
            return
        if executing_scope(ctx) is not None:
            return
        if any(isinstance(n, cst.WithItem) for n in ctx.ancestors()):
            return
        if _under_main_guard(ctx):
            return
        ctx.report(
            node,
            "Session instance created at import time: it is shared by every request and never "
            "closed; create one per request from the factory",
        )


# -- FDB102 / FDB103 -----------------------------------------------------------------


class _CreatedPerRequest(Rule):
    """Calls to ``_callees`` in the body of a route handler or a dependency."""

    _callees: ClassVar[frozenset[str]]
    _callee_names: ClassVar[frozenset[str]]
    _message: ClassVar[str]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return not shape.calls.isdisjoint(cls._callee_names)

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._globals: dict[int, set[str]] = {}

    def visit_Global(self, node: cst.Global) -> None:
        if self.ctx.function is not None:
            names = self._globals.setdefault(id(self.ctx.function.node), set())
            names.update(item.name.value for item in node.names)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        if self.ctx.function is not None:
            names = self._globals.setdefault(id(self.ctx.function.node), set())
            names.update(item.name.value for item in node.names)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        if ctx.callee(node) not in self._callees:
            return
        scope = _is_per_request_function(ctx)
        if scope is None:
            return
        parent = ctx.parent
        if isinstance(parent, cst.Assign) and parent.value is node:
            # A lazily initialised module-level singleton (`global _engine`).
            shared = self._globals.get(id(scope.node), set())
            if all(isinstance(t.target, cst.Name) and t.target.value in shared for t in parent.targets):
                return
        kind = "route handler" if scope.is_route else "dependency"
        ctx.report(node, self._message.format(kind=kind, name=scope.name))


class EnginePerRequest(_CreatedPerRequest):
    """
    ## What it does
    Flags `create_engine(...)` / `create_async_engine(...)` called in the body of a
    route handler or of a dependency (a function used in `Depends(...)`).

    ## Why is this bad?
    An engine owns a connection pool and is meant to be created once per application
    (at module level or in the lifespan) and disposed on shutdown. Creating one per
    request opens a new pool, and new database connections, for every request; the
    pools are never disposed, so connections pile up until the database refuses more.

    ## Example
    ```python
    async def get_session():
        engine = create_async_engine(settings.database_url)
        async with AsyncSession(engine) as session:
            yield session
    ```

    ## Use instead
    ```python
    engine = create_async_engine(settings.database_url)
    SessionLocal = async_sessionmaker(engine, expire_on_commit=False)

    async def get_session():
        async with SessionLocal() as session:
            yield session
    ```

    ## Fix safety
    No fix. Not flagged: functions decorated with `functools.lru_cache`/`cache` (the
    engine is created once), lifespan handlers, lazily initialised globals
    (`global _engine`), module-level calls, and functions that are neither routes nor
    dependencies (CLI commands, scripts). Helpers called from a route are not
    followed.
    """

    code = "FDB102"
    name = "engine-per-request"
    summary = "Engine created inside a route handler or dependency"
    triggers = ("create_engine", "create_async_engine")
    _callees = ENGINE_FACTORIES
    _callee_names = ENGINE_FACTORY_NAMES
    _message = "Engine created on every call of {kind} `{name}`: create it once per application and reuse it"
    valid = [
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine(DATABASE_URL)\n"
        ),
        Valid(
            "from functools import lru_cache\n"
            "from fastapi import Depends, FastAPI\n"
            "from sqlalchemy import create_engine\n"
            "app = FastAPI()\n"
            "@lru_cache\n"
            "def get_engine():\n"
            "    return create_engine(DATABASE_URL)\n"
            "@app.get('/health')\n"
            "def health(engine=Depends(get_engine)):\n"
            "    return {'ok': True}\n"
        ),
        Valid(
            "import functools\n"
            "from fastapi import Depends\n"
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "@functools.lru_cache(maxsize=None)\n"
            "def get_engine():\n"
            "    return create_async_engine(DATABASE_URL)\n"
            "@functools.cache\n"
            "def get_other_engine():\n"
            "    return create_async_engine(OTHER_URL)\n"
            "async def route(a=Depends(get_engine), b=Depends(get_other_engine)):\n"
            "    pass\n"
        ),
        Valid(
            "from contextlib import asynccontextmanager\n"
            "from fastapi import FastAPI\n"
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "@asynccontextmanager\n"
            "async def lifespan(app: FastAPI):\n"
            "    app.state.engine = create_async_engine(DATABASE_URL)\n"
            "    yield\n"
            "    await app.state.engine.dispose()\n"
            "app = FastAPI(lifespan=lifespan)\n"
        ),
        Valid(
            "import typer\n"
            "from sqlalchemy import create_engine\n"
            "cli = typer.Typer()\n"
            "@cli.command()\n"
            "def migrate(url: str):\n"
            "    engine = create_engine(url)\n"
            "    run_migrations(engine)\n"
        ),
        Valid(
            "from fastapi import Depends, FastAPI\n"
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "app = FastAPI()\n"
            "_engine = None\n"
            "def get_engine():\n"
            "    global _engine\n"
            "    if _engine is None:\n"
            "        _engine = create_async_engine(DATABASE_URL)\n"
            "    return _engine\n"
            "@app.get('/items')\n"
            "async def items(engine=Depends(get_engine)):\n"
            "    pass\n"
        ),
    ]
    invalid = [
        Invalid(
            "from fastapi import FastAPI\n"
            "from sqlalchemy import create_engine\n"
            "app = FastAPI()\n"
            "@app.get('/users')\n"
            "def list_users():\n"
            "    engine = create_engine(DATABASE_URL)\n"
            "    with engine.connect() as conn:\n"
            "        return conn.execute(users.select()).all()\n",
            line=6,
        ),
        Invalid(
            "from fastapi import Depends\n"
            "from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine\n"
            "async def get_session():\n"
            "    engine = create_async_engine(DATABASE_URL)\n"
            "    async with AsyncSession(engine) as session:\n"
            "        yield session\n"
            "async def route(session: AsyncSession = Depends(get_session)):\n"
            "    pass\n",
            line=4,
        ),
        Invalid(
            "import sqlalchemy as sa\n"
            "from fastapi import APIRouter\n"
            "router = APIRouter()\n"
            "@router.post('/reports')\n"
            "async def report(url: str):\n"
            "    engine = sa.create_engine(url, pool_pre_ping=True)\n",
            line=6,
        ),
    ]


class SessionmakerPerRequest(_CreatedPerRequest):
    """
    ## What it does
    Flags `sessionmaker(...)` / `async_sessionmaker(...)` called in the body of a route
    handler or of a dependency.

    ## Why is this bad?
    A session factory is configuration: it is meant to be built once, next to the
    engine, and called once per request. Building it per request repeats that work on
    every call and usually comes with an engine or configuration built per request
    too; it also scatters the session settings (`expire_on_commit=False`,
    `autoflush`) across handlers.

    ## Example
    ```python
    async def get_session(engine=Depends(get_engine)):
        factory = async_sessionmaker(engine, expire_on_commit=False)
        async with factory() as session:
            yield session
    ```

    ## Use instead
    ```python
    SessionLocal = async_sessionmaker(engine, expire_on_commit=False)

    async def get_session():
        async with SessionLocal() as session:
            yield session
    ```

    ## Fix safety
    No fix. Not flagged: functions decorated with `functools.lru_cache`/`cache`,
    lifespan handlers, lazily initialised globals, module-level calls, and functions
    that are neither routes nor dependencies (CLI commands, scripts).
    """

    code = "FDB103"
    name = "sessionmaker-per-request"
    summary = "Session factory created inside a route handler or dependency"
    triggers = ("sessionmaker",)
    _callees = SESSION_FACTORIES
    _callee_names = SESSION_FACTORY_NAMES
    _message = "Session factory built on every call of {kind} `{name}`: build it once, next to the engine"
    valid = [
        Valid(
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n"
        ),
        Valid(
            "from functools import cache\n"
            "from fastapi import Depends\n"
            "from sqlalchemy.orm import sessionmaker\n"
            "@cache\n"
            "def get_factory():\n"
            "    return sessionmaker(bind=engine)\n"
            "def get_db(factory=Depends(get_factory)):\n"
            "    with factory() as db:\n"
            "        yield db\n"
        ),
        Valid(
            "from contextlib import asynccontextmanager\n"
            "from fastapi import FastAPI\n"
            "from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine\n"
            "@asynccontextmanager\n"
            "async def lifespan(app):\n"
            "    engine = create_async_engine(DATABASE_URL)\n"
            "    app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)\n"
            "    yield\n"
            "    await engine.dispose()\n"
            "app = FastAPI(lifespan=lifespan)\n"
        ),
        Valid(
            "from sqlalchemy import create_engine\n"
            "from sqlalchemy.orm import sessionmaker\n"
            "def main():\n"
            "    Session = sessionmaker(bind=create_engine(URL))\n"
            "    with Session() as session:\n"
            "        seed(session)\n"
            "if __name__ == '__main__':\n"
            "    main()\n",
            path="scripts/seed.py",
        ),
    ]
    invalid = [
        Invalid(
            "from fastapi import Depends\n"
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "async def get_session(engine=Depends(get_engine)):\n"
            "    factory = async_sessionmaker(engine, expire_on_commit=False)\n"
            "    async with factory() as session:\n"
            "        yield session\n"
            "async def route(session=Depends(get_session)):\n"
            "    pass\n",
            line=4,
        ),
        Invalid(
            "from fastapi import FastAPI\n"
            "from sqlalchemy.orm import sessionmaker\n"
            "app = FastAPI()\n"
            "@app.get('/items')\n"
            "def items():\n"
            "    Session = sessionmaker(bind=engine)\n"
            "    with Session() as db:\n"
            "        return db.scalars(select(Item)).all()\n",
            line=6,
        ),
    ]


# -- FDB104 --------------------------------------------------------------------------


@dataclass
class _LocalSession:
    statement: cst.CSTNode
    managed: bool = False


@dataclass
class _Frame:
    scope: FunctionScope
    is_fixture: bool = False
    nonlocal_names: set[str] = field(default_factory=set)
    sessions: dict[str, list[_LocalSession]] = field(default_factory=dict)


class UnclosedSession(Rule):
    """
    ## What it does
    Flags a session created and assigned to a local name inside a function
    (`db = SessionLocal()`, `session = AsyncSession(engine)`) when the function never
    closes it on every path: the session is not used in a `with`/`async with`, not
    closed by `.close()` in a `finally`, and not handed out via `yield` inside
    `try/finally`.

    ## Why is this bad?
    A session that is not closed keeps its connection checked out of the pool until
    garbage collection gets to it, with its transaction open. Under load the pool is
    exhausted (`QueuePool limit ... reached`) and requests time out. A `.close()` at
    the end of the function is skipped by the first exception; a context manager or a
    `finally` closes it whatever happens.

    ## Example
    ```python
    def count_users() -> int:
        db = SessionLocal()
        return db.scalar(select(func.count()).select_from(User))
    ```

    ## Use instead
    ```python
    def count_users() -> int:
        with SessionLocal() as db:
            return db.scalar(select(func.count()).select_from(User))
    ```

    ## Fix safety
    No fix. Not flagged: sessions returned (or returned inside an object) to a caller
    that manages them (a dependency returning a session is FDB105's business), sessions
    stored in an attribute, handed to an exit stack or closed in a nested function,
    `scoped_session` registries, sessions bound to a connection the caller owns
    (`Session(bind=op.get_bind())`, `Session(bind=connection)` in an event listener),
    and pytest fixtures that close the session after `yield` (pytest always runs that
    code).
    """

    code = "FDB104"
    name = "unclosed-session"
    summary = "Session created in a function and never closed"
    valid = [
        Valid(
            "from sqlalchemy.orm import sessionmaker\n"
            "SessionLocal = sessionmaker(bind=engine)\n"
            "def get_db():\n"
            "    db = SessionLocal()\n"
            "    try:\n"
            "        yield db\n"
            "    finally:\n"
            "        db.close()\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine)\n"
            "def session_factory():\n"
            "    session = SessionLocal()\n"
            "    return session\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "def make_uow(engine):\n"
            "    session = AsyncSession(engine)\n"
            "    return UnitOfWork(session)\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine)\n"
            "async def job():\n"
            "    session = SessionLocal()\n"
            "    async with session:\n"
            "        await session.execute(stmt)\n"
            "async def job2():\n"
            "    session = SessionLocal()\n"
            "    async with session.begin():\n"
            "        session.add(obj)\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine)\n"
            "async def job():\n"
            "    session = SessionLocal()\n"
            "    try:\n"
            "        await session.execute(stmt)\n"
            "        await session.commit()\n"
            "    finally:\n"
            "        await session.close()\n"
        ),
        Valid(
            "from sqlalchemy.orm import scoped_session, sessionmaker\n"
            "Session = scoped_session(sessionmaker(bind=engine))\n"
            "def job():\n"
            "    session = Session()\n"
            "    session.execute(stmt)\n"
        ),
        Valid(
            "from sqlalchemy.orm import sessionmaker\n"
            "SessionLocal = sessionmaker(bind=engine)\n"
            "class Repo:\n"
            "    def __init__(self):\n"
            "        self.session = SessionLocal()\n"
            "def open_into(stack):\n"
            "    db = SessionLocal()\n"
            "    stack.enter_context(db)\n"
            "    return stack\n"
        ),
        Valid(
            "import pytest\n"
            "from sqlalchemy.orm import Session\n"
            "@pytest.fixture\n"
            "def db(engine):\n"
            "    session = Session(engine)\n"
            "    yield session\n"
            "    session.close()\n",
            path="tests/conftest.py",
        ),
        Valid(
            "from alembic import op\n"
            "from sqlalchemy import Connection, orm\n"
            "def upgrade():\n"
            "    bind = op.get_bind()\n"
            "    session = orm.Session(bind=bind)\n"
            "    session.execute(stmt)\n"
            "def after_insert(mapper, connection: Connection, target):\n"
            "    session = orm.Session(bind=connection)\n"
            "    session.commit()\n",
            path="migrations/versions/0001_x.py",
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "def handler(request, engine):\n"
            "    db = Session(engine)\n"
            "    request.state.db = db\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.orm import sessionmaker\n"
            "SessionLocal = sessionmaker(bind=engine)\n"
            "def count_users():\n"
            "    db = SessionLocal()\n"
            "    return db.query(User).count()\n",
            line=4,
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine)\n"
            "async def job():\n"
            "    session = SessionLocal()\n"
            "    await session.execute(stmt)\n"
            "    await session.commit()\n"
            "    await session.close()\n",
            line=4,
        ),
        Invalid(
            "from sqlalchemy.orm import sessionmaker\n"
            "SessionLocal = sessionmaker(bind=engine)\n"
            "def get_db():\n"
            "    db = SessionLocal()\n"
            "    yield db\n"
            "    db.close()\n",
            line=4,
        ),
        Invalid(
            "from sqlmodel import Session\n"
            "from app.db import engine\n"
            "from app import crud\n"
            "def init() -> None:\n"
            "    session: Session = Session(engine)\n"
            "    crud.create_superuser(session)\n",
            files={"app/crud.py": "def create_superuser(session):\n    pass\n"},
            line=5,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return may_create_session(shape, project)

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._frames: list[_Frame] = []
        self._active: dict[str, int] = {}

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        scope = self.ctx.function
        assert scope is not None
        is_fixture = any(decorator_qualname(d, self.ctx) in FIXTURE_DECORATORS for d in node.decorators)
        self._frames.append(_Frame(scope, is_fixture))

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        frame = self._frames.pop()
        for name, created in frame.sessions.items():
            self._active[name] -= 1
            if not self._active[name]:
                del self._active[name]
            for local in created:
                if not local.managed:
                    self.ctx.report(
                        local.statement,
                        f"Session `{name}` is never closed: open it with `with`/`async with` or "
                        "close it in a `finally`",
                    )

    def visit_Global(self, node: cst.Global) -> None:
        if self._frames:
            self._frames[-1].nonlocal_names.update(item.name.value for item in node.names)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        if self._frames:
            self._frames[-1].nonlocal_names.update(item.name.value for item in node.names)

    def leave_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) == 1:
            self._created(node, node.targets[0].target, node.value)

    def leave_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._created(node, node.target, node.value)

    def _created(self, statement: cst.CSTNode, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        if not self._frames or not isinstance(target, cst.Name) or not isinstance(value, cst.Call):
            return
        frame = self._frames[-1]
        if target.value in frame.nonlocal_names or not _directly_in_function(self.ctx):
            return
        if created_session(value, self.ctx) is None or bound_to_connection(value, self.ctx):
            return
        if target.value not in frame.sessions:
            frame.sessions[target.value] = []
            self._active[target.value] = self._active.get(target.value, 0) + 1
        frame.sessions[target.value].append(_LocalSession(statement))

    def visit_Name(self, node: cst.Name) -> None:
        if node.value not in self._active:
            return
        owner = next(i for i in range(len(self._frames) - 1, -1, -1) if node.value in self._frames[i].sessions)
        frame = self._frames[owner]
        if owner != len(self._frames) - 1:
            self._manage(frame, node.value)  # used by a nested function: it may close it
            return
        if self._handled(node, frame):
            self._manage(frame, node.value)

    @staticmethod
    def _manage(frame: _Frame, name: str) -> None:
        for local in frame.sessions[name]:
            local.managed = True

    def _handled(self, node: cst.Name, frame: _Frame) -> bool:
        """Whether this use of the session closes it or hands it to someone who will."""
        ctx = self.ctx
        stack = ctx.stack
        parent = stack[-2]
        if _is_not_a_load(node, parent):
            return False
        function_index = next(i for i in range(len(stack) - 1, -1, -1) if stack[i] is frame.scope.node)
        path = stack[function_index + 1 :]
        if any(isinstance(n, (cst.WithItem, cst.Lambda)) for n in path):
            return True
        if isinstance(parent, cst.Attribute) and parent.value is node:
            if parent.attr.value not in CLOSE_METHODS:
                return False
            grand = stack[-3]
            if not (isinstance(grand, cst.Call) and grand.func is parent):
                return True  # `db.close` handed out as a callback
            return frame.is_fixture or any(isinstance(n, cst.Finally) for n in path)
        return self._escapes(path, frame)

    def _escapes(self, path: list[cst.CSTNode], frame: _Frame) -> bool:
        """The session itself (not something computed from it) is returned, yielded
        inside try/finally, stored, aliased or handed to an exit stack."""
        ctx = self.ctx
        for index in range(len(path) - 2, -1, -1):
            node, child = path[index], path[index + 1]
            if isinstance(node, _CONTAINERS):
                continue
            if isinstance(node, cst.Call) and isinstance(child, cst.Arg):
                func = node.func
                if isinstance(func, cst.Attribute) and func.attr.value in HANDOFF_METHODS:
                    return True
                callee = ctx.qualname(func)
                if callee in CLOSING_WRAPPERS:
                    return True
                if callee is not None and ctx.project.class_(callee) is None:
                    return False  # a function's result, not the session
                continue
            if isinstance(node, cst.Return):
                return True
            if isinstance(node, cst.Yield):
                if frame.is_fixture:
                    return False
                return any(isinstance(n, cst.Try) and n.finalbody is not None for n in path[:index])
            if isinstance(node, cst.Assign):
                return (
                    any(not isinstance(t.target, cst.Name) for t in node.targets)
                    or node.value is path[-1]
                )
            if isinstance(node, cst.AnnAssign):
                return not isinstance(node.target, cst.Name) or node.value is path[-1]
            return False
        return False


def _is_not_a_load(node: cst.Name, parent: cst.CSTNode) -> bool:
    """The name is a binding or a label here, not a use of the variable."""
    if isinstance(parent, cst.Attribute):
        return parent.attr is node
    if isinstance(parent, cst.Arg):
        return parent.keyword is node
    if isinstance(parent, (cst.For, cst.CompFor)):
        return parent.target is node
    if isinstance(parent, (cst.AnnAssign, cst.AugAssign)):
        return parent.target is node
    return isinstance(
        parent,
        (cst.AssignTarget, cst.Param, cst.FunctionDef, cst.ClassDef, cst.AsName, cst.NameItem, cst.ImportAlias),
    )


# -- FDB105 --------------------------------------------------------------------------


@dataclass
class _DependencyFrame:
    scope: FunctionScope
    generator: bool = False
    created: set[str] = field(default_factory=set)
    returns: list[cst.Return] = field(default_factory=list)


class DependencyReturnsSession(Rule):
    """
    ## What it does
    Flags a dependency (a function used in `Depends(...)`) that `return`s a session it
    creates (`return SessionLocal()`, or `db = SessionLocal()` then `return db`)
    instead of yielding it from a context manager.

    ## Why is this bad?
    FastAPI only runs cleanup code for dependencies that `yield`. A returned session is
    never closed by anyone: its connection stays checked out until garbage collection,
    and the pool runs dry under load.

    ## Example
    ```python
    def get_db() -> Session:
        return SessionLocal()
    ```

    ## Use instead
    ```python
    def get_db() -> Iterator[Session]:
        with SessionLocal() as db:
            yield db
    ```

    ## Fix safety
    No fix: turning the function into a generator changes every caller that is not
    `Depends`. Not flagged: generator dependencies, dependencies returning the
    factory itself, sessions received from another dependency and `scoped_session`
    registries (the registry owns the session).
    """

    code = "FDB105"
    name = "dependency-returns-session"
    summary = "Dependency returns a new session instead of yielding it"
    valid = [
        Valid(
            "from fastapi import Depends\n"
            "from sqlalchemy.orm import sessionmaker\n"
            "SessionLocal = sessionmaker(bind=engine)\n"
            "def get_db():\n"
            "    db = SessionLocal()\n"
            "    try:\n"
            "        yield db\n"
            "    finally:\n"
            "        db.close()\n"
            "def route(db=Depends(get_db)):\n"
            "    pass\n"
        ),
        Valid(
            "from fastapi import Depends\n"
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n"
            "def get_session_factory():\n"
            "    return SessionLocal\n"
            "async def route(factory=Depends(get_session_factory)):\n"
            "    pass\n"
        ),
        Valid(
            "from fastapi import Depends\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def get_repo(session: AsyncSession = Depends(get_session)):\n"
            "    return session\n"
            "async def route(repo=Depends(get_repo)):\n"
            "    pass\n"
        ),
        Valid(
            "from sqlalchemy.orm import sessionmaker\n"
            "SessionLocal = sessionmaker(bind=engine)\n"
            "def new_session():\n"
            "    return SessionLocal()\n"
        ),
    ]
    invalid = [
        Invalid(
            "from fastapi import Depends\n"
            "from sqlalchemy.orm import Session, sessionmaker\n"
            "SessionLocal = sessionmaker(bind=engine)\n"
            "def get_db() -> Session:\n"
            "    return SessionLocal()\n"
            "def route(db: Session = Depends(get_db)):\n"
            "    pass\n",
            line=5,
        ),
        Invalid(
            "from fastapi import Depends\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def get_session():\n"
            "    session = AsyncSession(engine)\n"
            "    return session\n",
            files={"app/routes.py": "from fastapi import Depends\nfrom app.example import get_session\n"
                   "async def route(s=Depends(get_session)):\n    pass\n"},
            line=5,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return may_create_session(shape, project)

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._frames: list[_DependencyFrame] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        scope = self.ctx.function
        assert scope is not None
        self._frames.append(_DependencyFrame(scope))

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        frame = self._frames.pop()
        if frame.scope.is_dependency and not frame.generator:
            for statement in frame.returns:
                self.ctx.report(
                    statement,
                    f"Dependency `{frame.scope.name}` returns a new session that is never closed: "
                    "`yield` it from a `with`/`async with` block",
                )

    def visit_Yield(self, node: cst.Yield) -> None:
        if self._frames:
            self._frames[-1].generator = True

    def leave_Assign(self, node: cst.Assign) -> None:
        if not self._frames or len(node.targets) != 1:
            return
        target = node.targets[0].target
        if isinstance(target, cst.Name):
            frame = self._frames[-1]
            if isinstance(node.value, cst.Call) and created_session(node.value, self.ctx) is not None:
                frame.created.add(target.value)
            else:
                frame.created.discard(target.value)

    def visit_Return(self, node: cst.Return) -> None:
        if not self._frames or not self._frames[-1].scope.is_dependency:
            return
        frame = self._frames[-1]
        value = node.value
        if isinstance(value, cst.Call) and created_session(value, self.ctx) is not None:
            frame.returns.append(node)
        elif isinstance(value, cst.Name) and value.value in frame.created:
            frame.returns.append(node)


# -- FDB106 --------------------------------------------------------------------------


class OnEventHandler(Rule):
    """
    ## What it does
    Flags `@app.on_event("startup")` / `@app.on_event("shutdown")` handlers, on a
    FastAPI application or an `APIRouter`.

    ## Why is this bad?
    `on_event` is deprecated in FastAPI and Starlette in favour of a `lifespan`
    handler, where startup and shutdown live in one function and share state (the
    engine created on startup is the one disposed on shutdown). Projects using
    `on_event` commonly never dispose the engine at all.

    ## Example
    ```python
    @app.on_event("shutdown")
    async def shutdown():
        await engine.dispose()
    ```

    ## Use instead
    ```python
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    ```

    ## Fix safety
    No fix: the handlers have to be merged into one lifespan function by hand. When
    the object cannot be resolved to a FastAPI app or router, only the unmistakable
    `.on_event("startup"/"shutdown")` call is flagged.
    """

    code = "FDB106"
    name = "on-event-handler"
    summary = "Deprecated `on_event` startup/shutdown handler"
    triggers = ("on_event",)
    valid = [
        Valid(
            "from contextlib import asynccontextmanager\n"
            "from fastapi import FastAPI\n"
            "@asynccontextmanager\n"
            "async def lifespan(app: FastAPI):\n"
            "    yield\n"
            "    await engine.dispose()\n"
            "app = FastAPI(lifespan=lifespan)\n"
        ),
        Valid(
            "import socketio\n"
            "sio = socketio.AsyncServer()\n"
            "@sio.on_event('connect')\n"
            "async def connect(sid, environ):\n"
            "    pass\n"
        ),
    ]
    invalid = [
        Invalid(
            "from fastapi import FastAPI\n"
            "app = FastAPI()\n"
            "@app.on_event('startup')\n"
            "async def startup():\n"
            "    await init_db()\n"
            "@app.on_event('shutdown')\n"
            "async def shutdown():\n"
            "    await engine.dispose()\n",
            count=2,
            line=3,
        ),
        Invalid(
            "from fastapi import APIRouter\n"
            "router = APIRouter()\n"
            "@router.on_event('startup')\n"
            "def startup():\n"
            "    create_tables()\n",
            line=3,
        ),
        Invalid(
            "from app.main import app\n"
            "@app.on_event('shutdown')\n"
            "async def close():\n"
            "    await engine.dispose()\n",
            line=2,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return "on_event" in shape.calls

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "on_event":
            return
        if is_app_or_router(func.value, self.ctx) is not True:
            first = node.args[0] if node.args and node.args[0].keyword is None else None
            if first is None or not isinstance(first.value, cst.SimpleString):
                return
            if string_value(first.value) not in ("startup", "shutdown") or dotted_cst(func.value) is None:
                return
        self.ctx.report(
            node,
            "`on_event` is deprecated: move startup and shutdown work into a `lifespan` handler "
            "(and dispose the engine there)",
        )


# -- FDB107 --------------------------------------------------------------------------


class EngineNeverDisposed(Rule):
    """
    ## What it does
    Flags a module-level async engine (`engine = create_async_engine(...)` or
    `AsyncEngine(create_engine(...))`) when no code in the project calls `.dispose()`
    on it: not directly (`await engine.dispose()`, `engine.dispose` passed as a
    callback), not through an alias or an imported name, not through a helper that
    receives the engine and disposes its parameter.

    ## Why is this bad?
    An async engine's pooled connections are closed by `await engine.dispose()`.
    Without it, shutdown leaves connections for the database to time out, and the
    interpreter may try to close asyncpg connections after the event loop is gone
    (`RuntimeError: Event loop is closed`, "connection was garbage collected"
    warnings). The lifespan is the place: `yield`, then `await engine.dispose()`.

    ## Example
    ```python
    engine = create_async_engine(settings.database_url)
    ```

    ## Use instead
    ```python
    engine = create_async_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await engine.dispose()
    ```

    ## Fix safety
    No fix. Opt-in, since it needs the whole project: linting a subset of the files
    may miss the place that disposes the engine. Engines in test files are not
    flagged. When some `.dispose()` call has a receiver the analysis cannot name
    (`app.state.engine.dispose()`, `self.engine.dispose()`), engines stored into an
    attribute anywhere in the project are assumed to be the ones disposed.
    """

    code = "FDB107"
    name = "engine-never-disposed"
    summary = "Module-level async engine never disposed"
    opt_in = True
    triggers = ("create_async_engine", "AsyncEngine")
    skip_test_files = True
    valid = [
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine(DATABASE_URL)\n",
            files={
                "app/main.py": "from contextlib import asynccontextmanager\n"
                "from fastapi import FastAPI\n"
                "from app.example import engine\n"
                "@asynccontextmanager\n"
                "async def lifespan(app: FastAPI):\n"
                "    yield\n"
                "    await engine.dispose()\n"
                "app = FastAPI(lifespan=lifespan)\n"
            },
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine(DATABASE_URL)\n",
            path="tests/conftest.py",
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine(DATABASE_URL)\n"
            "db_engine = engine\n",
            files={
                "app/main.py": "from app.example import db_engine\n"
                "async def shutdown():\n"
                "    await db_engine.dispose()\n"
            },
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine(DATABASE_URL)\n",
            files={
                "app/main.py": "from app import example\n"
                "async def shutdown():\n"
                "    e = example.engine\n"
                "    await e.dispose()\n"
            },
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine\n"
            "engine = create_async_engine(DATABASE_URL)\n"
            "async def close_engine(target: AsyncEngine) -> None:\n"
            "    await target.dispose()\n",
            files={
                "app/main.py": "from contextlib import asynccontextmanager\n"
                "from fastapi import FastAPI\n"
                "from app.example import close_engine, engine\n"
                "@asynccontextmanager\n"
                "async def lifespan(app):\n"
                "    yield\n"
                "    await close_engine(engine)\n"
                "app = FastAPI(lifespan=lifespan)\n"
            },
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine(DATABASE_URL)\n",
            files={
                "app/main.py": "from contextlib import asynccontextmanager\n"
                "from fastapi import FastAPI\n"
                "from app.example import engine\n"
                "@asynccontextmanager\n"
                "async def lifespan(app: FastAPI):\n"
                "    app.state.engine = engine\n"
                "    yield\n"
                "app = FastAPI(lifespan=lifespan)\n"
                "async def close(request):\n"
                "    await request.app.state.engine.dispose()\n"
            },
        ),
        Valid(
            "from sqlalchemy import create_engine\n"
            "engine = create_engine(DATABASE_URL)\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine\n"
            "engine = create_async_engine(DATABASE_URL)\n"
            "SessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n",
            line=2,
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine(DATABASE_URL)\n"
            "other = create_async_engine(OTHER_URL)\n",
            files={
                "app/main.py": "from app.example import other\n"
                "async def shutdown():\n"
                "    await other.dispose()\n"
            },
            line=2,
        ),
        Invalid(
            "from sqlalchemy import create_engine\n"
            "from sqlalchemy.ext.asyncio import AsyncEngine\n"
            "engine: AsyncEngine = AsyncEngine(create_engine(DATABASE_URL))\n",
            line=3,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return not shape.module_calls.isdisjoint(ASYNC_ENGINE_CONSTRUCTOR_NAMES)

    def leave_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) == 1:
            self._check(node.targets[0].target, node.value)

    def leave_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._check(node.target, node.value)

    def _check(self, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        ctx = self.ctx
        if not isinstance(target, cst.Name) or not isinstance(value, cst.Call):
            return
        if ctx.classes or executing_scope(ctx) is not None:
            return
        if ctx.callee(value) not in ASYNC_ENGINE_CONSTRUCTORS:
            return
        qualname = f"{ctx.module_name}.{target.value}" if ctx.module_name else target.value
        if ctx.project.is_disposed(qualname):
            return
        ctx.report(
            value,
            f"Async engine `{target.value}` is never disposed: `await {target.value}.dispose()` "
            "on shutdown (in the lifespan)",
        )


# -- FDB108 --------------------------------------------------------------------------


TASK_FUNCTIONS = frozenset({"asyncio.create_task", "asyncio.ensure_future"})
EVENT_LOOP_FUNCTIONS = frozenset({"asyncio.get_event_loop", "asyncio.get_running_loop", "asyncio.new_event_loop"})
TASK_GROUPS = frozenset({"asyncio.TaskGroup", "anyio.create_task_group"})
GATHER = "asyncio.gather"
# Calls that can start concurrent work: gather, the task functions and the methods of
# event loops and task groups.
TASK_CALL_NAMES = last_names({GATHER, *TASK_FUNCTIONS}) | {"create_task", "start_soon"}
_LOOPS = (cst.For, cst.While, cst.CompFor)


class SessionSharedAcrossTasks(Rule):
    """
    ## What it does
    Flags one session object used by concurrent tasks: two or more coroutines given to
    `asyncio.gather(...)` that use the same session (as an argument, `f(db)`, or as the
    receiver, `db.execute(...)`), a coroutine using a session scheduled with
    `asyncio.create_task(...)`/`ensure_future(...)`, and `TaskGroup.create_task(...)`
    (or anyio's `start_soon`) with a session inside a loop or more than once.

    ## Why is this bad?
    An `AsyncSession` (and the connection under it) is a single stateful unit of work;
    it is not safe for concurrent use. Concurrent operations fail with
    `InvalidRequestError: This session is provisioning a new connection; concurrent
    operations are not permitted`, or interleave statements and flushes in one
    transaction. A task that outlives the request also outlives the session the
    dependency closes.

    ## Example
    ```python
    users, orders = await asyncio.gather(
        session.scalars(select(User)), session.scalars(select(Order))
    )
    ```

    ## Use instead
    ```python
    users = await session.scalars(select(User))
    orders = await session.scalars(select(Order))
    ```
    or give every task its own session from the factory.

    ## Fix safety
    No fix. Not flagged: a single awaited call (`await asyncio.create_task(f(db))`,
    `gather` with one coroutine), tasks given the session *factory*, and lists of
    tasks built elsewhere (`gather(*tasks)`).
    """

    code = "FDB108"
    name = "session-shared-across-tasks"
    summary = "Session shared by concurrent tasks"
    triggers = ("gather", "create_task", "ensure_future", "start_soon")
    valid = [
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def handler(session: AsyncSession):\n"
            "    await process(session)\n"
            "    await notify(session)\n"
        ),
        Valid(
            "import asyncio\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def handler(session: AsyncSession):\n"
            "    await asyncio.create_task(process(session))\n"
            "    await asyncio.gather(process(session))\n"
        ),
        Valid(
            "import asyncio\n"
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n"
            "async def worker(item):\n"
            "    async with SessionLocal() as session:\n"
            "        await handle(session, item)\n"
            "async def run(items):\n"
            "    await asyncio.gather(*(worker(item) for item in items))\n"
            "    await asyncio.gather(worker(1), worker(2))\n"
            "    async with asyncio.TaskGroup() as tg:\n"
            "        for item in items:\n"
            "            tg.create_task(worker(item))\n"
        ),
        Valid(
            "import asyncio\n"
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "async def run(factory: async_sessionmaker, items):\n"
            "    await asyncio.gather(*[process(factory, item) for item in items])\n"
            "    asyncio.create_task(process(factory, items[0]))\n"
        ),
        Valid(
            "import asyncio\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def run(a: AsyncSession, b: AsyncSession):\n"
            "    await asyncio.gather(a.execute(q1), b.execute(q2))\n"
        ),
    ]
    invalid = [
        Invalid(
            "import asyncio\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def handler(db: AsyncSession):\n"
            "    await asyncio.gather(load_users(db), load_orders(db))\n",
            line=4,
        ),
        Invalid(
            "import asyncio\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def handler(session: AsyncSession):\n"
            "    users, orders = await asyncio.gather(\n"
            "        session.scalars(select(User)),\n"
            "        session.scalars(select(Order)),\n"
            "    )\n",
            line=4,
        ),
        Invalid(
            "import asyncio\n"
            "from typing import Annotated\n"
            "from fastapi import Depends\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "SessionDep = Annotated[AsyncSession, Depends(get_session)]\n"
            "async def create(session: SessionDep):\n"
            "    asyncio.create_task(send_welcome(session))\n",
            line=7,
        ),
        Invalid(
            "import asyncio\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def run(session: AsyncSession, items):\n"
            "    async with asyncio.TaskGroup() as tg:\n"
            "        for item in items:\n"
            "            tg.create_task(process(session, item))\n",
            line=6,
        ),
        Invalid(
            "import asyncio\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def run(session: AsyncSession, items):\n"
            "    await asyncio.gather(*[process(session, item) for item in items])\n",
            line=4,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # The tasks use a session the analysis knows (see `may_see_db_object`).
        return not shape.calls.isdisjoint(TASK_CALL_NAMES) and may_see_db_object(shape, project, SESSION_SOURCES)

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        # Names bound to task groups / event loops, per function node.
        self._groups: dict[int, dict[str, dict[str, int]]] = {}
        self._loops: dict[int, set[str]] = {}

    def visit_WithItem(self, node: cst.WithItem) -> None:
        ctx = self.ctx
        if ctx.function is None or node.asname is None or not isinstance(node.asname.name, cst.Name):
            return
        if isinstance(node.item, cst.Call) and ctx.callee(node.item) in TASK_GROUPS:
            self._groups.setdefault(id(ctx.function.node), {})[node.asname.name.value] = {}

    def leave_Assign(self, node: cst.Assign) -> None:
        ctx = self.ctx
        if ctx.function is None or len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
            return
        if isinstance(node.value, cst.Call) and ctx.callee(node.value) in EVENT_LOOP_FUNCTIONS:
            self._loops.setdefault(id(ctx.function.node), set()).add(node.targets[0].target.value)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        if ctx.function is None:
            return
        callee = ctx.callee(node)
        if callee == GATHER:
            self._gather(node)
            return
        func = node.func
        if callee in TASK_FUNCTIONS or (
            isinstance(func, cst.Attribute)
            and func.attr.value == "create_task"
            and isinstance(func.value, cst.Name)
            and ctx.function is not None
            and func.value.value in self._loops.get(id(ctx.function.node), ())
        ):
            if isinstance(ctx.parent, cst.Await) or not node.args:
                return
            if _sessions_used_by(node.args[0].value, ctx):
                ctx.report(node, "Session passed to a concurrent task: `AsyncSession` is not safe for concurrent use")
            return
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value in ("create_task", "start_soon")
            and isinstance(func.value, cst.Name)
            and ctx.function is not None
        ):
            group = self._groups.get(id(ctx.function.node), {}).get(func.value.value)
            if group is None or not node.args:
                return
            if func.attr.value == "create_task":
                keys = _sessions_used_by(node.args[0].value, ctx)
            else:
                keys = {k for a in node.args[1:] if not a.star for k in [_session_key(a.value, ctx)] if k}
            if not keys:
                return
            in_loop = any(isinstance(n, _LOOPS) for n in self._since_function())
            repeated = any(group.get(k, 0) for k in keys)
            for key in keys:
                group[key] = group.get(key, 0) + 1
            if in_loop or repeated:
                ctx.report(
                    node, "Session shared by tasks of one task group: `AsyncSession` is not safe for concurrent use"
                )

    def _since_function(self) -> list[cst.CSTNode]:
        stack = self.ctx.stack
        for index in range(len(stack) - 1, -1, -1):
            if isinstance(stack[index], (cst.FunctionDef, cst.Lambda)):
                return stack[index + 1 :]
        return stack

    def _gather(self, node: cst.Call) -> None:
        ctx = self.ctx
        counts: dict[str, int] = {}
        for arg in node.args:
            if arg.keyword is not None:
                continue
            value = arg.value
            if arg.star == "*":
                if isinstance(value, (cst.ListComp, cst.GeneratorExp, cst.SetComp)):
                    for key in _sessions_used_by(value.elt, ctx):
                        counts[key] = counts.get(key, 0) + 2
                continue
            if isinstance(value, cst.Call) and ctx.callee(value) in TASK_FUNCTIONS:
                continue  # reported at the create_task call
            for key in _sessions_used_by(value, ctx):
                counts[key] = counts.get(key, 0) + 1
        if any(count > 1 for count in counts.values()):
            ctx.report(
                node, "The same session is used by concurrent coroutines: `AsyncSession` is not safe for concurrent use"
            )


# -- FDB109 --------------------------------------------------------------------------


BACKGROUND_TASKS = "fastapi.BackgroundTasks"
BACKGROUND_TASK = "fastapi.BackgroundTask"
_BACKGROUND_TASKS_NAME = BACKGROUND_TASKS.rsplit(".", 1)[-1]
_BACKGROUND_TASK_NAME = BACKGROUND_TASK.rsplit(".", 1)[-1]


class SessionInBackgroundTask(Rule):
    """
    ## What it does
    Flags a request-scoped session (a parameter of a route handler or dependency that
    the analysis knows to be a session) passed to `BackgroundTasks.add_task(...)` or
    `BackgroundTask(...)`, directly, as a keyword argument, through
    `functools.partial` or inside a `lambda`.

    ## Why is this bad?
    Background tasks run after the response is sent. The session belongs to the
    request's dependency, whose cleanup FastAPI versions order differently relative
    to background tasks (0.106-0.117 close it before the task runs): the task then
    works on a closed session, or keeps the request's connection checked out while
    it runs. A background task should open its own session.

    ## Example
    ```python
    @router.post("/signup")
    async def signup(tasks: BackgroundTasks, session: SessionDep):
        tasks.add_task(send_welcome, session, user.id)
    ```

    ## Use instead
    ```python
    @router.post("/signup")
    async def signup(tasks: BackgroundTasks, session: SessionDep):
        tasks.add_task(send_welcome, SessionLocal, user.id)  # opens its own session
    ```

    ## Fix safety
    No fix: the task function has to open its own session. Passing the session
    *factory* is not flagged, nor are sessions the task receives in other ways.
    """

    code = "FDB109"
    name = "session-in-background-task"
    summary = "Request-scoped session passed to a background task"
    triggers = ("add_task", "BackgroundTask")
    valid = [
        Valid(
            "from fastapi import APIRouter, BackgroundTasks, Depends\n"
            "from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n"
            "router = APIRouter()\n"
            "@router.post('/signup')\n"
            "async def signup(tasks: BackgroundTasks, session: AsyncSession = Depends(get_session)):\n"
            "    tasks.add_task(send_welcome, SessionLocal, 1)\n"
        ),
        Valid(
            "from fastapi import APIRouter, BackgroundTasks\n"
            "router = APIRouter()\n"
            "@router.post('/ping')\n"
            "async def ping(tasks: BackgroundTasks, session):\n"
            "    tasks.add_task(log_ping, session)\n"
        ),
    ]
    invalid = [
        Invalid(
            "from fastapi import APIRouter, BackgroundTasks, Depends\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "router = APIRouter()\n"
            "@router.post('/signup')\n"
            "async def signup(tasks: BackgroundTasks, session: AsyncSession = Depends(get_session)):\n"
            "    tasks.add_task(send_welcome, session, 1)\n",
            line=6,
        ),
        Invalid(
            "from fastapi import Depends, FastAPI\n"
            "from sqlalchemy.orm import Session\n"
            "from starlette.background import BackgroundTask\n"
            "from starlette.responses import JSONResponse\n"
            "app = FastAPI()\n"
            "@app.post('/export')\n"
            "def export(db: Session = Depends(get_db)):\n"
            "    return JSONResponse({}, background=BackgroundTask(run_export, db=db))\n",
            line=8,
        ),
        Invalid(
            "from functools import partial\n"
            "from fastapi import BackgroundTasks, FastAPI\n"
            "from sqlalchemy.orm import Session\n"
            "app = FastAPI()\n"
            "@app.post('/a')\n"
            "def a(background_tasks: BackgroundTasks, db: Session):\n"
            "    background_tasks.add_task(partial(audit, db))\n"
            "    background_tasks.add_task(lambda: audit(db))\n",
            count=2,
            line=7,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # `add_task` counts on a `BackgroundTasks()` local or a parameter annotated with
        # it; what is reported is a name the session analysis may type, passed in the
        # call (directly, or through `partial(...)` or a `lambda`).
        calls = shape.calls
        tasks = _BACKGROUND_TASK_NAME in calls or ("add_task" in calls and _BACKGROUND_TASKS_NAME in shape.names)
        return tasks and not shape.task_argument_names.isdisjoint(typed_names(shape, project, SESSION_SOURCES))

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._local_tasks: dict[int, set[str]] = {}

    def leave_Assign(self, node: cst.Assign) -> None:
        ctx = self.ctx
        if ctx.function is None or len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
            return
        if isinstance(node.value, cst.Call) and ctx.callee(node.value) == BACKGROUND_TASKS:
            self._local_tasks.setdefault(id(ctx.function.node), set()).add(node.targets[0].target.value)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        scope = ctx.function
        if scope is None or not (scope.is_route or scope.is_dependency):
            return
        func = node.func
        if ctx.callee(node) == BACKGROUND_TASK:
            args = node.args
        elif isinstance(func, cst.Attribute) and func.attr.value == "add_task" and self._is_tasks(func.value, scope):
            args = node.args
        else:
            return
        if any(self._request_session(arg, scope, index) for index, arg in enumerate(args)):
            ctx.report(
                node,
                "Request-scoped session passed to a background task: the task runs after the "
                "request; let it open its own session",
            )

    def _is_tasks(self, expr: cst.BaseExpression, scope: FunctionScope) -> bool:
        if not isinstance(expr, cst.Name):
            return False
        if expr.value in self._local_tasks.get(id(scope.node), ()):
            return True
        param = scope.params.get(expr.value)
        return (
            param is not None
            and param.annotation is not None
            and self.ctx.qualname(param.annotation.annotation) == BACKGROUND_TASKS
        )

    def _request_session(self, arg: cst.Arg, scope: FunctionScope, index: int) -> bool:
        value = arg.value
        if arg.star:
            return False
        if index == 0 and arg.keyword is None:
            # The task function itself: `partial(f, db)` or `lambda: f(db)`.
            if isinstance(value, cst.Call) and self.ctx.callee(value) == "functools.partial":
                return any(self._request_session(a, scope, i + 1) for i, a in enumerate(value.args[1:]))
            if isinstance(value, cst.Lambda) and isinstance(value.body, cst.Call):
                return any(self._is_param_session(a.value, scope) for a in value.body.args if not a.star)
            return False
        return self._is_param_session(value, scope)

    def _is_param_session(self, value: cst.BaseExpression, scope: FunctionScope) -> bool:
        return isinstance(value, cst.Name) and value.value in scope.params and self.ctx.is_session(value)
