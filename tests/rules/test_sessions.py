"""FDB1xx and FDB901 beyond the embedded examples: several files, project-wide facts,
messages, positions and the shared lifespan/cache analysis."""

from __future__ import annotations

import ast
import textwrap

import libcst as cst

from fastdb_lint.analysis.fastapi import is_cached_function, is_lifespan
from fastdb_lint.analysis.index import collect_facts
from fastdb_lint.analysis.sessions import SessionTypes
from fastdb_lint.analysis.shape import file_shape
from fastdb_lint.context import FileContext
from fastdb_lint.diagnostics import Finding
from fastdb_lint.engine import build_index, lint_sources, project_terms
from fastdb_lint.registry import all_rules
from fastdb_lint.rules.base import Rule

DB = """
from typing import Annotated
from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

engine = create_async_engine("postgresql+asyncpg://db/app")
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


async def get_session():
    async with SessionLocal() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
"""


def lint(code: str, select: str, path: str = "app/example.py", **files: str) -> list[Finding]:
    sources = {name: textwrap.dedent(text) for name, text in files.items()}
    sources[path] = textwrap.dedent(code)
    return [f for f in lint_sources(sources, select=(select,))[path] if f.code == select]


def rows(findings: list[Finding]) -> list[int]:
    return [f.start.row for f in findings]


# -- FDB101 --------------------------------------------------------------------------


def test_global_session_from_factory_defined_in_another_file() -> None:
    code = """
    from app.db import SessionLocal

    session = SessionLocal()
    other: object = SessionLocal()
    """
    findings = lint(code, "FDB101", **{"app/db.py": DB})
    assert rows(findings) == [4, 5]
    assert "import time" in findings[0].message


def test_global_session_not_flagged_inside_functions_lambdas_or_registries() -> None:
    code = """
    from sqlalchemy.orm import scoped_session
    from app.db import SessionLocal

    registry = scoped_session(SessionLocal)

    def make():
        return SessionLocal()

    factory = lambda: SessionLocal()

    class Service:
        def __init__(self) -> None:
            self.session = SessionLocal()
    """
    assert lint(code, "FDB101", **{"app/db.py": DB}) == []


def test_global_session_ignores_names_that_only_look_like_factories() -> None:
    code = """
    from mylib import SessionLocal, Session

    db = SessionLocal()
    s = Session("http://example.com")
    """
    assert lint(code, "FDB101") == []


# -- FDB102 / FDB103 -----------------------------------------------------------------


def test_engine_in_dependency_defined_in_another_module() -> None:
    deps = """
    from sqlalchemy.ext.asyncio import create_async_engine

    async def get_engine():
        return create_async_engine("sqlite+aiosqlite://")
    """
    routes = """
    from fastapi import APIRouter, Depends
    from app.deps import get_engine

    router = APIRouter()

    @router.get("/x")
    async def x(engine=Depends(get_engine)):
        pass
    """
    findings = lint(deps, "FDB102", path="app/deps.py", **{"app/routes.py": routes})
    assert rows(findings) == [5]
    assert "dependency `get_engine`" in findings[0].message


def test_engine_in_plain_helper_or_nested_function_is_not_flagged() -> None:
    code = """
    from fastapi import FastAPI
    from sqlalchemy import create_engine

    app = FastAPI()

    def build_engine(url):
        return create_engine(url)

    @app.get("/x")
    def x():
        def later():
            return create_engine("sqlite://")
        return later

    @app.get("/y")
    def y(engine=create_engine("sqlite://")):
        pass
    """
    assert lint(code, "FDB102") == []


def test_lifespan_that_is_also_a_dependency_is_not_flagged() -> None:
    code = """
    from contextlib import asynccontextmanager
    from fastapi import Depends, FastAPI
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    @asynccontextmanager
    async def lifespan(app):
        engine = create_async_engine("postgresql+asyncpg://db/app")
        app.state.factory = async_sessionmaker(engine)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/x")
    async def x(state=Depends(lifespan)):
        pass
    """
    assert lint(code, "FDB102") == []
    assert lint(code, "FDB103") == []
    without_lifespan = (
        textwrap.dedent(code).replace("FastAPI(lifespan=lifespan)", "FastAPI()").replace("@asynccontextmanager\n", "")
    )
    assert rows(lint(without_lifespan, "FDB102")) == [7]
    assert rows(lint(without_lifespan, "FDB103")) == [8]


