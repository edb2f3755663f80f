"""What SQLAlchemy (and SQLModel) objects are and which of their methods are coroutines.

The coroutine method sets are read off SQLAlchemy itself (``inspect.iscoroutinefunction``
on the classes of ``sqlalchemy.ext.asyncio``); they are stored here so that linting a
file does not pay for importing SQLAlchemy, and ``tests/test_sqlalchemy_api.py`` fails
when the installed SQLAlchemy has a coroutine method missing from them.
"""

from __future__ import annotations

import enum


class DbKind(enum.Enum):
    SYNC_SESSION = "sync session"
    ASYNC_SESSION = "async session"
    SYNC_FACTORY = "sync session factory"
    ASYNC_FACTORY = "async session factory"
    SYNC_REGISTRY = "scoped_session registry"
    ASYNC_REGISTRY = "async_scoped_session registry"
    SYNC_ENGINE = "engine"
    ASYNC_ENGINE = "async engine"
    SYNC_CONNECTION = "connection"
    ASYNC_CONNECTION = "async connection"

    @property
    def is_session(self) -> bool:
        return self in (DbKind.SYNC_SESSION, DbKind.ASYNC_SESSION)

    @property
    def is_async(self) -> bool:
        return self in _ASYNC_KINDS

    @property
    def is_factory(self) -> bool:
        return self in (
            DbKind.SYNC_FACTORY,
            DbKind.ASYNC_FACTORY,
            DbKind.SYNC_REGISTRY,
            DbKind.ASYNC_REGISTRY,
        )


_ASYNC_KINDS = {
    DbKind.ASYNC_SESSION,
    DbKind.ASYNC_FACTORY,
    DbKind.ASYNC_REGISTRY,
    DbKind.ASYNC_ENGINE,
    DbKind.ASYNC_CONNECTION,
}

# Annotations naming these classes give the parameter's kind.
CLASS_KINDS: dict[str, DbKind] = {
    "sqlalchemy.orm.Session": DbKind.SYNC_SESSION,
    "sqlmodel.Session": DbKind.SYNC_SESSION,
    "sqlalchemy.ext.asyncio.AsyncSession": DbKind.ASYNC_SESSION,
    "sqlmodel.ext.asyncio.AsyncSession": DbKind.ASYNC_SESSION,
    "sqlalchemy.orm.sessionmaker": DbKind.SYNC_FACTORY,
    "sqlalchemy.ext.asyncio.async_sessionmaker": DbKind.ASYNC_FACTORY,
    "sqlalchemy.orm.scoped_session": DbKind.SYNC_REGISTRY,
    "sqlalchemy.ext.asyncio.async_scoped_session": DbKind.ASYNC_REGISTRY,
    "sqlalchemy.Engine": DbKind.SYNC_ENGINE,
    "sqlalchemy.ext.asyncio.AsyncEngine": DbKind.ASYNC_ENGINE,
    "sqlalchemy.Connection": DbKind.SYNC_CONNECTION,
    "sqlalchemy.ext.asyncio.AsyncConnection": DbKind.ASYNC_CONNECTION,
}

# Calling these gives an object of the kind (sessionmaker's ``class_=`` is checked by
# the session analysis).
CONSTRUCTOR_KINDS: dict[str, DbKind] = {
    **{
        name: kind
        for name, kind in CLASS_KINDS.items()
        if kind not in (DbKind.SYNC_ENGINE, DbKind.SYNC_CONNECTION, DbKind.ASYNC_CONNECTION)
    },
    "sqlalchemy.create_engine": DbKind.SYNC_ENGINE,
    "sqlmodel.create_engine": DbKind.SYNC_ENGINE,
    "sqlalchemy.ext.asyncio.create_async_engine": DbKind.ASYNC_ENGINE,
}

SESSION_CLASSES = frozenset(n for n, k in CLASS_KINDS.items() if k.is_session)
ASYNC_SESSION_CLASSES = frozenset(n for n, k in CLASS_KINDS.items() if k is DbKind.ASYNC_SESSION)

# inspect.iscoroutinefunction over the public members of each class.
ASYNC_SESSION_COROUTINES = frozenset(
    {
        "aclose", "close", "close_all", "commit", "connection", "delete", "delete_all",
        "execute", "flush", "get", "get_one", "invalidate", "merge", "merge_all", "refresh",
        "reset", "rollback", "run_sync", "scalar", "scalars", "stream", "stream_scalars",
        # sqlmodel.ext.asyncio.AsyncSession adds exec()
        "exec",
    }
)
ASYNC_CONNECTION_COROUTINES = frozenset(
    {
        "aclose", "close", "commit", "exec_driver_sql", "execute", "execution_options",
        "get_isolation_level", "get_raw_connection", "invalidate", "rollback", "run_sync",
        "scalar", "scalars", "start", "stream", "stream_scalars",
    }
)
ASYNC_ENGINE_COROUTINES = frozenset({"dispose", "raw_connection"})

COROUTINES_BY_KIND: dict[DbKind, frozenset[str]] = {
    DbKind.ASYNC_SESSION: ASYNC_SESSION_COROUTINES,
    DbKind.ASYNC_CONNECTION: ASYNC_CONNECTION_COROUTINES,
    DbKind.ASYNC_ENGINE: ASYNC_ENGINE_COROUTINES,
}

# Session methods that run SQL (for rules about queries and blocking IO).
SESSION_QUERY_METHODS = frozenset({"execute", "scalar", "scalars", "get", "get_one", "query", "refresh", "exec"})
SESSION_IO_METHODS = SESSION_QUERY_METHODS | frozenset(
    {"commit", "flush", "rollback", "delete", "merge", "connection", "stream", "stream_scalars"}
)

EAGER_LOADERS = frozenset(
    {
        "sqlalchemy.orm.selectinload",
        "sqlalchemy.orm.joinedload",
        "sqlalchemy.orm.subqueryload",
        "sqlalchemy.orm.immediateload",
        "sqlalchemy.orm.contains_eager",
        "sqlalchemy.orm.noload",
        "sqlalchemy.orm.raiseload",
        "sqlalchemy.orm.defaultload",
    }
)
# lazy= values (as written in source) that never emit an implicit lazy load.
NON_LAZY_STRATEGIES = frozenset(
    {
        "selectin", "joined", "subquery", "immediate", "raise", "raise_on_sql", "noload",
        "write_only", "dynamic", "False", "None",
    }
)
ASYNC_MODULES = ("sqlalchemy.ext.asyncio", "sqlmodel.ext.asyncio")
