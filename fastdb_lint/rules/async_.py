"""FDB2xx: async correctness."""

from __future__ import annotations

import libcst as cst

from fastdb_lint.diagnostics import FixAvailability
from fastdb_lint.rules.base import Invalid, Rule, Valid


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