def test_sessionmaker_in_route_reports_once_per_call() -> None:
    code = """
    from fastapi import FastAPI
    from sqlalchemy.orm import sessionmaker

    app = FastAPI()

    @app.post("/x")
    def x():
        a = sessionmaker(bind=engine)
        b = sessionmaker(bind=engine)
    """
    findings = lint(code, "FDB103")
    assert rows(findings) == [9, 10]
    assert "route handler `x`" in findings[0].message


# -- lifespan / cache analysis -------------------------------------------------------


def _function_flags(code: str, files: dict[str, str] | None = None) -> dict[str, tuple[bool, bool]]:
    """name -> (is_cached, is_lifespan) for every function of ``code`` (app/example.py)."""
    sources = {**(files or {}), "app/example.py": textwrap.dedent(code)}
    project = build_index([(p, p, t) for p, t in sources.items()])
    from fastdb_lint.analysis.sessions import SessionTypes
    from fastdb_lint.context import run_traversal
    from fastdb_lint.source import SourceText

    text = sources["app/example.py"]
    ctx = FileContext(
        path="app/example.py",
        relpath="app/example.py",
        source=SourceText(text),
        module=cst.parse_module(text),
        project=project,
        sessions=SessionTypes(project),
        facts=project.by_path.get("app/example.py"),
        is_test_file=False,
    )
    seen: dict[str, tuple[bool, bool]] = {}

    class Probe(Rule):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            scope = self.ctx.function
            assert scope is not None
            seen[node.name.value] = (is_cached_function(node, self.ctx), is_lifespan(node, scope.qualname, self.ctx))

    run_traversal(ctx, [Probe(ctx)])
    return seen


def test_cache_decorators_are_recognised_by_import() -> None:
    code = """
    import functools
    from functools import lru_cache, cache as memo

    @lru_cache
    def a(): ...

    @functools.lru_cache(maxsize=1)
    def b(): ...

    @memo
    def c(): ...

    @my_cache
    def d(): ...
    """
    flags = _function_flags(code)
    assert [flags[n][0] for n in "abcd"] == [True, True, True, False]


def test_lifespans_are_found_across_files_and_nested() -> None:
    main = """
    from fastapi import FastAPI
    from app.example import lifespan

    app = FastAPI(lifespan=lifespan)
    """
    code = """
    from contextlib import asynccontextmanager
    from fastapi import FastAPI

    async def lifespan(app):
        yield

    @asynccontextmanager
    async def typed(app: FastAPI):
        yield

    @asynccontextmanager
    async def untyped(app):
        yield

    def create_app():
        async def inner(app):
            yield
        return FastAPI(lifespan=inner)
    """
    flags = _function_flags(code, {"app/main.py": textwrap.dedent(main)})
    assert flags["lifespan"][1] and flags["typed"][1] and flags["inner"][1]
    assert not flags["untyped"][1] and not flags["create_app"][1]


def test_same_module_depends_targets_are_indexed() -> None:
    facts = collect_facts(
        "app/x.py",
        "app/x.py",
        "from fastapi import Depends\ndef get_db():\n    yield 1\ndef route(db=Depends(get_db)):\n    pass\n",
    )
    assert facts.depends == {"app.x.get_db"}


# -- FDB104 --------------------------------------------------------------------------


def test_unclosed_session_reports_each_creation_at_the_assignment() -> None:
    code = """
    from app.db import SessionLocal

    async def job(items):
        for item in items:
            session = SessionLocal()
            session.add(item)
            await session.commit()

    async def other():
        s = SessionLocal()
        await s.execute(1)
    """
    findings = lint(code, "FDB104", **{"app/db.py": DB})
    assert rows(findings) == [6, 11]
    assert findings[0].start.column == 9
    assert "`session`" in findings[0].message


