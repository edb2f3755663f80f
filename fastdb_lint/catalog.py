"""The rule catalog: code, name, summary, fix availability, opt-in status, severity and
tags of every rule, as plain data.

Generated from the rule classes by ``python -m fastdb_lint.docs``; do not edit. Rule
selection, configuration and reports read it, so a run answered from the cache never
imports the rule modules or LibCST.
"""

from __future__ import annotations

from typing import NamedTuple

from fastdb_lint.diagnostics import FixAvailability, Severity


class RuleInfo(NamedTuple):
    code: str
    name: str
    summary: str
    fix: FixAvailability
    opt_in: bool
    severity: Severity
    tags: tuple[str, ...]
    # Words one of which a Python file must mention to be linted by the rule (with the
    # project's symbols, for rules that read them); () for every file.
    triggers: tuple[str, ...]


RULES: dict[str, RuleInfo] = {
    info.code: info
    for info in (
        RuleInfo('FDB001', 'parse-error', 'File cannot be decoded or parsed', FixAvailability.NONE, False, Severity.WARNING, (), ()),
        RuleInfo('FDB101', 'global-session', 'Session instance created at module or class level', FixAvailability.NONE, False, Severity.WARNING, (), ('sqlalchemy', 'sqlmodel', 'Session', 'session')),
        RuleInfo('FDB102', 'engine-per-request', 'Engine created inside a route handler or dependency', FixAvailability.NONE, False, Severity.WARNING, (), ('create_engine', 'create_async_engine')),
        RuleInfo('FDB103', 'sessionmaker-per-request', 'Session factory created inside a route handler or dependency', FixAvailability.NONE, False, Severity.WARNING, (), ('sessionmaker',)),
        RuleInfo('FDB104', 'unclosed-session', 'Session created in a function and never closed', FixAvailability.NONE, False, Severity.WARNING, (), ('sqlalchemy', 'sqlmodel', 'Session', 'session')),
        RuleInfo('FDB105', 'dependency-returns-session', 'Dependency returns a new session instead of yielding it', FixAvailability.NONE, False, Severity.WARNING, (), ('sqlalchemy', 'sqlmodel', 'Session', 'session')),
        RuleInfo('FDB106', 'on-event-handler', 'Deprecated `on_event` startup/shutdown handler', FixAvailability.NONE, False, Severity.WARNING, (), ('on_event',)),
        RuleInfo('FDB107', 'engine-never-disposed', 'Module-level async engine never disposed', FixAvailability.NONE, True, Severity.WARNING, (), ('create_async_engine', 'AsyncEngine')),
        RuleInfo('FDB108', 'session-shared-across-tasks', 'Session shared by concurrent tasks', FixAvailability.NONE, False, Severity.WARNING, (), ('gather', 'create_task', 'ensure_future', 'start_soon')),
        RuleInfo('FDB109', 'session-in-background-task', 'Request-scoped session passed to a background task', FixAvailability.NONE, False, Severity.WARNING, (), ('add_task', 'BackgroundTask')),
        RuleInfo('FDB201', 'expire-on-commit-enabled', 'Async session factory without `expire_on_commit=False`', FixAvailability.SAFE, False, Severity.WARNING, (), ('async_sessionmaker', 'AsyncSession')),
        RuleInfo('FDB202', 'missing-await', 'Coroutine method of an async session, connection or engine called without `await`', FixAvailability.SAFE, False, Severity.WARNING, (), ('sqlalchemy', 'sqlmodel', 'Session', 'session')),
        RuleInfo('FDB203', 'sync-session-in-async', 'Sync `Session` runs queries inside `async def`, blocking the event loop', FixAvailability.NONE, False, Severity.WARNING, (), ('sqlalchemy', 'sqlmodel', 'Session', 'session')),
        RuleInfo('FDB204', 'implicit-lazy-load', 'Relationship read in async code without being eager-loaded (implicit lazy load)', FixAvailability.NONE, False, Severity.WARNING, (), ('sqlalchemy', 'sqlmodel', 'Session', 'session')),
        RuleInfo('FDB205', 'relationship-without-lazy', '`relationship()` without an explicit `lazy=` strategy in an asyncio project', FixAvailability.UNSAFE, False, Severity.WARNING, (), ('relationship',)),
        RuleInfo('FDB206', 'dynamic-relationship-in-async', '`lazy="dynamic"` relationship in a project that uses SQLAlchemy\'s asyncio extension', FixAvailability.UNSAFE, False, Severity.WARNING, (), ('dynamic', 'DynamicMapped')),
        RuleInfo('FDB207', 'sync-context-manager-on-async', '`with` on an async session, engine connection or transaction: it needs `async with`', FixAvailability.SAFE, False, Severity.WARNING, (), ('sqlalchemy', 'sqlmodel', 'Session', 'session')),
        RuleInfo('FDB208', 'async-session-in-sync-function', 'Plain `def` calls coroutine methods of an `AsyncSession` it can never await', FixAvailability.NONE, False, Severity.WARNING, (), ('sqlalchemy', 'sqlmodel', 'Session', 'session')),
        RuleInfo('FDB301', 'legacy-query-api', 'Legacy `Session.query()` API', FixAvailability.UNSAFE, False, Severity.WARNING, (), ('query',)),
        RuleInfo('FDB302', 'query-on-async-session', '`AsyncSession` has no `query()` method', FixAvailability.UNSAFE, False, Severity.WARNING, (), ('query',)),
        RuleInfo('FDB303', 'legacy-query-get', '`session.query(Model).get(pk)` is deprecated', FixAvailability.SAFE, False, Severity.WARNING, (), ('query',)),
        RuleInfo('FDB304', 'legacy-select-list', '`select([...])` list form was removed in SQLAlchemy 2.0', FixAvailability.SAFE, False, Severity.WARNING, (), ('select',)),
        RuleInfo('FDB305', 'python-side-aggregation', 'Aggregation done in Python instead of SQL', FixAvailability.NONE, False, Severity.WARNING, (), ('len', 'sum')),
        RuleInfo('FDB306', 'query-in-loop', 'Query inside a loop (N+1)', FixAvailability.NONE, False, Severity.WARNING, (), ('sqlalchemy', 'sqlmodel', 'Session', 'session')),
        RuleInfo('FDB307', 'rows-instead-of-scalars', 'Single-entity `execute()` result read as rows', FixAvailability.SAFE, False, Severity.WARNING, (), ('execute',)),
        RuleInfo('FDB308', 'unbounded-select-in-route', 'Route returns every row of an unbounded `select()`', FixAvailability.NONE, True, Severity.WARNING, (), ('scalars', 'exec')),
        RuleInfo('FDB309', 'select-filter-alias', '`.filter()` on a `select()`: use `.where()`', FixAvailability.SAFE, True, Severity.WARNING, (), ('filter',)),
        RuleInfo('FDB310', 'update-or-delete-without-where', '`UPDATE`/`DELETE` without a `WHERE` clause', FixAvailability.NONE, False, Severity.WARNING, (), ('update', 'delete')),
        RuleInfo('FDB401', 'raw-sql-string', 'Plain string passed to `execute()`: wrap SQL in `text()`', FixAvailability.SAFE, False, Severity.WARNING, (), ('sqlalchemy', 'sqlmodel', 'Session', 'session')),
        RuleInfo('FDB402', 'sql-injection', 'SQL built from non-constant values: SQL injection', FixAvailability.UNSAFE, False, Severity.SECURITY, (), ('execute', 'text', 'literal_column', 'exec_driver_sql')),
        RuleInfo('FDB501', 'missing-naming-convention', 'Metadata without a naming convention', FixAvailability.UNSAFE, False, Severity.WARNING, (), ('MetaData', 'declarative_base', 'DeclarativeBase', 'registry', 'as_declarative', 'SQLModel', 'sqlmodel', 'table=')),
        RuleInfo('FDB502', 'legacy-declarative-base', 'Legacy `declarative_base()` instead of `class Base(DeclarativeBase)`', FixAvailability.SAFE, False, Severity.WARNING, (), ('declarative_base',)),
        RuleInfo('FDB503', 'untyped-column', 'Untyped `Column()` in a mapped class', FixAvailability.UNSAFE, False, Severity.WARNING, (), ('Column',)),
        RuleInfo('FDB504', 'missing-tablename', 'Mapped class without `__tablename__`', FixAvailability.NONE, False, Severity.WARNING, (), ('sqlalchemy', 'sqlmodel', 'Session', 'session')),
        RuleInfo('FDB505', 'foreign-key-without-index', 'Foreign key column without an index', FixAvailability.UNSAFE, False, Severity.WARNING, (), ('ForeignKey', 'foreign_key')),
        RuleInfo('FDB506', 'naive-datetime-default', 'Naive application-clock datetime default on a column', FixAvailability.UNSAFE, False, Severity.WARNING, (), ('datetime',)),
        RuleInfo('FDB507', 'tablename-convention', 'Table name is not singular snake_case', FixAvailability.NONE, True, Severity.WARNING, (), ('__tablename__',)),
        RuleInfo('FDB508', 'temporal-column-suffix', 'Datetime column not ending in `_at` / date column not ending in `_date`', FixAvailability.NONE, True, Severity.WARNING, (), ('Mapped',)),
        RuleInfo('FDB509', 'backref-instead-of-back-populates', '`relationship(backref=...)` instead of `back_populates`', FixAvailability.NONE, False, Severity.WARNING, (), ('backref',)),
        RuleInfo('FDB601', 'sync-driver-in-async-engine', 'Async engine created with a sync database driver', FixAvailability.SAFE, False, Severity.WARNING, (), ('create_async_engine', 'AsyncEngine')),
        RuleInfo('FDB602', 'sync-driver-import-in-async-app', 'Sync database driver imported in an async application module', FixAvailability.NONE, False, Severity.WARNING, (), ('psycopg2', 'pymysql', 'MySQLdb', 'cx_Oracle')),
        RuleInfo('FDB603', 'echo-enabled', 'Engine created with statement echo enabled', FixAvailability.SAFE, False, Severity.WARNING, (), ('echo',)),
        RuleInfo('FDB604', 'missing-pool-pre-ping', 'Server database engine without `pool_pre_ping=True`', FixAvailability.SAFE, False, Severity.WARNING, (), ('create_engine', 'create_async_engine')),
        RuleInfo('FDB605', 'hardcoded-database-credentials', 'Database URL with a hard-coded password', FixAvailability.NONE, False, Severity.SECURITY, (), ('postgres', 'mysql', 'mariadb', 'mssql', 'oracle', 'cockroachdb', 'redshift', 'snowflake', 'sqlalchemy.url')),
        RuleInfo('FDB606', 'sqlite-memory-without-static-pool', 'In-memory SQLite engine without `StaticPool`', FixAvailability.SAFE, False, Severity.WARNING, (), ('create_engine', 'create_async_engine')),
        RuleInfo('FDB607', 'pool-args-with-nullpool', 'Pool sizing arguments given with `poolclass=NullPool`', FixAvailability.SAFE, False, Severity.WARNING, (), ('NullPool',)),
        RuleInfo('FDB608', 'deprecated-future-flag', '`future=True` is a no-op in SQLAlchemy 2.0', FixAvailability.SAFE, False, Severity.WARNING, (), ('future',)),
        RuleInfo('FDB701', 'irreversible-migration', 'Migration with an empty `downgrade()`', FixAvailability.NONE, False, Severity.WARNING, (), ('downgrade',)),
        RuleInfo('FDB702', 'migration-imports-app-code', 'Migration imports application code', FixAvailability.NONE, False, Severity.WARNING, (), ('revision',)),
        RuleInfo('FDB703', 'not-null-column-without-default', 'NOT NULL column added without a server default', FixAvailability.NONE, False, Severity.WARNING, (), ('add_column',)),
        RuleInfo('FDB704', 'index-without-concurrently', 'Index created without `postgresql_concurrently=True`', FixAvailability.NONE, True, Severity.WARNING, (), ('create_index',)),
        RuleInfo('FDB705', 'env-without-target-metadata', 'Alembic `env.py` without `target_metadata`', FixAvailability.NONE, False, Severity.WARNING, (), ('target_metadata',)),
        RuleInfo('FDB801', 'commit-in-loop', '`commit()` inside a loop: one transaction per row', FixAvailability.NONE, False, Severity.WARNING, (), ('sqlalchemy', 'sqlmodel', 'Session', 'session')),
        RuleInfo('FDB802', 'db-error-swallowed-without-rollback', 'Database error swallowed without `rollback()`: the session is left unusable', FixAvailability.UNSAFE, False, Severity.WARNING, (), ('sqlalchemy', 'sqlmodel', 'Session', 'session')),
        RuleInfo('FDB803', 'read-modify-write-without-lock', 'Read-modify-write of a loaded row without a lock: lost updates', FixAvailability.NONE, False, Severity.WARNING, (), ('sqlalchemy', 'sqlmodel', 'Session', 'session')),
        RuleInfo('FDB901', 'session-created-in-route', 'Route handler creates its own session instead of using a dependency', FixAvailability.NONE, False, Severity.WARNING, (), ('sqlalchemy', 'sqlmodel', 'Session', 'session')),
    )
}
