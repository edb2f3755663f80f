"""FDB9xx: FastAPI integration."""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from fastdb_lint.analysis.fastapi import ROUTE_METHODS
from fastdb_lint.rules.base import Invalid, ProjectTerms, Rule, Valid
from fastdb_lint.rules.sessions import created_session, executing_scope, may_create_session

if TYPE_CHECKING:
    from fastdb_lint.analysis.shape import FileShape


class SessionCreatedInRoute(Rule):
    """
    ## What it does
    Flags a route handler that creates its own session: calls a session factory
    (`SessionLocal()`, `async with async_session_maker() as session`,
    `async with factory.begin() as session`), constructs `Session(engine)` /
    `AsyncSession(engine)`, or calls a `scoped_session` registry, in the handler's
    body.

    ## Why is this bad?
    Sessions are request-scoped and should come from one dependency that yields a
    session from an `async with` block, commits or rolls back, and always closes it.
    A handler opening its own session bypasses that: its transaction handling is
    duplicated per handler, tests cannot override it with
    `app.dependency_overrides`, and a forgotten `close()` leaks a connection.

    ## Example
    ```python
    @router.get("/users")
    async def list_users():
        async with SessionLocal() as session:
            return (await session.scalars(select(User))).all()
    ```

    ## Use instead
    ```python
    @router.get("/users")
    async def list_users(session: SessionDep):
        return (await session.scalars(select(User))).all()
    ```

    ## Fix safety
    No fix. Handlers that open a second, separately scoped session on purpose (for
    example to commit an audit record whatever happens to the request's transaction)
    are still flagged: suppress with `# noqa: FDB901` where that is intended. Helpers
    called from the handler and nested functions defined in it are not followed.
    """

    code = "FDB901"
    name = "session-created-in-route"
    summary = "Route handler creates its own session instead of using a dependency"
    valid = [
        Valid(
            "from typing import Annotated\n"
            "from fastapi import APIRouter, Depends\n"
            "from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n"
            "async def get_session():\n"
            "    async with SessionLocal() as session:\n"
            "        yield session\n"
            "SessionDep = Annotated[AsyncSession, Depends(get_session)]\n"
            "router = APIRouter()\n"
            "@router.get('/users')\n"
            "async def list_users(session: SessionDep):\n"
            "    return (await session.scalars(select(User))).all()\n"
        ),
        Valid(
            "from fastapi import APIRouter, BackgroundTasks\n"
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n"
            "router = APIRouter()\n"
            "@router.post('/jobs')\n"
            "async def start(tasks: BackgroundTasks):\n"
            "    tasks.add_task(run_job, SessionLocal)\n"
        ),
        Valid(
            "from sqlalchemy.orm import sessionmaker\n"
            "SessionLocal = sessionmaker(bind=engine)\n"
            "def sync_job():\n"
            "    with SessionLocal() as db:\n"
            "        db.execute(stmt)\n"
        ),
    ]
    invalid = [
        Invalid(
            "from fastapi import APIRouter\n"
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "async_session_maker = async_sessionmaker(engine, expire_on_commit=False)\n"
            "router = APIRouter()\n"
            "@router.get('/users')\n"
            "async def list_users():\n"
            "    async with async_session_maker() as session:\n"
            "        return (await session.scalars(select(User))).all()\n",
            line=7,
        ),
        Invalid(
            "from fastapi import FastAPI\n"
            "from app.db import SessionLocal\n"
            "app = FastAPI()\n"
            "@app.post('/items')\n"
            "def create_item(name: str):\n"
            "    db = SessionLocal()\n"
            "    try:\n"
            "        db.add(Item(name=name))\n"
            "        db.commit()\n"
            "    finally:\n"
            "        db.close()\n",
            files={"app/db.py": "from sqlalchemy.orm import sessionmaker\nSessionLocal = sessionmaker()\n"},
            line=6,
        ),
        Invalid(
            "from fastapi import FastAPI\n"
            "from sqlmodel import Session\n"
            "app = FastAPI()\n"
            "@app.get('/heroes')\n"
            "def heroes():\n"
            "    with Session(engine) as session:\n"
            "        return session.exec(select(Hero)).all()\n",
            line=6,
        ),
        Invalid(
            "from fastapi import Depends, FastAPI\n"
            "from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n"
            "app = FastAPI()\n"
            "@app.post('/orders')\n"
            "async def create_order(session: AsyncSession = Depends(get_session)):\n"
            "    async with SessionLocal.begin() as audit:\n"
            "        audit.add(AuditLog(action='order'))\n",
            line=7,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # A route handler is decorated with `@<app or router>.<method>(...)`.
        if shape.decorator_calls.isdisjoint(ROUTE_METHODS):
            return False
        return may_create_session(shape, project, registries=True)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        scope = ctx.function
        if scope is None or not scope.is_route:
            return
        if created_session(node, ctx, registries=True, begin=True) is None:
            return
        if executing_scope(ctx) is not scope:
            return
        ctx.report(
            node,
            f"Route handler `{scope.name}` creates its own session: take a request-scoped session "
            "from a dependency instead",
        )