def test_unclosed_session_handed_to_known_function_is_flagged_but_to_unknown_code_is_not() -> None:
    crud = "def get_user(session, user_id):\n    return None\n"
    code = """
    from app import crud
    from app.db import SessionLocal

    async def known(user_id):
        session = SessionLocal()
        return crud.get_user(session, user_id)

    async def unknown(user_id):
        session = SessionLocal()
        return unresolved_helper(session, user_id)

    class Repo:
        def __init__(self, session):
            self.session = session

    async def wrapped():
        session = SessionLocal()
        return Repo(session)
    """
    findings = lint(code, "FDB104", **{"app/db.py": DB, "app/crud.py": crud})
    assert rows(findings) == [6]


def test_unclosed_session_close_outside_finally_is_flagged_in_code_but_not_in_fixtures() -> None:
    code = """
    import pytest
    from app.db import SessionLocal

    def plain():
        session = SessionLocal()
        yield session
        session.close()

    @pytest.fixture
    def fixture():
        session = SessionLocal()
        yield session
        session.close()
    """
    assert rows(lint(code, "FDB104", **{"app/db.py": DB})) == [6]


def test_unclosed_session_callbacks_exit_stacks_and_closures_count_as_closing() -> None:
    code = """
    import atexit
    from contextlib import AsyncExitStack
    from app.db import SessionLocal

    def a():
        s = SessionLocal()
        atexit.register(s.close)

    async def b(stack: AsyncExitStack):
        s = SessionLocal()
        await stack.enter_async_context(s)

    def c():
        s = SessionLocal()
        def cleanup():
            s.close()
        return cleanup

    def d():
        global s
        s = SessionLocal()
    """
    assert lint(code, "FDB104", **{"app/db.py": DB}) == []


# -- FDB105 --------------------------------------------------------------------------


def test_dependency_returning_session_reported_at_return() -> None:
    deps = """
    from sqlalchemy.orm import Session

    def get_db():
        db = Session(engine)
        if db is None:
            return None
        return db

    def not_a_dependency():
        return Session(engine)
    """
    routes = """
    from fastapi import Depends
    from app.deps import get_db

    def route(db=Depends(get_db)):
        pass
    """
    findings = lint(deps, "FDB105", path="app/deps.py", **{"app/routes.py": routes})
    assert rows(findings) == [8]
    assert findings[0].start.column == 5
    assert "`get_db`" in findings[0].message


def test_dependency_returning_reassigned_name_is_not_flagged() -> None:
    code = """
    from fastapi import Depends
    from sqlalchemy.orm import Session

    def get_repo():
        db = Session(engine)
        db = Repo(db)
        return db

    def route(repo=Depends(get_repo)):
        pass
    """
    assert lint(code, "FDB105") == []


# -- FDB106 --------------------------------------------------------------------------


def test_on_event_on_app_built_elsewhere_and_called_form() -> None:
    main = """
    from fastapi import FastAPI

    app = FastAPI()
    """
    code = """
    from app.main import app

    @app.on_event(EVENT_NAME)
    async def startup():
        pass

    app.on_event("shutdown")(close_engine)
    """
    findings = lint(code, "FDB106", **{"app/main.py": main})
    assert rows(findings) == [4, 8]
    assert "lifespan" in findings[0].message


def test_on_event_of_an_unknown_object_needs_a_startup_or_shutdown_literal() -> None:
    code = """
    @bus.on_event("message")
    def handle(msg):
        pass

    @bus.on_event(name)
    def other(msg):
        pass
    """
    assert lint(code, "FDB106") == []


# -- FDB107 --------------------------------------------------------------------------


def test_engine_disposed_through_reexport_in_package_init() -> None:
    init = "from app.db import engine\n"
    main = """
    from fastapi import FastAPI
    from app import engine

    async def shutdown():
        await engine.dispose()
    """
    assert lint(DB, "FDB107", path="app/db.py", **{"app/__init__.py": init, "app/main.py": main}) == []


