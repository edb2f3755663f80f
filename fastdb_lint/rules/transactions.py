"""FDB8xx: transactions and writes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst

from fastdb_lint.analysis.syntax import dotted_cst
from fastdb_lint.analysis.sqlalchemy_api import (
    DB_ERRORS,
    SELECT_CHAIN_METHODS,
    SELECT_FUNCTIONS,
    SESSION_QUERY_METHODS,
    STATEMENT_EXECUTORS,
    DbKind,
)
from fastdb_lint.analysis.strings import BindingKind, is_all_caps
from fastdb_lint.context import FileContext
from fastdb_lint.diagnostics import FixAvailability
from fastdb_lint.fixes import FixBuilder
from fastdb_lint.rules.base import Invalid, ProjectTerms, Rule, Valid
from fastdb_lint.analysis.preconditions import EXECUTOR_SOURCES, SESSION_SOURCES, may_see_db_object

if TYPE_CHECKING:
    from fastdb_lint.analysis.shape import FileShape

_SCOPE_BOUNDARIES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)
_LOOPS = (cst.For, cst.While)
_SESSION_KINDS = frozenset(
    {DbKind.SYNC_SESSION, DbKind.ASYNC_SESSION, DbKind.SYNC_REGISTRY, DbKind.ASYNC_REGISTRY}
)
_ASYNC_KINDS = frozenset({DbKind.ASYNC_SESSION, DbKind.ASYNC_REGISTRY, DbKind.ASYNC_CONNECTION})


def _method_call(node: cst.Call) -> tuple[str, cst.BaseExpression] | None:
    func = node.func
    if type(func) is cst.Attribute:
        return func.attr.value, func.value
    return None


def _enclosing_bodies(ctx: FileContext, kinds: tuple[type, ...]) -> list[cst.CSTNode]:
    """Nodes of the given types (innermost first, same function) whose body encloses
    the current node; for an ``If``, only when the current node is in its ``body``."""
    found: list[cst.CSTNode] = []
    stack = ctx.stack
    for index in range(len(stack) - 2, -1, -1):
        node = stack[index]
        if isinstance(node, _SCOPE_BOUNDARIES):
            break
        if isinstance(node, kinds):
            child = stack[index + 1]
            if child is getattr(node, "body", None):
                found.append(node)
    return found


# -- FDB801 -----------------------------------------------------------------------

_BATCH_WORDS = re.compile(r"batch|chunk|partition|page|paginat|window|slice", re.IGNORECASE)
_SIZE_WORDS = re.compile(r"size|batch|chunk|limit|every|interval", re.IGNORECASE)
_BATCH_METHODS = frozenset({"limit", "fetchmany", "yield_per", "partitions", "offset", "slice"})


@dataclass(eq=False)
class _Loop:
    node: cst.For | cst.While
    batched: bool = False
    exits: bool = False
    commits: list[tuple[int, cst.Call]] = field(default_factory=list)


class CommitInLoop(Rule):
    """
    ## What it does
    Flags `session.commit()` (awaited or not) in the body of a `for`, `async for` or
    `while` loop.

    ## Why is this bad?
    Each commit ends a transaction: a commit per iteration means one transaction, one
    round trip and one fsync per row, and a failure halfway leaves half the rows
    written. Write the rows, then commit once per unit of work (or once per batch);
    bulk inserts belong in `insert(Model).values([...])`.

    ## Example
    ```python
    for email in emails:
        session.add(User(email=email))
        await session.commit()
    ```

    ## Use instead
    ```python
    session.add_all([User(email=email) for email in emails])
    await session.commit()
    ```

    ## Fix safety
    There is no fix: where the transaction should end is a design decision.

    Not flagged: batch loops that commit once per chunk of an explicit size (a loop
    over `range(0, n, size)`, `batched(rows, 500)`, `.partitions(...)`, a `while` loop
    that pages with `.limit()`/`.offset()`/`fetchmany()` or a `for` loop whose variable
    drives them, a commit guarded by `if i % 500 == 0` or `if len(buffer) >=
    BATCH_SIZE`); retry loops (`for attempt in range(3)` that `break` or `return`,
    tenacity's `for attempt in Retrying(...)`); `while` loops that leave through
    `break`/`return` (workers, pagination); loops that open a new session in each
    iteration; commits in functions defined inside the loop.
    """

    code = "FDB801"
    name = "commit-in-loop"
    summary = "`commit()` inside a loop: one transaction per row"
    valid = [
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def import_users(emails: list[str], session: AsyncSession) -> None:\n"
            "    for email in emails:\n"
            "        session.add(User(email=email))\n"
            "    await session.commit()\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "def import_rows(rows: list[dict], session: Session) -> None:\n"
            "    for start in range(0, len(rows), 1000):\n"
            "        session.add_all([Row(**r) for r in rows[start : start + 1000]])\n"
            "        session.commit()\n"
        ),
        Valid(
            "from itertools import batched\n"
            "from sqlalchemy.orm import Session\n"
            "def import_rows(rows, session: Session) -> None:\n"
            "    for chunk in batched(rows, 500):\n"
            "        session.add_all(chunk)\n"
            "        session.commit()\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "BATCH_SIZE = 500\n"
            "def import_rows(rows, session: Session) -> None:\n"
            "    for index, row in enumerate(rows, start=1):\n"
            "        session.add(Row(**row))\n"
            "        if index % BATCH_SIZE == 0:\n"
            "            session.commit()\n"
            "    session.commit()\n"
        ),
        Valid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def backfill(session: AsyncSession) -> None:\n"
            "    while True:\n"
            "        rows = (await session.scalars(select(Row).where(Row.slug.is_(None)).limit(500))).all()\n"
            "        if not rows:\n"
            "            break\n"
            "        for row in rows:\n"
            "            row.slug = slugify(row.title)\n"
            "        await session.commit()\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "def save(session: Session) -> None:\n"
            "    for attempt in range(3):\n"
            "        try:\n"
            "            session.commit()\n"
            "            break\n"
            "        except OperationalError:\n"
            "            session.rollback()\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "SessionLocal = async_sessionmaker(expire_on_commit=False)\n"
            "async def per_tenant(tenants) -> None:\n"
            "    for tenant in tenants:\n"
            "        async with SessionLocal() as session:\n"
            "            session.add(Audit(tenant=tenant))\n"
            "            await session.commit()\n"
        ),
        Valid(
            "def import_rows(rows, cache) -> None:\n"
            "    for row in rows:\n"
            "        cache.commit()\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def import_users(emails: list[str], session: AsyncSession) -> None:\n"
            "    for email in emails:\n"
            "        session.add(User(email=email))\n"
            "        await session.commit()\n",
            line=5,
        ),
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def mark_paid(invoices, db: Session) -> None:\n"
            "    for invoice in invoices:\n"
            "        invoice.paid = True\n"
            "        if invoice.total > 0:\n"
            "            db.commit()\n",
            line=6,
        ),
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def drain(queue, db: Session) -> None:\n"
            "    while queue:\n"
            "        db.add(queue.pop())\n"
            "        db.commit()\n"
            "        db.refresh(obj)\n"
            "        db.commit()\n",
            count=2,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # Only `x.commit()` written in the loop's body counts, not one in a helper it calls.
        return "commit" in shape.loop_calls and may_see_db_object(shape, project, EXECUTOR_SOURCES)

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._loops: list[_Loop] = []
        # Commits to report, with their position in source order.
        self._found: list[tuple[int, cst.Call]] = []
        self._seen = 0

    def visit_For(self, node: cst.For) -> None:
        self._loops.append(_Loop(node, batched=self._batched_iteration(node)))

    def visit_While(self, node: cst.While) -> None:
        self._loops.append(_Loop(node))

    def leave_For(self, node: cst.For) -> None:
        self._close(node)

    def leave_While(self, node: cst.While) -> None:
        self._close(node)

    def visit_Break(self, node: cst.Break) -> None:
        self._mark_exit()

    def visit_Return(self, node: cst.Return) -> None:
        self._mark_exit()

    def visit_Call(self, node: cst.Call) -> None:
        call = _method_call(node)
        if call is None:
            return
        method, receiver = call
        if method in _BATCH_METHODS:
            loop = self._innermost()
            if loop is not None and self._pages(loop.node, node):
                loop.batched = True
            return
        if method != "commit" or self.ctx.kind(receiver) not in STATEMENT_EXECUTORS:
            return
        loop = self._innermost()
        if loop is None or self._guarded(loop.node) or self._opened_in(loop.node, receiver):
            return
        self._seen += 1
        loop.commits.append((self._seen, node))

    # -- helpers ---------------------------------------------------------------

    def _innermost(self) -> _Loop | None:
        bodies = _enclosing_bodies(self.ctx, _LOOPS)
        if not bodies:
            return None
        innermost = bodies[0]
        return next((loop for loop in reversed(self._loops) if loop.node is innermost), None)

    @staticmethod
    def _pages(loop: cst.For | cst.While, call: cst.Call) -> bool:
        """``.limit()``/``.offset()``/``fetchmany()`` that pages through rows: in a
        ``while`` loop, or driven by the ``for`` loop's variable."""
        if isinstance(loop, cst.While):
            return True
        targets = {n.value for n in _names(loop.target)}
        return any(n.value in targets for arg in call.args for n in _names(arg.value))

    def _mark_exit(self) -> None:
        bodies = _enclosing_bodies(self.ctx, _LOOPS)
        if bodies:
            loop = next((loop for loop in reversed(self._loops) if loop.node is bodies[0]), None)
            if loop is not None:
                loop.exits = True

    def _close(self, node: cst.For | cst.While) -> None:
        if not self._loops or self._loops[-1].node is not node:
            return
        loop = self._loops.pop()
        if loop.batched or not loop.commits:
            return
        if loop.exits and (isinstance(node, cst.While) or self._counted(node)):
            return
        if isinstance(node, cst.For) and self._retrying(node):
            return
        self._found.extend(loop.commits)

    def finish(self) -> None:
        for _, commit in sorted(self._found, key=lambda found: found[0]):
            self.ctx.report(
                commit,
                "`commit()` inside a loop: one transaction per iteration; commit once after the loop "
                "(or once per batch of an explicit size)",
            )

    def _counted(self, node: cst.For) -> bool:
        """``for attempt in range(3)``: a retry loop when it leaves early."""
        iterable = node.iter
        if isinstance(iterable, cst.Call) and isinstance(iterable.func, cst.Name) and iterable.func.value == "range":
            return all(isinstance(a.value, (cst.Integer, cst.Name, cst.Attribute)) for a in iterable.args)
        return False

    def _retrying(self, node: cst.For) -> bool:
        """``for attempt in Retrying(...)`` (tenacity) and similar retry iterators."""
        iterable = node.iter
        callee = dotted_cst(iterable.func) if isinstance(iterable, cst.Call) else None
        return callee is not None and "retr" in callee.lower()

    def _batched_iteration(self, node: cst.For) -> bool:
        target = node.target
        if isinstance(target, cst.Name) and _BATCH_WORDS.search(target.value):
            return True
        return self._batches(node.iter, 0)

    def _batches(self, iterable: cst.BaseExpression, depth: int) -> bool:
        if depth > 3:
            return False
        if isinstance(iterable, cst.Name):
            reach = self.ctx.values.reaching(iterable.value)
            binding = reach.single if reach is not None else None
            return binding is not None and binding.value is not None and self._batches(binding.value, depth + 1)
        if isinstance(iterable, (cst.ListComp, cst.GeneratorExp)):
            element = iterable.elt
            if isinstance(element, cst.Subscript) and any(isinstance(s.slice, cst.Slice) for s in element.slice):
                return True
            return self._batches(iterable.for_in.iter, depth + 1)
        if not isinstance(iterable, cst.Call):
            return False
        func = iterable.func
        name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
        if name == "range":
            return len(iterable.args) == 3
        if name in ("enumerate", "list", "iter", "tuple", "reversed") and iterable.args:
            return self._batches(iterable.args[0].value, depth + 1)
        if name in _BATCH_METHODS or (_BATCH_WORDS.search(name) and iterable.args):
            return True
        return False

    def _guarded(self, loop: cst.CSTNode) -> bool:
        """The commit runs under an ``if`` that counts rows (``i % n == 0``,
        ``len(buffer) >= SIZE``) inside the loop."""
        for node in _enclosing_bodies(self.ctx, (cst.If, *_LOOPS)):
            if node is loop:
                return False
            if isinstance(node, cst.If) and _counts(node.test):
                return True
        return False

    def _opened_in(self, loop: cst.CSTNode, receiver: cst.BaseExpression) -> bool:
        """The session was created inside the loop (one unit of work per iteration)."""
        if not isinstance(receiver, cst.Name):
            return False
        reach = self.ctx.values.reaching(receiver.value)
        if reach is None or not reach.bindings or reach.unknown_param:
            return False
        return all(loop in binding.loops or binding.node is loop for binding in reach.bindings)


def _names(expr: cst.CSTNode) -> list[cst.Name]:
    """The names an expression reads (a small expression: call arguments, targets)."""
    found: list[cst.Name] = []
    pending = [expr]
    while pending:
        node = pending.pop()
        if isinstance(node, cst.Name):
            found.append(node)
        elif not isinstance(node, (cst.Lambda, cst.FunctionDef)):
            pending.extend(node.children)
    return found


def _is_size(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, cst.Integer):
        return True
    if isinstance(expr, cst.Name):
        return is_all_caps(expr.value) or bool(_SIZE_WORDS.search(expr.value))
    if isinstance(expr, cst.Attribute):
        return is_all_caps(expr.attr.value) or bool(_SIZE_WORDS.search(expr.attr.value))
    return False


def _counts(test: cst.BaseExpression) -> bool:
    if isinstance(test, cst.BinaryOperation):
        return isinstance(test.operator, cst.Modulo) or _counts(test.left) or _counts(test.right)
    if isinstance(test, cst.BooleanOperation):
        return _counts(test.left) or _counts(test.right)
    if isinstance(test, cst.UnaryOperation):
        return _counts(test.expression)
    if isinstance(test, cst.Comparison):
        sides = [test.left, *(c.comparator for c in test.comparisons)]
        for side in sides:
            if _counts(side):
                return True
            if isinstance(side, cst.Call) and isinstance(side.func, cst.Name) and side.func.value == "len":
                return True
            if isinstance(side, cst.Integer) and side.evaluated_value > 1:
                return True
            if isinstance(side, (cst.Name, cst.Attribute)) and _is_size(side):
                return True
    return False


# -- FDB802 -----------------------------------------------------------------------

# Calls that fail the session's transaction when they raise.
_GUARDED_METHODS = frozenset({"commit", "flush", "execute"})
# What an `except` clause that catches database errors names (in a shape: "" for a bare
# `except:`, the last name of a class): a generic one counts only for receivers of a
# known kind.
_GENERIC_TYPES = frozenset({"", "Exception", "BaseException"})
_DB_ERROR_TYPES = frozenset(q.rpartition(".")[2] for q in DB_ERRORS)


@dataclass(eq=False)
class _Handler:
    raises: bool = False
    rolls_back: bool = False


@dataclass(eq=False)
class _Try:
    node: cst.Try
    # (receiver, kind) of the commit/flush/execute calls its body runs; the kind is None
    # for receivers of unknown type (relevant only to handlers of SQLAlchemy errors).
    calls: list[tuple[cst.BaseExpression, DbKind | None]] = field(default_factory=list)
    # Unknown receivers whose call is awaited.
    awaited: set[int] = field(default_factory=set)
    handlers: dict[int, _Handler] = field(default_factory=dict)
    finally_cleans: bool = False


class DbErrorSwallowedWithoutRollback(Rule):
    """
    ## What it does
    Flags an `except` clause for `Exception`, `SQLAlchemyError`, `DBAPIError`,
    `IntegrityError` (or another database error), or a bare `except:`, around a
    session's `commit()`, `flush()` or `execute()`, when the handler neither re-raises
    nor calls `rollback()`. When the object is not known to be a session (an
    unannotated parameter), only handlers of SQLAlchemy's own errors count.

    ## Why is this bad?
    After a failed flush or commit the session's transaction is dead: every later use
    raises `PendingRollbackError` until `rollback()` is called. A handler that swallows
    the error leaves the session unusable for the rest of the request (or, for a
    long-lived session, for good).

    ## Example
    ```python
    try:
        await session.commit()
    except IntegrityError:
        return None
    ```

    ## Use instead
    ```python
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return None
    ```

    ## Fix safety
    Unsafe: the fix inserts `(await) session.rollback()` as the handler's first
    statement, which discards everything pending in the session, not only the failed
    statement.

    Not flagged: handlers that `raise` (anything), call `rollback()` or `close()` the
    session; a `finally` (or the statement right after the `try`) that rolls back or
    closes it; statements run inside
    `with session.begin()` (or a `with` that opens the session), which roll back on
    their own; handlers for unrelated exceptions (`ValueError`).
    """

    code = "FDB802"
    name = "db-error-swallowed-without-rollback"
    summary = "Database error swallowed without `rollback()`: the session is left unusable"
    fix = FixAvailability.UNSAFE
    valid = [
        Valid(
            "from sqlalchemy.exc import IntegrityError\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def create(session: AsyncSession, user) -> bool:\n"
            "    session.add(user)\n"
            "    try:\n"
            "        await session.commit()\n"
            "    except IntegrityError:\n"
            "        await session.rollback()\n"
            "        return False\n"
            "    return True\n"
        ),
        Valid(
            "from fastapi import HTTPException\n"
            "from sqlalchemy.exc import IntegrityError\n"
            "from sqlalchemy.orm import Session\n"
            "def create(db: Session, user) -> None:\n"
            "    db.add(user)\n"
            "    try:\n"
            "        db.commit()\n"
            "    except IntegrityError as exc:\n"
            "        raise HTTPException(status_code=409) from exc\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "def save(db: Session) -> bool:\n"
            "    try:\n"
            "        db.commit()\n"
            "    except Exception:\n"
            "        db.close()\n"
            "        return False\n"
            "    return True\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "def save(db: Session) -> None:\n"
            "    try:\n"
            "        db.commit()\n"
            "    except ValueError:\n"
            "        pass\n"
        ),
        Valid(
            "from sqlalchemy.exc import IntegrityError\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def create(session: AsyncSession, user) -> bool:\n"
            "    try:\n"
            "        async with session.begin():\n"
            "            session.add(user)\n"
            "            await session.flush()\n"
            "    except IntegrityError:\n"
            "        return False\n"
            "    return True\n"
        ),
        Valid(
            "import logging\n"
            "def notify(client) -> None:\n"
            "    try:\n"
            "        client.execute('PING')\n"
            "    except Exception:\n"
            "        logging.exception('ping failed')\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def mark_done(db: Session, item) -> dict:\n"
            "    try:\n"
            "        item.done = True\n"
            "        db.commit()\n"
            "    except Exception:\n"
            '        return {"ok": False}\n'
            '    return {"ok": True}\n',
            fixed="from sqlalchemy.orm import Session\n"
            "def mark_done(db: Session, item) -> dict:\n"
            "    try:\n"
            "        item.done = True\n"
            "        db.commit()\n"
            "    except Exception:\n"
            "        db.rollback()\n"
            '        return {"ok": False}\n'
            '    return {"ok": True}\n',
            line=6,
        ),
        Invalid(
            "import logging\n"
            "from sqlalchemy.exc import IntegrityError, SQLAlchemyError\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "class Repo:\n"
            "    def __init__(self, session: AsyncSession) -> None:\n"
            "        self.session = session\n"
            "    async def add(self, user) -> None:\n"
            "        self.session.add(user)\n"
            "        try:\n"
            "            await self.session.flush()\n"
            "        except IntegrityError:\n"
            "            # duplicate: keep going\n"
            "            logging.info('duplicate user')\n"
            "        except (ValueError, SQLAlchemyError): pass\n",
            fixed="import logging\n"
            "from sqlalchemy.exc import IntegrityError, SQLAlchemyError\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "class Repo:\n"
            "    def __init__(self, session: AsyncSession) -> None:\n"
            "        self.session = session\n"
            "    async def add(self, user) -> None:\n"
            "        self.session.add(user)\n"
            "        try:\n"
            "            await self.session.flush()\n"
            "        except IntegrityError:\n"
            "            # duplicate: keep going\n"
            "            await self.session.rollback()\n"
            "            logging.info('duplicate user')\n"
            "        except (ValueError, SQLAlchemyError): await self.session.rollback(); pass\n",
            count=2,
            line=11,
        ),
        Invalid(
            "from sqlalchemy import text\n"
            "from sqlalchemy.orm import Session\n"
            "def ping(db: Session) -> bool:\n"
            "    try:\n"
            '        db.execute(text("SELECT 1"))\n'
            "        return True\n"
            "    except:\n"
            "        return False\n",
            fixed="from sqlalchemy import text\n"
            "from sqlalchemy.orm import Session\n"
            "def ping(db: Session) -> bool:\n"
            "    try:\n"
            '        db.execute(text("SELECT 1"))\n'
            "        return True\n"
            "    except:\n"
            "        db.rollback()\n"
            "        return False\n",
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        handlers = shape.handler_types
        return not _GUARDED_METHODS.isdisjoint(shape.quiet_try_calls) and (
            not _DB_ERROR_TYPES.isdisjoint(handlers)
            or (not _GENERIC_TYPES.isdisjoint(handlers) and may_see_db_object(shape, project, EXECUTOR_SOURCES))
        )

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._tries: list[_Try] = []
        self._order: dict[int, int] = {}
        self._found: list[tuple[int, cst.ExceptHandler, FixBuilder]] = []

    def visit_Try(self, node: cst.Try) -> None:
        self._tries.append(_Try(node))

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        self._order[id(node)] = len(self._order)

    def finish(self) -> None:
        for _, handler, fix in sorted(self._found, key=lambda found: found[0]):
            self.ctx.report(
                handler,
                "Database error swallowed without `rollback()`: the session stays in a failed transaction "
                "(`PendingRollbackError` on next use); roll back or re-raise",
                fix,
            )

    def visit_Raise(self, node: cst.Raise) -> None:
        handler = self._handler()
        if handler is not None:
            handler.raises = True

    def visit_Call(self, node: cst.Call) -> None:
        call = _method_call(node)
        if call is None:
            return
        method, receiver = call
        if method in ("rollback", "close", "aclose"):
            handler = self._handler()
            if handler is not None:
                handler.rolls_back = True
            for index in range(len(self.ctx.stack) - 2, -1, -1):
                ancestor = self.ctx.stack[index]
                if isinstance(ancestor, _SCOPE_BOUNDARIES):
                    break
                if isinstance(ancestor, cst.Finally):
                    owner = self.ctx.stack[index - 1]
                    found = next((t for t in self._tries if t.node is owner), None)
                    if found is not None:
                        found.finally_cleans = True
            return
        if method not in _GUARDED_METHODS:
            return
        kind = self.ctx.kind(receiver)
        if kind is not None and kind not in STATEMENT_EXECUTORS:
            return
        awaited = isinstance(self.ctx.parent, cst.Await)
        for node_try in self._guarding_tries():
            found = next((t for t in reversed(self._tries) if t.node is node_try), None)
            if found is None:
                continue
            found.calls.append((receiver, kind))
            if awaited:
                found.awaited.add(id(receiver))
            if any(self._catches(h, kind is not None) for h in node_try.handlers):
                break

    def leave_Try(self, node: cst.Try) -> None:
        if not self._tries or self._tries[-1].node is not node:
            return
        info = self._tries.pop()
        if not info.calls or info.finally_cleans or self._cleaned_after(node):
            return
        for handler in node.handlers:
            if not self._catches(handler, True):
                continue
            # Calls on objects of unknown type count for handlers of SQLAlchemy's errors.
            calls = [c for c in info.calls if c[1] is not None or self._catches(handler, False)]
            if not calls:
                continue
            state = info.handlers.get(id(handler), _Handler())
            if state.raises or state.rolls_back:
                continue
            self._found.append((self._order.get(id(handler), 0), handler, self._fix(handler, calls, info)))

    # -- helpers ---------------------------------------------------------------

    def _cleaned_after(self, node: cst.Try) -> bool:
        """The statement right after the ``try`` closes or rolls back (``conn.close()``)."""
        parent = self.ctx.parent
        body = getattr(parent, "body", None)
        if not isinstance(body, (list, tuple)):
            return False
        for index, stmt in enumerate(body):
            if stmt is node:
                following = body[index + 1] if index + 1 < len(body) else None
                break
        else:
            return False
        if not isinstance(following, cst.SimpleStatementLine) or not following.body:
            return False
        small = following.body[0]
        expr = small.value if isinstance(small, cst.Expr) else None
        if isinstance(expr, cst.Await):
            expr = expr.expression
        if not isinstance(expr, cst.Call):
            return False
        call = _method_call(expr)
        return call is not None and call[0] in ("close", "aclose", "rollback")

    def _handler(self) -> _Handler | None:
        """State of the innermost ``except`` clause (same function) enclosing the node."""
        stack = self.ctx.stack
        for index in range(len(stack) - 2, 0, -1):
            node = stack[index]
            if isinstance(node, _SCOPE_BOUNDARIES):
                return None
            if isinstance(node, cst.ExceptHandler):
                owner = stack[index - 1]
                found = next((t for t in reversed(self._tries) if t.node is owner), None)
                if found is None:
                    return None
                return found.handlers.setdefault(id(node), _Handler())
        return None

    def _guarding_tries(self) -> list[cst.Try]:
        """Tries whose body runs the current call, innermost first; stops at a ``with``
        that begins a transaction or opens the session (it rolls back by itself)."""
        tries: list[cst.Try] = []
        stack = self.ctx.stack
        for index in range(len(stack) - 2, -1, -1):
            node = stack[index]
            if isinstance(node, _SCOPE_BOUNDARIES):
                break
            if isinstance(node, cst.With) and self._transactional(node):
                break
            if isinstance(node, cst.Try) and stack[index + 1] is node.body:
                tries.append(node)
        return tries

    def _transactional(self, node: cst.With) -> bool:
        for item in node.items:
            expr = item.item
            if isinstance(expr, cst.Call):
                call = _method_call(expr)
                if call is not None and call[0] in ("begin", "begin_nested"):
                    return True
            kind = self.ctx.kind(expr)
            if kind is not None and (kind.is_session or kind in STATEMENT_EXECUTORS):
                return True
            if isinstance(expr, cst.Call) and self.ctx.kind(expr.func) is not None:
                return True
        return False

    def _catches(self, handler: cst.ExceptHandler, generic: bool) -> bool:
        """The handler catches database errors; with ``generic``, also through
        ``Exception`` or a bare ``except:``."""
        if handler.type is None:
            return generic
        return self._db_error(handler.type, generic)

    def _db_error(self, expr: cst.BaseExpression, generic: bool) -> bool:
        if isinstance(expr, cst.Tuple):
            return any(self._db_error(e.value, generic) for e in expr.elements)
        if generic and isinstance(expr, cst.Name) and expr.value in ("Exception", "BaseException"):
            imports = self.ctx.imports
            return expr.value not in imports.bindings and expr.value not in imports.local_defs
        return self.ctx.qualname(expr) in DB_ERRORS

    def _fix(
        self, handler: cst.ExceptHandler, calls: list[tuple[cst.BaseExpression, DbKind | None]], info: _Try
    ) -> FixBuilder:
        ctx = self.ctx
        fix = ctx.fix("Roll the session back first", unsafe=True)
        receivers = {ctx.module.code_for_node(r) for r, _ in calls}
        if len(receivers) != 1:
            return fix.fail()
        receiver, kind = calls[0]
        if kind is None and any(id(r) in info.awaited for r, _ in calls) != all(id(r) in info.awaited for r, _ in calls):
            return fix.fail()
        prefix = ""
        if kind in _ASYNC_KINDS or (kind is None and id(receiver) in info.awaited):
            if not ctx.in_async_function:
                return fix.fail()
            prefix = "await "
        statement = f"{prefix}{ctx.module.code_for_node(receiver)}.rollback()"
        body = handler.body
        if isinstance(body, cst.SimpleStatementSuite):
            return fix.insert_before(body.body[0], f"{statement}; ")
        assert isinstance(body, cst.IndentedBlock)
        indent = "".join(
            ctx.module.default_indent if n.indent is None else n.indent
            for n in (*ctx.stack, body)
            if isinstance(n, cst.IndentedBlock)
        )
        return fix.insert_before(body.body[0], f"{statement}{ctx.source.newline}{indent}")


# -- FDB803 -----------------------------------------------------------------------

_INSTANCE_METHODS = frozenset(
    {"scalar_one", "scalar_one_or_none", "scalar", "first", "one", "one_or_none", "all", "scalars", "unique", "get", "get_one"}
)
_QUERY_CHAIN_METHODS = frozenset(
    {"filter", "filter_by", "where", "order_by", "join", "outerjoin", "options", "populate_existing", "execution_options", "limit", "offset"}
)


_WRITE_METHODS = frozenset({"commit", "flush"})


@dataclass(frozen=True)
class _Load:
    model: cst.BaseExpression | None
    locked: bool


class ReadModifyWriteWithoutLock(Rule):
    """
    ## What it does
    Flags, inside one function, an augmented assignment (`obj.balance -= amount`) to
    an attribute of an instance loaded through a session without a row lock
    (`session.get(...)` without `with_for_update=True`, a `select(...)` or `query(...)`
    without `.with_for_update()`), followed by a `commit()` or `flush()`.

    ## Why is this bad?
    Two requests that load the same row both read the old value, and the second commit
    overwrites the first one's change: a lost update. Lock the row while modifying it,
    or let the database do the arithmetic.

    ## Example
    ```python
    account = await session.get(Account, account_id)
    account.balance -= amount
    await session.commit()
    ```

    ## Use instead
    ```python
    account = await session.get(Account, account_id, with_for_update=True)
    account.balance -= amount
    await session.commit()
    # or, in one statement:
    await session.execute(
        update(Account).where(Account.id == account_id).values(balance=Account.balance - amount)
    )
    ```

    ## Fix safety
    There is no fix: choosing between a lock and an atomic update is a design decision.

    Not flagged: increments done in SQL (`update(M).values(col=M.col + 1)`); models with
    optimistic locking (`version_id_col` in `__mapper_args__`, also on a base class);
    instances whose origin the analysis cannot follow (returned by helpers, received as
    parameters); modifications that are never committed or flushed in the function.
    """

    code = "FDB803"
    name = "read-modify-write-without-lock"
    summary = "Read-modify-write of a loaded row without a lock: lost updates"
    valid = [
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def withdraw(session: AsyncSession, account_id: int, amount: int) -> None:\n"
            "    account = await session.get(Account, account_id, with_for_update=True)\n"
            "    account.balance -= amount\n"
            "    await session.commit()\n"
        ),
        Valid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session\n"
            "def withdraw(db: Session, account_id: int, amount: int) -> None:\n"
            "    stmt = select(Account).where(Account.id == account_id).with_for_update()\n"
            "    account = db.execute(stmt).scalar_one()\n"
            "    account.balance -= amount\n"
            "    db.commit()\n"
        ),
        Valid(
            "from sqlalchemy import update\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def withdraw(session: AsyncSession, account_id: int, amount: int) -> None:\n"
            "    await session.execute(\n"
            "        update(Account).where(Account.id == account_id).values(balance=Account.balance - amount)\n"
            "    )\n"
            "    await session.commit()\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from app.models import Account\n"
            "async def withdraw(session: AsyncSession, account_id: int, amount: int) -> None:\n"
            "    account = await session.get(Account, account_id)\n"
            "    account.balance -= amount\n"
            "    await session.commit()\n",
            files={
                "app/models.py": "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n"
                "class Base(DeclarativeBase):\n"
                "    pass\n"
                "class Account(Base):\n"
                '    __tablename__ = "account"\n'
                "    id: Mapped[int] = mapped_column(primary_key=True)\n"
                "    balance: Mapped[int]\n"
                "    version: Mapped[int] = mapped_column(nullable=False)\n"
                '    __mapper_args__ = {"version_id_col": version}\n'
            },
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def preview(session: AsyncSession, account_id: int, amount: int) -> int:\n"
            "    account = await session.get(Account, account_id)\n"
            "    account.balance -= amount\n"
            "    return account.balance\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "def bump(db: Session, counter) -> None:\n"
            "    counter.value += 1\n"
            "    db.commit()\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def withdraw(session: AsyncSession, account_id: int, amount: int) -> None:\n"
            "    account = await session.get(Account, account_id)\n"
            "    account.balance -= amount\n"
            "    await session.commit()\n",
            line=4,
        ),
        Invalid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session\n"
            "def like(db: Session, post_id: int) -> None:\n"
            "    post = db.scalars(select(Post).where(Post.id == post_id)).one()\n"
            "    post.likes += 1\n"
            "    post.score += 2\n"
            "    db.flush()\n",
            count=2,
            line=5,
        ),
        Invalid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def restock(session: AsyncSession, sku: str, n: int) -> None:\n"
            "    result = await session.execute(select(Item).where(Item.sku == sku))\n"
            "    item = result.scalar_one()\n"
            "    item.stock += n\n"
            "    await session.commit()\n",
            line=6,
        ),
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def like(db: Session, post_id: int) -> None:\n"
            "    post = db.query(Post).filter(Post.id == post_id).first()\n"
            "    post.likes += 1\n"
            "    db.commit()\n",
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # An instance loaded by a session method (a name bound to a call, possibly
        # through other names), modified in place, then committed.
        calls = shape.calls
        return (
            bool(shape.aug_call_owners)
            and not _WRITE_METHODS.isdisjoint(calls)
            and not SESSION_QUERY_METHODS.isdisjoint(calls)
            and may_see_db_object(shape, project, SESSION_SOURCES)
        )

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        # Augmented assignments waiting for a commit, per function node.
        self._pending: dict[int, list[cst.AugAssign]] = {}

    def leave_AugAssign(self, node: cst.AugAssign) -> None:
        target = node.target
        function = self.ctx.function
        if function is None or not isinstance(target, cst.Attribute) or not isinstance(target.value, cst.Name):
            return
        if isinstance(node.value, (cst.List, cst.Tuple, cst.Set, cst.Dict, cst.ListComp, cst.SetComp, cst.DictComp)):
            # Growing a collection (a relationship list), not a read-modify-write of a value.
            return
        load = self._instance(target.value, 0)
        if load is None or load.locked or self._optimistic(load.model):
            return
        self._pending.setdefault(id(function.node), []).append(node)

    def visit_Call(self, node: cst.Call) -> None:
        call = _method_call(node)
        function = self.ctx.function
        if call is None or function is None or call[0] not in _WRITE_METHODS:
            return
        if self.ctx.kind(call[1]) not in STATEMENT_EXECUTORS:
            return
        for assignment in self._pending.pop(id(function.node), []):
            self.ctx.report(
                assignment,
                "Read-modify-write of a row loaded without a lock: concurrent requests lose updates; load it "
                "`with_for_update()` or update the column in SQL",
            )

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._pending.pop(id(node), None)

    # -- loads -----------------------------------------------------------------

    def _instance(self, expr: cst.BaseExpression, depth: int) -> _Load | None:
        """How the ORM instance ``expr`` evaluates to was loaded, if through a session."""
        if depth > 8:
            return None
        if isinstance(expr, cst.Await):
            return self._instance(expr.expression, depth + 1)
        if isinstance(expr, cst.Name):
            reach = self.ctx.values.reaching(expr.value)
            if reach is None or not reach.bindings or reach.unknown_param:
                return None
            loads = []
            for binding in reach.bindings:
                if binding.kind not in (BindingKind.VALUE, BindingKind.ELEMENT) or binding.value is None:
                    return None
                with self.ctx.values.evaluating(binding):
                    load = self._instance(binding.value, depth + 1)
                if load is None:
                    return None
                loads.append(load)
            return _Load(loads[0].model, any(load.locked for load in loads))
        if not isinstance(expr, cst.Call) or not isinstance(expr.func, cst.Attribute):
            return None
        method = expr.func.attr.value
        receiver = expr.func.value
        kind = self.ctx.kind(receiver)
        if kind in _SESSION_KINDS:
            if method in ("get", "get_one"):
                if not expr.args or expr.args[0].keyword is not None:
                    return None
                locked = any(
                    a.keyword is not None
                    and a.keyword.value == "with_for_update"
                    and not (isinstance(a.value, cst.Name) and a.value.value in ("False", "None"))
                    for a in expr.args
                )
                return _Load(expr.args[0].value, locked)
            if method in ("execute", "scalar", "scalars", "exec"):
                if not expr.args or expr.args[0].keyword is not None:
                    return None
                return self._statement(expr.args[0].value, depth + 1)
            if method == "query":
                if len(expr.args) != 1 or expr.args[0].keyword is not None:
                    return None
                return _Load(expr.args[0].value, False)
            return None
        if kind is not None:
            return None
        if method == "with_for_update":
            inner = self._instance(receiver, depth + 1)
            return _Load(inner.model if inner is not None else None, True)
        if method in _INSTANCE_METHODS or method in _QUERY_CHAIN_METHODS:
            return self._instance(receiver, depth + 1)
        return None

    def _statement(self, expr: cst.BaseExpression, depth: int) -> _Load | None:
        if depth > 8:
            return None
        if isinstance(expr, cst.Name):
            reach = self.ctx.values.reaching(expr.value)
            if reach is None or not reach.bindings or reach.unknown_param:
                return None
            loads = []
            for binding in reach.bindings:
                if binding.kind is not BindingKind.VALUE or binding.value is None:
                    return None
                with self.ctx.values.evaluating(binding):
                    load = self._statement(binding.value, depth + 1)
                if load is None:
                    return None
                loads.append(load)
            return _Load(loads[0].model, any(load.locked for load in loads))
        if not isinstance(expr, cst.Call):
            return None
        if self.ctx.callee(expr) in SELECT_FUNCTIONS:
            if len(expr.args) != 1 or expr.args[0].keyword is not None or expr.args[0].star:
                return None
            return _Load(expr.args[0].value, False)
        if not isinstance(expr.func, cst.Attribute):
            return None
        method = expr.func.attr.value
        if method == "options" or method in SELECT_CHAIN_METHODS:
            inner = self._statement(expr.func.value, depth + 1)
            if method == "with_for_update":
                return _Load(inner.model if inner is not None else None, True)
            return inner
        return None

    def _optimistic(self, model: cst.BaseExpression | None) -> bool:
        """The mapped class uses a version counter (``version_id_col``)."""
        if model is None:
            return False
        qualname = self.ctx.qualname(model)
        pending = [qualname] if qualname else []
        seen: set[str] = set()
        while pending and len(seen) < 20:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            located = self.ctx.project.class_(current) or self.ctx.project.class_(self.ctx.project.symbol(current))
            if located is None:
                continue
            facts = located[1]
            if "version_id_col" in facts.mapper_args or "?" in facts.mapper_args:
                return True
            pending.extend(b for b in facts.bases if b != "?")
        return False
