"""The coroutine tables of analysis/sqlalchemy_api.py against the installed SQLAlchemy."""

from __future__ import annotations

import inspect

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_scoped_session

from fastdb_lint.analysis.sqlalchemy_api import (
    ASYNC_REGISTRY_COROUTINES,
    ASYNC_TRANSACTION_METHODS,
    COROUTINES_BY_KIND,
    DbKind,
    coroutine_methods,
)


def public_coroutines(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    }


@pytest.mark.parametrize(
    ("cls", "kind"),
    [
        (AsyncSession, DbKind.ASYNC_SESSION),
        (AsyncConnection, DbKind.ASYNC_CONNECTION),
        (AsyncEngine, DbKind.ASYNC_ENGINE),
    ],
    ids=["AsyncSession", "AsyncConnection", "AsyncEngine"],
)
def test_every_coroutine_method_is_known(cls: type, kind: DbKind) -> None:
    missing = public_coroutines(cls) - COROUTINES_BY_KIND[kind]
    assert not missing, f"{cls.__name__} coroutines missing from COROUTINES_BY_KIND[{kind}]: {sorted(missing)}"


def test_scoped_session_coroutines_are_known() -> None:
    missing = public_coroutines(async_scoped_session) - ASYNC_REGISTRY_COROUTINES
    assert not missing, sorted(missing)
    assert coroutine_methods(DbKind.ASYNC_REGISTRY) == ASYNC_REGISTRY_COROUTINES


def test_sync_methods_are_not_listed_as_coroutines() -> None:
    for name in ("add", "add_all", "expunge", "expunge_all", "expire", "begin", "begin_nested"):
        member = getattr(AsyncSession, name)
        assert not inspect.iscoroutinefunction(member), name
        assert name not in COROUTINES_BY_KIND[DbKind.ASYNC_SESSION], name
    for name in ("begin", "connect", "execution_options"):
        assert name not in COROUTINES_BY_KIND[DbKind.ASYNC_ENGINE], name
    for name in ASYNC_TRANSACTION_METHODS:
        assert not inspect.iscoroutinefunction(getattr(AsyncSession, name))
        assert not inspect.iscoroutinefunction(getattr(AsyncConnection, name))


def test_sync_kinds_have_no_coroutines() -> None:
    for kind in (DbKind.SYNC_SESSION, DbKind.SYNC_ENGINE, DbKind.SYNC_CONNECTION, None):
        assert coroutine_methods(kind) == frozenset()


def test_sqlmodel_async_session_coroutines_are_known() -> None:
    sqlmodel_asyncio = pytest.importorskip("sqlmodel.ext.asyncio.session")
    missing = public_coroutines(sqlmodel_asyncio.AsyncSession) - COROUTINES_BY_KIND[DbKind.ASYNC_SESSION]
    assert not missing, sorted(missing)