def test_engine_disposed_through_a_method_helper_and_a_callback() -> None:
    helper = """
    from sqlalchemy.ext.asyncio import AsyncEngine

    class Database:
        async def close(self, target: AsyncEngine) -> None:
            await target.dispose()
    """
    main = """
    from fastapi import FastAPI
    from app.db import engine
    from app.helpers import Database

    async def shutdown(database: Database):
        await database.close(engine)
    """
    files = {"app/helpers.py": helper, "app/main.py": main}
    assert lint(DB, "FDB107", path="app/db.py", **files) == []
    callback = """
    import atexit
    from fastapi import FastAPI
    from app.db import engine

    atexit.register(engine.sync_engine.dispose)
    """
    assert lint(DB, "FDB107", path="app/db.py", **{"app/main.py": callback}) == []


def test_engine_disposed_elsewhere_does_not_hide_another_engine() -> None:
    main = """
    from fastapi import FastAPI
    from app.db import engine

    async def shutdown(app: FastAPI):
        await engine.dispose()
        await app.state.cache.close()
    """
    code = DB + '\nreplica = create_async_engine("postgresql+asyncpg://replica/app")\n'
    findings = lint(code, "FDB107", path="app/db.py", **{"app/main.py": main})
    assert rows(findings) == [17]
    assert "`replica`" in findings[0].message


def test_engine_never_disposed_is_opt_in() -> None:
    sources = {"app/db.py": textwrap.dedent(DB)}
    assert all(f.code != "FDB107" for f in lint_sources(sources)["app/db.py"])
    assert any(f.code == "FDB107" for f in lint_sources(sources, select=("FDB107",))["app/db.py"])


# -- FDB108 --------------------------------------------------------------------------


def test_session_shared_across_tasks_through_a_project_alias() -> None:
    code = """
    import asyncio
    from fastapi import APIRouter
    from app.db import SessionDep

    router = APIRouter()

    @router.get("/dashboard")
    async def dashboard(session: SessionDep):
        loop = asyncio.get_running_loop()
        loop.create_task(refresh(session))
        a, b = await asyncio.gather(count_users(session), count_orders(session=session))
        c, d = await asyncio.gather(count_users(session), count_orders())
        task = asyncio.ensure_future(refresh(session))
    """
    findings = lint(code, "FDB108", **{"app/db.py": DB})
    assert rows(findings) == [11, 12, 14]


def test_task_group_reports_the_second_task_sharing_the_session() -> None:
    code = """
    import asyncio
    from sqlalchemy.ext.asyncio import AsyncSession

    async def run(session: AsyncSession, other: AsyncSession):
        async with asyncio.TaskGroup() as tg:
            tg.create_task(a(session))
            tg.create_task(b(other))
            tg.create_task(c(session))
    """
    assert rows(lint(code, "FDB108")) == [9]


# -- FDB109 --------------------------------------------------------------------------


def test_background_task_in_dependency_and_local_background_tasks() -> None:
    code = """
    from fastapi import BackgroundTasks, Depends, FastAPI
    from app.db import SessionDep

    app = FastAPI()

    async def audit(session: SessionDep, tasks: BackgroundTasks):
        tasks.add_task(write_audit, session=session)

    @app.post("/x")
    async def x(session: SessionDep, dep=Depends(audit)):
        tasks = BackgroundTasks()
        tasks.add_task(write_audit, session)
        local = 1
        tasks.add_task(write_audit, local)
    """
    findings = lint(code, "FDB109", **{"app/db.py": DB})
    assert rows(findings) == [8, 13]


def test_background_task_with_session_opened_in_the_route_is_not_fdb109() -> None:
    code = """
    from fastapi import BackgroundTasks, FastAPI
    from app.db import SessionLocal

    app = FastAPI()

    @app.post("/x")
    async def x(tasks: BackgroundTasks):
        async with SessionLocal() as session:
            tasks.add_task(work, session)
    """
    assert lint(code, "FDB109", **{"app/db.py": DB}) == []


# -- FDB901 --------------------------------------------------------------------------


