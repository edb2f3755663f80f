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

# async_scoped_session proxies the session's coroutines and adds remove().
ASYNC_REGISTRY_COROUTINES = (ASYNC_SESSION_COROUTINES - {"exec"}) | {"remove"}


def coroutine_methods(kind: DbKind | None) -> frozenset[str]:
    """Names of the coroutine methods of an object of this kind (empty when none)."""
    if kind is DbKind.ASYNC_REGISTRY:
        return ASYNC_REGISTRY_COROUTINES
    return COROUTINES_BY_KIND.get(kind, frozenset()) if kind is not None else frozenset()


# Methods of AsyncSession / AsyncConnection that are not coroutines: `begin()` and
# `begin_nested()` return a transaction used with `async with` (or awaited).
ASYNC_TRANSACTION_METHODS = frozenset({"begin", "begin_nested"})

# `select()` callables (single ORM entity: `select(Model)`).
SELECT_FUNCTIONS = frozenset({"sqlalchemy.select", "sqlmodel.select"})
# Select methods that keep the selected entity.
SELECT_CHAIN_METHODS = frozenset(
    {
        "where", "filter", "filter_by", "order_by", "limit", "offset", "fetch", "slice", "join",
        "outerjoin", "join_from", "outerjoin_from", "distinct", "group_by", "having",
        "execution_options", "with_for_update", "params", "prefix_with", "suffix_with",
        "with_hint", "with_statement_hint", "correlate", "correlate_except", "select_from",
        "set_label_style", "enable_assertions", "autoflush", "populate_existing",
    }
)
# Loader options that keep a relationship lazy.
LAZY_LOADER_OPTIONS = frozenset({"sqlalchemy.orm.lazyload"})
# Loader options that do not decide how relationships load.
NEUTRAL_LOADER_OPTIONS = frozenset(
    {
        "sqlalchemy.orm.load_only",
        "sqlalchemy.orm.defer",
        "sqlalchemy.orm.undefer",
        "sqlalchemy.orm.undefer_group",
        "sqlalchemy.orm.with_expression",
        "sqlalchemy.orm.selectin_polymorphic",
        "sqlalchemy.orm.with_loader_criteria",
    }
)
# lazy= values that load on attribute access (SQLAlchemy's default is "select").
LAZY_LOAD_STRATEGIES = frozenset({"select", "True"})

# Result methods (sync on Result/ScalarResult): what each gives.
RESULT_TO_SCALARS = frozenset({"scalars"})
RESULT_TO_INSTANCE = frozenset({"scalar_one", "scalar_one_or_none", "scalar"})
SCALARS_TO_LIST = frozenset({"all", "fetchall", "fetchmany"})
SCALARS_TO_INSTANCE = frozenset({"first", "one", "one_or_none"})
RESULT_SAME = frozenset({"unique", "yield_per"})
# Synchronous methods of Result/ScalarResult (a chain of these after a coroutine
# call means the `await` belongs on the call).
SYNC_RESULT_METHODS = (
    RESULT_TO_SCALARS | RESULT_TO_INSTANCE | SCALARS_TO_LIST | SCALARS_TO_INSTANCE | RESULT_SAME
) | frozenset({"mappings", "tuples", "partitions", "columns", "scalar_one", "freeze", "t"})

# Objects whose execute()/scalar()/scalars() run a statement (a plain string is not one).
STATEMENT_EXECUTORS = frozenset(
    {
        DbKind.SYNC_SESSION,
        DbKind.ASYNC_SESSION,
        DbKind.SYNC_REGISTRY,
        DbKind.ASYNC_REGISTRY,
        DbKind.SYNC_CONNECTION,
        DbKind.ASYNC_CONNECTION,
    }
)
# Functions that take SQL text.
TEXT_FUNCTIONS = frozenset({"sqlalchemy.text", "sqlmodel.text"})
LITERAL_COLUMN_FUNCTIONS = frozenset({"sqlalchemy.literal_column", "sqlmodel.literal_column"})
# Exceptions after which a session must be rolled back before it is used again.
DB_ERRORS = frozenset(
    "sqlalchemy.exc." + name
    for name in (
        "SQLAlchemyError", "StatementError", "DBAPIError", "IntegrityError", "OperationalError",
        "ProgrammingError", "DataError", "InternalError", "NotSupportedError", "InterfaceError",
        "DatabaseError", "PendingRollbackError",
    )
)
