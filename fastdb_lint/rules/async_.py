"""FDB2xx: async correctness."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import libcst as cst

from fastdb_lint.analysis.fastapi import route_decorator
from fastdb_lint.analysis.index import Relationship
from fastdb_lint.analysis.loading import Origin, Shape
from fastdb_lint.analysis.sqlalchemy_api import (
    ASYNC_REGISTRY_COROUTINES,
    ASYNC_SESSION_COROUTINES,
    ASYNC_TRANSACTION_METHODS,
    CLASS_KINDS,
    CONSTRUCTOR_KINDS,
    COROUTINES_BY_KIND,
    SESSION_IO_METHODS,
    SYNC_RESULT_METHODS,
    DbKind,
    coroutine_methods,
)
from fastdb_lint.analysis.syntax import string_value
from fastdb_lint.diagnostics import FixAvailability
from fastdb_lint.fixes import FixBuilder
from fastdb_lint.rules.base import Invalid, ProjectTerms, Rule, Valid
from fastdb_lint.analysis.preconditions import SYNC_SESSION_SOURCES, may_see_db_object

if TYPE_CHECKING:
    from fastdb_lint.analysis.shape import FileShape
    from fastdb_lint.context import FileContext

# Last names of the asyncio session, factory, registry, engine and connection classes
# and of their constructors (`sqlalchemy.ext.asyncio`, `sqlmodel.ext.asyncio`).
_ASYNC_API_NAMES = frozenset(
    qualname.rsplit(".", 1)[-1]
    for qualname, kind in (*CLASS_KINDS.items(), *CONSTRUCTOR_KINDS.items())
    if kind.is_async
)
# Callees FDB201 checks (besides `sessionmaker(class_=AsyncSession)`).
_ASYNC_FACTORY_CALLS = frozenset({"async_sessionmaker", "AsyncSession"})


def may_hold_async_objects(shape: FileShape, project: ProjectTerms) -> bool:
    """Whether the session analysis can see an async session, factory, registry, engine
    or connection in a file of this shape: the file names an asyncio API or, in a
    project that imports the asyncio extension, a project symbol the analysis gives a
    kind (session aliases, factories, dependencies and methods providing sessions)."""
    names = (shape.names, shape.string_annotation_names)
    if any(not found.isdisjoint(_ASYNC_API_NAMES) for found in names):
        return True
    return project.asyncio and any(not found.isdisjoint(project.session_names) for found in names)


class ExpireOnCommitEnabled(Rule):
    """
    ## What it does
    Flags `async_sessionmaker(...)`, `AsyncSession(...)` and
    `sessionmaker(class_=AsyncSession)` that do not pass `expire_on_commit=False` (or
    pass `True`).

    ## Why is this bad?
    With the default `expire_on_commit=True`, every attribute of every instance is
    expired by `commit()`. Reading one afterwards reloads it implicitly: IO that async
    code cannot do, so it fails with `MissingGreenlet` (typically when a route returns
    the object it just committed).

    ## Example
    ```python
    SessionLocal = async_sessionmaker(engine)
    ```

    ## Use instead
    ```python
    SessionLocal = async_sessionmaker(engine, expire_on_commit=False)
    ```

    ## Fix safety
    Safe: the fix adds `expire_on_commit=False` (or replaces `True`). A call with a
    `**kwargs` splat is not flagged, since the flag may be inside it.
    """

    code = "FDB201"
    name = "expire-on-commit-enabled"
    summary = "Async session factory without `expire_on_commit=False`"
    fix = FixAvailability.SAFE
    triggers = ("async_sessionmaker", "AsyncSession")
    valid = [
        Valid(
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n"
        ),
        Valid("from sqlalchemy.orm import sessionmaker\nSessionLocal = sessionmaker(engine)\n"),
        Valid(
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine, **options)\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine)\n",
            fixed="from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n",
            line=2,
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from sqlalchemy.orm import sessionmaker\n"
            "SessionLocal = sessionmaker(\n"
            "    engine,\n"
            "    class_=AsyncSession,\n"
            "    expire_on_commit=True,\n"
            ")\n",
            fixed="from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from sqlalchemy.orm import sessionmaker\n"
            "SessionLocal = sessionmaker(\n"
            "    engine,\n"
            "    class_=AsyncSession,\n"
            "    expire_on_commit=False,\n"
            ")\n",
        ),
        Invalid(
            "import sqlalchemy.ext.asyncio as sa_async\n"
            "async def handler(engine):\n"
            "    async with sa_async.AsyncSession(engine) as session:\n"
            "        pass\n",
            fixed="import sqlalchemy.ext.asyncio as sa_async\n"
            "async def handler(engine):\n"
            "    async with sa_async.AsyncSession(engine, expire_on_commit=False) as session:\n"
            "        pass\n",
        ),
    ]

    _TARGETS = frozenset({"sqlalchemy.ext.asyncio.async_sessionmaker", "sqlalchemy.ext.asyncio.AsyncSession", "sqlmodel.ext.asyncio.AsyncSession"})

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        calls = shape.calls
        if not _ASYNC_FACTORY_CALLS.isdisjoint(calls):
            return True
        return "sessionmaker" in calls and "class_" in shape.keywords and "AsyncSession" in shape.names

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        callee = ctx.callee(node)
        if callee is None:
            return
        if callee == "sqlalchemy.orm.sessionmaker":
            class_arg = next((a for a in node.args if a.keyword and a.keyword.value == "class_"), None)
            if class_arg is None or ctx.qualname(class_arg.value) not in (
                "sqlalchemy.ext.asyncio.AsyncSession",
                "sqlmodel.ext.asyncio.AsyncSession",
            ):
                return
        elif callee not in self._TARGETS:
            return
        if any(a.star == "**" for a in node.args):
            return
        flag = next((a for a in node.args if a.keyword and a.keyword.value == "expire_on_commit"), None)
        if flag is not None and not (isinstance(flag.value, cst.Name) and flag.value.value == "True"):
            return
        fix = ctx.fix("Set `expire_on_commit=False`").set_keyword(node, "expire_on_commit", "False")
        ctx.report(node, "`expire_on_commit` is not disabled: attribute access after `commit()` triggers implicit IO (`MissingGreenlet`)", fix)


# -- shared: what happens to the value of a coroutine call ---------------------------


class Use(enum.Enum):
    """What the code does with the value of a call."""

    AWAITED = "awaited"
    # Passed on to something that may await it: an argument (`asyncio.gather`,
    # `create_task`), a collection, a lambda, `yield`, `async with`, a walrus.
    HANDED_OFF = "handed off"
    RETURNED = "returned"
    # Bound to a single name: decided by what happens to the name later.
    ASSIGNED = "assigned"
    # Dropped, or used as if it were the result (attribute, subscript, iteration, test).
    MISUSED = "misused"


_HAND_OFF_PARENTS = (
    cst.Arg,
    cst.BaseElement,
    cst.BaseDictElement,
    cst.Lambda,
    cst.Yield,
    cst.WithItem,
    cst.NamedExpr,
    cst.ListComp,
    cst.SetComp,
    cst.GeneratorExp,
    cst.DictComp,
)
_KIND_LABELS = {
    DbKind.ASYNC_SESSION: "AsyncSession",
    DbKind.ASYNC_CONNECTION: "AsyncConnection",
    DbKind.ASYNC_ENGINE: "AsyncEngine",
    DbKind.ASYNC_REGISTRY: "async_scoped_session",
}
_ALL_COROUTINE_NAMES = frozenset().union(*COROUTINES_BY_KIND.values(), ASYNC_REGISTRY_COROUTINES)


def in_lambda(stack: list[cst.CSTNode]) -> bool:
    """Whether the current node sits in a lambda of the innermost function."""
    for node in reversed(stack[:-1]):
        if isinstance(node, cst.Lambda):
            return True
        if isinstance(node, cst.FunctionDef):
            return False
    return False


def coroutine_use(stack: list[cst.CSTNode]) -> tuple[Use, str | None]:
    """What happens to the value of ``stack[-1]`` (and the name it is bound to)."""
    if in_lambda(stack):
        return Use.HANDED_OFF, None
    index = len(stack) - 1
    node = stack[index]
    while index > 0:
        parent = stack[index - 1]
        if (isinstance(parent, cst.IfExp) and node is not parent.test) or isinstance(parent, cst.BooleanOperation):
            node, index = parent, index - 1
            continue
        break
    if index == 0:
        return Use.HANDED_OFF, None
    parent = stack[index - 1]
    if isinstance(parent, cst.Await):
        return Use.AWAITED, None
    if isinstance(parent, cst.CompFor):
        return (Use.MISUSED, None) if parent.iter is node else (Use.HANDED_OFF, None)
    if isinstance(parent, _HAND_OFF_PARENTS):
        return Use.HANDED_OFF, None
    if isinstance(parent, cst.Return):
        return Use.RETURNED, None
    if isinstance(parent, cst.Assign) and parent.value is node:
        targets = [t.target for t in parent.targets]
        if len(targets) == 1 and isinstance(targets[0], cst.Name):
            return Use.ASSIGNED, targets[0].value
        if all(isinstance(t, (cst.Attribute, cst.Subscript)) for t in targets):
            return Use.HANDED_OFF, None
        return Use.MISUSED, None
    if isinstance(parent, cst.AnnAssign) and parent.value is node:
        if isinstance(parent.target, cst.Name):
            return Use.ASSIGNED, parent.target.value
        return Use.HANDED_OFF, None
    if isinstance(parent, cst.Expr):
        return Use.MISUSED, None
    if isinstance(parent, (cst.Attribute, cst.Subscript)) and parent.value is node:
        return Use.MISUSED, None
    if isinstance(parent, cst.Call) and parent.func is node:
        return Use.MISUSED, None
    if isinstance(parent, cst.For) and parent.iter is node:
        return Use.MISUSED, None
    if isinstance(parent, (cst.If, cst.While, cst.Assert)) and parent.test is node:
        return Use.MISUSED, None
    if isinstance(parent, (cst.Comparison, cst.UnaryOperation)):
        return Use.MISUSED, None
    return Use.HANDED_OFF, None


def _chain_top(stack: list[cst.CSTNode]) -> tuple[cst.CSTNode, cst.CSTNode | None, list[str]]:
    """The outermost node of the attribute/call chain rooted at ``stack[-1]``, its
    parent, and the attribute names along the chain."""
    index = len(stack) - 1
    node = stack[index]
    links: list[str] = []
    while index > 0:
        parent = stack[index - 1]
        if isinstance(parent, cst.Attribute) and parent.value is node:
            links.append(parent.attr.value)
        elif isinstance(parent, cst.Call) and parent.func is node:
            pass
        elif isinstance(parent, cst.Subscript) and parent.value is node:
            links.append("[]")
        else:
            return node, parent, links
        node, index = parent, index - 1
    return node, None, links


def await_fix(ctx: FileContext, call: cst.Call, method: str) -> FixBuilder:
    """Insert `await` before ``call`` (the current node), parenthesised where the result
    is used in a chain; ``await coro().scalars()`` moves the `await` onto the call."""
    fix = ctx.fix("Insert `await`")
    stack = ctx.stack
    top, outer, links = _chain_top(stack)
    bare = call.with_changes(lpar=[], rpar=[])
    if top is not call and isinstance(outer, cst.Await):
        if method.startswith("stream") or any(link not in SYNC_RESULT_METHODS for link in links):
            return fix.fail()
        if call.lpar:
            awaited = cst.Await(expression=bare, lpar=call.lpar, rpar=call.rpar)
        else:
            awaited = cst.Await(expression=bare, lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return fix.replace(outer, top.deep_replace(call, awaited))
    parent = stack[-2] if len(stack) >= 2 else None
    chained = (
        isinstance(parent, (cst.Attribute, cst.Subscript)) and parent.value is call
    ) or (isinstance(parent, cst.Call) and parent.func is call)
    if chained and not call.lpar:
        return fix.replace(call, cst.Await(expression=bare, lpar=[cst.LeftParen()], rpar=[cst.RightParen()]))
    return fix.replace(call, cst.Await(expression=bare))


class _UnawaitedCoroutineRule(Rule):
    """Coroutine calls whose coroutine is never awaited. Calls bound to a name are
    decided at the end of the function: awaiting the name, passing it on, returning
    or yielding it clears them."""

    # Whether the rule looks at `async def` (True) or plain `def` (False) bodies.
    in_async_def: bool = True

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._pending: list[dict[str, list[tuple[cst.Call, str, FixBuilder | None]]]] = []

    def receiver_kinds(self) -> tuple[DbKind, ...]:
        return tuple(_KIND_LABELS)

    def flags(self, use: Use) -> bool:
        raise NotImplementedError

    def message(self, kind: DbKind, method: str, use: Use) -> str:
        raise NotImplementedError

    def make_fix(self, call: cst.Call, method: str) -> FixBuilder | None:
        return None

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._pending.append({})

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        pending = self._pending.pop() if self._pending else {}
        for entries in pending.values():
            for call, message, fix in entries:
                self.ctx.report(call, message, fix)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        function = ctx.function
        if function is None or function.is_async is not self.in_async_def:
            return
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in _ALL_COROUTINE_NAMES:
            return
        method = func.attr.value
        kind = ctx.kind(func.value)
        if kind not in self.receiver_kinds() or method not in coroutine_methods(kind):
            return
        assert kind is not None
        use, name = coroutine_use(ctx.stack)
        if not self.flags(use):
            return
        message = self.message(kind, method, use)
        fix = self.make_fix(node, method)
        if use is Use.ASSIGNED and name is not None and self._pending:
            self._pending[-1].setdefault(name, []).append((node, message, fix))
            return
        ctx.report(node, message, fix)

    def _release(self, expr: cst.BaseExpression | None) -> None:
        if type(expr) is cst.Name:
            for scope in self._pending:
                scope.pop(expr.value, None)

    def _holds(self, expr: cst.BaseExpression) -> bool:
        """Whether ``expr`` is a name bound to a coroutine not yet awaited."""
        return type(expr) is cst.Name and any(expr.value in scope for scope in self._pending)

    def visit_Await(self, node: cst.Await) -> None:
        self._release(node.expression)

    def visit_Arg(self, node: cst.Arg) -> None:
        if not self._holds(node.value):
            return
        # Handing a coroutine to the session itself (`session.delete(coro)`) awaits nothing.
        call = self.ctx.parent
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and self.ctx.kind(call.func.value) is not None:
            return
        self._release(node.value)

    def visit_Element(self, node: cst.Element) -> None:
        self._release(node.value)

    def visit_StarredElement(self, node: cst.StarredElement) -> None:
        self._release(node.value)

    def visit_DictElement(self, node: cst.DictElement) -> None:
        self._release(node.value)

    def visit_Return(self, node: cst.Return) -> None:
        self._release(node.value)

    def visit_Yield(self, node: cst.Yield) -> None:
        if isinstance(node.value, cst.BaseExpression):
            self._release(node.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        self._release(node.value)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        self._release(node.item)


class MissingAwait(_UnawaitedCoroutineRule):
    """
    ## What it does
    In an `async def`, flags a call of a coroutine method of an `AsyncSession`, an
    `AsyncConnection`, an `AsyncEngine` (or an `async_scoped_session`) that is not
    awaited: a bare statement (`session.commit()`), a value used as if it were the result
    (`session.execute(stmt).scalars()`), a coroutine returned from the `async def`, or
    one bound to a name that is never awaited, passed on or returned afterwards. The
    method names are those SQLAlchemy defines as coroutines (`execute`, `scalar`,
    `scalars`, `get`, `get_one`, `commit`, `rollback`, `flush`, `refresh`, `delete`,
    `merge`, `close`, `stream`, `run_sync`, `connection`, `dispose`, ...).

    ## Why is this bad?
    Every IO method of `AsyncSession` is a coroutine and must be awaited. Without
    `await` nothing runs: the commit never happens, the query never executes, and the
    code continues with a coroutine object instead of a result (Python only warns
    "coroutine was never awaited" when it is garbage-collected).

    ## Example
    ```python
    async def create_user(session: AsyncSession, user: User) -> User:
        session.add(user)
        session.commit()
        return user
    ```

    ## Use instead
    ```python
    async def create_user(session: AsyncSession, user: User) -> User:
        session.add(user)
        await session.commit()
        return user
    ```

    ## Fix safety
    Safe: the fix inserts `await` before the call (in parentheses when the result is
    used in a chain: `(await session.execute(stmt)).scalars()`; `await
    session.execute(stmt).scalars()` becomes `(await session.execute(stmt)).scalars()`).
    Not flagged: the synchronous methods (`add`, `add_all`, `expunge`, `expire`, `begin`
    used as `async with session.begin()`), coroutines handed to something that may await
    them (an argument of `asyncio.gather`/`create_task` or any other call, a list, a
    lambda), `async with conn.stream(...)`, plain `def` functions (a caller may await
    what they return), sync `Session` objects, and receivers whose type is unknown.
    """

    code = "FDB202"
    name = "missing-await"
    summary = "Coroutine method of an async session, connection or engine called without `await`"
    fix = FixAvailability.SAFE
    in_async_def = True

    valid = [
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def create(session: AsyncSession, user):\n"
            "    session.add(user)\n"
            "    session.add_all([user])\n"
            "    session.expunge(user)\n"
            "    await session.commit()\n"
            "    await session.refresh(user)\n"
            "    return user\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def transfer(session: AsyncSession, stmt):\n"
            "    async with session.begin():\n"
            "        await session.execute(stmt)\n"
            "    async with session.begin_nested():\n"
            "        result = await session.scalars(stmt)\n"
            "    return result.all()\n"
        ),
        Valid(
            "import asyncio\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def refresh_all(session: AsyncSession, users, stmt):\n"
            "    await asyncio.gather(*[session.refresh(u) for u in users])\n"
            "    await asyncio.gather(session.execute(stmt), session.scalar(stmt))\n"
            "    task = asyncio.create_task(session.commit())\n"
            "    await asyncio.wait_for(session.flush(), timeout=5)\n"
            "    await task\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "def commit_later(session: AsyncSession):\n"
            "    return session.commit()\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "async def legacy(db: Session, stmt):\n"
            "    db.execute(stmt)\n"
            "    db.commit()\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def pending(session: AsyncSession, stmt):\n"
            "    coro = session.execute(stmt)\n"
            "    result = await coro\n"
            "    return result\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine('postgresql+asyncpg://localhost/db')\n"
            "async def stream_rows(stmt):\n"
            "    async with engine.connect() as conn:\n"
            "        async with conn.stream(stmt) as result:\n"
            "            async for row in result:\n"
            "                print(row)\n"
            "    await engine.dispose()\n"
        ),
        Valid(
            "async def unknown(session, stmt):\n"
            "    session.execute(stmt)\n"
            "    client.get('/users')\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def sync_part(session: AsyncSession):\n"
            "    await session.run_sync(lambda s: s.commit())\n"
            "    def inner():\n"
            "        return session.commit()\n"
            "    await inner()\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def create(session: AsyncSession, user):\n"
            "    session.add(user)\n"
            "    session.commit()\n"
            "    return user\n",
            fixed="from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def create(session: AsyncSession, user):\n"
            "    session.add(user)\n"
            "    await session.commit()\n"
            "    return user\n",
            line=4,
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def list_users(session: AsyncSession, stmt):\n"
            "    result = session.execute(stmt)\n"
            "    return result.scalars().all()\n",
            fixed="from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def list_users(session: AsyncSession, stmt):\n"
            "    result = await session.execute(stmt)\n"
            "    return result.scalars().all()\n",
            line=3,
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def list_users(session: AsyncSession, stmt):\n"
            "    return session.scalars(stmt).all()\n",
            fixed="from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def list_users(session: AsyncSession, stmt):\n"
            "    return (await session.scalars(stmt)).all()\n",
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def list_users(session: AsyncSession, stmt):\n"
            "    return await session.execute(stmt).scalars().all()\n",
            fixed="from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def list_users(session: AsyncSession, stmt):\n"
            "    return (await session.execute(stmt)).scalars().all()\n",
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def get_user(session: AsyncSession, user_id: int):\n"
            "    return session.get(User, user_id)\n",
            fixed="from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def get_user(session: AsyncSession, user_id: int):\n"
            "    return await session.get(User, user_id)\n",
        ),
        Invalid(
            "from contextlib import asynccontextmanager\n"
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine('postgresql+asyncpg://localhost/db')\n"
            "@asynccontextmanager\n"
            "async def lifespan(app):\n"
            "    yield\n"
            "    engine.dispose()\n",
            fixed="from contextlib import asynccontextmanager\n"
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine('postgresql+asyncpg://localhost/db')\n"
            "@asynccontextmanager\n"
            "async def lifespan(app):\n"
            "    yield\n"
            "    await engine.dispose()\n",
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine('postgresql+asyncpg://localhost/db')\n"
            "async def init_models(metadata):\n"
            "    async with engine.begin() as conn:\n"
            "        conn.run_sync(metadata.create_all)\n",
            fixed="from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine('postgresql+asyncpg://localhost/db')\n"
            "async def init_models(metadata):\n"
            "    async with engine.begin() as conn:\n"
            "        await conn.run_sync(metadata.create_all)\n",
        ),
        Invalid(
            "from typing import Annotated\n"
            "from fastapi import Depends\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from app.db import get_session\n"
            "SessionDep = Annotated[AsyncSession, Depends(get_session)]\n"
            "async def delete_user(session: SessionDep, user):\n"
            "    session.delete(user)\n"
            "    if session.scalar(stmt) is None:\n"
            "        pass\n",
            count=2,
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def forgotten(session: AsyncSession, stmt):\n"
            "    result = session.execute(stmt)\n",
            fixed="from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def forgotten(session: AsyncSession, stmt):\n"
            "    result = await session.execute(stmt)\n",
        ),
    ]

    # A flagged call is in an `async def` and is not the operand of `await`.
    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return not _ALL_COROUTINE_NAMES.isdisjoint(shape.unawaited_async_calls) and may_hold_async_objects(shape, project)

    def flags(self, use: Use) -> bool:
        return use in (Use.MISUSED, Use.RETURNED, Use.ASSIGNED)

    def message(self, kind: DbKind, method: str, use: Use) -> str:
        return f"`{_KIND_LABELS[kind]}.{method}()` is a coroutine and is not awaited"

    def make_fix(self, call: cst.Call, method: str) -> FixBuilder | None:
        return await_fix(self.ctx, call, method)


_THREADPOOL_CALLS = frozenset(
    {
        "fastapi.run_in_threadpool",
        "starlette.concurrency.run_in_threadpool",
        "asyncio.to_thread",
        "anyio.to_thread.run_sync",
        "asyncer.asyncify",
    }
)
# loop.run_in_executor(...), AsyncSession/AsyncConnection.run_sync(...)
_THREADPOOL_METHODS = frozenset({"run_in_executor", "run_sync"})
_BLOCKING_SESSION_METHODS = SESSION_IO_METHODS | frozenset(
    {"bulk_save_objects", "bulk_insert_mappings", "bulk_update_mappings", "exec"}
)


class SyncSessionInAsync(Rule):
    """
    ## What it does
    Flags, inside an `async def`, each call of a synchronous `Session` (including
    `sqlmodel.Session`) that runs SQL or IO: `query`, `execute`, `scalar`, `scalars`,
    `get`, `exec`, `commit`, `flush`, `rollback`, `refresh`, `delete`, `merge`, ...
    The typical case is `async def route(db: Session = Depends(get_db))`.

    ## Why is this bad?
    A sync session talks to the database with a blocking driver. Inside `async def` the
    call runs on the event loop thread, so every query stalls all other requests of the
    worker until it returns. Either make the handler a plain `def` (FastAPI runs it in
    a thread pool) or use an `AsyncSession` with an async driver.

    ## Example
    ```python
    @router.get("/users")
    async def list_users(db: Session = Depends(get_db)):
        return db.query(User).all()
    ```

    ## Use instead
    ```python
    @router.get("/users")
    def list_users(db: Session = Depends(get_db)):
        return db.scalars(select(User)).all()
    ```

    ## Fix safety
    No fix: switching to `def` or to an `AsyncSession` is a design decision. Not
    flagged: plain `def` functions, calls inside `run_in_threadpool(...)`,
    `asyncio.to_thread(...)`, `run_in_executor(...)` or `run_sync(...)` arguments,
    lambdas and nested plain functions (they run where they are handed), methods that do
    no IO (`add`, `expunge`), and sessions whose type is unknown.
    """

    code = "FDB203"
    name = "sync-session-in-async"
    summary = "Sync `Session` runs queries inside `async def`, blocking the event loop"
    valid = [
        Valid(
            "from fastapi import APIRouter, Depends\n"
            "from sqlalchemy.orm import Session\n"
            "router = APIRouter()\n"
            "@router.get('/users')\n"
            "def list_users(db: Session = Depends(get_db)):\n"
            "    return db.query(User).all()\n"
        ),
        Valid(
            "from fastapi.concurrency import run_in_threadpool\n"
            "from sqlalchemy.orm import Session\n"
            "async def list_users(db: Session):\n"
            "    users = await run_in_threadpool(lambda: db.query(User).all())\n"
            "    await run_in_threadpool(db.commit)\n"
            "    return users\n"
        ),
        Valid(
            "import asyncio\n"
            "from sqlalchemy.orm import Session\n"
            "async def count(db: Session, stmt):\n"
            "    def work():\n"
            "        return db.execute(stmt).all()\n"
            "    return await asyncio.to_thread(work)\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from sqlalchemy.orm import Session\n"
            "def _sync_work(session: Session):\n"
            "    return session.query(User).count()\n"
            "async def count(session: AsyncSession):\n"
            "    return await session.run_sync(_sync_work)\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def list_users(db: AsyncSession, stmt):\n"
            "    return (await db.execute(stmt)).all()\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "async def stage(db: Session, user):\n"
            "    db.add(user)\n"
        ),
    ]
    invalid = [
        Invalid(
            "from fastapi import APIRouter, Depends\n"
            "from sqlalchemy.orm import Session\n"
            "router = APIRouter()\n"
            "@router.get('/users')\n"
            "async def list_users(db: Session = Depends(get_db)):\n"
            "    return db.query(User).all()\n",
            line=6,
        ),
        Invalid(
            "from sqlmodel import Session, select\n"
            "async def create(session: Session, hero):\n"
            "    session.add(hero)\n"
            "    session.commit()\n"
            "    session.refresh(hero)\n"
            "    return session.exec(select(Hero)).all()\n",
            count=3,
        ),
        Invalid(
            "from fastapi import Depends\n"
            "from app.db import get_db\n"
            "async def remove(item_id: int, db=Depends(get_db)):\n"
            "    db.execute(delete(Item).where(Item.id == item_id))\n",
            files={
                "app/db.py": "from sqlalchemy.orm import sessionmaker\n"
                "SessionLocal = sessionmaker(bind=engine)\n"
                "def get_db():\n"
                "    with SessionLocal() as db:\n"
                "        yield db\n"
            },
            line=4,
        ),
        Invalid(
            "from app.db import SessionLocal\n"
            "async def job():\n"
            "    with SessionLocal() as db:\n"
            "        db.commit()\n",
            files={"app/db.py": "from sqlalchemy.orm import sessionmaker\nSessionLocal = sessionmaker(bind=engine)\n"},
            line=4,
        ),
    ]

    # A sync session comes from a name the file mentions: a session class, factory or
    # registry, or a project symbol (methods providing sessions included).
    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return (
            shape.has_async
            and not _BLOCKING_SESSION_METHODS.isdisjoint(shape.calls)
            and may_see_db_object(shape, project, SYNC_SESSION_SOURCES)
        )

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        if not ctx.in_async_function:
            return
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in _BLOCKING_SESSION_METHODS:
            return
        if ctx.kind(func.value) is not DbKind.SYNC_SESSION or self._off_loop():
            return
        ctx.report(
            node,
            f"Sync `Session.{func.attr.value}()` in `async def` blocks the event loop: "
            "use an `AsyncSession` or a plain `def`",
        )

    def _off_loop(self) -> bool:
        """Whether the current call is inside a lambda or a thread-pool hand-off."""
        for node in self.ctx.ancestors():
            if isinstance(node, (cst.FunctionDef, cst.Lambda)):
                return isinstance(node, cst.Lambda)
            if isinstance(node, cst.Call):
                if self.ctx.callee(node) in _THREADPOOL_CALLS:
                    return True
                if isinstance(node.func, cst.Attribute) and node.func.attr.value in _THREADPOOL_METHODS:
                    return True
        return False


class AsyncSessionInSyncFunction(_UnawaitedCoroutineRule):
    """
    ## What it does
    Flags, in a plain `def` (including a sync route handler), calls of the coroutine
    methods of an `AsyncSession` whose coroutine is dropped or used as a result:
    `session.commit()` as a statement, `session.execute(stmt).scalars()`, or a
    coroutine bound to a name that is never returned or passed on.

    ## Why is this bad?
    A plain function cannot `await`. The coroutine is created and thrown away, so the
    query or commit never runs and the code continues with a coroutine object instead
    of a result. An `AsyncSession` belongs in `async def` code.

    ## Example
    ```python
    @router.post("/users")
    def create_user(user: UserIn, session: AsyncSession = Depends(get_session)):
        session.add(User(**user.model_dump()))
        session.commit()
    ```

    ## Use instead
    ```python
    @router.post("/users")
    async def create_user(user: UserIn, session: AsyncSession = Depends(get_session)):
        session.add(User(**user.model_dump()))
        await session.commit()
    ```

    ## Fix safety
    No fix: the function has to become `async def`, and so do its callers. Not
    flagged: functions that only pass the session on, synchronous methods (`add`,
    `expunge`, `begin`), and coroutines that are returned or handed to another call
    (`return session.commit()`, `asyncio.run(session.close())`): someone else awaits
    them.
    """

    code = "FDB208"
    name = "async-session-in-sync-function"
    summary = "Plain `def` calls coroutine methods of an `AsyncSession` it can never await"
    in_async_def = False
    valid = [
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "def build_repo(session: AsyncSession):\n"
            "    session.add(User())\n"
            "    return UserRepository(session)\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "def commit_later(session: AsyncSession):\n"
            "    return session.commit()\n"
        ),
        Valid(
            "import asyncio\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "def close_now(session: AsyncSession):\n"
            "    asyncio.run(session.close())\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def fine(session: AsyncSession):\n"
            "    await session.commit()\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "def sync_route(session: Session):\n"
            "    session.commit()\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "def query_later(session: AsyncSession, stmt):\n"
            "    coro = session.execute(stmt)\n"
            "    return coro\n"
        ),
    ]
    invalid = [
        Invalid(
            "from fastapi import APIRouter, Depends\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "router = APIRouter()\n"
            "@router.post('/users')\n"
            "def create_user(session: AsyncSession = Depends(get_session)):\n"
            "    session.add(User())\n"
            "    session.commit()\n",
            line=7,
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "def list_users(session: AsyncSession, stmt):\n"
            "    users = session.scalars(stmt).all()\n"
            "    result = session.execute(stmt)\n"
            "    session.flush()\n"
            "    return users\n",
            count=3,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return not ASYNC_SESSION_COROUTINES.isdisjoint(shape.plain_def_calls) and may_hold_async_objects(shape, project)

    def receiver_kinds(self) -> tuple[DbKind, ...]:
        return (DbKind.ASYNC_SESSION,)

    def flags(self, use: Use) -> bool:
        return use in (Use.MISUSED, Use.ASSIGNED)

    def message(self, kind: DbKind, method: str, use: Use) -> str:
        return f"`AsyncSession.{method}()` is a coroutine: a plain `def` can never await it"


class SyncContextManagerOnAsync(Rule):
    """
    ## What it does
    Flags a `with` statement on an async object: an `AsyncSession`, a call of an async
    session factory (`async_sessionmaker`), `AsyncSession.begin()`/`begin_nested()`,
    `AsyncEngine.connect()`/`begin()`, or an `AsyncConnection`.

    ## Why is this bad?
    These objects implement only the asynchronous context-manager protocol
    (`__aenter__`/`__aexit__`): `with` fails with `TypeError`/`AttributeError`
    (`__enter__`), so the session or transaction is never opened or closed properly.

    ## Example
    ```python
    async def create(user: User) -> None:
        with async_session() as session:
            with session.begin():
                session.add(user)
    ```

    ## Use instead
    ```python
    async def create(user: User) -> None:
        async with async_session() as session:
            async with session.begin():
                session.add(user)
    ```

    ## Fix safety
    Safe inside `async def`: `with` becomes `async with` (only when every item of the
    statement is async). In a plain `def` the finding has no fix: `async with` needs
    an `async def`. Sync sessions, engines and connections are not flagged.
    """

    code = "FDB207"
    name = "sync-context-manager-on-async"
    summary = "`with` on an async session, engine connection or transaction: it needs `async with`"
    fix = FixAvailability.SAFE
    valid = [
        Valid(
            "from sqlalchemy.orm import sessionmaker\n"
            "SessionLocal = sessionmaker(bind=engine)\n"
            "def job():\n"
            "    with SessionLocal() as session:\n"
            "        with session.begin():\n"
            "            session.add(User())\n"
        ),
        Valid(
            "from sqlalchemy import create_engine\n"
            "engine = create_engine('sqlite://')\n"
            "async def job():\n"
            "    with engine.connect() as conn:\n"
            "        conn.commit()\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine\n"
            "engine = create_async_engine('sqlite+aiosqlite://')\n"
            "SessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n"
            "async def job():\n"
            "    async with SessionLocal() as session, session.begin():\n"
            "        pass\n"
            "    async with engine.begin() as conn:\n"
            "        pass\n"
        ),
        Valid(
            "async def job(thing):\n"
            "    with thing.begin():\n"
            "        pass\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n"
            "async def job(user):\n"
            "    with SessionLocal() as session:\n"
            "        with session.begin():  # one transaction\n"
            "            session.add(user)\n",
            fixed="from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n"
            "async def job(user):\n"
            "    async with SessionLocal() as session:\n"
            "        async with session.begin():  # one transaction\n"
            "            session.add(user)\n",
            count=2,
            line=4,
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine('postgresql+asyncpg://localhost/db')\n"
            "async def init(metadata):\n"
            "    with engine.begin() as conn:\n"
            "        await conn.run_sync(metadata.create_all)\n",
            fixed="from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine('postgresql+asyncpg://localhost/db')\n"
            "async def init(metadata):\n"
            "    async with engine.begin() as conn:\n"
            "        await conn.run_sync(metadata.create_all)\n",
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def save(session: AsyncSession, user):\n"
            "    with session.begin_nested():\n"
            "        session.add(user)\n",
            fixed="from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def save(session: AsyncSession, user):\n"
            "    async with session.begin_nested():\n"
            "        session.add(user)\n",
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "def save(session: AsyncSession, user):\n"
            "    with session.begin():\n"
            "        session.add(user)\n",
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def save(engine, path, user):\n"
            "    with AsyncSession(engine) as session, open(path) as fh:\n"
            "        session.add(user)\n",
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return shape.has_with and may_hold_async_objects(shape, project)

    def visit_With(self, node: cst.With) -> None:
        if node.asynchronous is not None:
            return
        ctx = self.ctx
        async_items = [item for item in node.items if self._is_async_context(item.item)]
        if not async_items:
            return
        fix = None
        if ctx.in_async_function and len(async_items) == len(node.items):
            fix = ctx.fix("Use `async with`").insert_before(node, "async ")
        ctx.report(node, "Async context manager used with `with`: use `async with`", fix)

    def _is_async_context(self, expr: cst.BaseExpression) -> bool:
        ctx = self.ctx
        kind = ctx.kind(expr)
        if kind in (DbKind.ASYNC_SESSION, DbKind.ASYNC_CONNECTION):
            return True
        if not isinstance(expr, cst.Call):
            return False
        func = expr.func
        if isinstance(func, cst.Attribute):
            if func.attr.value in ASYNC_TRANSACTION_METHODS:
                return ctx.kind(func.value) in (DbKind.ASYNC_SESSION, DbKind.ASYNC_CONNECTION)
            return False
        callee = ctx.callee(expr)
        if callee is None:
            return False
        function = ctx.project.function(callee)
        return (
            function is not None
            and function.is_async
            and function.is_generator
            and ctx.sessions.dependency_kind(callee) is DbKind.ASYNC_SESSION
        )


_RELATIONSHIP = "sqlalchemy.orm.relationship"
_BACKREF = "sqlalchemy.orm.backref"
_DYNAMIC_LOADER = "sqlalchemy.orm.dynamic_loader"
_SQLMODEL_RELATIONSHIP = "sqlmodel.Relationship"
_DYNAMIC_MAPPED = "sqlalchemy.orm.DynamicMapped"
# Callees whose `lazy="dynamic"` FDB206 reports.
_LAZY_KEYWORD_CALLS = frozenset({"relationship", "backref"})


class RelationshipWithoutLazy(Rule):
    """
    ## What it does
    In a project that uses `sqlalchemy.ext.asyncio` (or `sqlmodel.ext.asyncio`) anywhere,
    flags each `relationship(...)` that does not set `lazy=` explicitly.

    ## Why is this bad?
    The default strategy, `lazy="select"`, loads the relationship implicitly on first
    attribute access. Under an `AsyncSession` that IO cannot happen and fails with
    `MissingGreenlet`, often only in production paths. Declaring the strategy makes the
    choice visible: `lazy="raise"` turns a forgotten eager load into a clear error at the
    access, `lazy="selectin"` loads it every time by design.

    ## Example
    ```python
    class User(Base):
        __tablename__ = "user"
        posts: Mapped[list["Post"]] = relationship(back_populates="author")
    ```

    ## Use instead
    ```python
    class User(Base):
        __tablename__ = "user"
        posts: Mapped[list["Post"]] = relationship(back_populates="author", lazy="raise")
    ```

    ## Fix safety
    Unsafe: the fix adds `lazy="raise"`, so code that relied on implicit lazy loading
    (in sync parts of the project, or through `run_sync`) now raises until it loads the
    relationship explicitly. Projects that never use SQLAlchemy's asyncio extension are
    not checked, nor calls that pass `**kwargs` (the flag may be inside).
    """

    code = "FDB205"
    name = "relationship-without-lazy"
    summary = "`relationship()` without an explicit `lazy=` strategy in an asyncio project"
    fix = FixAvailability.UNSAFE
    triggers = ("relationship",)
    valid = [
        Valid(
            "from sqlalchemy.orm import Mapped, relationship\n"
            "class User(Base):\n"
            "    __tablename__ = 'user'\n"
            "    posts: Mapped[list['Post']] = relationship(back_populates='author')\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from sqlalchemy.orm import Mapped, relationship\n"
            "class User(Base):\n"
            "    __tablename__ = 'user'\n"
            "    posts: Mapped[list['Post']] = relationship(back_populates='author', lazy='raise')\n"
            "    recent: Mapped[list['Post']] = relationship(viewonly=True, lazy='selectin')\n"
            "    other: Mapped[list['Post']] = relationship(**RELATIONSHIP_OPTIONS)\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.orm import Mapped, relationship\n"
            "class User(Base):\n"
            "    __tablename__ = 'user'\n"
            "    posts: Mapped[list['Post']] = relationship(back_populates='author')\n",
            fixed="from sqlalchemy.orm import Mapped, relationship\n"
            "class User(Base):\n"
            "    __tablename__ = 'user'\n"
            "    posts: Mapped[list['Post']] = relationship(back_populates='author', lazy=\"raise\")\n",
            files={"app/db.py": "from sqlalchemy.ext.asyncio import async_sessionmaker\n"},
            line=4,
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from sqlalchemy import orm\n"
            "class Post(Base):\n"
            "    __tablename__ = 'post'\n"
            "    author = orm.relationship('User')\n"
            "    tags = orm.relationship('Tag', secondary=post_tag, viewonly=True)\n",
            fixed="from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from sqlalchemy import orm\n"
            "class Post(Base):\n"
            "    __tablename__ = 'post'\n"
            "    author = orm.relationship('User', lazy=\"raise\")\n"
            "    tags = orm.relationship('Tag', secondary=post_tag, viewonly=True, lazy=\"raise\")\n",
            count=2,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return project.asyncio and "relationship" in shape.calls

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        if not ctx.project.uses_asyncio or ctx.callee(node) != _RELATIONSHIP:
            return
        if any(arg.star == "**" or (arg.keyword is not None and arg.keyword.value == "lazy") for arg in node.args):
            return
        fix = ctx.fix('Add `lazy="raise"`', unsafe=True).set_keyword(node, "lazy", '"raise"')
        ctx.report(node, "`relationship()` without an explicit `lazy=`: implicit lazy loads fail under `AsyncSession`", fix)


class DynamicRelationshipInAsync(Rule):
    """
    ## What it does
    In a project that uses `sqlalchemy.ext.asyncio` (or `sqlmodel.ext.asyncio`), flags
    `lazy="dynamic"` on a `relationship()`/`backref()` (and in SQLModel's
    `sa_relationship_kwargs`), `DynamicMapped[...]` annotations and `dynamic_loader()`.

    ## Why is this bad?
    Dynamic relationships return a legacy `AppenderQuery` that runs SQL implicitly when
    iterated; the asyncio extension does not support them. SQLAlchemy 2.0 replaces them
    with `lazy="write_only"` (`WriteOnlyMapped`), whose collection is read explicitly with
    `await session.scalars(user.posts.select())`.

    ## Example
    ```python
    class User(Base):
        __tablename__ = "user"
        posts = relationship("Post", lazy="dynamic")
    ```

    ## Use instead
    ```python
    class User(Base):
        __tablename__ = "user"
        posts = relationship("Post", lazy="write_only")
    ```

    ## Fix safety
    Unsafe: the fix switches to `lazy="write_only"` (`DynamicMapped` becomes
    `WriteOnlyMapped`), whose collection has a different API: code iterating or
    filtering the relationship must be rewritten to `select()` statements.
    `dynamic_loader()` is reported without a fix.
    """

    code = "FDB206"
    name = "dynamic-relationship-in-async"
    summary = "`lazy=\"dynamic\"` relationship in a project that uses SQLAlchemy's asyncio extension"
    fix = FixAvailability.UNSAFE
    triggers = ("dynamic", "DynamicMapped")
    valid = [
        Valid(
            "from sqlalchemy.orm import relationship\n"
            "class User(Base):\n"
            "    __tablename__ = 'user'\n"
            "    posts = relationship('Post', lazy='dynamic')\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from sqlalchemy.orm import WriteOnlyMapped, relationship\n"
            "class User(Base):\n"
            "    __tablename__ = 'user'\n"
            "    posts: WriteOnlyMapped['Post'] = relationship(lazy='write_only')\n"
            "    mode = 'dynamic'\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from sqlalchemy.orm import relationship\n"
            "class User(Base):\n"
            "    __tablename__ = 'user'\n"
            "    posts = relationship('Post', lazy='dynamic')\n",
            fixed="from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from sqlalchemy.orm import relationship\n"
            "class User(Base):\n"
            "    __tablename__ = 'user'\n"
            "    posts = relationship('Post', lazy='write_only')\n",
            line=5,
        ),
        Invalid(
            "from sqlalchemy.orm import DynamicMapped, Mapped, relationship\n"
            "class User(Base):\n"
            "    __tablename__ = 'user'\n"
            "    posts: DynamicMapped['Post'] = relationship(back_populates='author')\n"
            "    tags: DynamicMapped['Tag'] = relationship(lazy=\"dynamic\")\n",
            fixed="from sqlalchemy.orm import DynamicMapped, Mapped, relationship, WriteOnlyMapped\n"
            "class User(Base):\n"
            "    __tablename__ = 'user'\n"
            "    posts: WriteOnlyMapped['Post'] = relationship(back_populates='author')\n"
            "    tags: WriteOnlyMapped['Tag'] = relationship(lazy=\"write_only\")\n",
            files={"app/db.py": "from sqlalchemy.ext.asyncio import create_async_engine\n"},
            count=2,
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from sqlalchemy.orm import backref, relationship\n"
            "class Post(Base):\n"
            "    __tablename__ = 'post'\n"
            "    author = relationship('User', lazy='raise', backref=backref('posts', lazy='dynamic'))\n",
            fixed="from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from sqlalchemy.orm import backref, relationship\n"
            "class Post(Base):\n"
            "    __tablename__ = 'post'\n"
            "    author = relationship('User', lazy='raise', backref=backref('posts', lazy='write_only'))\n",
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        if not project.asyncio:
            return False
        calls, keywords = shape.calls, shape.keywords
        return (
            "DynamicMapped" in shape.names
            or "dynamic_loader" in calls
            or ("lazy" in keywords and not _LAZY_KEYWORD_CALLS.isdisjoint(calls))
            or ("Relationship" in calls and "sa_relationship_kwargs" in keywords)
        )

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        # lazy= arguments already reported with their DynamicMapped annotation.
        self._covered: set[int] = set()

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        ctx = self.ctx
        if not ctx.project.uses_asyncio or not ctx.classes:
            return
        annotation = node.annotation.annotation
        head = annotation.value if isinstance(annotation, cst.Subscript) else annotation
        if not isinstance(head, (cst.Name, cst.Attribute)) or ctx.qualname(head) != _DYNAMIC_MAPPED:
            return
        fix = ctx.fix("Use `WriteOnlyMapped` (`lazy=\"write_only\"`)", unsafe=True)
        if isinstance(head, cst.Name):
            fix.add_import("sqlalchemy.orm", "WriteOnlyMapped").replace(head, cst.Name("WriteOnlyMapped"))
        else:
            fix.replace(head.attr, cst.Name("WriteOnlyMapped"))
        if isinstance(node.value, cst.Call):
            lazy = self._dynamic_lazy(node.value)
            if lazy is not None:
                self._covered.add(id(lazy))
                fix.replace(lazy.value, _write_only(lazy.value))
        ctx.report(head, "`DynamicMapped` (`lazy=\"dynamic\"`) is not supported by the asyncio extension", fix)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        if not ctx.project.uses_asyncio:
            return
        callee = ctx.callee(node)
        if callee == _DYNAMIC_LOADER:
            ctx.report(node, "`dynamic_loader()` is not supported by the asyncio extension: use `lazy=\"write_only\"`")
            return
        if callee in (_RELATIONSHIP, _BACKREF):
            lazy = self._dynamic_lazy(node)
            if lazy is not None and id(lazy) not in self._covered:
                fix = ctx.fix('Use `lazy="write_only"`', unsafe=True).replace(lazy.value, _write_only(lazy.value))
                ctx.report(lazy, '`lazy="dynamic"` is not supported by the asyncio extension', fix)
            return
        if callee == _SQLMODEL_RELATIONSHIP:
            for arg in node.args:
                if arg.keyword is None or arg.keyword.value != "sa_relationship_kwargs" or not isinstance(arg.value, cst.Dict):
                    continue
                for element in arg.value.elements:
                    if (
                        isinstance(element, cst.DictElement)
                        and _string_value(element.key) == "lazy"
                        and _string_value(element.value) == "dynamic"
                    ):
                        fix = ctx.fix('Use `"write_only"`', unsafe=True).replace(element.value, _write_only(element.value))
                        ctx.report(element, '`lazy="dynamic"` is not supported by the asyncio extension', fix)

    @staticmethod
    def _dynamic_lazy(call: cst.Call) -> cst.Arg | None:
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value == "lazy" and _string_value(arg.value) == "dynamic":
                return arg
        return None


def _string_value(expr: cst.BaseExpression) -> str | None:
    if isinstance(expr, cst.SimpleString):
        value = string_value(expr)
        return value if isinstance(value, str) else None
    return None


def _write_only(expr: cst.BaseExpression) -> cst.SimpleString:
    quote = expr.quote if isinstance(expr, cst.SimpleString) else '"'
    return cst.SimpleString(f"{quote}write_only{quote}")


# Async session methods whose awaited result (or refresh) gives a loaded instance
# (`InstanceOrigins._awaited` and `_refresh`).
_LOADING_CALLS = frozenset(
    {"get", "get_one", "scalar", "scalars", "exec", "execute", "stream", "stream_scalars", "refresh"}
)
_LIST_TYPES = frozenset({"typing.List", "typing.Sequence", "typing.Iterable", "typing.Collection"})
_VALIDATORS = frozenset({"model_validate", "from_orm"})
_MODELS = (
    "from sqlalchemy import ForeignKey\n"
    "from sqlalchemy.orm import DeclarativeBase, Mapped, WriteOnlyMapped, mapped_column, relationship\n"
    "class Base(DeclarativeBase):\n"
    "    pass\n"
    "class User(Base):\n"
    "    __tablename__ = 'user'\n"
    "    id: Mapped[int] = mapped_column(primary_key=True)\n"
    "    posts: Mapped[list['Post']] = relationship(back_populates='author')\n"
    "    groups: Mapped[list['Group']] = relationship(lazy='selectin')\n"
    "    badges: Mapped[list['Badge']] = relationship(lazy='joined')\n"
    "    teams: Mapped[list['Team']] = relationship(lazy='subquery')\n"
    "    settings: Mapped['Settings'] = relationship(lazy='immediate')\n"
    "    roles: Mapped[list['Role']] = relationship(lazy='raise')\n"
    "    tokens: Mapped[list['Token']] = relationship(lazy='noload')\n"
    "    events: WriteOnlyMapped['Event'] = relationship(lazy='write_only')\n"
    "class Post(Base):\n"
    "    __tablename__ = 'post'\n"
    "    id: Mapped[int] = mapped_column(primary_key=True)\n"
    "    author_id: Mapped[int] = mapped_column(ForeignKey('user.id'))\n"
    "    author: Mapped[User] = relationship(back_populates='posts')\n"
)
_FILES = {"app/models.py": _MODELS}
_HEAD = (
    "from sqlalchemy import select\n"
    "from sqlalchemy.ext.asyncio import AsyncSession\n"
    "from sqlalchemy.orm import selectinload\n"
    "from app.models import Post, User\n"
)


class ImplicitLazyLoad(Rule):
    """
    ## What it does
    In an `async def`, flags reading a relationship attribute of an instance loaded
    through an `AsyncSession` when that relationship loads lazily (no `lazy=` or
    `lazy="select"` on the `relationship()`, inherited ones included) and the query did
    not eager-load it (`.options(selectinload(...))`, `joinedload`, `subqueryload`,
    `immediateload`, ...). Instances are followed from `await session.get(M, pk)`,
    `await session.scalar(select(M)...)`, `(await session.scalars(select(M)...)).all()`
    / `.first()` / `.one()`, `(await session.execute(select(M)...)).scalars()...`,
    statements kept in variables, loops over such results, and
    `await session.refresh(obj)` (which leaves relationships it was not asked for
    unloaded). Also flags an async route returning such an instance (or list) when its
    `response_model` has a field named like an unloaded relationship, and
    `Schema.model_validate(obj)` on one.

    ## Why is this bad?
    A lazy load is IO hidden in an attribute access. Async code cannot do it implicitly:
    under an `AsyncSession` it raises `MissingGreenlet` (or, with `lazy="raise"`, an
    error), typically only when a rarely-used code path touches the relationship. Load
    what the code needs explicitly in the query.

    ## Example
    ```python
    async def post_titles(session: AsyncSession, user_id: int) -> list[str]:
        user = await session.get(User, user_id)
        return [post.title for post in user.posts]
    ```

    ## Use instead
    ```python
    async def post_titles(session: AsyncSession, user_id: int) -> list[str]:
        user = await session.get(User, user_id, options=[selectinload(User.posts)])
        return [post.title for post in user.posts]
    ```

    ## Fix safety
    No fix. Not flagged: relationships declared with an eager or non-loading strategy
    (`selectin`, `joined`, `subquery`, `immediate`, `raise`, `noload`, `write_only`),
    `await obj.awaitable_attrs.rel` (and reads after it), relationships named in
    `refresh(obj, ["rel"])` or assigned in the function, code in lambdas and nested
    plain functions (`run_sync` bodies), instances created in the function (until they
    are refreshed), instances of unknown origin (parameters, helper results), and
    queries whose loader options cannot be read (`*options`, wildcards).
    """

    code = "FDB204"
    name = "implicit-lazy-load"
    summary = "Relationship read in async code without being eager-loaded (implicit lazy load)"

    valid = [
        Valid(
            _HEAD + "async def titles(session: AsyncSession, user_id: int):\n"
            "    user = await session.get(User, user_id, options=[selectinload(User.posts)])\n"
            "    return [p.id for p in user.posts]\n",
            files=_FILES,
        ),
        Valid(
            _HEAD + "async def titles(session: AsyncSession):\n"
            "    stmt = select(User).options(selectinload(User.posts))\n"
            "    users = (await session.scalars(stmt)).all()\n"
            "    return [p.id for u in users for p in u.posts]\n",
            files=_FILES,
        ),
        Valid(
            _HEAD + "async def eager_by_declaration(session: AsyncSession, user_id: int):\n"
            "    user = await session.get(User, user_id)\n"
            "    return user.groups, user.badges, user.teams, user.settings, user.roles, user.tokens, user.events\n",
            files=_FILES,
        ),
        Valid(
            _HEAD + "async def titles(session: AsyncSession, user_id: int):\n"
            "    user = await session.get(User, user_id)\n"
            "    posts = await user.awaitable_attrs.posts\n"
            "    return posts, user.posts\n",
            files=_FILES,
        ),
        Valid(
            _HEAD + "async def titles(session: AsyncSession, user_id: int):\n"
            "    user = await session.get(User, user_id)\n"
            "    return await session.run_sync(lambda s: user.posts)\n",
            files=_FILES,
        ),
        Valid(
            _HEAD + "async def create(session: AsyncSession):\n"
            "    user = User()\n"
            "    session.add(user)\n"
            "    await session.commit()\n"
            "    return user.posts\n",
            files=_FILES,
        ),
        Valid(
            _HEAD + "async def refreshed(session: AsyncSession, user_id: int):\n"
            "    user = await session.get(User, user_id)\n"
            "    await session.refresh(user, ['posts'])\n"
            "    return user.posts\n",
            files=_FILES,
        ),
        Valid(
            _HEAD + "def sync_view(session, user_id: int):\n"
            "    user = session.get(User, user_id)\n"
            "    return user.posts\n",
            files=_FILES,
        ),
        Valid(
            _HEAD + "async def from_param(user: User):\n"
            "    return user.posts\n",
            files=_FILES,
        ),
        Valid(
            _HEAD + "async def author(session: AsyncSession, post_id: int):\n"
            "    post = await session.scalar(select(Post).options(*POST_OPTIONS).where(Post.id == post_id))\n"
            "    return post.author\n",
            files=_FILES,
        ),
    ]
    invalid = [
        Invalid(
            _HEAD + "async def titles(session: AsyncSession, user_id: int):\n"
            "    user = await session.get(User, user_id)\n"
            "    return [p.id for p in user.posts]\n",
            files=_FILES,
            line=7,
        ),
        Invalid(
            _HEAD + "async def authors(session: AsyncSession):\n"
            "    stmt = select(Post).where(Post.id > 10)\n"
            "    result = await session.execute(stmt)\n"
            "    for post in result.scalars().all():\n"
            "        print(post.author)\n",
            files=_FILES,
            line=9,
        ),
        Invalid(
            _HEAD + "async def first_author(session: AsyncSession):\n"
            "    post = (await session.scalars(select(Post).options(selectinload(Post.author)))).first()\n"
            "    user = (await session.scalars(select(User).limit(1))).one()\n"
            "    return post.author, user.posts\n",
            files=_FILES,
            line=8,
        ),
        Invalid(
            _HEAD + "async def create(session: AsyncSession):\n"
            "    user = User()\n"
            "    session.add(user)\n"
            "    await session.commit()\n"
            "    await session.refresh(user)\n"
            "    return user.posts\n",
            files=_FILES,
            line=10,
        ),
        Invalid(
            "from fastapi import APIRouter, Depends\n"
            "from pydantic import BaseModel\n" + _HEAD + "router = APIRouter()\n"
            "class UserOut(BaseModel):\n"
            "    id: int\n"
            "    posts: list[int]\n"
            "@router.get('/users/{user_id}', response_model=UserOut)\n"
            "async def read_user(user_id: int, session: AsyncSession = Depends(get_session)):\n"
            "    user = await session.get(User, user_id)\n"
            "    return user\n",
            files=_FILES,
            line=14,
        ),
    ]

    # Only instances loaded (or refreshed) by an awaited async session call can
    # lazy-load, and only when the project has a class with relationships.
    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return (
            bool(project.model_names)
            and not _LOADING_CALLS.isdisjoint(shape.awaited_calls)
            and may_hold_async_objects(shape, project)
        )

    def visit_Attribute(self, node: cst.Attribute) -> None:
        ctx = self.ctx
        function = ctx.function
        if function is None or not function.is_async:
            return
        if not isinstance(node.value, (cst.Name, cst.Await, cst.Call, cst.Subscript)):
            return
        parent = ctx.parent
        if isinstance(parent, (cst.AssignTarget, cst.AugAssign, cst.AnnAssign, cst.Del)) and getattr(parent, "target", None) is node:
            return
        origin = ctx.loading.origin(node.value)
        if origin is None:
            return
        relationship = ctx.loading.unloaded(origin, node.attr.value)
        if relationship is None or in_lambda(ctx.stack):
            return
        ctx.report(node, _lazy_message(origin, relationship))

    def visit_Return(self, node: cst.Return) -> None:
        ctx = self.ctx
        function = ctx.function
        if function is None or not function.is_async or not function.is_route or node.value is None:
            return
        origin = ctx.loading.origin(node.value)
        if origin is None or in_lambda(ctx.stack):
            return
        response = self._response_model(function.node)
        if response is None:
            return
        schema, many = response
        if many != (origin.shape in (Shape.LIST, Shape.SCALARS)):
            return
        instance = origin.with_shape(Shape.INSTANCE) if many else origin
        self._check_schema(node, instance, schema, "The response model")

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        function = ctx.function
        if function is None or not function.is_async:
            return
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in _VALIDATORS:
            return
        if not node.args or node.args[0].keyword is not None or in_lambda(ctx.stack):
            return
        origin = ctx.loading.origin(node.args[0].value)
        schema = ctx.loading.resolve_class(ctx.qualname(func.value))
        if origin is None or schema is None:
            return
        self._check_schema(node, origin, schema, f"`{func.attr.value}()`")

    def _check_schema(self, node: cst.CSTNode, origin: Origin, schema: str, reader: str) -> None:
        loading = self.ctx.loading
        if origin.shape is not Shape.INSTANCE or loading.lazy_relationships(schema):
            return
        fields = loading.class_fields(schema)
        unloaded = sorted(name for name in fields if loading.unloaded(origin, name) is not None)
        if not unloaded:
            return
        model = origin.model.rsplit(".", 1)[-1]
        names = ", ".join(f"`{model}.{name}`" for name in unloaded)
        self.ctx.report(
            node,
            f"{reader} reads {names}, not eager-loaded: "
            "serialising it lazy-loads (`MissingGreenlet` under `AsyncSession`)",
        )

    def _response_model(self, function: cst.FunctionDef) -> tuple[str, bool] | None:
        ctx = self.ctx
        declared: cst.BaseExpression | None = None
        for decorator in function.decorators:
            call = decorator.decorator
            if not isinstance(call, cst.Call) or not route_decorator(decorator, ctx):
                continue
            for arg in call.args:
                if arg.keyword is None:
                    continue
                if arg.keyword.value in ("response_model_include", "response_model_exclude"):
                    return None
                if arg.keyword.value == "response_model":
                    declared = arg.value
        if declared is None and function.returns is not None:
            declared = function.returns.annotation
        return self._schema_of(declared) if declared is not None else None

    def _schema_of(self, expr: cst.BaseExpression) -> tuple[str, bool] | None:
        ctx = self.ctx
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.BitOr):
            if isinstance(expr.right, cst.Name) and expr.right.value == "None":
                return self._schema_of(expr.left)
            if isinstance(expr.left, cst.Name) and expr.left.value == "None":
                return self._schema_of(expr.right)
            return None
        if isinstance(expr, cst.Subscript):
            if len(expr.slice) != 1 or not isinstance(expr.slice[0].slice, cst.Index):
                return None
            inner = expr.slice[0].slice.value
            head = expr.value
            if isinstance(head, cst.Name) and head.value == "list" and ctx.imports.resolve("list") is None:
                found = self._schema_of(inner)
                return (found[0], True) if found is not None and not found[1] else None
            qual = ctx.qualname(head)
            if qual in _LIST_TYPES:
                found = self._schema_of(inner)
                return (found[0], True) if found is not None and not found[1] else None
            if qual == "typing.Optional":
                return self._schema_of(inner)
            return None
        if isinstance(expr, (cst.Name, cst.Attribute)):
            qual = ctx.loading.resolve_class(ctx.qualname(expr))
            if qual is not None:
                return qual, False
        return None


def _lazy_message(origin: Origin, relationship: Relationship) -> str:
    model = origin.model.rsplit(".", 1)[-1]
    return (
        f"`{model}.{relationship.attr}` is not eager-loaded: reading it lazy-loads "
        "(implicit IO, `MissingGreenlet` under `AsyncSession`); load it with "
        "`selectinload()`/`joinedload()` or `await obj.awaitable_attrs."
        f"{relationship.attr}`"
    )