def test_session_created_in_route_with_registry_and_factory_parameter() -> None:
    code = """
    from fastapi import FastAPI
    from sqlalchemy.orm import scoped_session, sessionmaker

    app = FastAPI()
    Registry = scoped_session(sessionmaker())

    @app.get("/a")
    def a():
        session = Registry()
        return session.execute(stmt)

    @app.get("/b")
    async def b():
        def helper():
            return Registry()
        return helper
    """
    findings = lint(code, "FDB901")
    assert rows(findings) == [10]
    assert "`a`" in findings[0].message


def test_session_created_in_route_not_flagged_in_dependencies() -> None:
    code = """
    from fastapi import Depends, FastAPI
    from app.db import SessionLocal

    app = FastAPI()

    async def get_db():
        async with SessionLocal() as session:
            yield session

    @app.get("/a")
    async def a(db=Depends(get_db)):
        pass
    """
    assert lint(code, "FDB901", **{"app/db.py": DB}) == []


# -- shape preconditions -------------------------------------------------------------


def _applies(code: str, select: str, **files: str) -> bool:
    """Whether the rule applies to the shape of ``code`` (at app/example.py), with the
    project terms the index of ``files`` and ``code`` gives."""
    sources = {name: textwrap.dedent(text) for name, text in files.items()}
    sources["app/example.py"] = textwrap.dedent(code)
    index = build_index([(p, p, t) for p, t in sources.items()])
    terms = project_terms(index, SessionTypes(index))
    return all_rules()[select].applies(file_shape(ast.parse(sources["app/example.py"])), terms)


def _applies_and_reports(code: str, select: str, count: int = 1, **files: str) -> None:
    assert _applies(code, select, **files)
    assert len(lint(code, select, **files)) == count


ROUTES = """
from fastapi import APIRouter
from sqlalchemy import select
from app.db import SessionDep

router = APIRouter()


@router.get("/users")
async def list_users(session: SessionDep):
    return (await session.scalars(select(User))).all()
"""

CRUD = """
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession


async def get_user(session: AsyncSession, user_id: int):
    return await session.get(User, user_id)


async def list_users(session: AsyncSession):
    return (await session.scalars(select(User))).all()
"""


def test_global_session_applies_only_to_import_time_creations() -> None:
    # The factory is called in functions only; the module level builds a router.
    code = """
    from fastapi import APIRouter
    from app.db import SessionLocal

    router = APIRouter()

    async def get_session():
        async with SessionLocal() as session:
            yield session
    """
    assert not _applies(code, "FDB101", **{"app/db.py": DB})
    assert not _applies(ROUTES, "FDB101", **{"app/db.py": DB})


def test_global_session_applies_through_aliases_modules_and_factory_calls() -> None:
    aliased = """
    from app.db import SessionLocal as make_session

    db = make_session()
    """
    _applies_and_reports(aliased, "FDB101", **{"app/db.py": DB})
    module = """
    import sqlalchemy.orm as orm

    class Repository:
        session = orm.Session(engine)
    """
    _applies_and_reports(module, "FDB101")
    factory_call = """
    from sqlalchemy.orm import sessionmaker

    db = sessionmaker(bind=engine)()
    """
    _applies_and_reports(factory_call, "FDB101")


def test_per_request_factories_apply_only_where_the_constructor_is_called() -> None:
    assert not _applies(ROUTES, "FDB102", **{"app/db.py": DB})
    assert not _applies(ROUTES, "FDB103", **{"app/db.py": DB})
    # Named in an annotation only.
    typed = """
    from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

    def bind(engine: AsyncEngine, factory: async_sessionmaker) -> None:
        factory.configure(bind=engine)
    """
    assert not _applies(typed, "FDB102")
    assert not _applies(typed, "FDB103")
    code = """
    from fastapi import Depends
    from sqlalchemy.ext.asyncio import async_sessionmaker as make_factory
    import sqlalchemy as sa

    def get_engine():
        return sa.create_engine(URL)

    async def get_session(engine=Depends(get_engine)):
        factory = make_factory(engine)
        async with factory() as session:
            yield session

    async def route(session=Depends(get_session)):
        pass
    """
    _applies_and_reports(code, "FDB102")
    _applies_and_reports(code, "FDB103")


def test_session_creation_rules_skip_files_that_only_receive_sessions() -> None:
    for select in ("FDB104", "FDB105", "FDB901"):
        assert not _applies(CRUD, select, **{"app/db.py": DB})
    # A scoped_session registry is only a creation for FDB101 and FDB901.
    registry = """
    from sqlalchemy.orm import scoped_session

    def job(registry: scoped_session):
        session = registry()
        session.execute(stmt)
    """
    assert not _applies(registry, "FDB104")
    assert not _applies(registry, "FDB105")


def test_unclosed_session_applies_to_factories_bound_to_parameters_and_locals() -> None:
    parameter = """
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    async def job(factory: async_sessionmaker[AsyncSession]):
        session = factory()
        await session.execute(stmt)
    """
    _applies_and_reports(parameter, "FDB104")
    string_annotation = """
    from sqlalchemy import orm

    def job(factory: "orm.sessionmaker"):
        db = factory()
        db.execute(stmt)
    """
    _applies_and_reports(string_annotation, "FDB104")
    local = """
    from app.db import SessionLocal

    async def job():
        make = SessionLocal
        session = make()
        await session.execute(stmt)
    """
    _applies_and_reports(local, "FDB104", **{"app/db.py": DB})
    attribute = """
    from sqlalchemy.orm import sessionmaker

    class Jobs:
        def __init__(self, factory: sessionmaker) -> None:
            self.factory = factory

        def run(self):
            db = self.factory()
            db.execute(stmt)
    """
    _applies_and_reports(attribute, "FDB104")


def test_dependency_returns_session_applies_to_a_factory_from_another_dependency() -> None:
    factories = """
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    SessionLocal = async_sessionmaker(engine)

    def get_factory() -> async_sessionmaker[AsyncSession]:
        return SessionLocal
    """
    code = """
    from fastapi import Depends
    from app.factories import get_factory

    def get_db(factory=Depends(get_factory)):
        return factory()

    def route(db=Depends(get_db)):
        pass
    """
    _applies_and_reports(code, "FDB105", **{"app/factories.py": factories})


def test_on_event_and_engine_never_disposed_preconditions() -> None:
    lifespan = """
    from contextlib import asynccontextmanager
    from fastapi import FastAPI
    from sqlalchemy.ext.asyncio import create_async_engine

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.engine = create_async_engine(URL)
        yield
        await app.state.engine.dispose()

    app = FastAPI(lifespan=lifespan)
    """
    assert not _applies(lifespan, "FDB106")
    assert not _applies(lifespan, "FDB107")  # the engine is created in a function
    sync_engine = "from sqlalchemy import create_engine\nengine = create_engine(URL)\n"
    assert not _applies(sync_engine, "FDB107")
    on_event = """
    from fastapi import APIRouter

    router = APIRouter()

    @router.on_event("startup")
    def startup():
        pass
    """
    _applies_and_reports(on_event, "FDB106")
    aliased = """
    from sqlalchemy.ext.asyncio import create_async_engine as make_engine

    engine = make_engine(URL)
    """
    _applies_and_reports(aliased, "FDB107")


def test_tasks_and_background_tasks_preconditions() -> None:
    sequential = """
    from sqlalchemy.ext.asyncio import AsyncSession
    from fastapi import BackgroundTasks

    async def handler(session: AsyncSession, tasks: BackgroundTasks):
        await load_users(session)
        await load_orders(session)
    """
    assert not _applies(sequential, "FDB108")
    assert not _applies(sequential, "FDB109")
    # `add_task` of something that is not FastAPI's BackgroundTasks.
    queue = """
    from sqlalchemy.orm import Session

    def enqueue(queue, db: Session):
        queue.add_task(export, db)
    """
    assert not _applies(queue, "FDB109")
    task_group = """
    import anyio
    from sqlalchemy.ext.asyncio import AsyncSession

    async def run(session: AsyncSession, items):
        async with anyio.create_task_group() as tg:
            for item in items:
                tg.start_soon(process, session, item)
    """
    _applies_and_reports(task_group, "FDB108")
    aliased = """
    from fastapi import APIRouter, BackgroundTasks as Tasks, Depends
    from sqlalchemy.orm import Session

    router = APIRouter()

    @router.post("/signup")
    def signup(tasks: Tasks, db: Session = Depends(get_db)):
        tasks.add_task(send_welcome, db)
    """
    _applies_and_reports(aliased, "FDB109")
    # The task is handed ids only; the session is typed elsewhere in the file.
    ids_only = """
    from fastapi import APIRouter, BackgroundTasks, Depends
    from sqlalchemy.orm import Session

    router = APIRouter()

    @router.post("/incidents")
    def create(tasks: BackgroundTasks, db: Session = Depends(get_db)):
        incident = save(db)
        tasks.add_task(notify, incident_id=incident.id, organization=org)
    """
    assert not _applies(ids_only, "FDB109")
    through_partial = """
    from functools import partial
    from fastapi import APIRouter, BackgroundTasks, Depends
    from sqlalchemy.orm import Session

    router = APIRouter()

    @router.post("/incidents")
    def create(tasks: BackgroundTasks, db: Session = Depends(get_db)):
        tasks.add_task(partial(notify, db))
    """
    _applies_and_reports(through_partial, "FDB109")
    through_lambda = through_partial.replace("partial(notify, db)", "lambda: notify(db)")
    _applies_and_reports(through_lambda, "FDB109")
    aliased_task = """
    from fastapi import APIRouter, Depends
    from starlette.background import BackgroundTask as Job
    from sqlalchemy.orm import Session

    router = APIRouter()

    @router.post("/incidents")
    def create(db: Session = Depends(get_db)):
        return Response(background=Job(notify, db))
    """
    _applies_and_reports(aliased_task, "FDB109")


def test_session_created_in_route_needs_a_route_decorator_and_a_creation() -> None:
    script = """
    from sqlalchemy.orm import Session

    def main():
        with Session(engine) as session:
            seed(session)
    """
    assert not _applies(script, "FDB901")
    # `begin()` on a project factory imported under another name.
    begin = """
    from fastapi import APIRouter
    from app.db import SessionLocal as AuditSessions

    router = APIRouter()

    @router.post("/orders")
    async def create_order():
        async with AuditSessions.begin() as audit:
            audit.add(AuditLog(action="order"))
    """
    _applies_and_reports(begin, "FDB901", **{"app/db.py": DB})
    # A registry parameter, in a route defined inside a function.
    nested = """
    from fastapi import Depends, FastAPI
    from sqlalchemy.orm import scoped_session

    def create_app() -> FastAPI:
        app = FastAPI()

        @app.get("/items")
        def items(registry: scoped_session = Depends(get_registry)):
            db = registry()
            return db.execute(stmt).all()

        return app
    """
    _applies_and_reports(nested, "FDB901")


def test_global_session_skips_module_level_factories_and_applies_to_called_registries() -> None:
    factories = """
    from sqlalchemy.orm import scoped_session, sessionmaker

    SessionLocal = sessionmaker(bind=engine)
    registry = scoped_session(SessionLocal)
    """
    assert not _applies(factories, "FDB101")
    called_registry = """
    from sqlalchemy.orm import scoped_session as make_registry

    db = make_registry(factory)()
    """
    _applies_and_reports(called_registry, "FDB101")


# A test helper whose registry is named like the session class.
REGISTRY_HELPER = """
from sqlalchemy.orm import scoped_session, sessionmaker

Session = scoped_session(sessionmaker())
"""


def test_session_created_in_route_skips_method_calls_named_like_routes() -> None:
    # `.get()`/`.delete()` calls, a project factory, no route decorator.
    service = """
    from app.db import SessionLocal

    async def purge(cache: dict, user_id: int):
        async with SessionLocal() as session:
            user = await session.get(User, cache.get(user_id))
            await session.delete(user)
    """
    assert not _applies(service, "FDB901", **{"app/db.py": DB})


def test_project_symbols_named_like_the_session_class() -> None:
    # `Session` here is SQLAlchemy's class, not the project's registry.
    typed = """
    from fastapi import APIRouter
    from sqlalchemy.orm import Session

    router = APIRouter()

    @router.get("/users")
    def list_users(db: Session = Depends(get_db)):
        return db.query(User).all()
    """
    assert not _applies(typed, "FDB901", **{"app/database.py": REGISTRY_HELPER})
    imported = """
    from fastapi import APIRouter
    from app.database import Session as Registry

    router = APIRouter()

    @router.get("/users")
    def list_users():
        db = Registry()
        return db.query(User).all()
    """
    _applies_and_reports(imported, "FDB901", **{"app/database.py": REGISTRY_HELPER})
    attribute = """
    from fastapi import APIRouter
    from sqlalchemy.orm import Session
    from app import database

    router = APIRouter()

    @router.get("/users")
    def list_users(db: Session = Depends(get_db)):
        registry = database.Session
        return registry().query(User).all()
    """
    _applies_and_reports(attribute, "FDB901", **{"app/database.py": REGISTRY_HELPER})
    relative = """
    from fastapi import APIRouter
    from .database import Session

    router = APIRouter()

    @router.get("/users")
    def list_users():
        return Session().query(User).all()
    """
    _applies_and_reports(relative, "FDB901", **{"app/database.py": REGISTRY_HELPER})
    # A factory named `Session`, for the rules that create sessions from factories.
    factory_helper = "from sqlalchemy.orm import sessionmaker\nSession = sessionmaker()\n"
    crud = """
    from sqlalchemy.orm import Session

    def count_users(db: Session) -> int:
        return db.query(User).count()
    """
    assert not _applies(crud, "FDB104", **{"app/database.py": factory_helper})
    job = """
    from sqlalchemy.orm import Session as OrmSession
    from app.database import Session

    def count_users() -> int:
        db: OrmSession = Session()
        return db.query(User).count()
    """
    _applies_and_reports(job, "FDB104", **{"app/database.py": factory_helper})


def test_task_rules_skip_files_without_a_session() -> None:
    # A class-based controller and a scraper: no session is visible in either file.
    controller = """
    from fastapi import APIRouter, BackgroundTasks
    from starlette.background import BackgroundTask

    router = APIRouter()

    class RecipeController(BaseController):
        @router.post("/bulk")
        def bulk(self, urls: list[str], tasks: BackgroundTasks):
            tasks.add_task(self.scraper.scrape, urls)

        @router.get("/{slug}/export")
        def export(self, slug: str):
            return FileResponse(path, background=BackgroundTask(cleanup, path))
    """
    assert not _applies(controller, "FDB109", **{"app/db.py": DB})
    scraper = """
    import asyncio

    async def scrape_all(urls, client):
        pages = await asyncio.gather(*(client.get(url) for url in urls))
        loop = asyncio.get_running_loop()
        loop.create_task(report(pages))
    """
    assert not _applies(scraper, "FDB108", **{"app/db.py": DB})


def test_task_rules_apply_to_sessions_from_project_dependencies() -> None:
    # The session type comes from another file: an alias, or a dependency.
    alias = """
    from fastapi import APIRouter, BackgroundTasks
    from app.db import SessionDep

    router = APIRouter()

    @router.post("/signup")
    async def signup(tasks: BackgroundTasks, db: SessionDep):
        tasks.add_task(send_welcome, db)
    """
    _applies_and_reports(alias, "FDB109", **{"app/db.py": DB})
    dependency = """
    import asyncio
    from fastapi import Depends
    from app import db as database

    async def report(conn=Depends(database.get_session)):
        await asyncio.gather(load_users(conn), load_orders(conn))
    """
    _applies_and_reports(dependency, "FDB108", **{"app/db.py": DB})
    attribute = """
    import asyncio
    from fastapi import Depends
    from app.db import get_session

    class Reports:
        def __init__(self, settings=Depends(get_settings)):
            self.db = get_session()

        async def run(self):
            asyncio.create_task(refresh(self.db))
    """
    typed_helper = "from sqlalchemy.orm import Session\ndef get_session() -> Session:\n    ...\n"
    _applies_and_reports(attribute, "FDB108", **{"app/db.py": typed_helper})
